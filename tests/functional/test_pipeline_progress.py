"""`reviewsense pipeline wait` says what a long step is doing: the job it waits on and its last log line."""

from __future__ import annotations

import json
import time
from typing import Any

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
