"""The endpoint rollout: a model goes live as the challenger, is promoted, or is rolled back.

Every change of what the endpoint serves goes through ``switch``, which starts an update and
records it in the deployment history (DynamoDB); ``deployment_status`` is polled by the state
machine (and the CLI) until the endpoint's status, failure reason and serving configuration give a
verdict, and writes that verdict back to the history, so a failed update is never taken for the live
configuration. ``cleanup_run`` removes what a failed run created unless it serves traffic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters.sagemaker import SageMakerGateway
from chalicelib.config import Settings
from chalicelib.domain.endpoints import (
    DeploymentOutcome,
    EndpointStatus,
    SwitchAction,
    judge_deployment,
    serves_traffic,
    switch_action,
)
from chalicelib.domain.pipeline import endpoint_config_name, model_name, promoted_config_name
from chalicelib.errors import EndpointBusyError, ResourceNotFoundError, TerminalError

CHAMPION = "champion"
CHALLENGER = "challenger"


class NoDeploymentError(TerminalError):
    """There is no endpoint, or no earlier endpoint configuration to go back to."""


class EndpointUnavailableError(TerminalError):
    """The endpoint is OutOfService or UpdateRollbackFailed: an operator must repair or delete it."""


class EndpointRollout:
    def __init__(
        self,
        settings: Settings,
        sagemaker: SageMakerGateway,
        dynamodb: Any,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._s = settings
        self._sm = sagemaker
        self._ddb = dynamodb
        self._clock = clock

    def _endpoint(self) -> dict[str, Any] | None:
        return self._sm.describe_endpoint(self._s.endpoint_name)

    def live_models(self) -> dict[str, dict[str, Any]]:
        """Variant name -> model name, model data and weight of what the endpoint serves now."""
        endpoint = self._endpoint()
        if endpoint is None or not serves_traffic(str(endpoint.get("EndpointStatus", ""))):
            return {}
        config_name = str(endpoint["EndpointConfigName"])
        config = self._sm.describe_endpoint_config(config_name)
        if config is None:
            raise ResourceNotFoundError(f"endpoint configuration {config_name} of a serving endpoint is gone")
        live: dict[str, dict[str, Any]] = {}
        for variant in config["ProductionVariants"]:
            model = self._sm.describe_model(variant["ModelName"])
            if model is None:
                raise ResourceNotFoundError(f"model {variant['ModelName']} of a serving endpoint is gone")
            live[variant["VariantName"]] = {
                "model_name": variant["ModelName"],
                "model_data": model["PrimaryContainer"]["ModelDataUrl"],
                "weight": float(variant.get("InitialVariantWeight", 1.0)),
                "endpoint_config": endpoint["EndpointConfigName"],
            }
        return live

    # -- building blocks ---------------------------------------------------------------------------

    def _create_model(self, name: str, model_data: str) -> None:
        if self._sm.describe_model(name) is not None:  # a retried step created it already
            return
        self._sm.create_model(
            name,
            self._s.sagemaker_role_arn,
            {
                "Image": self._s.inference_image,
                "ModelDataUrl": model_data,
                "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
            },
        )

    def _endpoint_config(self, name: str, variants: list[tuple[str, str, float]]) -> str:
        if self._sm.describe_endpoint_config(name) is not None:
            return name
        self._sm.create_endpoint_config(
            name,
            [
                {
                    "VariantName": variant,
                    "ModelName": model,
                    "InitialInstanceCount": 1,
                    "InstanceType": self._s.inference_instance_type,
                    "InitialVariantWeight": weight,
                }
                for variant, model, weight in variants
            ],
            {
                "EnableCapture": True,
                "InitialSamplingPercentage": 100,
                "DestinationS3Uri": f"s3://{self._s.lake_bucket}/capture/",
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
            },
        )
        return name

    def switch(self, config_name: str) -> dict[str, Any]:
        """Start putting ``config_name`` on the endpoint; ``deployment_status`` says whether it worked."""
        name = self._s.endpoint_name
        now = self._clock()
        deployment = {
            "endpoint_name": name,
            "endpoint_config": config_name,
            "started_at": now.isoformat(),
            "deadline": (now + timedelta(seconds=self._s.endpoint_deploy_timeout_seconds)).isoformat(),
        }
        endpoint = self._endpoint()
        status = str(endpoint["EndpointStatus"]) if endpoint else None
        if endpoint is not None and status != EndpointStatus.FAILED:
            pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
            if config_name in (endpoint.get("EndpointConfigName"), pending):  # a retried step
                return {**deployment, "action": "none", "previous_config": None}
        action = switch_action(status)
        if action is SwitchAction.REPLACE:
            # A Failed endpoint serves nothing, and DeleteEndpoint is the only call SageMaker accepts on it.
            self._sm.delete_endpoint(name)
            endpoint = self._endpoint()
            status = str(endpoint["EndpointStatus"]) if endpoint else None
            action = switch_action(status)
        if action is SwitchAction.WAIT:
            raise EndpointBusyError(f"endpoint {name} is {status}: the deployment waits for it")
        if action is SwitchAction.BLOCKED:
            reason = endpoint.get("FailureReason", "") if endpoint else ""
            raise EndpointUnavailableError(f"endpoint {name} is {status} and needs an operator: {reason}")
        previous = str(endpoint["EndpointConfigName"]) if endpoint is not None else None
        if action is SwitchAction.CREATE:
            self._sm.create_endpoint(name, config_name)
        else:
            self._sm.update_endpoint(name, config_name)
        history = self.deployments()
        history.append(
            {"endpoint_config": config_name, "previous": previous, "at": now.isoformat(), "status": "pending"}
        )
        self._save_deployments(history)
        return {**deployment, "action": action.value, "previous_config": previous}

    # -- deployment history --------------------------------------------------------------------------

    def _history_key(self) -> dict[str, Any]:
        return {"id": {"S": f"deployments#{self._s.endpoint_name}"}}

    def deployments(self) -> list[dict[str, Any]]:
        item = self._ddb.get_item(TableName=self._s.pipeline_table, Key=self._history_key()).get("Item")
        return list(json.loads(item["history"]["S"])) if item else []

    def _save_deployments(self, history: list[dict[str, Any]]) -> None:
        self._ddb.put_item(
            TableName=self._s.pipeline_table,
            Item={**self._history_key(), "history": {"S": json.dumps(history)}},
        )

    # -- what the pipeline and the CLI call -------------------------------------------------------------

    def deploy(self, run_id: str, model_data: str) -> dict[str, Any]:
        """The new model goes live as the challenger next to the champion (alone if there is none)."""
        model = model_name(run_id)
        self._create_model(model, model_data)
        champion = self.live_models().get(CHAMPION)
        config = endpoint_config_name(run_id)
        if champion is None or champion["model_name"] == model:
            self._endpoint_config(config, [(CHAMPION, model, 1.0)])
        else:
            w = self._s.challenger_weight
            self._endpoint_config(
                config, [(CHAMPION, champion["model_name"], 1.0 - w), (CHALLENGER, model, w)]
            )
        return self.switch(config)

    def deployment_status(self, deployment: dict[str, Any]) -> dict[str, Any]:
        """One poll of a deployment started by ``deploy``, ``promote`` or ``rollback``.

        A finished deployment is written to the deployment history, so a failed one is never taken
        for the live configuration.
        """
        deadline = datetime.fromisoformat(str(deployment["deadline"]))
        verdict = judge_deployment(
            self._endpoint(), str(deployment["endpoint_config"]), deadline_passed=self._clock() >= deadline
        )
        if verdict.outcome is not DeploymentOutcome.PENDING:
            history = self.deployments()
            for entry in reversed(history):
                if entry.get("endpoint_config") == deployment["endpoint_config"]:
                    if entry.get("status") == "pending":
                        entry["status"] = verdict.outcome.value
                        entry["reason"] = verdict.reason
                        self._save_deployments(history)
                    break
        return {**verdict.as_dict(), "endpoint_config": deployment["endpoint_config"]}

    def promote(self) -> dict[str, Any]:
        """Shift all traffic to the challenger, which becomes the champion."""
        challenger = self.live_models().get(CHALLENGER)
        if challenger is None:
            raise NoDeploymentError("no challenger is live: nothing to promote")
        config = promoted_config_name(challenger["model_name"], self._clock())
        self._endpoint_config(config, [(CHAMPION, challenger["model_name"], 1.0)])
        return self.switch(config)

    def rollback(self) -> dict[str, Any]:
        """Restore the endpoint configuration that was live before the one serving now."""
        endpoint = self._endpoint()
        serving = (
            endpoint.get("EndpointConfigName")
            if endpoint and serves_traffic(str(endpoint.get("EndpointStatus", "")))
            else None
        )
        for entry in reversed(self.deployments()):
            if entry.get("endpoint_config") == serving and entry.get("previous"):
                return self.switch(str(entry["previous"]))
        raise NoDeploymentError("no earlier endpoint configuration to roll back to")

    def cleanup_run(self, run_id: str) -> dict[str, Any]:
        """Delete what a failed run created unless it serves traffic, and a Failed endpoint.

        A Failed endpoint serves nothing and blocks every later deployment (SageMaker accepts only
        DeleteEndpoint on it), so it goes too; an endpoint that serves is never touched.
        """
        deleted: list[str] = []
        endpoint = self._endpoint()
        if endpoint is not None and endpoint.get("EndpointStatus") == EndpointStatus.FAILED:
            if self._sm.delete_endpoint(self._s.endpoint_name):
                deleted.append(self._s.endpoint_name)
            endpoint = None
        in_use: set[str] = set()
        if endpoint is not None:
            pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
            in_use = {str(c) for c in (endpoint.get("EndpointConfigName"), pending) if c}
        used_models: set[str] = set()
        for name in in_use:
            config = self._sm.describe_endpoint_config(name)
            used_models.update(v["ModelName"] for v in (config or {}).get("ProductionVariants", []))
        config_name = endpoint_config_name(run_id)
        if config_name not in in_use and self._sm.delete_endpoint_config(config_name):
            deleted.append(config_name)
        model = model_name(run_id)
        if model not in used_models and self._sm.delete_model(model):
            deleted.append(model)
        return {"deleted": deleted}
