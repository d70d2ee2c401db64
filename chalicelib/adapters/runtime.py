"""Scoring port over a ``sagemaker-runtime`` client: one ``InvokeEndpoint`` call per batch.

The served handler (``training/inference.py``) takes ``{"instances": [...]}`` as ``application/json``
and reads ``text`` and ``title`` of each instance, ignoring any other key; it answers
``{"predictions": [...]}`` in the order of the instances, each ``{"label", "label_id", "score",
"probabilities"}``. So each instance carries its record's ``feedback_id`` next to the text (data
capture then holds the id of every scored text, what later labels are joined on) and the answer is
matched to the records by position; an answer of another length is an error, never a guess.
``InferenceId`` is the batch id (botocore's model: 1-64 printable characters, no leading space).

Transient failures are retried here, inside the Lambda, with exponential backoff and full jitter,
at most ``attempts`` calls in all: throttling and 5xx codes (``chalicelib.adapters.aws_errors``),
``ModelNotReadyException`` and a ``ModelError`` whose container answered 429 or 5xx (an overloaded
model). When every attempt failed the last one becomes ``DependencyUnavailableError``. A missing
endpoint (``ValidationError`` "Endpoint ... not found.") is not retried here and becomes
``ResourceNotFoundError``, so the fan-in fails those records (they reach the DLQ with the error and are
replayed once the endpoint is back). A request the model refuses, a ``ModelError`` whose container
answered a client error (400 no review text / bad body, 406, 415; not 408 or 429) or SageMaker's own 413
for a body over 6 MB, becomes ``ModelRejectedError`` with its quarantine reason
(``chalicelib.domain.model_rejection``), decided by the status, never the message: the caller quarantines
those records instead of retrying. Anything else (another ``ValidationError``, AccessDenied) is not
retried and reaches the caller unchanged.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import error_code, error_message, is_not_found, is_retryable
from chalicelib.domain.model_rejection import ModelRejection, model_rejection
from chalicelib.errors import DependencyUnavailableError, ResourceNotFoundError, TerminalError

#: InvokeEndpoint codes that mean "try again later" beyond the generic throttling/5xx ones.
RETRYABLE_RUNTIME_CODES = frozenset({"ModelNotReadyException", "InternalDependencyException"})
#: A ``ModelError`` carries the container's own status: these mean it was overloaded or crashed.
RETRYABLE_MODEL_STATUSES = frozenset({429, 500, 502, 503, 504})
#: botocore's ``InferenceId`` shape: ``\A\S[\p{Print}]*\z``, 1 to 64 characters.
INFERENCE_ID = re.compile(r"^[!-~][ -~]{0,63}$")


#: SageMaker's own answer to a body over InvokeEndpoint's 6 MB (no error type: botocore's code is "413").
PAYLOAD_TOO_LARGE_STATUS = 413


class UnexpectedPredictionsError(TerminalError):
    """The endpoint answered, but not with one prediction per instance in the served shape."""


class ModelRejectedError(TerminalError):
    """The endpoint refused the request with a client error: ``rejection`` is the quarantine reason,
    ``status`` the HTTP status (the container's ``OriginalStatusCode``, or SageMaker's 413)."""

    def __init__(self, status: int, rejection: ModelRejection, message: str) -> None:
        super().__init__(f"{rejection.value} ({status}): {message}")
        self.status = status
        self.rejection = rejection
        self.detail = message


def rejected_by_model(exc: ClientError) -> ModelRejectedError | None:
    """The client error of an ``InvokeEndpoint`` failure (by code and status), or ``None``."""
    code = error_code(exc)
    if code == "ModelError":
        original = exc.response.get("OriginalStatusCode")
        status = int(original) if original is not None else 0
        message = str(exc.response.get("OriginalMessage") or error_message(exc))
    else:
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if status != PAYLOAD_TOO_LARGE_STATUS:
            return None
        message = error_message(exc)
    rejection = model_rejection(status)
    return None if rejection is None else ModelRejectedError(status, rejection, message)


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    probabilities: dict[str, float]
    #: The production variant that answered (champion or challenger), from ``InvokedProductionVariant``.
    variant: str | None = None


def is_retryable_invoke_error(exc: ClientError) -> bool:
    code = error_code(exc)
    if code == "ModelError":
        original = exc.response.get("OriginalStatusCode")
        return original is not None and int(original) in RETRYABLE_MODEL_STATUSES
    return code in RETRYABLE_RUNTIME_CODES or is_retryable(exc)


class SageMakerRuntimeScorer:
    def __init__(
        self,
        client: Any,
        endpoint_name: str,
        *,
        attempts: int = 4,
        backoff_s: float = 0.2,
        backoff_max_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._client = client
        self._endpoint = endpoint_name
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._jitter = jitter

    def score(self, batch_id: str, instances: Sequence[Mapping[str, Any]]) -> list[Prediction]:
        """One prediction per instance, in order; ``instances`` hold ``feedback_id``, ``text``, ``title``."""
        if not instances:
            return []
        if not INFERENCE_ID.match(batch_id):
            raise ValueError(f"batch id {batch_id!r} is not a valid InferenceId")
        body = json.dumps({"instances": list(instances)}, ensure_ascii=False).encode("utf-8")
        response = self._invoke(batch_id, body)
        return _predictions(response["Body"].read(), len(instances), response.get("InvokedProductionVariant"))

    def _invoke(self, batch_id: str, body: bytes) -> Any:
        for attempt in range(1, self._attempts + 1):
            try:
                return self._client.invoke_endpoint(
                    EndpointName=self._endpoint,
                    ContentType="application/json",
                    Accept="application/json",
                    InferenceId=batch_id,
                    Body=body,
                )
            except ClientError as exc:
                if is_not_found(exc):
                    raise ResourceNotFoundError(error_message(exc)) from exc
                rejected = rejected_by_model(exc)
                if rejected is not None:
                    raise rejected from exc
                if not is_retryable_invoke_error(exc):
                    raise
                if attempt == self._attempts:
                    raise DependencyUnavailableError(
                        f"{self._endpoint}: {error_code(exc)} after {attempt} attempts: {error_message(exc)}"
                    ) from exc
                cap = min(self._backoff_max_s, self._backoff_s * 2 ** (attempt - 1))
                self._sleep(cap * self._jitter())
        raise AssertionError("unreachable: the loop returns or raises")


def _predictions(raw: bytes, expected: int, variant: str | None) -> list[Prediction]:
    try:
        payload = json.loads(raw)
        items = payload["predictions"]
        out = [
            Prediction(
                label=str(p["label"]),
                score=float(p["score"]),
                probabilities={str(k): float(v) for k, v in p["probabilities"].items()},
                variant=variant,
            )
            for p in items
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnexpectedPredictionsError(
            f"the endpoint's answer is not {{'predictions': [...]}}: {exc}"
        ) from exc
    if len(out) != expected:
        raise UnexpectedPredictionsError(f"{len(out)} predictions for {expected} instances")
    return out
