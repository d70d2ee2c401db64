"""The endpoint-deployment verdict: every EndpointStatus SageMaker has, and the update that rolls back."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from chalicelib.domain.endpoints import (
    DeploymentOutcome,
    EndpointStatus,
    SwitchAction,
    judge_deployment,
    serves_traffic,
    switch_action,
)

NEW, OLD = "rs-new-cfg", "rs-old-cfg"


def described(status: str, config: str = NEW, **extra: Any) -> dict[str, Any]:
    return {"EndpointName": "e", "EndpointStatus": status, "EndpointConfigName": config, **extra}


def test_the_statuses_are_sagemakers() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    assert {s.value for s in EndpointStatus} == set(model.shape_for("EndpointStatus").enum)


# What a poll of a deployment of NEW concludes for each status (the endpoint reports config NEW).
EXPECTED = {
    EndpointStatus.CREATING: DeploymentOutcome.PENDING,
    EndpointStatus.UPDATING: DeploymentOutcome.PENDING,
    EndpointStatus.SYSTEM_UPDATING: DeploymentOutcome.PENDING,
    EndpointStatus.ROLLING_BACK: DeploymentOutcome.PENDING,
    EndpointStatus.IN_SERVICE: DeploymentOutcome.DEPLOYED,
    EndpointStatus.FAILED: DeploymentOutcome.FAILED,
    EndpointStatus.OUT_OF_SERVICE: DeploymentOutcome.FAILED,
    EndpointStatus.UPDATE_ROLLBACK_FAILED: DeploymentOutcome.FAILED,
    EndpointStatus.DELETING: DeploymentOutcome.FAILED,
}


def test_every_status_has_an_expected_outcome() -> None:
    assert set(EXPECTED) == set(EndpointStatus)


@pytest.mark.parametrize("status", list(EndpointStatus))
def test_every_status_is_judged(status: EndpointStatus) -> None:
    verdict = judge_deployment(described(status, FailureReason="model_fn raised"), NEW)
    assert verdict.outcome is EXPECTED[status]
    assert verdict.status == status.value
    if verdict.outcome is DeploymentOutcome.FAILED:
        assert status.value in verdict.reason and "model_fn raised" in verdict.reason


@pytest.mark.parametrize("status", sorted(s for s, o in EXPECTED.items() if o is DeploymentOutcome.PENDING))
def test_polling_stops_at_the_deadline(status: EndpointStatus) -> None:
    verdict = judge_deployment(described(status), NEW, deadline_passed=True)
    assert verdict.outcome is DeploymentOutcome.FAILED
    assert "deadline" in verdict.reason


def test_a_rolled_back_update_is_a_failure_and_the_old_config_keeps_serving() -> None:
    endpoint = described(EndpointStatus.IN_SERVICE, OLD, FailureReason="the model could not be loaded")
    verdict = judge_deployment(endpoint, NEW)
    assert verdict.outcome is DeploymentOutcome.FAILED
    assert verdict.serving_config == OLD
    assert "rolled back" in verdict.reason and "the model could not be loaded" in verdict.reason


def test_a_stale_failure_reason_does_not_fail_a_deployment_that_took_effect() -> None:
    endpoint = described(EndpointStatus.IN_SERVICE, NEW, FailureReason="an earlier update failed")
    assert judge_deployment(endpoint, NEW).outcome is DeploymentOutcome.DEPLOYED


def test_in_service_with_the_new_config_still_pending_keeps_polling() -> None:
    endpoint = described(EndpointStatus.IN_SERVICE, OLD, PendingDeploymentSummary={"EndpointConfigName": NEW})
    assert judge_deployment(endpoint, NEW).outcome is DeploymentOutcome.PENDING
    assert judge_deployment(endpoint, NEW, deadline_passed=True).outcome is DeploymentOutcome.FAILED


def test_a_missing_endpoint_and_an_unknown_status_fail() -> None:
    assert judge_deployment(None, NEW).outcome is DeploymentOutcome.FAILED
    unknown = judge_deployment(described("Hibernating"), NEW)
    assert unknown.outcome is DeploymentOutcome.FAILED and "Hibernating" in unknown.reason


def test_a_failed_endpoint_serves_nothing() -> None:
    verdict = judge_deployment(described(EndpointStatus.FAILED, NEW), NEW)
    assert verdict.serving_config is None
    assert not serves_traffic(EndpointStatus.FAILED) and not serves_traffic(EndpointStatus.CREATING)
    assert serves_traffic(EndpointStatus.UPDATING) and serves_traffic(EndpointStatus.IN_SERVICE)


def test_the_verdict_serialises_for_the_state_machine() -> None:
    assert judge_deployment(described(EndpointStatus.IN_SERVICE), NEW).as_dict() == {
        "outcome": "deployed",
        "status": "InService",
        "serving_config": NEW,
        "reason": "",
    }


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (None, SwitchAction.CREATE),
        (EndpointStatus.IN_SERVICE, SwitchAction.UPDATE),
        (EndpointStatus.FAILED, SwitchAction.REPLACE),
        (EndpointStatus.CREATING, SwitchAction.WAIT),
        (EndpointStatus.UPDATING, SwitchAction.WAIT),
        (EndpointStatus.SYSTEM_UPDATING, SwitchAction.WAIT),
        (EndpointStatus.ROLLING_BACK, SwitchAction.WAIT),
        (EndpointStatus.DELETING, SwitchAction.WAIT),
        (EndpointStatus.OUT_OF_SERVICE, SwitchAction.BLOCKED),
        (EndpointStatus.UPDATE_ROLLBACK_FAILED, SwitchAction.BLOCKED),
        ("Hibernating", SwitchAction.BLOCKED),
    ],
)
def test_how_each_status_is_switched_to_a_new_config(status: str | None, action: SwitchAction) -> None:
    assert switch_action(status) is action
