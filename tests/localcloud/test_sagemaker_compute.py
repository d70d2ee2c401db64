"""SageMaker compute on the local cloud: the same boto3 calls as on AWS, and the work really happens.

One local cloud runs in this process for the module (it shares moto's in-process backends, so the
SageMaker patches are exercised exactly as the Step Functions tasks and Lambdas would hit them) and is
driven with plain boto3: training jobs (artifacts, metrics, failures, stops), a processing job with
``/opt/ml/processing`` rewriting, an endpoint with two weighted variants, data capture, a blue/green
update and delete, a restart that serves the endpoint again, and the project's own training code and
serving handler end to end.

Why one module of about 600 lines: every test here runs against the one local cloud the module starts
(endpoint processes included, about 30 s to bring up on 2 cores); splitting the module would start it
once per part. Shared helpers live in ``tests/helpers``; what stays here is the tests themselves.
"""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from botocore.exceptions import ClientError

from reviewsense.codepublish import publish_code
from tests.helpers.archives import targz, untar
from tests.helpers.cloud import InProcessCloud as Cloud
from tests.helpers.cloud import in_process_cloud
from tests.helpers.paths import ROOT
from tests.helpers.reviews import make_kaggle_frame
from tests.helpers.tinymodels import build_tiny_bert
from tests.helpers.waiting import wait_status, wait_until

pytestmark = pytest.mark.localcloud
BUCKET = "sm-compute-test"
ROLE = "arn:aws:iam::123456789012:role/reviewsense-local-execution"
T = TypeVar("T")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with in_process_cloud(tmp_path_factory.mktemp("sagemaker-cloud"), BUCKET) as c:
        yield c


def put(cloud: Cloud, key: str, body: bytes | str) -> str:
    cloud.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


