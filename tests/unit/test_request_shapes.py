"""Every request the code builds, from its real code paths, checked against AWS's own constraints.

The code runs against in-process moto (strict, so an invalid request already fails the call) while a
botocore hook records every request it sends; the state machine's SageMaker and SNS task requests
are built by resolving the ASL's ``Parameters`` against the plan the Prepare step returns. Each
recorded request then goes through :func:`reviewsense.localcloud.validation.validate` once more, and
the test pins the list of request shapes covered, so a new request builder shows up here.

Run names: the CLI's default (``manual-<timestamp>``), the longest execution name Step Functions
allows (80 characters) and one with characters no SageMaker name may contain (accents, `_`, `.`).
"""

from __future__ import annotations

import copy
import dataclasses
import gzip
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from chalicelib.config import Settings, get_settings
from chalicelib.container import Container, reset_container
from reviewsense.localcloud import extensions, strict
from reviewsense.localcloud.provision import Provisioned, Provisioner, substitute
from reviewsense.localcloud.runtime import FunctionSpec, LocalLambdaRuntime
from reviewsense.localcloud.validation import validate
from tests.helpers.paths import ROOT

CLI_DEFAULT = "manual-20261129-093816"
LONGEST = "r" * 80
ODD = "Événement-été_retry.2"
Request = tuple[str, str, dict[str, Any]]


class Recorder:
    """Records the API parameters of every request a boto3 session's clients send."""

    def __init__(self, session: boto3.session.Session) -> None:
        self.requests: list[Request] = []
        session.events.register("provide-client-params.*.*", self._record)
        # moto has no UpdateEndpoint: apply it as delete + create, so the code path runs on.
        session.events.register("before-call.sagemaker.UpdateEndpoint", self._update_endpoint)
        self._sagemaker = boto3.client("sagemaker", region_name="us-east-1")

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.requests.append((model.service_model.service_name, model.name, copy.deepcopy(params)))

    def _update_endpoint(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        body = json.loads(params["body"])
        self._sagemaker.delete_endpoint(EndpointName=body["EndpointName"])
        arn = self._sagemaker.create_endpoint(
            EndpointName=body["EndpointName"], EndpointConfigName=body["EndpointConfigName"]
        )["EndpointArn"]
        return AWSResponse("http://local", 200, {}, None), {"EndpointArn": arn}


def resolve(value: Any, document: dict[str, Any]) -> Any:
    """ASL ``Parameters`` with their ``"key.$": "$.path"`` references resolved (intrinsics -> text)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key.endswith(".$"):
                out[key[:-2]] = _path(item, document)
            else:
                out[key] = resolve(item, document)
        return out
    if isinstance(value, list):
        return [resolve(v, document) for v in value]
    return value


def _path(expression: str, document: dict[str, Any]) -> Any:
    if expression.startswith("States."):
        return "a message formatted by an intrinsic function"
    node: Any = document
    for part in re.findall(r"[^.$\[\]]+", expression):
        node = node[part]
    return node


def asl_task_requests(definition: dict[str, Any], document: dict[str, Any]) -> list[Request]:
    """The SageMaker (aws-sdk) and SNS (optimized) requests the state machine's tasks send."""
    found: list[Request] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            resource = str(node.get("Resource", ""))
            if (
                "evaluate_champion" in json.dumps(node.get("Parameters"))
                and not document["run"]["has_champion"]
            ):
                return  # the Choice before EvaluateChampion skips it on a first run
            sdk = re.fullmatch(r"arn:aws:states:::aws-sdk:(\w+):(\w+)", resource)
            if node.get("Type") == "Task" and sdk:
                operation = sdk.group(2)[0].upper() + sdk.group(2)[1:]
                found.append((sdk.group(1), operation, resolve(node["Parameters"], document)))
            elif node.get("Type") == "Task" and resource == "arn:aws:states:::sns:publish":
                found.append(("sns", "Publish", resolve(node["Parameters"], document)))
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(definition)
    return found


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Container, Recorder, Provisioned, Provisioner]]:
    """The app's resources as the local cloud provisions them, its handlers run in-process on events."""
    import app

    assert strict.installed()
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        recorder = Recorder(session)
        settings = Settings(stage="local", idempotency_table="reviewsense-local-idempotency")
        for key, value in {
            "REVIEWSENSE_STAGE": "local",
            "REVIEWSENSE_LAKE_BUCKET": settings.lake_bucket,
            "REVIEWSENSE_IDEMPOTENCY_TABLE": settings.idempotency_table,
        }.items():
            monkeypatch.setenv(key, value)
        provisioner = Provisioner(session, settings, endpoint_url=None)  # type: ignore[arg-type]
        provisioned = provisioner.provision(app.app, ROOT / "statemachines")
        settings = dataclasses.replace(
            settings,
            pipeline_state_machine_arn=provisioned.state_machines["training_pipeline"],
            alerts_topic_arn=provisioned.topics["alerts"],
        )
        runtime = LocalLambdaRuntime(retry_delays_s=(0.0, 0.0), inline=True)
        for name, arn in provisioned.functions.items():
            runtime.register(FunctionSpec(provisioner.function_name(name), app.app.handler_map[name], arn))
        extensions.install(runtime, lambda *args: None)
        container = Container(settings, session)
        get_settings.cache_clear()
        reset_container(container)
        try:
            yield container, recorder, provisioned, provisioner
        finally:
            runtime.drain(timeout_s=30)
            extensions.uninstall()
            reset_container()
            get_settings.cache_clear()


