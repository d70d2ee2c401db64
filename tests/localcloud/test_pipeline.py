"""The training pipeline end to end on the local cloud: the real ASL, real jobs, a real endpoint.

A tiny BERT and a 90-review Kaggle-format fixture keep each run under a minute: featurize, train and
evaluate run as local SageMaker jobs (subprocesses of the local cloud), the gate/register/deploy
Lambdas run in-process, and the endpoint serves the trained artifact. Then: a deliberately worse
candidate is rejected and the endpoint is unchanged; a failing job takes the failure branch and
notifies; a diverging job is stopped by the watchdog, which notifies.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.archives import targz
from tests.helpers.cloud import Cloud, running_cloud, upload_and_wait
from tests.helpers.reviews import make_kaggle_frame
from tests.helpers.tinymodels import build_tiny_bert
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.localcloud
ENDPOINT = "reviewsense-local-sentiment"
TOPIC = "arn:aws:sns:us-east-1:123456789012:reviewsense-local-alerts"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(
        tmp_path_factory.mktemp("pipeline-cloud"),
        REVIEWSENSE_POLL_SECONDS="1",
        REVIEWSENSE_GATE_MIN_MACRO_F1="0.0",
        REVIEWSENSE_GATE_MIN_NEGATIVE_RECALL="0.0",
        REVIEWSENSE_LOCAL_SCHEDULE_SPEEDUP="40",  # the 2-minute watchdog schedule fires every 3 s
    ) as c:
        frame = make_kaggle_frame(n=120)
        upload_and_wait(c, "raw/reviews/fixture.csv.gz", gzip.compress(frame.to_csv(index=True).encode()))
        yield c


class Alerts:
    """An SQS queue subscribed to the alerts topic; every message read is deleted and kept in ``seen``."""

    def __init__(self, cloud: Cloud) -> None:
        self.sqs = cloud.client("sqs")
        self.url = str(self.sqs.create_queue(QueueName="test-alerts")["QueueUrl"])
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        cloud.client("sns").subscribe(
            TopicArn=TOPIC, Protocol="sqs", Endpoint=attributes["Attributes"]["QueueArn"]
        )
        self.seen: list[dict[str, Any]] = []

    def receive(self) -> list[dict[str, Any]]:
        """Read what is waiting, delete it from the queue, and keep it."""
        messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        received = [json.loads(m["Body"]) for m in messages]
        self.seen.extend(received)
        return received

    def about(self, text: str) -> list[dict[str, Any]]:
        """The notifications received so far whose message names ``text`` (a run or a job)."""
        self.receive()
        return [m for m in self.seen if text in m["Message"]]

    def wait_about(self, text: str, subject: Callable[[str], bool]) -> list[dict[str, Any]]:
        """Wait for a notification about ``text`` whose subject passes ``subject``; all those about it."""
        wait_until(lambda: any(subject(m["Subject"]) for m in self.about(text)), 60, f"an alert about {text}")
        return self.about(text)


@pytest.fixture(scope="module")
def alerts(cloud: Cloud) -> Alerts:
    return Alerts(cloud)


@pytest.fixture(scope="module")
def first_run(cloud: Cloud, tiny: Path, alerts: Alerts) -> str:
    """The first run, which deploys the champion that the other tests compare with or replace."""
    return run_pipeline(cloud, "first", hyperparameters(tiny), tiny)


def featurize_options(tiny: Path) -> dict[str, str]:
    return {
        "tokenizer": str(tiny),
        "max_seq_length": "32",
        "validation_fraction": "0.2",
        "test_fraction": "0.25",
    }


def hyperparameters(tiny: Path, **overrides: str) -> dict[str, str]:
    return {
        "model-name-or-path": str(tiny),
        "max-seq-length": "32",
        "batch-size": "8",
        "epochs": "3",
        "learning-rate": "1e-3",
        "logging-steps": "2",
        "progress-bar": "false",
        **overrides,
    }


def run_pipeline(cloud: Cloud, name: str, hps: dict[str, str], tiny: Path, timeout: str = "400") -> str:
    out = cloud.cli(
        "pipeline", "start", "--name", name,
        "--hyperparameters", json.dumps(hps),
        "--featurize", json.dumps(featurize_options(tiny)),
        "--wait", "--timeout", timeout,
    )  # fmt: skip
    status = cloud.cli("pipeline", "status", name, "--json")
    assert status.returncode == 0, status.stderr
    return str(json.loads(status.stdout)["status"]) + "\n" + out.stdout + out.stderr + status.stdout[-3000:]


def models(cloud: Cloud) -> list[dict[str, Any]]:
    sm = cloud.client("sagemaker")
    packages = sm.list_model_packages(ModelPackageGroupName="reviewsense-sentiment")[
        "ModelPackageSummaryList"
    ]
    return [sm.describe_model_package(ModelPackageName=p["ModelPackageArn"]) for p in packages]


def invoke(cloud: Cloud, texts: list[str], **extra: str) -> tuple[Any, str]:
    response = cloud.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=ENDPOINT, ContentType="application/json", Body=json.dumps({"instances": texts}), **extra
    )
    return json.loads(response["Body"].read()), str(response.get("InvokedProductionVariant", ""))


def test_first_run_deploys_an_approved_model_that_answers(
    cloud: Cloud, first_run: str, alerts: Alerts
) -> None:
    assert first_run.startswith("SUCCEEDED"), first_run
    first = [p for p in models(cloud) if "-first-" in p["CustomerMetadataProperties"]["training_job"]]
    assert len(first) == 1, [(p["ModelPackageArn"], p["ModelApprovalStatus"]) for p in models(cloud)]
    package = first[0]
    assert package["ModelApprovalStatus"] == "Approved"
    meta = package["CustomerMetadataProperties"]
    assert meta["gate"] == "Approved" and meta["training_job"].endswith("-train")
    endpoint = cloud.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService"
    predictions, variant = invoke(
        cloud, ["I love this dress", "awful fabric, sending it back"], TargetVariant="champion"
    )
    assert variant == "champion"
    rows = predictions["predictions"] if isinstance(predictions, dict) else predictions
    assert len(rows) == 2
    for row in rows:
        assert set(row["probabilities"]) == {"negative", "neutral", "positive"}
        assert row["label"] == max(row["probabilities"], key=row["probabilities"].get)
    messages = alerts.wait_about("-first deployed", lambda subject: "deployed" in subject)
    assert [m["Subject"] for m in messages] == ["ReviewSense: new model deployed as challenger"]


def test_waiting_on_a_run_prints_the_training_jobs_progress(first_run: str) -> None:
    """`pipeline start --wait` (and so `make demo`) shows the training job moving, read from its CloudWatch
    Logs: step / total, loss, samples/s and ETA, each evaluation's validation macro-F1, how training ended."""
    progress = (
        r"\d\d:\d\d:\d\d first: training step \d+/\d+ \(\d+%\) \| loss [0-9.]+ \| [0-9.]+ samples/s \| ETA \d"
    )
    assert re.search(progress, first_run), first_run
    assert re.search(r"first: evaluation at step \d+/\d+ \(\d+%\) \| val macro-F1 [0-9.]+", first_run), (
        first_run
    )
    assert re.search(r"first: training stopped \(\w+\) after \d+ steps", first_run), first_run


