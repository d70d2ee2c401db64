"""Judges a SageMaker endpoint deployment from DescribeEndpoint: still running, live, or failed.

``EndpointStatus`` alone does not answer it. A failed UpdateEndpoint rolls back to ``InService``
with the previous endpoint configuration still serving and ``FailureReason`` set, so "InService"
means "deployed" only when the configuration now serving is the one the deployment asked for. A
failed CreateEndpoint ends ``Failed``, where DeleteEndpoint is the only operation SageMaker allows,
and ``OutOfService``, ``UpdateRollbackFailed`` and ``Deleting`` never turn into ``InService`` by
themselves. The deploy step, the deployment poll and the state machine's Choice all go by these
functions. Pure: no I/O, no clock (the caller says whether the deadline has passed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

FAILURE_REASON_CHARS = 1024


class EndpointStatus(StrEnum):
    """Every value of SageMaker's ``EndpointStatus`` (botocore's model; a unit test keeps them in step)."""

    OUT_OF_SERVICE = "OutOfService"
    CREATING = "Creating"
    UPDATING = "Updating"
    SYSTEM_UPDATING = "SystemUpdating"
    ROLLING_BACK = "RollingBack"
    IN_SERVICE = "InService"
    DELETING = "Deleting"
    FAILED = "Failed"
    UPDATE_ROLLBACK_FAILED = "UpdateRollbackFailed"


#: SageMaker is still working on the endpoint: poll again (until the deadline).
IN_PROGRESS = frozenset(
    {
        EndpointStatus.CREATING,
        EndpointStatus.UPDATING,
        EndpointStatus.SYSTEM_UPDATING,
        EndpointStatus.ROLLING_BACK,
    }
)
#: Statuses that never become InService on their own: the deployment has failed.
STUCK = frozenset(
    {
        EndpointStatus.FAILED,
        EndpointStatus.OUT_OF_SERVICE,
        EndpointStatus.UPDATE_ROLLBACK_FAILED,
        EndpointStatus.DELETING,
    }
)
#: Statuses in which ``EndpointConfigName`` is the configuration answering requests.
SERVING = frozenset(
    {
        EndpointStatus.IN_SERVICE,
        EndpointStatus.UPDATING,
        EndpointStatus.SYSTEM_UPDATING,
        EndpointStatus.ROLLING_BACK,
        EndpointStatus.UPDATE_ROLLBACK_FAILED,
    }
)


class DeploymentOutcome(StrEnum):
    """What the state machine's ``IsEndpointReady`` Choice branches on (a test keeps them in step)."""

    PENDING = "pending"
    DEPLOYED = "deployed"
    FAILED = "failed"


@dataclass(frozen=True)
class DeploymentVerdict:
    outcome: DeploymentOutcome
    #: The endpoint's status as SageMaker reported it ("" when the endpoint does not exist).
    status: str
    #: The endpoint configuration answering requests now (None when nothing serves).
    serving_config: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "status": self.status,
            "serving_config": self.serving_config,
            "reason": self.reason,
        }


def serves_traffic(status: str) -> bool:
    """Whether an endpoint in ``status`` answers requests with its ``EndpointConfigName``."""
    return status in SERVING


def _pending_config(endpoint: Mapping[str, Any]) -> str | None:
    pending = endpoint.get("PendingDeploymentSummary") or {}
    name = pending.get("EndpointConfigName")
    return str(name) if name else None


def judge_deployment(
    endpoint: Mapping[str, Any] | None, expected_config: str, *, deadline_passed: bool = False
) -> DeploymentVerdict:
    """The outcome of switching the endpoint to ``expected_config``, from one DescribeEndpoint answer.

    ``endpoint`` is the DescribeEndpoint response, or None when the endpoint does not exist.
    """
    if endpoint is None:
        return DeploymentVerdict(
            DeploymentOutcome.FAILED, "", None, "the endpoint does not exist (deleted during the deployment?)"
        )
    status = str(endpoint.get("EndpointStatus", ""))
    configured = endpoint.get("EndpointConfigName")
    serving = str(configured) if configured and serves_traffic(status) else None
    failure = str(endpoint.get("FailureReason") or "")[:FAILURE_REASON_CHARS]

    if status == EndpointStatus.IN_SERVICE:
        outcome, reason = _judge_in_service(endpoint, expected_config, failure, deadline_passed)
    else:
        outcome, reason = _judge_not_in_service(status, failure, deadline_passed)
    return DeploymentVerdict(outcome, status, serving, reason)


def _judge_in_service(
    endpoint: Mapping[str, Any], expected_config: str, failure: str, deadline_passed: bool
) -> tuple[DeploymentOutcome, str]:
    """An InService endpoint serves either the new configuration, a pending rollout of it, or the old one."""
    configured = endpoint.get("EndpointConfigName")
    if configured == expected_config:
        return DeploymentOutcome.DEPLOYED, ""
    if _pending_config(endpoint) == expected_config and not deadline_passed:
        return DeploymentOutcome.PENDING, f"{expected_config} is still being rolled out"
    because = f": {failure}" if failure else ""
    return (
        DeploymentOutcome.FAILED,
        f"the update to {expected_config} was rolled back; {configured} keeps serving{because}",
    )


def _judge_not_in_service(status: str, failure: str, deadline_passed: bool) -> tuple[DeploymentOutcome, str]:
    if status in IN_PROGRESS:
        if deadline_passed:
            return DeploymentOutcome.FAILED, f"still {status} when the deployment deadline passed"
        return DeploymentOutcome.PENDING, ""
    if status in STUCK:
        because = f": {failure}" if failure else ""
        return DeploymentOutcome.FAILED, f"the endpoint is {status}{because}"
    return DeploymentOutcome.FAILED, f"unknown endpoint status {status!r}"


class SwitchAction(StrEnum):
    """What the deploy step does to put a new configuration on the endpoint."""

    CREATE = "create"
    UPDATE = "update"
    #: A Failed endpoint serves nothing and accepts only DeleteEndpoint: delete it, then create.
    REPLACE = "replace"
    #: SageMaker is still working on the endpoint (another deployment, a deletion): try again later.
    WAIT = "wait"
    #: The endpoint needs an operator (OutOfService, UpdateRollbackFailed, an unknown status).
    BLOCKED = "blocked"


def switch_action(status: str | None) -> SwitchAction:
    """How to switch an endpoint in ``status`` (None: it does not exist) to a new configuration."""
    if status is None:
        return SwitchAction.CREATE
    if status == EndpointStatus.IN_SERVICE:
        return SwitchAction.UPDATE
    if status == EndpointStatus.FAILED:
        return SwitchAction.REPLACE
    if status in IN_PROGRESS or status == EndpointStatus.DELETING:
        return SwitchAction.WAIT
    return SwitchAction.BLOCKED