def evaluation(macro_f1: float) -> bytes:
    return json.dumps({"macro_f1": macro_f1, "per_class": {"negative": {"recall": 0.7}}}).encode()


def exercise(container: Container, provisioned: Provisioned, provisioner: Provisioner) -> list[Request]:
    """Run every request builder the app has; returns the state machine's task requests."""
    s3 = container.client("s3")
    service = container.pipeline_steps
    asl = json.loads(
        substitute(
            (ROOT / "statemachines" / "training_pipeline.asl.json").read_text(),
            provisioner.placeholder_values(provisioned, "arn:aws:iam::123456789012:role/reviewsense-local"),
        )
    )
    task_requests: list[Request] = []
    # The last run is the challenger that promote() promotes: the CLI default name (65 characters on main).
    for number, name in enumerate((LONGEST, ODD, CLI_DEFAULT), start=1):
        started = container.pipeline_trigger.start(name, "manual")
        assert started["started"], started
        run = service.prepare({"execution_name": name})
        bucket, _, key = run["candidate_evaluation_uri"].removeprefix("s3://").partition("/")
        s3.put_object(Bucket=bucket, Key=key, Body=evaluation(0.70 + number / 100))
        if run["has_champion"]:
            bucket, _, key = run["champion_evaluation_uri"].removeprefix("s3://").partition("/")
            s3.put_object(Bucket=bucket, Key=key, Body=evaluation(0.70))
        gate = service.gate(run)
        registered = service.register(
            run, gate, {"FinalMetricDataList": [{"MetricName": "loss", "Value": 0.3}]}
        )
        document = {
            "run": run,
            "gate": gate,
            "register": registered,
            "deploy": {"endpoint_name": "reviewsense-local", "endpoint_config": "cfg"},
            "error": {"Error": "States.TaskFailed", "Cause": "x"},
        }
        task_requests += asl_task_requests(asl, document)
        service.deploy(run)
    service.cleanup(service.prepare({"execution_name": "failed-before-deploy"}))
    container.rollout.promote()
    container.rollout.rollback()
    container.registry.list_models()
    container.pipeline_trigger.on_schedule("2026-11-29T09:00:00Z")
    container.pipeline_trigger.on_reviews_ingested(5)
    container.watchdog.check_running()
    # An upload: S3 -> EventBridge -> the ingest handler (in-process) -> Parquet, Glue, DynamoDB, events.
    raw = gzip.compress((ROOT / "examples" / "feedback" / "email.jsonl").read_bytes())
    s3.put_object(Bucket=container.settings.lake_bucket, Key="raw/email/2026/email.jsonl.gz", Body=raw)
    exercise_feedback(container)
    return task_requests


def exercise_feedback(container: Container) -> None:
    """POST /feedback's intake and an upload under raw/feedback/, each fanned in (moto's own SQS delivery
    runs ``feedback_fanin`` inside SendMessage): the endpoint, the table, the alert and the review queue."""
    import requests

    def answer(label: str, probabilities: dict[str, float]) -> dict[str, str]:
        prediction = {
            "label": label,
            "label_id": 0,
            "score": probabilities[label],
            "probabilities": probabilities,
        }
        body = json.dumps({"predictions": [prediction]})
        return {"Body": body, "ContentType": "application/json", "InvokedProductionVariant": "champion"}

    results = [
        answer("negative", {"negative": 0.95, "neutral": 0.03, "positive": 0.02}),  # alerts
        answer("neutral", {"negative": 0.3, "neutral": 0.5, "positive": 0.2}),  # goes to human review
    ]
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={"account_id": "123456789012", "region": "us-east-1", "results": results},
        timeout=10,
    )
    turns = [{"speaker": "customer", "text": "The zip broke on day one."}]
    chat = {"conversation_id": "c-1", "customer_id": "CUST-1", "product_id": "1078", "turns": turns}
    container.feedback_intake.submit({"channel": "chat", "message_id": "crm-1", "body": chat})
    review = {"review_id": "r-1", "user_id": "u-1", "product_id": "862", "rating": 3, "body": "Not sure yet."}
    container.client("s3").put_object(
        Bucket=container.settings.lake_bucket,
        Key="raw/feedback/app/a.json",
        Body=json.dumps([review]).encode(),
    )
    unrecorded = boto3.client("dynamodb", region_name="us-east-1")  # not the recorded session's
    items = unrecorded.scan(TableName=container.settings.feedback_table)["Items"]
    done = sorted(
        (i["channel"]["S"], "alert_message_id" in i, "review_message_id" in i)
        for i in items
        if "channel" in i
    )
    assert done == [("app", False, True), ("chat", True, False)]


