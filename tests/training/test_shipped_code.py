"""The code reaches each container with the requirements that container's mechanism installs.

* ``sourcedir.tar.gz`` has ``requirements.txt`` at its root (script mode installs it);
* processing steps run ``training.bootstrap``, which installs that file before the step's module;
* ``model.tar.gz`` has ``code/inference.py`` and ``code/requirements.txt`` (the serving toolkit).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.domain.pipeline import PROCESSING_ROOT, PlanInputs, plan_run
from reviewsense.codepublish import build_sourcedir_archive, publish_code
from tests.helpers.paths import ROOT
from training import bootstrap, model_io


def test_model_archive_carries_the_handler_and_its_requirements(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    archive = model_io.pack_model(trained["model_dir"], tmp_path / "model.tar.gz")
    with tarfile.open(archive) as tar:
        assert {"code/inference.py", "code/requirements.txt"} <= set(tar.getnames())
        shipped = tar.extractfile("code/requirements.txt")
        assert shipped is not None
        assert shipped.read() == (ROOT / "training" / "serving_requirements.txt").read_bytes()


def test_sourcedir_has_requirements_at_its_root() -> None:
    with tarfile.open(fileobj=io.BytesIO(build_sourcedir_archive(ROOT))) as tar:
        names = set(tar.getnames())
        assert {"requirements.txt", "training/train.py", "training/bootstrap.py"} <= names
        assert "training/serving_requirements.txt" in names  # train.py copies it into model.tar.gz
        root_requirements = tar.extractfile("requirements.txt")
        assert root_requirements is not None
        assert root_requirements.read() == (ROOT / "training" / "requirements.txt").read_bytes()


class RecordingS3:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:  # noqa: N803 (boto3's names)
        self.objects[f"s3://{Bucket}/{Key}"] = Body


def plan() -> dict[str, Any]:
    return plan_run(
        PlanInputs(
            run_id=f"{datetime(2026, 11, 29, tzinfo=UTC):%Y%m%d-%H%M%S}-x",
            bucket="lake",
            role_arn="arn:aws:iam::123456789012:role/r",
            training_image="t",
            processing_image="p",
            training_instance_type="ml.m5.xlarge",
            processing_instance_type="ml.m5.xlarge",
            max_training_seconds=60,
            poll_seconds=1,
            hyperparameters={},
            featurize_args={},
            champion_model_data="s3://lake/champion/model.tar.gz",
        )
    )


def test_processing_steps_install_the_published_requirements_first() -> None:
    s3 = RecordingS3()
    publish_code(s3, "lake", "code/", ROOT)
    run = plan()
    for step, module in (
        ("featurize", "training.featurize"),
        ("evaluate_candidate", "training.evaluate"),
        ("evaluate_champion", "training.evaluate"),
    ):
        request = run[step]
        assert request["AppSpecification"]["ContainerEntrypoint"] == [
            "python3",
            "-m",
            "training.bootstrap",
            module,
        ]
        code = next(i["S3Input"] for i in request["ProcessingInputs"] if i["InputName"] == "code")
        assert code["LocalPath"] == f"{PROCESSING_ROOT}/code" == request["Environment"]["PYTHONPATH"]
        # what lands in LocalPath: bootstrap installs <code root>/requirements.txt
        assert (
            s3.objects[f"{code['S3Uri']}requirements.txt"]
            == (ROOT / "training" / "requirements.txt").read_bytes()
        )
        assert f"{code['S3Uri']}training/bootstrap.py" in s3.objects
    assert run["training"]["HyperParameters"]["sagemaker_submit_directory"] in s3.objects


def _code_root(tmp_path: Path, requirements: str) -> Path:
    root = tmp_path / "code"
    (root / "training").mkdir(parents=True)
    for name in ("__init__.py", "bootstrap.py"):
        (root / "training" / name).write_bytes((ROOT / "training" / name).read_bytes())
    (root / "training" / "step.py").write_text(
        "import sys\nfrom pathlib import Path\n\n"
        "if __name__ == '__main__':\n    Path(sys.argv[1]).write_text(' '.join(sys.argv[2:]))\n"
    )
    (root / "requirements.txt").write_text(requirements)
    return root


def _run_bootstrap(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root), "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run(
        [sys.executable, "-m", "training.bootstrap", "training.step", *args],
        cwd=root.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_bootstrap_installs_then_runs_the_module_as_main(tmp_path: Path) -> None:
    import packaging

    root = _code_root(tmp_path, f"packaging=={packaging.__version__}\n")
    done = _run_bootstrap(root, str(tmp_path / "out.txt"), "--input", "x")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.txt").read_text() == "--input x"
    assert f"-m pip install --no-cache-dir -r {root / 'requirements.txt'}" in done.stderr


def test_bootstrap_fails_the_job_when_the_requirements_cannot_be_installed(tmp_path: Path) -> None:
    root = _code_root(tmp_path, "packaging==0.0.1\n")
    done = _run_bootstrap(root, str(tmp_path / "out.txt"))
    assert done.returncode != 0
    assert "No matching distribution found for packaging==0.0.1" in done.stderr
    assert "InstallRequirementsError" in done.stderr
    assert not (tmp_path / "out.txt").exists()  # the step never ran


def test_bootstrap_usage() -> None:
    assert bootstrap.main([]) == 2
    assert bootstrap.main(["--help"]) == 2
    assert bootstrap.install_command(Path("/c/requirements.txt"))[1:] == [
        "-m",
        "pip",
        "install",
        "--no-cache-dir",
        "-r",
        "/c/requirements.txt",
    ]


def test_the_training_request_downloads_an_s3_encoder_as_a_channel() -> None:
    run = plan_run(
        PlanInputs(
            run_id="20261129-000000-x",
            bucket="lake",
            role_arn="arn:aws:iam::123456789012:role/r",
            training_image="t",
            processing_image="p",
            training_instance_type="ml.g5.xlarge",
            processing_instance_type="ml.m5.xlarge",
            max_training_seconds=60,
            poll_seconds=1,
            hyperparameters={"model-name-or-path": "s3://lake/models/base/mpnet/"},
            featurize_args={},
            champion_model_data=None,
        )
    )
    training = run["training"]
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in training["InputDataConfig"]
    }
    assert channels["encoder"] == "s3://lake/models/base/mpnet/"
    assert training["HyperParameters"]["model-name-or-path"] == "channel:encoder"
