"""The model registry: registering a model package with its lineage, and what the CLI shows and changes.

A package's approval status is the gate's verdict; ``reviewsense models approve|reject`` changes it
by hand. Each package carries a few registry-safe metadata codes; the full lineage (data version,
code version, hyperparameters, gate reasons) is in ``lineage.json`` beside the run's outputs.
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.sagemaker import SageMakerGateway
from chalicelib.config import Settings
from chalicelib.domain.pipeline import package_description, registry_metadata
from chalicelib.services.rollout import EndpointRollout


class ModelRegistry:
    def __init__(self, settings: Settings, sagemaker: SageMakerGateway, rollout: EndpointRollout) -> None:
        self._s = settings
        self._sm = sagemaker
        self._rollout = rollout

    def register(self, run: dict[str, Any], gate: dict[str, Any], lineage_uri: str, data_digest: str) -> str:
        """Create the run's model package, approved or rejected as the gate said; returns its ARN."""
        s = self._s
        self._sm.ensure_model_package_group(s.model_package_group, "ReviewSense sentiment models")
        return self._sm.create_model_package(
            ModelPackageGroupName=s.model_package_group,
            ModelPackageDescription=package_description(run["run_id"], gate),
            InferenceSpecification={
                "Containers": [{"Image": s.inference_image, "ModelDataUrl": run["model_data"]}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
                "SupportedRealtimeInferenceInstanceTypes": [s.inference_instance_type],
            },
            ModelApprovalStatus=gate["status"],
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
                    "data_version": data_digest,
                    "code_version": s.code_version,
                    "training_job": run["training"]["TrainingJobName"],
                    "macro_f1": f"{gate['candidate']['macro_f1']:.4f}",
                    "negative_recall": f"{gate['candidate']['negative_recall']:.4f}",
                    "gate": gate["status"],
                    "gate_reasons": "+".join(gate.get("codes") or ["see_lineage"]),
                }
            ),
        )

    def list_models(self) -> list[dict[str, Any]]:
        """Every package of the group, newest first, with the variant that serves it (if any)."""
        packages = list(self._sm.model_packages(self._s.model_package_group))
        if not packages:
            return []
        live = {m["model_data"]: variant for variant, m in self._rollout.live_models().items()}
        rows = []
        for summary in packages:
            detail = self.show_model(summary["ModelPackageArn"])
            rows.append({**detail, "live": live.get(detail["model_data"], "")})
        return rows

    def show_model(self, arn: str) -> dict[str, Any]:
        d = self._sm.describe_model_package(arn)
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
        self._sm.update_model_package(arn, status, reason)
        return self.show_model(arn)