#: Every request shape the code sends (service, operation), pinned: a new one must be looked at.
EXPECTED_SHAPES = {
    ("dynamodb", "BatchGetItem"),
    ("dynamodb", "CreateTable"),
    ("dynamodb", "GetItem"),
    ("dynamodb", "PutItem"),
    ("dynamodb", "UpdateItem"),
    ("events", "PutEvents"),
    ("events", "PutRule"),
    ("events", "PutTargets"),
    ("glue", "CreateDatabase"),
    ("glue", "CreatePartition"),
    ("glue", "CreateTable"),
    ("glue", "GetTable"),
    ("iam", "CreateRole"),
    ("iam", "GetRole"),
    ("lambda", "CreateEventSourceMapping"),
    ("lambda", "CreateFunction"),
    ("lambda", "GetFunction"),
    ("lambda", "ListEventSourceMappings"),
    ("s3", "CreateBucket"),
    ("s3", "GetObject"),
    ("s3", "ListBuckets"),
    ("s3", "ListObjectsV2"),
    ("s3", "PutBucketNotificationConfiguration"),
    ("s3", "PutObject"),
    ("sagemaker", "CreateEndpoint"),
    ("sagemaker", "CreateEndpointConfig"),
    ("sagemaker", "CreateModel"),
    ("sagemaker", "CreateModelPackage"),
    ("sagemaker", "CreateModelPackageGroup"),
    ("sagemaker", "CreateProcessingJob"),
    ("sagemaker", "CreateTrainingJob"),
    ("sagemaker", "DeleteEndpointConfig"),
    ("sagemaker", "DeleteModel"),
    ("sagemaker", "DescribeEndpoint"),
    ("sagemaker", "DescribeEndpointConfig"),
    ("sagemaker", "DescribeModel"),
    ("sagemaker", "DescribeModelPackageGroup"),
    ("sagemaker", "DescribeModelPackage"),
    ("sagemaker", "DescribeProcessingJob"),
    ("sagemaker", "DescribeTrainingJob"),
    ("sagemaker", "ListModelPackages"),
    ("sagemaker", "ListTrainingJobs"),
    ("sagemaker", "UpdateEndpoint"),
    ("sagemaker-runtime", "InvokeEndpoint"),
    ("sns", "CreateTopic"),
    ("sns", "Publish"),
    ("sqs", "CreateQueue"),
    ("sqs", "GetQueueAttributes"),
    ("sqs", "GetQueueUrl"),
    ("sqs", "SendMessage"),
    ("sqs", "SetQueueAttributes"),
    ("stepfunctions", "CreateStateMachine"),
    ("stepfunctions", "ListStateMachines"),
    ("stepfunctions", "StartExecution"),
}


def test_every_request_the_code_builds_passes_awss_constraints(
    world: tuple[Container, Recorder, Provisioned, Provisioner],
) -> None:
    container, recorder, provisioned, provisioner = world
    task_requests = exercise(container, provisioned, provisioner)
    requests = recorder.requests + task_requests
    failures = [
        f"{service}.{operation}: {v.render()}"
        for service, operation, params in requests
        for v in validate(service, operation, params, typed=False)
    ]
    assert failures == []
    shapes = {(service, operation) for service, operation, _ in requests}
    assert shapes - EXPECTED_SHAPES == set(), "new request shapes: add them to EXPECTED_SHAPES"
    assert EXPECTED_SHAPES - shapes == set(), "request shapes no longer exercised"


def test_generated_sagemaker_names_and_metadata(
    world: tuple[Container, Recorder, Provisioned, Provisioner],
) -> None:
    container, recorder, provisioned, provisioner = world
    exercise(container, provisioned, provisioner)
    names = [
        params[field]
        for _, operation, params in recorder.requests
        for field in ("ModelName", "EndpointConfigName", "TrainingJobName", "ProcessingJobName")
        if operation.startswith("Create") and field in params
    ]
    assert names and all(len(n) <= 63 and n.startswith("rs-") for n in names), names
    packages = [p for _, operation, p in recorder.requests if operation == "CreateModelPackage"]
    assert [p["CustomerMetadataProperties"]["gate_reasons"] for p in packages] == [
        "passed_no_champion",
        "passed",
        "passed",
    ]
    lineage_keys = [
        p["Key"]
        for _, operation, p in recorder.requests
        if operation == "PutObject" and p["Key"].endswith("lineage.json")
    ]
    s3 = container.client("s3")
    first = s3.get_object(Bucket=container.settings.lake_bucket, Key=lineage_keys[0])["Body"].read()
    # The full text of the gate's reasons stays in lineage.json.
    assert json.loads(first)["gate"]["reasons"] == ["passes the floors (no champion)"]
