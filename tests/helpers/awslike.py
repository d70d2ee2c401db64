"""SageMaker endpoints that fail the way AWS's do, for the in-process (moto) tier.

moto's endpoints are InService the moment they are created and moto has no UpdateEndpoint. The local
cloud's own endpoints (``reviewsense/localcloud``) load real models and fail like AWS; tests of the
functional tier run without them, so this test helper gives moto's backend the same observable
behaviour: a model whose ``ModelDataUrl`` contains ``BROKEN`` cannot load; a CreateEndpoint with it
ends ``Failed`` with a ``FailureReason``, an UpdateEndpoint to it rolls back (``InService``, the old
configuration still serving, ``FailureReason`` set); UpdateEndpoint is refused unless the endpoint is
``InService``. Endpoints change status at once (no ``Creating`` phase).
"""

from __future__ import annotations

from typing import Any

import pytest

BROKEN = "broken-model"


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    original_create = SageMakerModelBackend.create_endpoint

    def cannot_load(backend: Any, config_name: str) -> str | None:
        for variant in backend.endpoint_configs[config_name].production_variants:
            model = backend._models[variant["ModelName"]]
            if BROKEN in str(model.primary_container.get("ModelDataUrl", "")):
                return (
                    f"The primary container for production variant {variant['VariantName']} "
                    "did not pass the ping health check."
                )
        return None

    def create_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str, tags: Any) -> Any:
        if endpoint_name in self.endpoints:
            raise ValidationError(message=f'Cannot create already existing endpoint "{endpoint_name}".')
        endpoint: Any = original_create(self, endpoint_name, endpoint_config_name, tags)
        reason = cannot_load(self, endpoint_config_name)
        if reason:
            endpoint.endpoint_status = "Failed"
            endpoint.failure_reason = reason
        return endpoint

    def update_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str) -> str:
        endpoint = self.endpoints[endpoint_name]
        if endpoint.endpoint_status != "InService":
            raise ValidationError(
                message=f'Cannot update in-progress endpoint "{endpoint.arn}" ({endpoint.endpoint_status}).'
            )
        reason = cannot_load(self, endpoint_config_name)
        if reason:  # rolled back: the old configuration keeps serving
            endpoint.failure_reason = reason
        else:
            config = self.endpoint_configs[endpoint_config_name]
            endpoint.endpoint_config_name = endpoint_config_name
            endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
            endpoint.failure_reason = None
        return str(endpoint.arn)

    def update_endpoint_action(self: Any) -> Any:
        arn = self.sagemaker_backend.update_endpoint(
            self._get_param("EndpointName"), self._get_param("EndpointConfigName")
        )
        return ActionResult({"EndpointArn": arn})

    monkeypatch.setattr(SageMakerModelBackend, "create_endpoint", create_endpoint)
    monkeypatch.setattr(SageMakerModelBackend, "update_endpoint", update_endpoint, raising=False)
    monkeypatch.setattr(SageMakerResponse, "update_endpoint", update_endpoint_action, raising=False)


def set_status(name: str, status: str, reason: str | None = None) -> None:
    """Put an endpoint in a status moto never reaches by itself (Updating, OutOfService ...)."""
    from moto.sagemaker.models import sagemaker_backends

    endpoint: Any = sagemaker_backends["123456789012"]["us-east-1"].endpoints[name]
    endpoint.endpoint_status = status
    endpoint.failure_reason = reason
