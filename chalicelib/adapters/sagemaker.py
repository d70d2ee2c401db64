"""SageMaker port: the control-plane calls the pipeline, the registry and the watchdog make.

The services never see a ``ClientError``: a missing resource is ``None`` (describe) or ``False``
(delete), throttling is ``DependencyUnavailableError``, and everything else, AccessDenied included,
propagates unchanged. How an error is recognised is decided in ``aws_errors`` (by code, and for
SageMaker's "not found" by its one documented message predicate).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import is_not_found, translate


class SageMakerGateway:
    """Thin, typed wrapper over a boto3 ``sagemaker`` client (AWS or the local cloud)."""

    def __init__(self, client: Any) -> None:
        self._sm = client

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return dict(getattr(self._sm, operation)(**kwargs))
        except ClientError as exc:
            raise translate(exc) from exc

    def _describe(self, operation: str, **kwargs: Any) -> dict[str, Any] | None:
        """A Describe call, or None when the resource does not exist."""
        try:
            return dict(getattr(self._sm, operation)(**kwargs))
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise translate(exc) from exc

    def _delete(self, operation: str, **kwargs: Any) -> bool:
        """A Delete call; False when there was nothing to delete."""
        return self._describe(operation, **kwargs) is not None

    # -- endpoints, their configurations and models -----------------------------------------------

    def describe_endpoint(self, name: str) -> dict[str, Any] | None:
        return self._describe("describe_endpoint", EndpointName=name)

    def describe_endpoint_config(self, name: str) -> dict[str, Any] | None:
        return self._describe("describe_endpoint_config", EndpointConfigName=name)

    def describe_model(self, name: str) -> dict[str, Any] | None:
        return self._describe("describe_model", ModelName=name)

    def create_model(self, name: str, role_arn: str, container: dict[str, Any]) -> None:
        self._call("create_model", ModelName=name, ExecutionRoleArn=role_arn, PrimaryContainer=container)

    def create_endpoint_config(
        self, name: str, variants: list[dict[str, Any]], data_capture: dict[str, Any]
    ) -> None:
        self._call(
            "create_endpoint_config",
            EndpointConfigName=name,
            ProductionVariants=variants,
            DataCaptureConfig=data_capture,
        )

    def create_endpoint(self, name: str, config_name: str) -> None:
        self._call("create_endpoint", EndpointName=name, EndpointConfigName=config_name)

    def update_endpoint(self, name: str, config_name: str) -> None:
        self._call("update_endpoint", EndpointName=name, EndpointConfigName=config_name)

    def delete_endpoint(self, name: str) -> bool:
        return self._delete("delete_endpoint", EndpointName=name)

    def delete_endpoint_config(self, name: str) -> bool:
        return self._delete("delete_endpoint_config", EndpointConfigName=name)

    def delete_model(self, name: str) -> bool:
        return self._delete("delete_model", ModelName=name)

    # -- model registry ---------------------------------------------------------------------------

    def ensure_model_package_group(self, name: str, description: str) -> None:
        """Create the group unless it exists (decided by DescribeModelPackageGroup, not by an error text)."""
        if self._describe("describe_model_package_group", ModelPackageGroupName=name) is not None:
            return
        try:
            self._sm.create_model_package_group(
                ModelPackageGroupName=name, ModelPackageGroupDescription=description
            )
        except ClientError as exc:
            # Two runs may race to create it: if it is there now, the other one won and all is well.
            if self._describe("describe_model_package_group", ModelPackageGroupName=name) is None:
                raise translate(exc) from exc

    def create_model_package(self, **request: Any) -> str:
        """CreateModelPackage with the request as given; returns the new package's ARN."""
        return str(self._call("create_model_package", **request)["ModelPackageArn"])

    def model_packages(self, group: str) -> Iterator[dict[str, Any]]:
        """The group's package summaries, newest first; none when the group does not exist yet."""
        kwargs: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
        }
        while True:
            page = self._describe("list_model_packages", **kwargs)
            if page is None:
                return
            yield from page.get("ModelPackageSummaryList", [])
            if not page.get("NextToken"):
                return
            kwargs["NextToken"] = page["NextToken"]

    def describe_model_package(self, arn: str) -> dict[str, Any]:
        return self._call("describe_model_package", ModelPackageName=arn)

    def update_model_package(self, arn: str, status: str, reason: str = "") -> None:
        kwargs: dict[str, Any] = {"ModelPackageArn": arn, "ModelApprovalStatus": status}
        if reason:
            kwargs["ApprovalDescription"] = reason[:1000]
        self._call("update_model_package", **kwargs)

    # -- training jobs ------------------------------------------------------------------------------

    def describe_training_job(self, name: str) -> dict[str, Any]:
        return self._call("describe_training_job", TrainingJobName=name)

    def stop_training_job(self, name: str) -> None:
        self._call("stop_training_job", TrainingJobName=name)

    def running_training_jobs(self, name_contains: str) -> list[str]:
        """Names of the InProgress training jobs whose name contains ``name_contains``."""
        names: list[str] = []
        kwargs: dict[str, Any] = {
            "StatusEquals": "InProgress",
            "NameContains": name_contains,
            "MaxResults": 100,
        }
        while True:
            page = self._call("list_training_jobs", **kwargs)
            names += [j["TrainingJobName"] for j in page.get("TrainingJobSummaries", [])]
            if not page.get("NextToken"):
                return names
            kwargs["NextToken"] = page["NextToken"]

    # -- batch transform jobs ---------------------------------------------------------------------------

    def create_transform_job(self, request: dict[str, Any]) -> str:
        """CreateTransformJob with the request as given; returns the job's ARN."""
        return str(self._call("create_transform_job", **request)["TransformJobArn"])

    def describe_transform_job(self, name: str) -> dict[str, Any]:
        return self._call("describe_transform_job", TransformJobName=name)

    def stop_transform_job(self, name: str) -> None:
        self._call("stop_transform_job", TransformJobName=name)
