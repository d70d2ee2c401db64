"""The pipeline's Lambda services against moto: plan, gate, register + lineage, deploy, triggers, watchdog."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from chalicelib.adapters.logs import LogReader
from chalicelib.adapters.sagemaker import SageMakerGateway
from chalicelib.config import Settings
from chalicelib.container import Container
from chalicelib.services.pipeline import PipelineSteps
from chalicelib.services.registry import ModelRegistry
from chalicelib.services.rollout import EndpointRollout, EndpointUnavailableError
from chalicelib.services.watchdog import LOG_GROUP, TrainingWatchdog
from tests.helpers import awslike

STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:reviewsense-local-training-pipeline"


@pytest.fixture
def container(lake: Any, settings: Settings) -> Container:
    return Container(settings, lake)


def put_json(aws: Any, uri: str, value: Any) -> None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(value).encode())


def evaluation(macro_f1: float, neg_recall: float) -> dict[str, Any]:
    return {"macro_f1": macro_f1, "accuracy": 0.9, "per_class": {"negative": {"recall": neg_recall}}}


def test_prepare_plans_every_sagemaker_request(container: Container) -> None:
    run = container.pipeline_steps.prepare(
        {
            "execution_name": "manual-20261126-101500",
            "hyperparameters": {"epochs": "1"},
            "gate": {"tolerance": 0.05},
        }
    )
    assert run["run_id"].endswith("manual-20261126-101500")
    assert run["has_champion"] is False and run["evaluate_champion"] == {}
    training = run["training"]
    assert training["TrainingJobName"].startswith("rs-") and len(training["TrainingJobName"]) <= 63
    assert training["HyperParameters"]["epochs"] == "1"
    assert training["HyperParameters"]["sagemaker_program"] == "training/train.py"
    assert [c["ChannelName"] for c in training["InputDataConfig"]] == ["train", "validation", "test"]
    assert run["model_data"].endswith(f"{training['TrainingJobName']}/output/model.tar.gz")
    assert run["featurize"]["AppSpecification"]["ContainerEntrypoint"] == [
        "python3",
        "-m",
        "training.bootstrap",
        "training.featurize",
    ]
    assert run["gate_config"]["tolerance"] == 0.05


def test_gate_register_and_deploy_the_first_model(container: Container, lake: Any) -> None:
    service = container.pipeline_steps
    run = service.prepare({"execution_name": "first"})
    put_json(lake, run["candidate_evaluation_uri"], evaluation(0.72, 0.7))
    put_json(lake, f"{run['base_uri']}features/train/part-0.parquet", {"x": 1})
    gate = service.gate(run)
    assert gate["approved"] and gate["status"] == "Approved"

    registered = service.register(
        run, gate, {"FinalMetricDataList": [{"MetricName": "val_macro_f1", "Value": 0.7}]}
    )
    shown = container.registry.show_model(registered["model_package_arn"])
    assert shown["status"] == "Approved"
    assert shown["run_id"] == run["run_id"] and shown["macro_f1"] == "0.7200"
    lineage_bucket, _, lineage_key = registered["lineage_uri"].removeprefix("s3://").partition("/")
    lineage = json.loads(lake.client("s3").get_object(Bucket=lineage_bucket, Key=lineage_key)["Body"].read())
    assert list(lineage["data_version"]["files"]) == [
        f"pipeline/{run['run_id']}/features/train/part-0.parquet"
    ]
    assert lineage["hyperparameters"]["sagemaker_program"] == "training/train.py"
    assert lineage["training_metrics"] == {"val_macro_f1": 0.7}
    assert lineage["gate"]["status"] == "Approved"

    deployed = service.deploy(run)
    sm = lake.client("sagemaker")
    config = sm.describe_endpoint_config(EndpointConfigName=deployed["endpoint_config"])
    assert [(v["VariantName"], v["InitialVariantWeight"]) for v in config["ProductionVariants"]] == [
        ("champion", 1.0)
    ]
    assert config["DataCaptureConfig"]["EnableCapture"] is True
    assert container.rollout.live_models()["champion"]["model_data"] == run["model_data"]
    assert [m["live"] for m in container.registry.list_models()] == ["champion"]


def test_a_worse_candidate_is_registered_rejected(container: Container, lake: Any) -> None:
    service = container.pipeline_steps
    run = service.prepare({"execution_name": "worse", "gate": {"min_macro_f1": 0.9}})
    put_json(lake, run["candidate_evaluation_uri"], evaluation(0.72, 0.7))
    gate = service.gate(run)
    assert not gate["approved"]
    registered = service.register(run, gate, {})
    assert container.registry.show_model(registered["model_package_arn"])["status"] == "Rejected"
    assert (
        container.registry.show_model(registered["model_package_arn"])["gate_reasons"]
        == "macro_f1_below_floor"
    )


def test_cleanup_removes_what_a_failed_run_created(container: Container, lake: Any) -> None:
    service = container.pipeline_steps
    run = service.prepare({"execution_name": "failed"})
    sm = lake.client("sagemaker")
    sm.create_model(
        ModelName=f"rs-{run['run_id']}",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
        PrimaryContainer={"Image": "img", "ModelDataUrl": run["model_data"]},
    )
    assert service.cleanup(run)["deleted"] == [f"rs-{run['run_id']}"]


# -- deployments are judged by status, failure reason and the configuration serving -------------------


@pytest.fixture
def endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    awslike.install(monkeypatch)


def planned(service: Any, name: str, broken: bool = False) -> dict[str, Any]:
    run: dict[str, Any] = service.prepare({"execution_name": name})
    if broken:
        run["model_data"] = f"s3://reviewsense-lake/{awslike.BROKEN}/{name}/model.tar.gz"
    return run


def deploy_and_poll(service: Any, run: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = service.deployment_status(service.deploy(run))
    return status


def test_a_failed_update_reports_failure_and_keeps_the_champion(
    container: Container, lake: Any, endpoints: None
) -> None:
    service = container.pipeline_steps
    first = planned(service, "first")
    assert deploy_and_poll(service, first)["outcome"] == "deployed"
    champion_config = f"rs-{first['run_id']}-cfg"

    second = planned(service, "second", broken=True)
    status = deploy_and_poll(service, second)
    assert status["outcome"] == "failed"
    assert status["status"] == "InService" and status["serving_config"] == champion_config
    assert "rolled back" in status["reason"] and "ping health check" in status["reason"]
    # Nothing records the challenger as live: the endpoint, the registry view, the deployment history.
    assert set(container.rollout.live_models()) == {"champion"}
    assert container.rollout.live_models()["champion"]["model_data"] == first["model_data"]
    history = container.rollout.deployments()
    assert [(h["endpoint_config"], h["status"]) for h in history] == [
        (champion_config, "deployed"),
        (f"rs-{second['run_id']}-cfg", "failed"),
    ]
    # Cleanup removes the failed run's model and configuration, never what serves.
    deleted = service.cleanup(second)["deleted"]
    assert deleted == [f"rs-{second['run_id']}-cfg", f"rs-{second['run_id']}"]
    assert service.cleanup(first)["deleted"] == []
    endpoint = lake.client("sagemaker").describe_endpoint(EndpointName=container.settings.endpoint_name)
    assert endpoint["EndpointConfigName"] == champion_config


def test_a_failed_first_create_is_cleaned_up_and_the_next_deploy_works(
    container: Container, lake: Any, endpoints: None
) -> None:
    service = container.pipeline_steps
    sm = lake.client("sagemaker")
    name = container.settings.endpoint_name
    broken = planned(service, "broken", broken=True)
    status = deploy_and_poll(service, broken)
    assert status["outcome"] == "failed" and status["status"] == "Failed"
    assert "ping health check" in status["reason"]
    assert container.rollout.live_models() == {}  # a Failed endpoint serves nothing: no champion
    assert service.cleanup(broken)["deleted"] == [
        name,
        f"rs-{broken['run_id']}-cfg",
        f"rs-{broken['run_id']}",
    ]
    assert name not in {e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]}

    good = planned(service, "good")
    assert deploy_and_poll(service, good)["outcome"] == "deployed"
    assert container.rollout.live_models()["champion"]["model_data"] == good["model_data"]


def test_a_failed_endpoint_left_behind_is_replaced_by_the_next_deploy(
    container: Container, endpoints: None
) -> None:
    service = container.pipeline_steps
    assert deploy_and_poll(service, planned(service, "broken", broken=True))["outcome"] == "failed"
    # No Cleanup ran (say the execution was stopped): the next deploy deletes the Failed endpoint itself.
    good = planned(service, "good")
    deployment = service.deploy(good)
    assert deployment["action"] == "create"
    assert service.deployment_status(deployment)["outcome"] == "deployed"


@pytest.mark.parametrize("status", ["Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"])
def test_deploy_waits_while_sagemaker_works_on_the_endpoint(
    container: Container, endpoints: None, status: str
) -> None:
    from chalicelib.errors import EndpointBusyError

    service = container.pipeline_steps
    deploy_and_poll(service, planned(service, "first"))
    awslike.set_status(container.settings.endpoint_name, status)
    with pytest.raises(EndpointBusyError):
        service.deploy(planned(service, "second"))


@pytest.mark.parametrize("status", ["OutOfService", "UpdateRollbackFailed"])
def test_deploy_refuses_an_endpoint_that_needs_an_operator(
    container: Container, endpoints: None, status: str
) -> None:
    service = container.pipeline_steps
    deploy_and_poll(service, planned(service, "first"))
    awslike.set_status(container.settings.endpoint_name, status, "instances failed health checks")
    with pytest.raises(EndpointUnavailableError, match="instances failed health checks"):
        service.deploy(planned(service, "second"))


@pytest.mark.parametrize("status", ["OutOfService", "UpdateRollbackFailed", "Deleting", "Failed"])
def test_a_deployment_that_ends_in_a_stuck_status_fails_instead_of_polling_forever(
    container: Container, endpoints: None, status: str
) -> None:
    service = container.pipeline_steps
    deployment = service.deploy(planned(service, "first"))
    awslike.set_status(container.settings.endpoint_name, status, "capacity error")
    result = service.deployment_status(deployment)
    assert result["outcome"] == "failed" and status in result["reason"]


def test_a_deployment_still_creating_at_its_deadline_fails(
    lake: Any, settings: Settings, endpoints: None
) -> None:
    from datetime import UTC, datetime, timedelta

    now = [datetime(2026, 11, 26, 10, 0, tzinfo=UTC)]
    s = Settings(**{**settings.__dict__, "endpoint_deploy_timeout_seconds": 600})
    from chalicelib.adapters.s3 import S3ObjectStore

    sagemaker = SageMakerGateway(lake.client("sagemaker"))
    rollout = EndpointRollout(s, sagemaker, lake.client("dynamodb"), clock=lambda: now[0])
    service = PipelineSteps(
        s,
        S3ObjectStore(lake.client("s3")),
        ModelRegistry(s, sagemaker, rollout),
        rollout,
        clock=lambda: now[0],
    )
    deployment = service.deploy(planned(service, "slow"))
    awslike.set_status(s.endpoint_name, "Creating")
    assert service.deployment_status(deployment)["outcome"] == "pending"
    now[0] += timedelta(seconds=601)
    result = service.deployment_status(deployment)
    assert result["outcome"] == "failed" and "deadline" in result["reason"]


def test_a_retried_deploy_step_does_not_switch_twice(container: Container, endpoints: None) -> None:
    service = container.pipeline_steps
    run = planned(service, "first")
    first = service.deploy(run)
    again = service.deploy(run)  # Step Functions retried the Lambda after it had already switched
    assert again["action"] == "none" and again["endpoint_config"] == first["endpoint_config"]
    assert len(container.rollout.deployments()) == 1


def test_rollback_goes_back_from_what_serves_not_from_a_failed_update(
    container: Container, endpoints: None
) -> None:
    service = container.pipeline_steps
    first, second = planned(service, "first"), planned(service, "second")
    deploy_and_poll(service, first)
    deploy_and_poll(service, second)
    assert deploy_and_poll(service, planned(service, "third", broken=True))["outcome"] == "failed"
    rolled = container.rollout.rollback()
    assert rolled["endpoint_config"] == f"rs-{first['run_id']}-cfg"
    assert service.deployment_status(rolled)["outcome"] == "deployed"


def start_machine(lake: Any) -> None:
    lake.client("stepfunctions").create_state_machine(
        name="reviewsense-local-training-pipeline",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/x",
    )


def test_new_data_trigger_starts_once_per_threshold_crossing(lake: Any, settings: Settings) -> None:
    start_machine(lake)
    s = Settings(
        **{**settings.__dict__, "retrain_threshold": 100, "pipeline_state_machine_arn": STATE_MACHINE}
    )
    trigger = Container(s, lake).pipeline_trigger
    assert trigger.on_reviews_ingested(60)["started"] is False
    first = trigger.on_reviews_ingested(60)
    assert first["started"] and first["execution_name"] == "new-data-000001"
    # The count starts again from zero after each run: small later batches do not each start one.
    assert trigger.on_reviews_ingested(30)["started"] is False
    assert trigger.on_reviews_ingested(60)["started"] is False
    assert trigger.on_reviews_ingested(10)["execution_name"] == "new-data-000002"


def test_schedule_and_duplicate_triggers_do_not_start_twice(lake: Any, settings: Settings) -> None:
    start_machine(lake)
    s = Settings(**{**settings.__dict__, "pipeline_state_machine_arn": STATE_MACHINE})
    trigger = Container(s, lake).pipeline_trigger
    first = trigger.on_schedule("2026-11-26T10:00:00Z")
    again = trigger.on_schedule("2026-11-26T10:30:00Z")  # same hour: same name, same input
    assert first["execution_name"] == again["execution_name"] == "schedule-20261126-10"
    # Same name and input while it runs: Step Functions answers with the same execution.
    assert first["started"] is True and first["execution_arn"].endswith(":schedule-20261126-10")
    assert again["execution_arn"] == first["execution_arn"]
    # Same name, other input: ExecutionAlreadyExists, reported as not started.
    other = trigger.start("schedule-20261126-10", "manual", {"hyperparameters": {"epochs": "2"}})
    assert other == {"started": False, "execution_name": "schedule-20261126-10", "reason": "already started"}
    executions = lake.client("stepfunctions").list_executions(stateMachineArn=STATE_MACHINE)["executions"]
    assert len(executions) == 1


def now_ms() -> int:
    return int(time.time() * 1000)


class RecordingSageMaker(SageMakerGateway):
    """Test double: the job's status and StopTrainingJob calls (moto's in-process SageMaker lacks Stop)."""

    def __init__(self) -> None:
        super().__init__(client=None)
        self.stopped: list[str] = []

    def describe_training_job(self, name: str) -> dict[str, Any]:
        return {"TrainingJobStatus": "Stopping" if name in self.stopped else "InProgress"}

    def stop_training_job(self, name: str) -> None:
        self.stopped.append(name)


def test_watchdog_stops_a_diverging_job_and_alerts(lake: Any, settings: Settings) -> None:
    logs, sns, sqs = lake.client("logs"), lake.client("sns"), lake.client("sqs")
    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="rs-job-1/algo-1")
    lines = [f"step: {i} epoch: 0.1 train_loss: {0.5 + i} grad_norm: 1.0" for i in range(1, 5)]
    lines.append("step: 5 epoch: 0.2 train_loss: nan grad_norm: nan")
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName="rs-job-1/algo-1",
        logEvents=[{"timestamp": now_ms() + i, "message": line} for i, line in enumerate(lines)],
    )
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    sm = RecordingSageMaker()
    s = Settings(**{**settings.__dict__, "alerts_topic_arn": topic})
    result = TrainingWatchdog(s, sm, LogReader(logs), sns).check_job("rs-job-1")
    assert sm.stopped == ["rs-job-1"]
    assert result["action"] == "stopped" and result["violations"][0]["rule"] == "nan_loss"
    (message,) = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert "nan_loss" in json.loads(message["Body"])["Message"]
    # A healthy job is left alone.
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="rs-job-2/algo-1")
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName="rs-job-2/algo-1",
        logEvents=[{"timestamp": now_ms(), "message": "step: 1 train_loss: 1.0 grad_norm: 1.0"}],
    )
    assert TrainingWatchdog(s, sm, LogReader(logs), sns).check_job("rs-job-2")["action"] == "none"


# -- the watchdog looks only at this app's jobs ---------------------------------------------------------


def create_training_job(sm: Any, name: str) -> None:
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::123456789012:role/x",
        OutputDataConfig={"S3OutputPath": "s3://bucket/out/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )


@pytest.fixture
def account_jobs(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Three running jobs in the account; only the app's own may be described (as its IAM policy says)."""
    from moto.core.exceptions import JsonRESTError
    from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends

    sm = aws.client("sagemaker")
    for name in ("rs-20261126-101500-first-train", "other-team-job", "team-rs-lookalike"):
        create_training_job(sm, name)
    backend = sagemaker_backends["123456789012"]["us-east-1"]
    for job in backend.training_jobs.values():
        job.training_job_status = "InProgress"
    described: list[str] = []
    original = SageMakerModelBackend.describe_training_job

    def describe_training_job(self: Any, training_job_name: str) -> dict[str, Any]:
        described.append(training_job_name)
        if not training_job_name.startswith("rs-"):
            raise JsonRESTError("AccessDeniedException", f"not authorized on {training_job_name}")
        return original(self, training_job_name)

    monkeypatch.setattr(SageMakerModelBackend, "describe_training_job", describe_training_job)
    return sm, described


