"""The moto patches that hand SageMaker work to ``LocalSageMaker``, and their install / uninstall.

moto 5.2.5 stores training and processing jobs but runs nothing, lacks ``StopTrainingJob`` and
``UpdateEndpoint``, drops a job's ``Environment``, lets a job name be reused, and its ``InvokeEndpoint``
returns a static body. These patches (pinned to moto 5.2.5, like ``extensions.py``, and applied through
``patching.Patches``) make the backend and response classes behave as SageMaker does and pass the work to
the installed manager.
"""

from __future__ import annotations

import copy
import threading
from typing import Any
from urllib.parse import unquote

from reviewsense.localcloud.patching import Patches
from reviewsense.localcloud.sagemaker.common import validation_error
from reviewsense.localcloud.sagemaker.manager import LocalSageMaker

_installed: dict[str, Any] = {}  # the manager the patches hand work to
_install_lock = threading.Lock()
_patches = Patches()
_request = threading.local()  # the Environment of the CreateTrainingJob / CreateProcessingJob being served


def _manager() -> LocalSageMaker:
    manager: LocalSageMaker = _installed["manager"]
    return manager


def install(manager: LocalSageMaker) -> None:
    """Patch moto's SageMaker and sagemaker-runtime (idempotent; a later call replaces the manager).

    Also resumes what the restored state says was running (see ``LocalSageMaker.resume``).
    """
    with _install_lock:
        fresh = _installed.get("manager") is not manager
        _installed["manager"] = manager
        _patches.install(_apply)
    if fresh:
        manager.resume()


def uninstall() -> None:
    """Restore moto's own behaviour (the local cloud calls this on stop)."""
    with _install_lock:
        _patches.uninstall()
        _installed.clear()


def _apply(patches: Patches) -> None:
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    _patch_jobs(patches, SageMakerModelBackend)
    _patch_endpoints(patches, SageMakerModelBackend)
    _patch_responses(patches, SageMakerResponse)
    _patch_runtime(patches, SageMakerRuntimeResponse)


def _patch_jobs(patches: Patches, backend_cls: Any) -> None:
    """Training and processing jobs: unique names, Environment kept, run and stopped by the manager."""
    from moto.sagemaker.exceptions import ResourceInUseException
    from moto.sagemaker.models import FakeProcessingJob, FakeTrainingJob

    original_create_training = backend_cls.create_training_job
    original_create_processing = backend_cls.create_processing_job

    def create_training_job(self: Any, **kwargs: Any) -> Any:
        name = kwargs["training_job_name"]
        environment = getattr(_request, "environment", None)
        if name in self.training_jobs:
            arn = FakeTrainingJob.arn_formatter(name, self.account_id, self.region_name)
            raise ResourceInUseException(message=f"Training job {arn} already exists: names must be unique")
        spec = copy.deepcopy(kwargs.get("algorithm_specification") or {})
        job = original_create_training(self, **kwargs)
        job.algorithm_specification = spec  # moto replaces MetricDefinitions with a sample of its own
        job.environment = environment or None  # moto drops Environment
        _manager().jobs.submit_training_job(self, job)
        return job

    def stop_training_job(self: Any, training_job_name: str) -> None:
        job = self.training_jobs.get(training_job_name)
        if job is None:
            arn = FakeTrainingJob.arn_formatter(training_job_name, self.account_id, self.region_name)
            raise validation_error(f"Could not find training job '{arn}'.")
        if job.training_job_status != "InProgress":
            raise validation_error(
                f"The request was rejected because the training job is in status {job.training_job_status}."
            )
        _manager().jobs.stop_training_job(self, job)

    def create_processing_job(self: Any, **kwargs: Any) -> Any:
        name = kwargs["processing_job_name"]
        environment = getattr(_request, "environment", None)
        if name in self.processing_jobs:
            arn = FakeProcessingJob.arn_formatter(name, self.account_id, self.region_name)
            raise ResourceInUseException(message=f"Processing job {arn} already exists: names must be unique")
        job = original_create_processing(self, **kwargs)
        job.environment = environment or None  # moto drops Environment
        _manager().jobs.submit_processing_job(self, job)
        return job

    def stop_processing_job(self: Any, processing_job_name: str) -> None:
        job = self.processing_jobs.get(processing_job_name)
        if job is None:
            arn = FakeProcessingJob.arn_formatter(processing_job_name, self.account_id, self.region_name)
            raise validation_error(f"Could not find processing job '{arn}'.")
        if job.processing_job_status != "InProgress":
            status = job.processing_job_status
            raise validation_error(
                f"The request was rejected because the processing job is in status {status}."
            )
        _manager().jobs.stop_processing_job(self, job)

    patches.replace(backend_cls, "create_training_job", create_training_job)
    patches.replace(backend_cls, "stop_training_job", stop_training_job)
    patches.replace(backend_cls, "create_processing_job", create_processing_job)
    patches.replace(backend_cls, "stop_processing_job", stop_processing_job)


