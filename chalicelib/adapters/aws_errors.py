"""How the adapters read a ``botocore`` ``ClientError``: by its error code, and in one place.

Every adapter turns the errors it can explain into the project's error types
(``chalicelib.errors``): throttling and 5xx answers become ``DependencyUnavailableError`` (which the
state machine and Lambda retry), a missing resource ``ResourceNotFoundError``. Anything else is
re-raised unchanged, so AccessDenied and every other surprise reaches the caller and the logs.

SageMaker is the one service that does not give "not found" its own code: DescribeEndpoint,
DescribeEndpointConfig, DescribeModel and their Delete calls answer ``ValidationException`` with a
message that starts ``Could not find`` (e.g. ``Could not find endpoint "arn:aws:sagemaker:...".``),
and the model-registry calls answer ``ValidationException`` with ``... does not exist.``;
``sagemaker-runtime`` InvokeEndpoint answers ``ValidationError`` (sic) with ``Endpoint <name> of account
<id> not found.``. The same
code also means a malformed request, which must not be read as "no endpoint": ``is_not_found`` is the
one predicate that looks at a message, and ``tests/unit/test_aws_errors.py`` pins it to the shapes
AWS returns.
"""

from __future__ import annotations

import re

from botocore.exceptions import ClientError

from chalicelib.errors import DependencyUnavailableError, ResourceNotFoundError

#: Error codes AWS services use for throttling and transient server-side failures.
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)

#: Codes that mean "no such resource" whatever the message says.
NOT_FOUND_CODES = frozenset(
    {"ResourceNotFound", "ResourceNotFoundException", "NoSuchKey", "NoSuchBucket", "NotFound", "404"}
)

#: SageMaker's ValidationException messages for a resource that does not exist (see module docstring).
_SAGEMAKER_NOT_FOUND = re.compile(r"^(Could not find \S|.* does not exist\.?$)", re.DOTALL)
#: InvokeEndpoint's answer for an endpoint that does not exist (code ValidationError, HTTP 400).
_RUNTIME_NOT_FOUND = re.compile(r"^Endpoint \S+ of account \S+ not found\.?$")


def error_code(exc: ClientError) -> str:
    """The ``Error.Code`` of an AWS error response ("" when the response has none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def is_retryable(exc: ClientError) -> bool:
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return error_code(exc) in RETRYABLE_CODES or status >= 500


def is_not_found(exc: ClientError) -> bool:
    """True when the call failed because the named resource does not exist.

    By code for every service; for SageMaker's ``ValidationException`` by its documented message
    shapes, so that a malformed name or an out-of-range value is not mistaken for a missing resource.
    """
    code = error_code(exc)
    if code in NOT_FOUND_CODES:
        return True
    if code == "ValidationError":
        return bool(_RUNTIME_NOT_FOUND.match(error_message(exc)))
    return code == "ValidationException" and bool(_SAGEMAKER_NOT_FOUND.match(error_message(exc)))


def translate(exc: ClientError) -> Exception:
    """The project's error for ``exc`` when there is one, else ``exc`` itself (re-raise it)."""
    if is_retryable(exc):
        return DependencyUnavailableError(f"{error_code(exc)}: {error_message(exc)}")
    if is_not_found(exc):
        return ResourceNotFoundError(f"{error_code(exc)}: {error_message(exc)}")
    unexplained: Exception = exc  # botocore is untyped: say what it is
    return unexplained
