"""The Lambda steps of the training pipeline.

Step Functions calls SageMaker directly for the jobs (create / describe, polled); these steps do what
needs logic: plan a run (Prepare), decide (Gate), register the model package with its lineage
(Register, through ``registry``), roll it out as a challenger next to the champion and judge the
rollout (Deploy / DeployStatus, through ``rollout``), and remove what a failed run created (Cleanup).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.s3 import ObjectStore
from chalicelib.config import Settings
from chalicelib.domain.gate import GateConfig, decide
from chalicelib.domain.pipeline import PlanInputs, plan_run, run_id_for
from chalicelib.domain.tables import REVIEWS
from chalicelib.services.registry import ModelRegistry
from chalicelib.services.rollout import CHAMPION, EndpointRollout


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


class PipelineSteps:
    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        registry: ModelRegistry,
        rollout: EndpointRollout,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._s = settings
        self._store = store
        self._registry = registry
        self._rollout = rollout
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
        champion = self._rollout.live_models().get(CHAMPION)
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
        data: dict[str, Any] = json.loads(self._store.get(*split_s3(uri)).body)
        return data

    def gate(self, run: dict[str, Any]) -> dict[str, Any]:
        candidate = self._read_json(run["candidate_evaluation_uri"])
        champion = self._read_json(run["champion_evaluation_uri"]) if run.get("has_champion") else None
        return decide(candidate, champion, GateConfig.from_mapping(run.get("gate_config", {}))).as_dict()

    # -- Register --------------------------------------------------------------------------------------

    def data_version(self, base_uri: str) -> dict[str, Any]:
        """S3 keys and content hashes (ETags) of the featurized splits this run trained on."""
        bucket, prefix = split_s3(f"{base_uri}features/")
        files = {obj.key: obj.etag for obj in self._store.list_objects(bucket, prefix)}
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
        return {"digest": digest, "files": files}

    def register(
        self, run: dict[str, Any], gate: dict[str, Any], training_job: dict[str, Any]
    ) -> dict[str, Any]:
        s = self._s
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
        self._store.put(bucket, key, json.dumps(lineage, indent=2, default=str).encode(), "application/json")
        arn = self._registry.register(run, gate, lineage_uri, data["digest"])
        return {"model_package_arn": arn, "status": gate["status"], "lineage_uri": lineage_uri}

    # -- Deploy / DeployStatus / Cleanup --------------------------------------------------------------

    def deploy(self, run: dict[str, Any]) -> dict[str, Any]:
        return self._rollout.deploy(run["run_id"], run["model_data"])

    def deployment_status(self, deployment: dict[str, Any]) -> dict[str, Any]:
        return self._rollout.deployment_status(deployment)

    def cleanup(self, run: dict[str, Any]) -> dict[str, Any]:
        return self._rollout.cleanup_run(run["run_id"])