def _patch_endpoints(patches: Patches, backend_cls: Any) -> None:
    """Endpoints: served (created, updated, deleted) by the manager, with SageMaker's status checks."""
    from moto.sagemaker.models import FakeEndpoint

    original_create_endpoint = backend_cls.create_endpoint
    original_delete_endpoint = backend_cls.delete_endpoint

    def create_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str, tags: Any) -> Any:
        if endpoint_name in self.endpoints:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise validation_error(f'Cannot create already existing endpoint "{arn}".')
        endpoint = original_create_endpoint(self, endpoint_name, endpoint_config_name, tags)
        _manager().endpoints.deploy(self, endpoint, endpoint_config_name, mode="create")
        return endpoint

    def update_endpoint(
        self: Any, endpoint_name: str, endpoint_config_name: str, retain_all_variant_properties: bool = False
    ) -> str:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise validation_error(f"Could not find endpoint '{arn}'.")
        if endpoint_config_name not in self.endpoint_configs:
            self.describe_endpoint_config(endpoint_config_name)  # raises moto's own error
        if endpoint.endpoint_status != "InService":
            raise validation_error(
                f'Cannot update in-progress endpoint "{endpoint.arn}" (status {endpoint.endpoint_status}).'
            )
        _manager().endpoints.deploy(
            self, endpoint, endpoint_config_name, mode="update", retain=retain_all_variant_properties
        )
        return str(endpoint.arn)

    def delete_endpoint(self: Any, endpoint_name: str) -> None:
        original_delete_endpoint(self, endpoint_name)
        _manager().endpoints.undeploy(self.account_id, self.region_name, endpoint_name)

    patches.replace(backend_cls, "create_endpoint", create_endpoint)
    patches.replace(backend_cls, "update_endpoint", update_endpoint)
    patches.replace(backend_cls, "delete_endpoint", delete_endpoint)


def _patch_responses(patches: Patches, response_cls: Any) -> None:
    from moto.core.responses import ActionResult, EmptyResult

    def stop_training_job_action(self: Any) -> Any:
        self.sagemaker_backend.stop_training_job(self._get_param("TrainingJobName"))
        return EmptyResult()

    def update_endpoint_action(self: Any) -> Any:
        arn = self.sagemaker_backend.update_endpoint(
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
            retain_all_variant_properties=bool(self._get_param("RetainAllVariantProperties", False)),
        )
        return ActionResult({"EndpointArn": arn})

    def with_environment(original: Any) -> Any:
        def action(self: Any) -> Any:
            _request.environment = self._get_param("Environment")
            try:
                return original(self)
            finally:
                _request.environment = None

        return action

    patches.replace(response_cls, "create_training_job", with_environment(response_cls.create_training_job))
    patches.replace(
        response_cls, "create_processing_job", with_environment(response_cls.create_processing_job)
    )
    patches.replace(response_cls, "stop_training_job", stop_training_job_action)
    patches.replace(response_cls, "update_endpoint", update_endpoint_action)


def _patch_runtime(patches: Patches, runtime_cls: Any) -> None:
    def invoke_endpoint_action(self: Any) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        name = unquote(self.path.split("/")[2])
        backend = sagemaker_backends[self.current_account][self.region]
        headers = self.headers
        body = self.raw_body if isinstance(self.raw_body, bytes) else str(self.raw_body or "").encode("utf-8")
        result = _manager().endpoints.invoke(
            backend,
            name,
            body,
            content_type=headers.get("Content-Type") or "application/octet-stream",
            accept=headers.get("Accept"),
            target_variant=headers.get("X-Amzn-SageMaker-Target-Variant"),
            custom_attributes=headers.get("X-Amzn-SageMaker-Custom-Attributes"),
            inference_id=headers.get("X-Amzn-SageMaker-Inference-Id"),
        )
        return (
            200,
            {"Content-Type": result.content_type, "x-Amzn-Invoked-Production-Variant": result.variant},
            result.body,
        )

    patches.replace(runtime_cls, "invoke_endpoint", invoke_endpoint_action)
    patches.replace(runtime_cls, "use_raw_body", True)  # request bodies may be binary