def get(cloud: Cloud, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bytes(cloud.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def keys(cloud: Cloud, prefix: str) -> list[str]:
    pages = cloud.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def start_training(
    cloud: Cloud,
    script: str,
    *,
    hyperparameters: dict[str, str] | None = None,
    metrics: list[dict[str, str]] | None = None,
    max_runtime_s: int = 600,
    program: str = "train.py",
    submit_directory: str | None = None,
    channels: dict[str, str] | None = None,
) -> str:
    """A job running ``script`` as ``program``, or ``program`` from a published ``submit_directory``."""
    name = f"job-{uuid.uuid4().hex[:10]}"
    source = submit_directory or put(cloud, f"code/{name}/sourcedir.tar.gz", targz({program: script}))
    inputs = [
        {"ChannelName": channel, "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}
        for channel, uri in (channels or {}).items()
    ]
    cloud.client("sagemaker").create_training_job(
        **({"InputDataConfig": inputs} if inputs else {}),
        TrainingJobName=name,
        HyperParameters={
            **(hyperparameters or {}),
            "sagemaker_program": json.dumps(program),
            "sagemaker_submit_directory": json.dumps(source),
        },
        AlgorithmSpecification={
            "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311",
            "TrainingInputMode": "File",
            "MetricDefinitions": metrics or [],
        },
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/models"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": max_runtime_s},
    )
    return name


def describe_job(cloud: Cloud, name: str) -> dict[str, Any]:
    result: dict[str, Any] = cloud.client("sagemaker").describe_training_job(TrainingJobName=name)
    return result


def wait_job(cloud: Cloud, name: str, timeout_s: float = 60.0) -> dict[str, Any]:
    return wait_status(
        lambda: describe_job(cloud, name), "TrainingJobStatus", ("InProgress", "Stopping"), timeout_s
    )


# ---- training jobs ---------------------------------------------------------------------------------------

TRAIN_SCRIPT = """
import argparse, json, os, pathlib, sys
parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int)
parser.add_argument("--greeting")
args, _ = parser.parse_known_args()
data = (pathlib.Path(os.environ["SM_CHANNEL_TRAIN"]) / "part" / "data.txt").read_text()
print("epoch 1 train_loss: 0.9")
print("val_macro_f1: 0.5")
print("warning: val_loss: nan", file=sys.stderr)
print("val_macro_f1: 0.75")
model = pathlib.Path(os.environ["SM_MODEL_DIR"])
(model / "weights").mkdir()
(model / "weights" / "model.json").write_text(json.dumps({
    "epochs": args.epochs, "greeting": args.greeting, "data": data, "argv": sys.argv[1:],
    "hps": json.loads(os.environ["SM_HPS"]), "channels": json.loads(os.environ["SM_CHANNELS"]),
    "gpus": os.environ["SM_NUM_GPUS"], "job": json.loads(os.environ["SM_TRAINING_ENV"])["job_name"],
}))
(pathlib.Path(os.environ["SM_OUTPUT_DATA_DIR"]) / "report.txt").write_text("report")
"""
METRICS = [
    {"Name": "train_loss", "Regex": r"train_loss: ([-+0-9.eE]+|nan|inf)"},
    {"Name": "val_loss", "Regex": r"val_loss: ([-+0-9.eE]+|nan|inf)"},
    {"Name": "val_macro_f1", "Regex": r"val_macro_f1: ([0-9.]+)"},
]


def test_training_job_runs_the_script_and_publishes_artifacts_and_metrics(cloud: Cloud) -> None:
    put(cloud, "data/train/part/data.txt", "three reviews")
    name = start_training(
        cloud,
        TRAIN_SCRIPT,
        hyperparameters={"epochs": "3", "greeting": json.dumps("hello world")},
        metrics=METRICS,
        channels={"train": f"s3://{BUCKET}/data/train/"},
    )
    assert describe_job(cloud, name)["TrainingJobStatus"] == "InProgress"
    job = wait_job(cloud, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["SecondaryStatus"] == "Completed"
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert job["TrainingTimeInSeconds"] >= 1 and job["TrainingEndTime"] >= job["TrainingStartTime"]
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == METRICS

    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{BUCKET}/models/{name}/output/model.tar.gz"
    files = untar(get(cloud, artifact))
    assert list(files) == ["weights/model.json"]  # the model dir's files at the archive root
    saved = json.loads(files["weights/model.json"])
    assert saved["epochs"] == 3 and saved["greeting"] == "hello world" and saved["data"] == "three reviews"
    assert saved["argv"] == ["--epochs", "3", "--greeting", "hello world"]
    assert saved["hps"] == {"epochs": 3, "greeting": "hello world"}
    assert saved["channels"] == ["train"] and saved["gpus"] == "0" and saved["job"] == name
    assert untar(get(cloud, f"s3://{BUCKET}/models/{name}/output/output.tar.gz")) == {"report.txt": b"report"}

    final = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert final == {"train_loss": 0.9, "val_macro_f1": 0.75}  # NaN is dropped, like CloudWatch does
    stats = cloud.client("cloudwatch").get_metric_statistics(
        Namespace="/aws/sagemaker/TrainingJobs",
        MetricName="val_macro_f1",
        Dimensions=[{"Name": "Host", "Value": f"{name}/algo-1"}],
        StartTime=job["CreationTime"].timestamp() - 60,
        EndTime=time.time() + 60,
        Period=60,
        Statistics=["Maximum", "SampleCount"],
    )["Datapoints"]
    assert sum(d["SampleCount"] for d in stats) == 2 and max(d["Maximum"] for d in stats) == 0.75

    log_file = cloud.options.home / "logs" / "sagemaker" / f"{name}.log"
    assert "val_macro_f1: 0.5" in log_file.read_text()
    events = cloud.client("logs").get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=f"{name}/algo-1"
    )["events"]
    assert any("train_loss: 0.9" in e["message"] for e in events)


def test_a_failing_script_fails_the_job_with_its_stderr(cloud: Cloud) -> None:
    failing = start_training(cloud, "print('loading')\nraise SystemExit('boom: the data is bad')\n")
    no_program = f"job-{uuid.uuid4().hex[:10]}"
    cloud.client("sagemaker").create_training_job(
        TrainingJobName=no_program,
        AlgorithmSpecification={"TrainingImage": "some-image", "TrainingInputMode": "File"},
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/models"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )
    job = wait_job(cloud, failing)
    assert job["TrainingJobStatus"] == "Failed" and job["SecondaryStatus"] == "Failed"
    assert "ExitCode 1" in job["FailureReason"] and "boom: the data is bad" in job["FailureReason"]
    assert "ModelArtifacts" not in job
    other = wait_job(cloud, no_program)
    assert other["TrainingJobStatus"] == "Failed" and "sagemaker_program" in other["FailureReason"]
    with pytest.raises(ClientError, match="ResourceInUse"):
        start_training_with_name(cloud, failing)


def start_training_with_name(cloud: Cloud, name: str) -> None:
    cloud.client("sagemaker").create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "some-image", "TrainingInputMode": "File"},
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/models"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )


LONG_SCRIPT = """
import os, pathlib, time
(pathlib.Path(os.environ["SM_MODEL_DIR"]) / "checkpoint.txt").write_text("partial")
while True:
    print("tick", flush=True)
    time.sleep(0.1)
"""


def test_stop_training_job_and_max_runtime_stop_the_process(cloud: Cloud) -> None:
    stopped = start_training(cloud, LONG_SCRIPT)
    timed_out = start_training(cloud, LONG_SCRIPT, max_runtime_s=2)
    log_file = cloud.options.home / "logs" / "sagemaker" / f"{stopped}.log"
    wait_until(lambda: log_file.exists() and "tick" in log_file.read_text(), what="the job prints")
    sm = cloud.client("sagemaker")
    sm.stop_training_job(TrainingJobName=stopped)
    assert describe_job(cloud, stopped)["TrainingJobStatus"] in ("Stopping", "Stopped")
    job = wait_job(cloud, stopped)
    assert job["TrainingJobStatus"] == "Stopped" and job["SecondaryStatus"] == "Stopped"
    assert untar(get(cloud, job["ModelArtifacts"]["S3ModelArtifacts"])) == {"checkpoint.txt": b"partial"}
    with pytest.raises(ClientError, match="status Stopped"):
        sm.stop_training_job(TrainingJobName=stopped)
    with pytest.raises(ClientError, match="Could not find training job"):
        sm.stop_training_job(TrainingJobName="no-such-job")

    late = wait_job(cloud, timed_out)
    assert late["TrainingJobStatus"] == "Stopped" and late["SecondaryStatus"] == "MaxRuntimeExceeded"


# ---- processing jobs -------------------------------------------------------------------------------------

COPY_SCRIPT = """
import argparse, os, pathlib, shutil
parser = argparse.ArgumentParser()
parser.add_argument("--src")
parser.add_argument("--dst")
args = parser.parse_args()
shutil.copytree(args.src, args.dst, dirs_exist_ok=True)
pathlib.Path(os.environ["NOTE_PATH"]).write_text(os.environ["NOTE_PATH"])
"""


def test_processing_job_maps_opt_ml_processing_and_uploads_outputs(cloud: Cloud) -> None:
    put(cloud, "proc/input/a.txt", "alpha")
    put(cloud, "proc/input/sub/b.txt", "beta")
    code = put(cloud, "proc/code/copy.py", COPY_SCRIPT)
    name = f"proc-{uuid.uuid4().hex[:10]}"
    sm = cloud.client("sagemaker")
    sm.create_processing_job(
        ProcessingJobName=name,
        ProcessingInputs=[
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/proc/input/",
                    "LocalPath": "/opt/ml/processing/input/data",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": code,
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
        ],
        ProcessingOutputConfig={
            "Outputs": [
                {
                    "OutputName": "copied",
                    "S3Output": {
                        "S3Uri": f"s3://{BUCKET}/proc/{name}/out",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
        AppSpecification={
            "ImageUri": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311",
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/copy.py"],
            "ContainerArguments": [
                "--src",
                "/opt/ml/processing/input/data",
                "--dst",
                "/opt/ml/processing/output",
            ],
        },
        Environment={"NOTE_PATH": "/opt/ml/processing/output/note.txt"},
        StoppingCondition={"MaxRuntimeInSeconds": 300},
        RoleArn=ROLE,
    )
    assert sm.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"] == "InProgress"
    job = wait_status(
        lambda: sm.describe_processing_job(ProcessingJobName=name), "ProcessingJobStatus", ("InProgress",)
    )
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["Environment"] == {"NOTE_PATH": "/opt/ml/processing/output/note.txt"}
    assert keys(cloud, f"proc/{name}/out/") == [
        f"proc/{name}/out/{k}" for k in ("a.txt", "note.txt", "sub/b.txt")
    ]
    assert get(cloud, f"s3://{BUCKET}/proc/{name}/out/sub/b.txt") == b"beta"
    note = get(cloud, f"s3://{BUCKET}/proc/{name}/out/note.txt").decode()
    assert note.endswith(f"{name}/opt/ml/processing/output/note.txt") and not note.startswith("/opt/ml")


def test_stop_processing_job_stops_the_process(cloud: Cloud) -> None:
    name = f"proc-{uuid.uuid4().hex[:10]}"
    sm = cloud.client("sagemaker")
    sm.create_processing_job(
        ProcessingJobName=name,
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
        AppSpecification={
            "ImageUri": "python:3.11",
            "ContainerEntrypoint": [
                "python",
                "-c",
                # One line: AWS's pattern for each entrypoint item (Java ".*") excludes line breaks.
                "import time; print('working', flush=True); time.sleep(60)",
            ],
        },
        RoleArn=ROLE,
    )
    log_file = cloud.options.home / "logs" / "sagemaker" / f"{name}.log"
    wait_until(lambda: log_file.exists() and "working" in log_file.read_text(), what="the job prints")
    sm.stop_processing_job(ProcessingJobName=name)
    job = wait_status(
        lambda: sm.describe_processing_job(ProcessingJobName=name),
        "ProcessingJobStatus",
        ("InProgress", "Stopping"),
    )
    assert job["ProcessingJobStatus"] == "Stopped" and job["ProcessingEndTime"] >= job["ProcessingStartTime"]


# ---- endpoints -------------------------------------------------------------------------------------------

HANDLER = """
import json, os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "config.json")) as fh:
        return json.load(fh)

def input_fn(body, content_type):
    assert content_type == "application/json", content_type
    return json.loads(body)["instances"]

def predict_fn(data, model):
    return [{"length": len(text), "model": model["name"]} for text in data]

def output_fn(prediction, accept):
    return json.dumps({"predictions": prediction})
"""


def create_model(cloud: Cloud, label: str) -> str:
    name = f"model-{label}-{uuid.uuid4().hex[:6]}"
    data = put(
        cloud,
        f"artifacts/{name}/model.tar.gz",
        targz({"config.json": json.dumps({"name": label}), "code/inference.py": HANDLER}),
    )
    cloud.client("sagemaker").create_model(
        ModelName=name,
        PrimaryContainer={"Image": "pytorch-inference:2.5-cpu-py311", "ModelDataUrl": data},
        ExecutionRoleArn=ROLE,
    )
    return name


def variant(name: str, model: str, weight: float) -> dict[str, Any]:
    return {
        "VariantName": name,
        "ModelName": model,
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
        "InitialVariantWeight": weight,
    }


def endpoint_status(cloud: Cloud, name: str) -> dict[str, Any]:
    result: dict[str, Any] = cloud.client("sagemaker").describe_endpoint(EndpointName=name)
    return result


def wait_in_service(cloud: Cloud, name: str, timeout_s: float = 60.0) -> dict[str, Any]:
    return wait_status(
        lambda: endpoint_status(cloud, name), "EndpointStatus", ("Creating", "Updating"), timeout_s
    )


def invoke(cloud: Cloud, name: str, texts: list[str], **extra: Any) -> tuple[dict[str, Any], str]:
    response = cloud.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=name,
        Body=json.dumps({"instances": texts}),
        ContentType="application/json",
        Accept="application/json",
        **extra,
    )
    return json.loads(response["Body"].read()), str(response["InvokedProductionVariant"])


def variant_urls(cloud: Cloud, endpoint: str) -> dict[str, str]:
    sagemaker = cloud.cloud.sagemaker
    if sagemaker is None:
        raise AssertionError("the local cloud runs without its SageMaker")
    return sagemaker.variant_urls(endpoint)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
            return int(response.status) == 200
    except (OSError, urllib.error.URLError):
        return False


def test_endpoint_serves_variants_captures_data_updates_and_deletes(cloud: Cloud) -> None:
    sm = cloud.client("sagemaker")
    model_a, model_b, model_c = create_model(cloud, "A"), create_model(cloud, "B"), create_model(cloud, "C")
    sm.create_endpoint_config(
        EndpointConfigName="cfg-ab",
        ProductionVariants=[variant("champion", model_a, 3.0), variant("challenger", model_b, 1.0)],
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://{BUCKET}/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
        },
    )
    sm.create_endpoint_config(EndpointConfigName="cfg-c", ProductionVariants=[variant("next", model_c, 1.0)])
    sm.create_endpoint(EndpointName="reviews", EndpointConfigName="cfg-ab")
    assert endpoint_status(cloud, "reviews")["EndpointStatus"] == "Creating"
    described = wait_in_service(cloud, "reviews")
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    weights = {v["VariantName"]: v["CurrentWeight"] for v in described["ProductionVariants"]}
    assert weights == {"champion": 3.0, "challenger": 1.0}

    body, used = invoke(cloud, "reviews", ["lovely", "too small"], TargetVariant="challenger")
    assert used == "challenger"
    assert body == {"predictions": [{"length": 6, "model": "B"}, {"length": 9, "model": "B"}]}
    seen = {invoke(cloud, "reviews", ["x"])[1] for _ in range(12)}
    assert seen <= {"champion", "challenger"} and "champion" in seen
    with pytest.raises(ClientError) as err:
        cloud.client("sagemaker-runtime").invoke_endpoint(
            EndpointName="reviews", Body=b"not json", ContentType="text/plain", TargetVariant="champion"
        )
    assert err.value.response["Error"]["Code"] == "ModelError"
    assert err.value.response["OriginalStatusCode"] == 500
    with pytest.raises(ClientError, match="not found"):
        invoke(cloud, "no-such-endpoint", ["x"])

    captured = wait_until(lambda: keys(cloud, "capture/reviews/challenger/"), what="data capture file")
    assert captured[0].endswith(".jsonl") and len(captured[0].split("/")) == 8  # .../yyyy/mm/dd/hh/file
    record = json.loads(get(cloud, f"s3://{BUCKET}/{captured[0]}").splitlines()[0])
    assert record["eventVersion"] == "0" and record["eventMetadata"]["eventId"]
    assert record["eventMetadata"]["inferenceTime"].endswith("Z")
    assert record["captureData"]["endpointInput"] == {
        "observedContentType": "application/json",
        "mode": "INPUT",
        "data": json.dumps({"instances": ["lovely", "too small"]}),
        "encoding": "JSON",
    }
    assert record["captureData"]["endpointOutput"]["mode"] == "OUTPUT"
    assert json.loads(record["captureData"]["endpointOutput"]["data"])["predictions"][0]["model"] == "B"

    old_urls = variant_urls(cloud, "reviews")
    assert set(old_urls) == {"champion", "challenger"}
    sm.update_endpoint(EndpointName="reviews", EndpointConfigName="cfg-c")
    assert endpoint_status(cloud, "reviews")["EndpointStatus"] == "Updating"
    # While it updates, the old configuration serves.
    body, used = invoke(cloud, "reviews", ["still serving"], TargetVariant="champion")
    assert used == "champion" and body == {"predictions": [{"length": 13, "model": "A"}]}
    updated = wait_in_service(cloud, "reviews")
    assert updated["EndpointStatus"] == "InService" and updated["EndpointConfigName"] == "cfg-c"
    assert [v["VariantName"] for v in updated["ProductionVariants"]] == ["next"]
    body, used = invoke(cloud, "reviews", ["abc"])
    assert used == "next" and body == {"predictions": [{"length": 3, "model": "C"}]}
    wait_until(lambda: not any(answers(u) for u in old_urls.values()), what="old variant servers stopped")

    new_urls = variant_urls(cloud, "reviews")
    sm.delete_endpoint(EndpointName="reviews")
    with pytest.raises(ClientError, match="Could not find endpoint"):
        sm.describe_endpoint(EndpointName="reviews")
    wait_until(lambda: not any(answers(u) for u in new_urls.values()), what="variant servers stopped")


def test_a_model_that_cannot_load_fails_the_endpoint(cloud: Cloud) -> None:
    sm = cloud.client("sagemaker")
    data = put(
        cloud, "artifacts/broken/model.tar.gz", targz({"code/inference.py": "raise ImportError('nope')"})
    )
    sm.create_model(
        ModelName="broken", PrimaryContainer={"Image": "x", "ModelDataUrl": data}, ExecutionRoleArn=ROLE
    )
    sm.create_endpoint_config(
        EndpointConfigName="cfg-broken", ProductionVariants=[variant("v", "broken", 1.0)]
    )
    sm.create_endpoint(EndpointName="broken", EndpointConfigName="cfg-broken")
    described = wait_in_service(cloud, "broken")
    assert described["EndpointStatus"] == "Failed" and "ImportError: nope" in described["FailureReason"]


# ---- the project's own training code and serving handler ---------------------------------------------


def test_the_project_trains_with_train_py_and_serves_with_its_handler(cloud: Cloud, tmp_path: Path) -> None:
    csv = io.StringIO()
    make_kaggle_frame(n=60).to_csv(csv, index=True)
    put(cloud, "project/train/reviews.csv", csv.getvalue())
    from chalicelib.domain.training_health import METRIC_DEFINITIONS

    name = start_training(
        cloud,
        "",
        program="training/train.py",
        # The code as the local cloud and `infra.deploy` publish it (reviewsense.codepublish).
        submit_directory=publish_code(cloud.client("s3"), BUCKET, "project/code/", ROOT)["sourcedir"],
        channels={"train": f"s3://{BUCKET}/project/train/"},
        metrics=METRIC_DEFINITIONS,
        hyperparameters={
            "model-name-or-path": json.dumps(str(build_tiny_bert(tmp_path / "tiny"))),
            "max-seq-length": "32",
            "batch-size": "8",
            "epochs": "1",
            "max-steps": "0",
            "logging-steps": "2",
            "learning-rate": "0.001",
            "ensemble-linear": "false",
            "progress-bar": json.dumps("false"),
            "num-threads": "1",
        },
    )
    job = wait_job(cloud, name, timeout_s=120)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    final = {m["MetricName"] for m in job["FinalMetricDataList"]}
    assert {"train_loss", "val_macro_f1"} <= final
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert {"label_map.json", "decision.json", "code/inference.py"} <= set(untar(get(cloud, artifact)))

    sm = cloud.client("sagemaker")
    sm.create_model(
        ModelName=name, PrimaryContainer={"Image": "pytorch", "ModelDataUrl": artifact}, ExecutionRoleArn=ROLE
    )
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant("champion", name, 1.0)])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    assert wait_in_service(cloud, name, timeout_s=120)["EndpointStatus"] == "InService"
    body, used = invoke(cloud, name, ["love this dress", "awful fit"])
    assert used == "champion" and len(body["predictions"]) == 2
    for prediction in body["predictions"]:
        assert set(prediction["probabilities"]) == {"negative", "neutral", "positive"}
        assert prediction["label"] == max(prediction["probabilities"], key=prediction["probabilities"].get)
    sm.delete_endpoint(EndpointName=name)


# ---- restart ---------------------------------------------------------------------------------------------


def test_a_restart_stops_running_jobs_and_serves_endpoints_again(cloud: Cloud) -> None:
    sm = cloud.client("sagemaker")
    model = create_model(cloud, "R")
    sm.create_endpoint_config(EndpointConfigName="cfg-r", ProductionVariants=[variant("only", model, 1.0)])
    sm.create_endpoint(EndpointName="kept", EndpointConfigName="cfg-r")
    assert wait_in_service(cloud, "kept")["EndpointStatus"] == "InService"
    running = start_training(cloud, LONG_SCRIPT)
    log_file = cloud.options.home / "logs" / "sagemaker" / f"{running}.log"
    wait_until(lambda: log_file.exists() and "tick" in log_file.read_text(), what="the job prints")
    old_urls = variant_urls(cloud, "kept")

    cloud.restart()

    assert not any(answers(u) for u in old_urls.values())
    assert describe_job(cloud, running)["TrainingJobStatus"] == "Stopped"
    assert endpoint_status(cloud, "kept")["EndpointStatus"] == "InService"
    body, used = invoke(cloud, "kept", ["served again"])  # waits for the relaunched variant
    assert used == "only" and body == {"predictions": [{"length": 12, "model": "R"}]}