def test_a_worse_candidate_is_rejected_and_the_endpoint_is_unchanged(
    cloud: Cloud, tiny: Path, first_run: str
) -> None:
    sm = cloud.client("sagemaker")
    before = sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    worse = hyperparameters(tiny, **{"learning-rate": "1e-9", "max-steps": "1", "ensemble-linear": "false"})
    result = run_pipeline(cloud, "worse", worse, tiny)
    assert result.startswith("SUCCEEDED"), result
    newest = max(models(cloud), key=lambda p: p["CreationTime"])
    assert newest["ModelApprovalStatus"] == "Rejected"
    assert "champion" in newest["CustomerMetadataProperties"]["gate_reasons"]
    assert sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == before
    assert invoke(cloud, ["still serving"], TargetVariant="champion")[1] == "champion"


def test_a_failing_training_job_takes_the_failure_branch_and_notifies(
    cloud: Cloud, tiny: Path, alerts: Alerts
) -> None:
    result = run_pipeline(
        cloud, "broken", hyperparameters(tiny, **{"model-name-or-path": "/nonexistent"}), tiny
    )
    assert result.startswith("FAILED"), result
    messages = alerts.wait_about("Execution broken failed", lambda subject: "pipeline failed" in subject)
    assert [m["Subject"] for m in messages] == ["ReviewSense: training pipeline failed"]
    steps = [s[0] for s in json.loads(cloud.cli("pipeline", "status", "broken", "--json").stdout)["steps"]]
    assert "TrainFailed" in steps and "Cleanup" in steps and "NotifyFailure" in steps
    assert "Gate" not in steps and "Deploy" not in steps