def test_watchdog_checks_only_this_apps_running_jobs(aws: Any, settings: Settings, account_jobs: Any) -> None:
    sm, described = account_jobs
    watchdog = TrainingWatchdog(
        settings, SageMakerGateway(sm), LogReader(aws.client("logs")), aws.client("sns")
    )
    results = watchdog.check_running()
    assert [r["job"] for r in results] == ["rs-20261126-101500-first-train"]
    assert described == ["rs-20261126-101500-first-train"]
    # An event for another app's job (should one get through) is ignored without a Describe.
    assert watchdog.check_job("other-team-job")["action"] == "ignored"
    assert described == ["rs-20261126-101500-first-train"]


def test_watchdog_does_not_swallow_access_denied_on_its_own_job(
    aws: Any, settings: Settings, account_jobs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError
    from moto.core.exceptions import JsonRESTError
    from moto.sagemaker.models import SageMakerModelBackend

    def denied(self: Any, training_job_name: str) -> dict[str, Any]:
        raise JsonRESTError("AccessDeniedException", "not authorized")

    monkeypatch.setattr(SageMakerModelBackend, "describe_training_job", denied)
    sm, _ = account_jobs
    with pytest.raises(ClientError) as raised:
        TrainingWatchdog(
            settings, SageMakerGateway(sm), LogReader(aws.client("logs")), aws.client("sns")
        ).check_running()
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"


def test_watchdog_rule_matches_only_this_apps_jobs() -> None:
    from chalice.app import CloudWatchEventConfig
    from moto.events.models import EventPattern

    import app

    (pattern,) = [
        s.event_pattern
        for s in app.app.event_sources
        if isinstance(s, CloudWatchEventConfig) and s.name == "watchdog_on_event"
    ]
    matcher: Any = EventPattern.load(json.dumps(pattern))

    def event(job: str) -> dict[str, Any]:
        return {
            "source": "aws.sagemaker",
            "detail-type": "SageMaker Training Job State Change",
            "detail": {"TrainingJobName": job, "TrainingJobStatus": "InProgress"},
        }

    assert matcher.matches_event(event("rs-20261126-101500-first-train"))
    assert not matcher.matches_event(event("other-team-job"))
    assert not matcher.matches_event(event("team-rs-lookalike"))


def test_every_job_the_pipeline_names_is_one_the_watchdog_and_its_policy_cover(container: Container) -> None:
    from chalicelib.domain.pipeline import RESOURCE_PREFIX
    from chalicelib.services.watchdog import is_own_job
    from infra.template import JOB_PREFIX

    assert JOB_PREFIX == RESOURCE_PREFIX  # the IAM policies scope to the prefix the code generates
    run = container.pipeline_steps.prepare({"execution_name": "x" * 80 + "-a-very-long-run-name"})
    names = [run["training"]["TrainingJobName"], run["featurize"]["ProcessingJobName"]]
    names.append(run["evaluate_candidate"]["ProcessingJobName"])
    assert all(is_own_job(n) and len(n) <= 63 for n in names), names
