"""The error names Step Functions gives a failed task, so that Retry / Catch tests mean something.

A state machine matches errors by name, and the names depend on the integration:

* ``arn:aws:states:::aws-sdk:<service>:<action>``: ``<Service>.<Error>``, both in the PascalCase
  of the AWS SDK for Java 2 that Step Functions runs: the service from the model's ``serviceId``
  (``SageMaker``, ``Sns``, ``DynamoDb``, ``Sfn``, ``CloudWatchLogs``), the error from the
  modelled exception shape with ``Exception`` appended when missing (S3 ``NoSuchKey`` ->
  ``S3.NoSuchKeyException``, SageMaker ``ResourceNotFound`` ->
  ``SageMaker.ResourceNotFoundException``). An error the API does NOT model (throttling,
  ``ValidationException``, internal errors) arrives as the SDK's generic exception of the service:
  ``SageMaker.SageMakerException``, ``DynamoDb.DynamoDbException``,
  ``SecretsManager.SecretsManagerException`` (recorded against AWS in LocalStack's validated
  snapshots; ``SageMaker.AmazonSageMakerException`` is the older SDK's name, used by the
  optimized ``arn:aws:states:::sagemaker:*`` integrations, not by ``aws-sdk:*``).
* ``arn:aws:states:::sns:publish`` (optimized): ``SNS.<Code>`` with ``Exception`` appended when
  missing (``SNS.ThrottledException``, ``SNS.InternalErrorException``, ``SNS.NotFoundException``).
* Lambda (``lambda:invoke`` or a function ARN as the resource): a function error keeps its own
  ``errorType``; a failure of the Lambda service is ``Lambda.<Code>``
  (``Lambda.ServiceException``, ``Lambda.TooManyRequestsException``, ...; AWS's documented retry
  list adds ``Lambda.AWSLambdaException``, ``Lambda.SdkClientException`` and
  ``Lambda.ClientExecutionTimeoutException``, which a client outside Step Functions never sees).
* ``States.*``: ``States.TaskFailed`` (any task failure), ``States.Timeout``, ``States.ALL``.

moto 5.2.5's interpreter names ``aws-sdk`` errors after the lower-case resource name and the
botocore class (``sagemaker.ResourceNotFoundException``, ``sagemaker.sagemakerException``) and
reports every Lambda service error of a function-ARN task as ``Exception``. :func:`install`
corrects both; :func:`sfn_error_name` is the table other code and tests use.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from reviewsense.localcloud.patching import Patches
from reviewsense.localcloud.validation import service_model

__all__ = [
    "LAMBDA_SERVICE_ERRORS",
    "install",
    "java_exception_name",
    "java_service_name",
    "sfn_error_name",
    "uninstall",
]

#: The Lambda service errors AWS's best-practice Retry lists for a Lambda task.
LAMBDA_SERVICE_ERRORS = (
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)

_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def _pascal(text: str) -> str:
    """The Java SDK 2 code generator's PascalCase: each word capitalised, acronyms as words."""
    return "".join(word[:1].upper() + word[1:].lower() for word in _WORDS.findall(text))


@functools.cache
def java_service_name(service: str) -> str:
    """``sagemaker`` -> ``SageMaker``, ``dynamodb`` -> ``DynamoDb``, ``logs`` -> ``CloudWatchLogs``."""
    name = _pascal(service_model(service).metadata["serviceId"])
    for prefix in ("Amazon", "Aws"):
        if name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix) :]
    return name.removesuffix("Service") or name


def java_exception_name(shape_name: str, java_service: str) -> str:
    """A modelled exception shape as the Java SDK 2 names its class."""
    name = _pascal(shape_name)
    if name.endswith("Fault"):
        name = name[: -len("Fault")] + "Exception"
    if not name.endswith("Exception"):
        name += "Exception"
    if name == f"{java_service}Exception":
        name = f"Default{name}"  # the SDK keeps <Service>Exception for the service's base class
    return name


@functools.cache
def _modelled_errors(service: str) -> dict[str, str]:
    """Wire error code (and shape name) -> exception shape name, for ``exception`` shapes."""
    model = service_model(service)
    out: dict[str, str] = {}
    for name in model.shape_names:
        shape = model.shape_for(name)
        if shape.metadata.get("exception"):
            out[name] = name
            code = shape.metadata.get("error", {}).get("code")
            if code:
                out[str(code)] = name
    return out


def _with_suffix(code: str) -> str:
    return code if code.endswith("Exception") else f"{code}Exception"


def sfn_error_name(service: str, code: str, integration: str = "aws-sdk") -> str:
    """The ``Error`` a Step Functions task reports when ``service`` answers with error ``code``.

    ``service`` is the boto3 name (``sagemaker``, ``sns``, ``lambda`` ...). ``integration`` is
    ``aws-sdk`` (``arn:aws:states:::aws-sdk:*``) or ``optimized`` (``sns:publish``,
    ``lambda:invoke`` and a plain function ARN).
    """
    if integration == "optimized":
        if service == "lambda":
            return f"Lambda.{code}"
        if service == "sns":
            return f"SNS.{_with_suffix(code)}"
        raise ValueError(f"no optimized integration naming known for {service}")
    if integration != "aws-sdk":
        raise ValueError(f"unknown integration {integration!r}")
    java_service = java_service_name(service)
    shape = _modelled_errors(service).get(code)
    if shape is None:
        return f"{java_service}.{java_service}Exception"
    return f"{java_service}.{java_exception_name(shape, java_service)}"


# -- moto's interpreter ------------------------------------------------------------------------------

_patches = Patches()


def _client_error_code(ex: Exception) -> str | None:
    from botocore.exceptions import ClientError

    if not isinstance(ex, ClientError):
        return None
    return str(ex.response.get("Error", {}).get("Code", "")) or None


def _rename(event: Any, details_key: str, error: str) -> Any:
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )

    event.error_name = CustomErrorName(error)
    details = (event.event_details or {}).get(details_key)
    if details is not None:
        details["error"] = error
    return event


def _apply(patches: Patches) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk,
    )

    sdk_task = aws_sdk.StateTaskServiceAwsSdk
    lambda_task = state_task_lambda.StateTaskLambda
    sdk_from_error = sdk_task._from_error
    lambda_from_error = lambda_task._from_error
    to_boto = sdk_task._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES

    def service_error_name(api_name: str) -> str:
        """The service as an error's cause names it (``Service: SageMaker``)."""
        from botocore.exceptions import UnknownServiceError

        try:
            return java_service_name(to_boto.get(api_name, api_name))
        except UnknownServiceError:
            return api_name

    def sdk_error(self: Any, env: Any, ex: Exception) -> Any:
        event = sdk_from_error(self, env, ex)
        code = _client_error_code(ex)
        if code is None:
            return event
        service = self._get_boto_service_name()
        return _rename(event, "taskFailedEventDetails", sfn_error_name(service, code))

    def lambda_error(self: Any, env: Any, ex: Exception) -> Any:
        event = lambda_from_error(self, env, ex)
        code = _client_error_code(ex)
        if code is None:
            return event
        name = sfn_error_name("lambda", code, "optimized")
        return _rename(event, "lambdaFunctionFailedEventDetails", name)

    patches.replace(sdk_task, "_normalise_service_error_name", staticmethod(service_error_name))
    patches.replace(sdk_task, "_from_error", sdk_error)
    patches.replace(lambda_task, "_from_error", lambda_error)


def install() -> None:
    """Make moto's interpreter raise the names AWS raises (idempotent)."""
    _patches.install(_apply)


def uninstall() -> None:
    _patches.uninstall()
