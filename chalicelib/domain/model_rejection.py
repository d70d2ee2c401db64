"""Why the model refused to score a record: the quarantine reason for an endpoint's client error.

The serving handler (``training/inference.py``) answers a request it cannot score with a client error
instead of a made-up prediction: 400 for a body without review text, invalid JSON / CSV or bad
encoding, 406 for an Accept it cannot write, 415 for a Content-Type it cannot read; SageMaker itself
answers 413 for a body over InvokeEndpoint's 6 MB. Retrying never changes those answers, so the
callers (the feedback fan-in, batch scoring) quarantine the records with the reason named here, and
retry only what is not a client error (429, 5xx). Decided by the HTTP status alone, never by the
message. Pure: no I/O.
"""

from __future__ import annotations

from enum import StrEnum


class ModelRejection(StrEnum):
    """The quarantine reason of a record the scoring endpoint refused."""

    #: 400: the handler found no review to score (missing / empty / null text), or the body is not valid
    #: JSON, JSON Lines, CSV or text in its charset.
    BAD_REQUEST = "model_bad_request"
    #: 406: the handler cannot write the Accept asked for.
    NOT_ACCEPTABLE = "model_not_acceptable"
    #: 413: the request body is over InvokeEndpoint's 6 MB limit (SageMaker's answer; the record alone
    #: when the caller has split the batch down to it).
    PAYLOAD_TOO_LARGE = "payload_too_large"
    #: 415: the handler cannot read the request's Content-Type.
    UNSUPPORTED_CONTENT_TYPE = "model_unsupported_content_type"
    #: Any other 4xx except 408 and 429 (which are retried).
    CLIENT_ERROR = "model_client_error"


#: Client statuses that mean "try again later", never a quarantine: request timeout, too many requests.
RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})
#: Rejections that depend on the request as a whole (its headers), not on the records in it: splitting a
#: batch cannot isolate a culprit, every record of the request is refused alike.
REQUEST_LEVEL = frozenset({ModelRejection.NOT_ACCEPTABLE, ModelRejection.UNSUPPORTED_CONTENT_TYPE})

_BY_STATUS = {
    400: ModelRejection.BAD_REQUEST,
    406: ModelRejection.NOT_ACCEPTABLE,
    413: ModelRejection.PAYLOAD_TOO_LARGE,
    415: ModelRejection.UNSUPPORTED_CONTENT_TYPE,
}


def model_rejection(status: int) -> ModelRejection | None:
    """The quarantine reason for a scoring request answered with HTTP ``status`` (the container's
    ``OriginalStatusCode`` of a ``ModelError``, or SageMaker's own 413); ``None`` when the status is not a
    client error that retrying cannot fix (2xx, 408, 429, 5xx): retry those instead."""
    if not 400 <= status <= 499 or status in RETRYABLE_CLIENT_STATUSES:
        return None
    return _BY_STATUS.get(status, ModelRejection.CLIENT_ERROR)


def splitting_helps(rejection: ModelRejection) -> bool:
    """Whether scoring a refused batch's records in smaller requests can separate good records from bad
    (a record without text, a body too large), or every smaller request would be refused alike."""
    return rejection not in REQUEST_LEVEL
