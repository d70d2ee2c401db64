"""The training watchdog: applies the training-health rules to running SageMaker jobs.

SageMaker Debugger (whose rule actions stopped unhealthy jobs) is closed to new customers, so this
Lambda does it: it reads a running job's metric lines from CloudWatch Logs, applies the same rules
the training job applies to itself (``training/fit.py``), and on a violation calls StopTrainingJob and
alerts on SNS.
It only ever looks at this app's jobs (names starting with ``RESOURCE_PREFIX``): other jobs in the
account are neither described nor stopped, and its IAM policy does not allow it to.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger

from chalicelib.adapters.logs import LogReader
from chalicelib.adapters.sagemaker import SageMakerGateway
from chalicelib.config import Settings
from chalicelib.domain.pipeline import RESOURCE_PREFIX
from chalicelib.domain.training_health import HealthConfig, HistoryBuilder, check_training_health

logger = Logger(child=True)
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
#: The EventBridge pattern of the state-change rule: only this app's training jobs reach the function.
TRAINING_JOB_STATE_CHANGE: dict[str, Any] = {
    "source": ["aws.sagemaker"],
    "detail-type": ["SageMaker Training Job State Change"],
    "detail": {"TrainingJobName": [{"prefix": RESOURCE_PREFIX}]},
}


def is_own_job(job_name: str) -> bool:
    return job_name.startswith(RESOURCE_PREFIX)


class TrainingWatchdog:
    def __init__(
        self,
        settings: Settings,
        sagemaker: SageMakerGateway,
        logs: LogReader,
        sns: Any,
        config: HealthConfig | None = None,
    ) -> None:
        self._s = settings
        self._sm = sagemaker
        self._logs = logs
        self._sns = sns
        self._config = config or HealthConfig()

    def log_lines(self, job_name: str) -> list[str]:
        return self._logs.lines(LOG_GROUP, job_name)

    def check_job(self, job_name: str) -> dict[str, Any]:
        """Apply the rules to one of this app's jobs; another app's job is left alone, undescribed."""
        if not is_own_job(job_name):
            return {"job": job_name, "status": "", "action": "ignored", "reason": "not this app's job"}
        job = self._sm.describe_training_job(job_name)
        if job["TrainingJobStatus"] != "InProgress":
            return {"job": job_name, "status": job["TrainingJobStatus"], "action": "none"}
        history = HistoryBuilder().add_lines(self.log_lines(job_name))
        violations = check_training_health(history, self._config)
        if not violations:
            return {"job": job_name, "status": "InProgress", "action": "none", "points": len(history)}
        reasons = [v.to_dict() for v in violations]
        self._sm.stop_training_job(job_name)
        message = {"job": job_name, "action": "stopped", "violations": reasons}
        logger.warning("stopping unhealthy training job", extra=message)
        if self._s.alerts_topic_arn:
            self._sns.publish(
                TopicArn=self._s.alerts_topic_arn,
                Subject=f"ReviewSense: training job {job_name} stopped"[:100],
                Message=json.dumps(message, indent=2),
                MessageAttributes={
                    "kind": {"DataType": "String", "StringValue": "training-health"},
                    "rule": {"DataType": "String", "StringValue": str(reasons[0]["rule"])},
                },
            )
        return {**message, "status": "Stopping"}

    def running_jobs(self) -> list[str]:
        """This app's running training jobs (NameContains matches anywhere in the name: filter again)."""
        return [n for n in self._sm.running_training_jobs(RESOURCE_PREFIX) if is_own_job(n)]

    def check_running(self) -> list[dict[str, Any]]:
        return [self.check_job(name) for name in self.running_jobs()]
