"""The Lambda steps of the training pipeline, and the model-registry operations behind the CLI.

Step Functions calls SageMaker directly for the jobs (create / describe, polled); these steps do what
needs logic: plan a run (Prepare), decide (Gate), register the model package with its lineage
(Register), roll it out as a challenger next to the champion (Deploy), judge the rollout by the
endpoint's status, failure reason and serving configuration (DeployStatus), and remove what a failed
run created (Cleanup). Promotion and rollback use the same deployment history.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.config import Settings
from chalicelib.domain.endpoints import (
    DeploymentOutcome,
    EndpointStatus,
    SwitchAction,
    judge_deployment,
    serves_traffic,
    switch_action,
)
from chalicelib.domain.gate import GateConfig, decide
from chalicelib.domain.pipeline import (
    PlanInputs,
    endpoint_config_name,
    model_name,
    package_description,
    plan_run,
    promoted_config_name,
    registry_metadata,
    run_id_for,
)
from chalicelib.domain.tables import REVIEWS
from chalicelib.errors import EndpointBusyError, TerminalError

CHAMPION = "champion"
CHALLENGER = "challenger"


#: The error codes SageMaker answers a Describe/Delete of a resource that does not exist with.
_NOT_FOUND = ("ValidationException", "ResourceNotFound")


class NoDeploymentError(TerminalError):
    """There is no endpoint, or no earlier endpoint configuration to go back to."""


class EndpointUnavailableError(TerminalError):
    """The endpoint is OutOfService or UpdateRollbackFailed: an operator must repair or delete it."""


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


class PipelineService:
    def __init__(
        self,
        settings: Settings,
        sagemaker: Any,
        s3: Any,
        dynamodb: Any,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._s = settings
        self._sm = sagemaker
        self._s3 = s3
        self._ddb = dynamodb
        self._clock = clock

    # -- Prepare -------------------------------------------------------------------------------------

    def prepare(self, event: dict[str, Any]) -> dict[str, Any]:
        s = self._s
        execution = str(event.get("execution_name") or event.get("id") or "manual")
        run_id = str(event.get("run_id") or run_id_for(execution, self._clock()))
        hyperparameters = {
            **json.loads(s.training_hyperparameters or "{}"),
            **event.get("hyperparameters", {}),
        }
        champion = self.live_models().get(CHAMPION)
        plan = plan_run(
            PlanInputs(
                run_id=run_id,
                bucket=s.lake_bucket,
                role_arn=s.sagemaker_role_arn,
                training_image=s.training_image,
                processing_image=s.processing_image,
                training_instance_type=s.training_instance_type,
                processing_instance_type=s.processing_instance_type,
                max_training_seconds=s.max_training_seconds,
                poll_seconds=int(event.get("poll_seconds", s.poll_seconds)),
                hyperparameters={k: str(v) for k, v in hyperparameters.items()},
                featurize_args={k: str(v) for k, v in event.get("featurize", {}).items()},
                champion_model_data=champion["model_data"] if champion else None,
                code_prefix=s.code_prefix,
                pipeline_prefix=s.pipeline_prefix,
                curated_prefix=f"{s.curated_prefix}{REVIEWS.folder}/",
            )
        )
        plan["trigger"] = event.get("trigger", "manual")
        plan["gate_config"] = {
            "min_macro_f1": s.gate_min_macro_f1,
            "min_negative_recall": s.gate_min_negative_recall,
            "tolerance": s.gate_tolerance,
            **event.get("gate", {}),
        }
        plan["champion_model_name"] = champion["model_name"] if champion else None
        return plan

    # -- Gate ------------------------------------------------------------------------------------------

    def _read_json(self, uri: str) -> dict[str, Any]:
        bucket, key = split_s3(uri)
        data: dict[str, Any] = json.loads(self._s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return data

    def gate(self, run: dict[str, Any]) -> dict[str, Any]:
        candidate = self._read_json(run["candidate_evaluation_uri"])
        champion = self._read_json(run["champion_evaluation_uri"]) if run.get("has_champion") else None
        return decide(candidate, champion, GateConfig.from_mapping(run.get("gate_config", {}))).as_dict()

    # -- Register --------------------------------------------------------------------------------------

    def data_version(self, base_uri: str) -> dict[str, Any]:
        """S3 keys and content hashes (ETags) of the featurized splits this run trained on."""
        bucket, prefix = split_s3(f"{base_uri}features/")
        files: dict[str, str] = {}
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                files[obj["Key"]] = str(obj["ETag"]).strip('"')
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
        return {"digest": digest, "files": files}

    def register(
        self, run: dict[str, Any], gate: dict[str, Any], training_job: dict[str, Any]
    ) -> dict[str, Any]:
        s = self._s
        self._ensure_group()
        data = self.data_version(run["base_uri"])
        metrics = {m["MetricName"]: m["Value"] for m in training_job.get("FinalMetricDataList", [])}
        lineage = {
            "run_id": run["run_id"],
            "trigger": run.get("trigger"),
            "data_version": data,
            "code_version": s.code_version,
            "hyperparameters": run["training"]["HyperParameters"],
            "training_job": run["training"]["TrainingJobName"],
            "training_image": s.training_image,
            "inference_image": s.inference_image,
            "training_metrics": metrics,
            "evaluation_uri": run["candidate_evaluation_uri"],
            "gate": gate,
            "model_data": run["model_data"],
            "registered_at": self._clock().isoformat(),
        }
        lineage_uri = f"{run['base_uri']}lineage.json"
        bucket, key = split_s3(lineage_uri)
        self._s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(lineage, indent=2, default=str).encode())
        status = gate["status"]
        response = self._sm.create_model_package(
            ModelPackageGroupName=s.model_package_group,
            ModelPackageDescription=package_description(run["run_id"], gate),
            InferenceSpecification={
                "Containers": [{"Image": s.inference_image, "ModelDataUrl": run["model_data"]}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
                "SupportedRealtimeInferenceInstanceTypes": [s.inference_instance_type],
            },
            ModelApprovalStatus=status,
            ModelMetrics={
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": run["candidate_evaluation_uri"],
                    }
                }
            },
            # The full gate reasons are in lineage.json; the registry gets codes within its pattern.
            CustomerMetadataProperties=registry_metadata(
                {
                    "run_id": run["run_id"],
                    "lineage_uri": lineage_uri,
                    "data_version": data["digest"],
                    "code_version": s.code_version,
                    "training_job": run["training"]["TrainingJobName"],
                    "macro_f1": f"{gate['candidate']['macro_f1']:.4f}",
                    "negative_recall": f"{gate['candidate']['negative_recall']:.4f}",
                    "gate": gate["status"],
                    "gate_reasons": "+".join(gate.get("codes") or ["see_lineage"]),
                }
            ),
        )
        return {
            "model_package_arn": response["ModelPackageArn"],
            "status": status,
            "lineage_uri": lineage_uri,
        }

    def _ensure_group(self) -> None:
        try:
            self._sm.create_model_package_group(
                ModelPackageGroupName=self._s.model_package_group,
                ModelPackageGroupDescription="ReviewSense sentiment models",
            )
        except Exception as exc:
            if _code(exc) not in ("ValidationException", "ResourceInUse") and "exist" not in str(exc).lower():
                raise

    # -- Deploy / promote / rollback ------------------------------------------------------------------

    def _endpoint(self) -> dict[str, Any] | None:
        """DescribeEndpoint, or None when there is none (SageMaker answers ValidationException)."""
        try:
            return dict(self._sm.describe_endpoint(EndpointName=self._s.endpoint_name))
        except Exception as exc:
            if _code(exc) in _NOT_FOUND:
                return None
            raise

    @staticmethod
    def _found(operation: Callable[..., Any], **name: str) -> bool:
        """Describe or delete one SageMaker resource; False when it does not exist (other errors raise)."""
        try:
            operation(**name)
        except Exception as exc:
            if _code(exc) in _NOT_FOUND:
                return False
            raise
        return True

    def live_models(self) -> dict[str, dict[str, Any]]:
        """Variant name -> model name, model data and weight of what the endpoint serves now."""
        endpoint = self._endpoint()
        if endpoint is None or not serves_traffic(str(endpoint.get("EndpointStatus", ""))):
            return {}
        config = self._sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        live: dict[str, dict[str, Any]] = {}
        for variant in config["ProductionVariants"]:
            model = self._sm.describe_model(ModelName=variant["ModelName"])
            live[variant["VariantName"]] = {
                "model_name": variant["ModelName"],
                "model_data": model["PrimaryContainer"]["ModelDataUrl"],
                "weight": float(variant.get("InitialVariantWeight", 1.0)),
                "endpoint_config": endpoint["EndpointConfigName"],
            }
        return live

    def _create_model(self, name: str, model_data: str) -> None:
        if self._found(self._sm.describe_model, ModelName=name):  # a retried step created it already
            return
        self._sm.create_model(
            ModelName=name,
            ExecutionRoleArn=self._s.sagemaker_role_arn,
            PrimaryContainer={
                "Image": self._s.inference_image,
                "ModelDataUrl": model_data,
                "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
            },
        )

    def _endpoint_config(self, name: str, variants: list[tuple[str, str, float]]) -> str:
        if self._found(self._sm.describe_endpoint_config, EndpointConfigName=name):
            return name
        self._sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": variant,
                    "ModelName": model,
                    "InitialInstanceCount": 1,
                    "InstanceType": self._s.inference_instance_type,
                    "InitialVariantWeight": weight,
                }
                for variant, model, weight in variants
            ],
            DataCaptureConfig={
                "EnableCapture": True,
                "InitialSamplingPercentage": 100,
                "DestinationS3Uri": f"s3://{self._s.lake_bucket}/capture/",
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
            },
        )
        return name

    def _switch(self, config_name: str) -> dict[str, Any]:
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
            self._sm.delete_endpoint(EndpointName=name)
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
            self._sm.create_endpoint(EndpointName=name, EndpointConfigName=config_name)
        else:
            self._sm.update_endpoint(EndpointName=name, EndpointConfigName=config_name)
        history = self.deployments()
        history.append(
            {"endpoint_config": config_name, "previous": previous, "at": now.isoformat(), "status": "pending"}
        )
        self._save_deployments(history)
        return {**deployment, "action": action.value, "previous_config": previous}

    def deployments(self) -> list[dict[str, Any]]:
        item = self._ddb.get_item(
            TableName=self._s.pipeline_table, Key={"id": {"S": f"deployments#{self._s.endpoint_name}"}}
        ).get("Item")
        return list(json.loads(item["history"]["S"])) if item else []

    def _save_deployments(self, history: list[dict[str, Any]]) -> None:
        self._ddb.put_item(
            TableName=self._s.pipeline_table,
            Item={"id": {"S": f"deployments#{self._s.endpoint_name}"}, "history": {"S": json.dumps(history)}},
        )

    def deploy(self, run: dict[str, Any]) -> dict[str, Any]:
        """The new model goes live as the challenger next to the champion (alone if there is none)."""
        model = model_name(run["run_id"])
        self._create_model(model, run["model_data"])
        champion = self.live_models().get(CHAMPION)
        config = endpoint_config_name(run["run_id"])
        if champion is None or champion["model_name"] == model:
            self._endpoint_config(config, [(CHAMPION, model, 1.0)])
        else:
            w = self._s.challenger_weight
            variants = [(CHAMPION, champion["model_name"], 1.0 - w), (CHALLENGER, model, w)]
            self._endpoint_config(config, variants)
        return self._switch(config)

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
        return self._switch(config)

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
                return self._switch(str(entry["previous"]))
        raise NoDeploymentError("no earlier endpoint configuration to roll back to")

    # -- Cleanup ---------------------------------------------------------------------------------------

    def cleanup(self, run: dict[str, Any]) -> dict[str, Any]:
        """Delete what a failed run created unless it serves traffic, and a Failed endpoint.

        A Failed endpoint serves nothing and blocks every later deployment (SageMaker accepts only
        DeleteEndpoint on it), so it goes too; an endpoint that serves is never touched.
        """
        deleted: list[str] = []
        endpoint = self._endpoint()
        if endpoint is not None and endpoint.get("EndpointStatus") == EndpointStatus.FAILED:
            if self._found(self._sm.delete_endpoint, EndpointName=self._s.endpoint_name):
                deleted.append(self._s.endpoint_name)
            endpoint = None
        in_use: set[str] = set()
        if endpoint is not None:
            pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
            in_use = {str(c) for c in (endpoint.get("EndpointConfigName"), pending) if c}
        used_models: set[str] = set()
        for name in in_use:
            config = self._sm.describe_endpoint_config(EndpointConfigName=name)
            used_models.update(v["ModelName"] for v in config["ProductionVariants"])
        config_name = endpoint_config_name(run["run_id"])
        if config_name not in in_use and self._found(
            self._sm.delete_endpoint_config, EndpointConfigName=config_name
        ):
            deleted.append(config_name)
        model = model_name(run["run_id"])
        if model not in used_models and self._found(self._sm.delete_model, ModelName=model):
            deleted.append(model)
        return {"deleted": deleted}

    # -- Registry --------------------------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        try:
            packages = self._sm.list_model_packages(
                ModelPackageGroupName=self._s.model_package_group,
                SortBy="CreationTime",
                SortOrder="Descending",
            )["ModelPackageSummaryList"]
        except Exception as exc:
            if "does not exist" in str(exc).lower() or _code(exc) == "ValidationException":
                return []
            raise
        live = {m["model_data"]: variant for variant, m in self.live_models().items()}
        rows = []
        for summary in packages:
            detail = self.show_model(summary["ModelPackageArn"])
            rows.append({**detail, "live": live.get(detail["model_data"], "")})
        return rows

    def show_model(self, arn: str) -> dict[str, Any]:
        d = self._sm.describe_model_package(ModelPackageName=arn)
        containers = d.get("InferenceSpecification", {}).get("Containers", [{}])
        meta = d.get("CustomerMetadataProperties", {})
        return {
            "arn": d["ModelPackageArn"],
            "version": d.get("ModelPackageVersion"),
            "status": d.get("ModelApprovalStatus"),
            "created": str(d.get("CreationTime", "")),
            "model_data": containers[0].get("ModelDataUrl", ""),
            "description": d.get("ModelPackageDescription", ""),
            **meta,
        }

    def set_approval(self, arn: str, status: str, reason: str = "") -> dict[str, Any]:
        kwargs: dict[str, Any] = {"ModelPackageArn": arn, "ModelApprovalStatus": status}
        if reason:
            kwargs["ApprovalDescription"] = reason[:1000]
        self._sm.update_model_package(**kwargs)
        return self.show_model(arn)