def test_a_diverging_job_is_stopped_by_the_watchdog(cloud: Cloud, tiny: Path, alerts: Alerts) -> None:
    diverge = hyperparameters(
        tiny,
        **{
            "learning-rate": "5000",
            "epochs": "200",
            "logging-steps": "1",
            "health-checks": "false",  # the job does not stop itself: the watchdog must
            "early-stopping-patience": "0",
        },
    )
    result = run_pipeline(cloud, "diverge", diverge, tiny, timeout="300")
    assert result.startswith("FAILED"), result
    sm = cloud.client("sagemaker")
    job = next(
        j for j in sm.list_training_jobs()["TrainingJobSummaries"] if "diverge" in j["TrainingJobName"]
    )
    assert job["TrainingJobStatus"] == "Stopped"
    name = job["TrainingJobName"]
    messages = alerts.wait_about(name, lambda subject: "stopped" in subject)
    # The watchdog's alert, and the pipeline's failure notice whose cause names the stopped job.
    assert sorted(m["Subject"] for m in messages) == [
        "ReviewSense: training job " + name + " stopped",
        "ReviewSense: training pipeline failed",
    ]
    stopped = json.loads(next(m["Message"] for m in messages if m["Subject"].endswith(" stopped")))
    assert (stopped["job"], stopped["action"]) == (name, "stopped") and stopped["violations"]


def test_an_approved_candidate_goes_live_as_challenger_then_promote_and_rollback(
    cloud: Cloud, tiny: Path, first_run: str
) -> None:
    sm = cloud.client("sagemaker")
    champion_config = sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    out = cloud.cli(
        "pipeline", "start", "--name", "challenger",
        "--hyperparameters", json.dumps(hyperparameters(tiny)),
        "--featurize", json.dumps(featurize_options(tiny)),
        "--gate", json.dumps({"tolerance": 1.0}),
        "--wait", "--timeout", "400",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    config = sm.describe_endpoint_config(
        EndpointConfigName=sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    )
    weights = {v["VariantName"]: v["InitialVariantWeight"] for v in config["ProductionVariants"]}
    assert weights == {"champion": pytest.approx(0.9), "challenger": pytest.approx(0.1)}
    listed = cloud.cli("models", "list")
    assert "challenger" in listed.stdout and "champion" in listed.stdout, listed.stdout

    promoted = cloud.cli("models", "promote")
    assert promoted.returncode == 0, promoted.stderr
    wait_until(lambda: sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "InService", 120)
    live = sm.describe_endpoint_config(EndpointConfigName=json.loads(promoted.stdout)["endpoint_config"])
    assert [v["VariantName"] for v in live["ProductionVariants"]] == ["champion"]
    assert invoke(cloud, ["after promotion"])[1] == "champion"

    rolled = cloud.cli("models", "rollback")
    assert rolled.returncode == 0, rolled.stderr
    assert json.loads(rolled.stdout)["endpoint_config"] == config["EndpointConfigName"]
    wait_until(lambda: sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "InService", 120)
    assert sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] != champion_config


