"""`reviewsense pipeline wait` says what a long step is doing: the job it waits on, its last log line, and
a training job's progress (step / total, loss, samples/s, ETA, validation macro-F1) from CloudWatch Logs."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import pytest

from chalicelib.container import Container
from reviewsense import pipelineops


def _scheduled(action: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "TaskScheduled",
        "taskScheduledEventDetails": {
            "resource": action,
            "resourceType": "aws-sdk:sagemaker",
            "parameters": json.dumps(parameters),
        },
    }


def test_the_current_job_is_the_last_one_the_run_created() -> None:
    events = [
        _scheduled("createProcessingJob", {"ProcessingJobName": "rs-run-featurize"}),
        _scheduled("describeProcessingJob", {"ProcessingJobName": "rs-run-featurize"}),
        _scheduled("createTrainingJob", {"TrainingJobName": "rs-run-train"}),
        _scheduled("describeTrainingJob", {"TrainingJobName": "rs-run-train"}),
        {"type": "WaitStateEntered", "stateEnteredEventDetails": {"name": "WaitTrain"}},
    ]
    assert pipelineops.current_job(events) == ("rs-run-train", "/aws/sagemaker/TrainingJobs")
    assert pipelineops.current_job(events[:2]) == ("rs-run-featurize", "/aws/sagemaker/ProcessingJobs")
    assert pipelineops.current_job(events[4:]) is None


def test_job_progress_is_the_newest_log_line_of_the_job(aws: Any) -> None:
    container = Container(session=aws)
    logs = aws.client("logs")
    assert pipelineops.job_progress(container, "rs-run-train", "/aws/sagemaker/TrainingJobs") == ""
    logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    assert pipelineops.job_progress(container, "rs-run-train", "/aws/sagemaker/TrainingJobs") == ""
    now = int(time.time() * 1000)
    for job in ("rs-run-train", "rs-other-train"):
        logs.create_log_stream(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=f"{job}/algo-1")
        logs.put_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs",
            logStreamName=f"{job}/algo-1",
            logEvents=[
                {"timestamp": now - 2_000, "message": f"{job} step 10/250 loss 0.91"},
                {"timestamp": now - 1_000, "message": f"{job} step 20/250 loss 0.74\n"},
            ],
        )
    line = pipelineops.job_progress(container, "rs-run-train", "/aws/sagemaker/TrainingJobs")
    assert line == "rs-run-train step 20/250 loss 0.74"


# -- the training job's progress, read from its CloudWatch Logs while the run waits on it ---------------

GROUP = "/aws/sagemaker/TrainingJobs"
JOB = "rs-20261129-150000-demo-train"
LOG_PREFIX = "2026-11-29 15:50:01,100 INFO training.train "


def _create_training_job(aws: Any, name: str, hyperparameters: dict[str, str]) -> None:
    aws.client("sagemaker").create_training_job(
        TrainingJobName=name,
        HyperParameters=hyperparameters,
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::123456789012:role/x",
        OutputDataConfig={"S3OutputPath": "s3://bucket/out/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )


def _log(aws: Any, job: str, at_ms: int, *messages: str) -> None:
    logs = aws.client("logs")
    stream = f"{job}/algo-1-1764428400"  # SageMaker's stream name: <job>/algo-1-<epoch seconds>
    for call, kwargs in (
        (logs.create_log_group, {"logGroupName": GROUP}),
        (logs.create_log_stream, {"logGroupName": GROUP, "logStreamName": stream}),
    ):
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            call(**kwargs)
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": at_ms + i, "message": LOG_PREFIX + m} for i, m in enumerate(messages)],
    )


def _train(step: int) -> str:
    return (
        f"train step: {step} epoch: {step / 92:.3f} train_loss: 0.8 grad_norm: 2.0 lr: 5e-05 "
        "samples_per_second: 21.5"
    )


def test_waiting_prints_the_training_jobs_progress_from_its_logs(aws: Any) -> None:
    follower = pipelineops.TrainingProgressFollower(Container(session=aws), poll_s=5.0, every_s=12.0)
    featurizing = [_scheduled("createProcessingJob", {"ProcessingJobName": "rs-run-featurize"})]
    assert follower.poll(featurizing, now=0.0) == []  # no training job in the run yet
    history = [*featurizing, _scheduled("createTrainingJob", {"TrainingJobName": JOB})]
    assert follower.poll(history, now=1.0) == []  # scheduled, not created yet: nothing to read
    _create_training_job(aws, JOB, {"max-train-minutes": "6", "epochs": "1"})
    assert follower.poll(history, now=10.0) == []  # created, no log group yet (the job is starting)

    t0 = int(time.time() * 1000)
    _log(aws, JOB, t0, "validation held out from train: 900 rows")
    _log(
        aws, JOB, t0 + 10_000,
        "model: packaged:all-MiniLM-L6-v2 steps: 250 (92 per epoch) batch: 32 padding: dynamic device: cpu",
        _train(20),
    )  # fmt: skip
    lines = follower.poll(history, now=20.0)
    assert lines == ["training step 20/250 (8%) | loss 0.8000 | 21.5 samples/s | ETA 5m42s"]
    _log(aws, JOB, t0 + 40_000, _train(40))
    assert follower.poll(history, now=22.0) == []  # read every 5 s, not every 2 s
    assert follower.poll(history, now=26.0) == []  # read, but a train line at most every 12 s
    _log(
        aws,
        JOB,
        t0 + 70_000,
        _train(60),
        "eval step: 92 epoch: 1 train_loss: 0.7 val_loss: 0.6 val_acc: 0.8 val_macro_f1: 0.611",
    )
    lines = follower.poll(history, now=33.0)
    # 40 steps in 60 s: 190 steps left take 285 s; the 6-minute budget (from the first line) leaves 290 s.
    assert lines == [
        "training step 60/250 (24%) | loss 0.8000 | 21.5 samples/s | ETA 4m45s",
        "evaluation at step 92/250 (36%) | val macro-F1 0.6110 | accuracy 0.8000 | val loss 0.6000",
    ]
    _log(aws, JOB, t0 + 100_000, _train(80))
    lines = follower.poll([*history, {"type": "ExecutionSucceeded"}], now=34.0, final=True)
    assert [line.split(" | ")[0] for line in lines] == ["training step 80/250 (32%)"]


def test_waiting_goes_on_without_progress_when_the_logs_cannot_be_read(
    aws: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.logs.models import LogsBackend

    _create_training_job(aws, JOB, {})
    _log(aws, JOB, int(time.time() * 1000), _train(20))

    def describe_log_streams(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise JsonRESTError("AccessDeniedException", "not authorized to perform: logs:DescribeLogStreams")

    monkeypatch.setattr(LogsBackend, "describe_log_streams", describe_log_streams)
    follower = pipelineops.TrainingProgressFollower(Container(session=aws))
    history = [_scheduled("createTrainingJob", {"TrainingJobName": JOB})]
    assert follower.poll(history, now=0.0) == []
    assert "training progress unavailable" in capsys.readouterr().err
    assert follower.poll(history, now=60.0) == []  # said once, not at every poll
    assert capsys.readouterr().err == ""