# -- local endpoints fail like AWS's, and deployments are judged by more than EndpointStatus ------------

UNLOADABLE = """
def model_fn(model_dir, context=None):
    raise RuntimeError("the weights in model.tar.gz cannot be loaded")
"""


def service(cloud: Cloud, endpoint_name: str = ENDPOINT) -> Any:
    from chalicelib.adapters.sagemaker import SageMakerGateway
    from chalicelib.config import Settings
    from chalicelib.services.rollout import EndpointRollout

    settings = Settings(
        stage="local", endpoint_name=endpoint_name, pipeline_table="reviewsense-local-pipeline"
    )
    return EndpointRollout(settings, SageMakerGateway(cloud.client("sagemaker")), cloud.client("dynamodb"))


def unloadable_model(cloud: Cloud, name: str) -> str:
    key = f"tests/{name}/model.tar.gz"
    cloud.client("s3").put_object(
        Bucket="reviewsense-lake", Key=key, Body=targz({"code/inference.py": UNLOADABLE})
    )
    return f"s3://reviewsense-lake/{key}"


def settle(svc: Any, deployment: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = wait_until(
        lambda: (s := svc.deployment_status(deployment))["outcome"] != "pending" and s, timeout_s=180
    )
    return result


def test_a_failed_update_rolls_back_reports_failure_and_the_champion_keeps_serving(
    cloud: Cloud, first_run: str
) -> None:
    sm, svc = cloud.client("sagemaker"), service(cloud)
    before = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert before["EndpointStatus"] == "InService"
    live_before = svc.live_models()
    run = {"run_id": "20261126-120000-unloadable", "model_data": unloadable_model(cloud, "update")}

    result = settle(svc, svc.deploy(run["run_id"], run["model_data"]))
    assert result["outcome"] == "failed", result
    after = sm.describe_endpoint(EndpointName=ENDPOINT)
    # As on AWS: InService, the old configuration serving, FailureReason set.
    assert after["EndpointStatus"] == "InService"
    assert after["EndpointConfigName"] == before["EndpointConfigName"] == result["serving_config"]
    assert "cannot be loaded" in after["FailureReason"] and "cannot be loaded" in result["reason"]
    assert svc.live_models() == live_before
    assert svc.deployments()[-1]["status"] == "failed"
    assert invoke(cloud, ["the champion still answers"])[1] in live_before
    assert svc.cleanup_run(run["run_id"])["deleted"] == [
        "rs-20261126-120000-unloadable-cfg",
        "rs-20261126-120000-unloadable",
    ]


def test_a_failed_create_is_cleaned_up_and_the_next_create_works(cloud: Cloud, first_run: str) -> None:
    name = "reviewsense-local-create-test"
    sm, svc = cloud.client("sagemaker"), service(cloud, name)
    champion = service(cloud).live_models()["champion"]
    broken = {"run_id": "20261126-130000-unloadable", "model_data": unloadable_model(cloud, "create")}

    result = settle(svc, svc.deploy(broken["run_id"], broken["model_data"]))
    assert result["outcome"] == "failed" and result["status"] == "Failed", result
    described = sm.describe_endpoint(EndpointName=name)
    assert described["EndpointStatus"] == "Failed" and "cannot be loaded" in described["FailureReason"]
    assert svc.cleanup_run(broken["run_id"])["deleted"][0] == name
    assert name not in {e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]}

    good = {"run_id": "20261126-140000-good", "model_data": champion["model_data"]}
    assert settle(svc, svc.deploy(good["run_id"], good["model_data"]))["outcome"] == "deployed"
    response = cloud.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=name, ContentType="application/json", Body=json.dumps({"instances": ["fine"]})
    )
    assert response["InvokedProductionVariant"] == "champion"
    sm.delete_endpoint(EndpointName=name)
