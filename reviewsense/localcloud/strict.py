"""The strict local cloud: every request that reaches moto is checked as AWS would check it.

One hook, at the point where moto hands a request to a service's handler, so it sees requests
from boto3 clients over HTTP (``reviewsense local up``), from moto's Step Functions interpreter
(its ``aws-sdk:*``, ``sns:publish`` and Lambda tasks call the server through boto3 on
``MOTO_PORT``, with ``parameter_validation=False``, so nothing else checks them) and from
in-process ``mock_aws`` (the functional tests): moto builds both its server routes and its
botocore stub routes from ``BaseBackend._url_module.url_paths``; :func:`install` wraps each
handler found there (through :class:`reviewsense.localcloud.patching.Patches`).

The wrapper finds the operation with moto's own router, reads the parameters back from the wire
(JSON bodies as they are; query forms, URI labels, headers and query strings with moto's
model-driven parsers), validates them with :mod:`reviewsense.localcloud.validation` and, on a
violation, answers what AWS answers: HTTP 400 ``ValidationException`` (``__type`` for the JSON
protocols, ``x-amzn-ErrorType`` for REST-JSON, ``<Code>ValidationError</Code>`` for the query
protocol). S3 has no such validation layer on AWS; it gets its own meaningful checks (bucket
names at creation, key length, enumerated headers) with S3's own error codes.

:func:`install` also installs :mod:`reviewsense.localcloud.sfnerrors`, so errors raised inside
state-machine tasks carry AWS's names: the two together are "the strict local cloud".
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from reviewsense.localcloud import endpoint_server, sfnerrors, validation
from reviewsense.localcloud.javaregex import UntranslatablePatternError
from reviewsense.localcloud.patching import Patches

LOG = logging.getLogger(__name__)

Response = tuple[int, dict[str, str], str]
Handler = Callable[[Any, str, Any], Any]

# moto's module name -> botocore's service name, where they differ.
_BOTO_NAMES = {"awslambda": "lambda", "sagemakerruntime": "sagemaker-runtime"}
# Services whose constraint violations carry another code than the protocol's default.
_VALIDATION_CODES = {"sagemaker-runtime": "ValidationError"}
_S3_KEY_MAX_BYTES = 1024

_patches = Patches()


@dataclass
class Stats:
    """Requests checked and time spent checking them (for the overhead the README reports)."""

    checked: int = 0
    rejected: int = 0
    seconds: float = 0.0


stats = Stats()


@dataclass(frozen=True)
class Rejection:
    status: int
    code: str
    message: str
    sender_fault: bool = True


# -- reading a request back into parameters ----------------------------------------------------------


@functools.cache
def _moto_model(service: str) -> Any:
    """moto's (uncached) view of botocore's model, loaded once per service."""
    from moto.core.utils import get_service_model

    return get_service_model(service)


def _body(request: Any) -> bytes:
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        # botocore compresses some requests (CloudWatch PutMetricData); moto decompresses the stream
        # itself later, so read it raw and hand it back unread.
        raw: bytes = request.get_data(cache=False)
        request.stream = io.BytesIO(raw)
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    data: bytes = request.get_data(cache=True)
    return data


def _values(request: Any, body: bytes) -> Any:
    if request.headers.get("Content-Encoding", "").lower() != "gzip":
        return request.values
    from werkzeug.datastructures import MultiDict

    return MultiDict([*request.args.items(multi=True), *parse_qsl(body.decode(), keep_blank_values=True)])


def request_params(service: str, request: Any) -> tuple[str, dict[str, Any], str] | None:
    """(operation, parameters, protocol) of a request to ``service``; None when moto cannot route it."""
    from moto.core.parse import PROTOCOL_PARSERS, RequestParserError
    from moto.core.request import determine_request_protocol
    from moto.core.routing import get_service_router
    from werkzeug.exceptions import NotFound

    model = _moto_model(service)
    try:
        protocol = determine_request_protocol(model, request.content_type)
        operation, uri_params = get_service_router(service).match(request)
    except (NotFound, NotImplementedError):
        return None
    parser: Any = PROTOCOL_PARSERS[protocol](operation)
    if service == "s3":
        # Only what S3 checks before reading the object (URI labels, headers, query string): an
        # upload's body is never read here.
        parsed: dict[str, Any] = {}
        shape = operation.input_shape
        if shape is not None:
            s3_request = {"headers": request.headers, "values": request.args, "url_params": uri_params}
            parser._parse_non_payload_attrs(s3_request, shape, shape.members, parsed)
        return operation.name, parsed, protocol
    body = _body(request)
    if protocol == "json":
        params = json.loads(body or b"{}")  # a malformed body: JSONDecodeError, see check_request
        return operation.name, params if isinstance(params, dict) else {}, protocol
    request_dict: Any = {
        "method": request.method,
        "values": _values(request, body),
        "headers": request.headers,
        "body": body,
        "url_path": request.path,
        "url_params": uri_params,
    }
    try:
        return operation.name, dict(parser.parse(request_dict)), protocol
    except (RequestParserError, ValueError):
        return None  # what moto cannot parse, moto answers itself


# -- the checks --------------------------------------------------------------------------------------


def _s3_rejection(operation: str, params: dict[str, Any]) -> Rejection | None:
    """S3's own request checks (S3 has no model-driven validation layer on AWS)."""
    from reviewsense.localcloud.javaregex import java_matches

    bucket = params.get("Bucket")
    if operation == "CreateBucket" and isinstance(bucket, str) and not valid_bucket_name(bucket):
        return Rejection(400, "InvalidBucketName", "The specified bucket is not valid.")
    key = params.get("Key")
    if isinstance(key, str) and len(key.encode()) > _S3_KEY_MAX_BYTES:
        return Rejection(400, "KeyTooLongError", "Your key is too long")
    shape = validation.operation_model("s3", operation).input_shape
    for name, member in shape.members.items() if shape is not None else []:
        value = params.get(name)
        enum = member.metadata.get("enum")
        in_header = member.serialization.get("location") == "header"
        if in_header and enum and isinstance(value, str) and value not in enum:
            if name == "StorageClass":
                return Rejection(400, "InvalidStorageClass", "The storage class you specified is not valid")
            header = member.serialization["name"]
            return Rejection(400, "InvalidArgument", f"Invalid value for header {header}")
        pattern = member.metadata.get("pattern")
        if pattern and isinstance(value, str) and not java_matches(pattern, value):
            return Rejection(400, "InvalidArgument", f"{name} is not valid")
    return None


def valid_bucket_name(name: str) -> bool:
    """S3's general-purpose bucket naming rules."""
    import ipaddress
    import re

    if not 3 <= len(name) <= 63 or not re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", name):
        return False
    if ".." in name or ".-" in name or "-." in name:
        return False
    reserved = name.startswith(("xn--", "sthree-", "amzn-s3-demo-"))
    if reserved or name.endswith(("-s3alias", "--ol-s3", "--x-s3")):
        return False
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return True
    return False


def check_request(service: str, request: Any) -> Rejection | None:
    """What AWS would answer instead of executing this request, or None when it is valid."""
    try:
        routed = request_params(service, request)
    except json.JSONDecodeError as err:
        return Rejection(400, "SerializationException", f"Could not parse the request body as JSON: {err}")
    if routed is None:
        return None
    operation, params, protocol = routed
    if service == "s3":
        return _s3_rejection(operation, params)
    try:
        violations = validation.validate(
            service, operation, params, wire_names=protocol == "json", typed=protocol == "json"
        )
    except validation.RequestValidationError as err:
        return Rejection(400, err.code, err.message)
    if not violations:
        return None
    code = _VALIDATION_CODES.get(service, "ValidationError" if protocol == "query" else "ValidationException")
    return Rejection(400, code, validation.validation_message(violations))


# -- answering as AWS does ---------------------------------------------------------------------------


def error_response(service: str, protocol: str, rejection: Rejection) -> Response:
    """The wire form of an error response in ``service``'s protocol."""
    metadata = validation.service_model(service).metadata
    request_id = str(uuid.uuid4())
    code, message = rejection.code, rejection.message
    headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": code}
    if protocol == "json":
        headers["Content-Type"] = f"application/x-amz-json-{metadata.get('jsonVersion', '1.0')}"
        if "awsQueryCompatible" in metadata:
            headers["x-amzn-query-error"] = f"{code};{'Sender' if rejection.sender_fault else 'Receiver'}"
        body = json.dumps({"__type": f"com.amazon.coral.validate#{code}", "message": message})
    elif protocol == "rest-json":
        headers["Content-Type"] = "application/json"
        body = json.dumps({"Type": "User" if rejection.sender_fault else "Service", "message": message})
    elif protocol == "rest-xml":
        headers = {"x-amz-request-id": request_id, "Content-Type": "application/xml"}
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
    else:  # query
        headers = {"x-amzn-RequestId": request_id, "Content-Type": "text/xml"}
        namespace = metadata.get("xmlNamespace", "")
        fault = "Sender" if rejection.sender_fault else "Receiver"
        body = (
            f'<ErrorResponse xmlns="{namespace}"><Error><Type>{fault}'
            f"</Type><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    headers["status"] = str(rejection.status)
    return rejection.status, headers, body


def front_door(service: str, request: Any) -> Response | None:
    """What AWS answers before validating a request at all: an ``InvokeEndpoint`` body over 6 MB is
    HTTP 413 from SageMaker's front door (``endpoint_server.payload_too_large``), not a ValidationError."""
    refused = (
        endpoint_server.payload_too_large(len(_body(request))) if service == "sagemaker-runtime" else None
    )
    if refused is None:
        return None
    status, headers, body = refused
    return status, headers, body.decode()


def _guard(handler: Handler, service: str) -> Handler:
    def guarded(request: Any, full_url: str, headers: Any) -> Any:
        refused = front_door(service, request)
        if refused is not None:
            return refused
        started = time.perf_counter()
        try:
            rejection = check_request(service, request)
        except UntranslatablePatternError as err:
            # Fail loudly: a constraint this emulator cannot check is never silently passed.
            rejection = Rejection(500, "InternalFailure", f"strict local cloud: {err}", sender_fault=False)
        finally:
            stats.checked += 1
            stats.seconds += time.perf_counter() - started
        if rejection is None:
            return handler(request, full_url, headers)
        stats.rejected += 1
        from moto.core.request import determine_request_protocol

        protocol = determine_request_protocol(_moto_model(service), request.content_type)
        LOG.info("strict: %s rejected: %s %s", service, rejection.code, rejection.message)
        return error_response(service, protocol, rejection)

    functools.update_wrapper(guarded, handler)
    if hasattr(handler, "__self__"):  # moto's server names a route after the handler's class
        guarded.__self__ = handler.__self__  # type: ignore[attr-defined]
    return guarded


@functools.cache
def boto_service_name(backend_module: str) -> str | None:
    """botocore's name for the service a moto backend module serves (None when botocore has none)."""
    parts = backend_module.split(".")
    if len(parts) < 2 or parts[0] != "moto":
        return None
    name = _BOTO_NAMES.get(parts[1], parts[1])
    return name if name in validation._session().get_available_services() else None


def _guarded_module(module: Any, backend_module: str, guards: dict[Any, Handler]) -> Any:
    service = boto_service_name(backend_module)
    if service is None:
        return module
    paths = {}
    for path, handler in module.url_paths.items():
        if handler not in guards:
            guards[handler] = _guard(handler, service)
        paths[path] = guards[handler]
    return SimpleNamespace(__name__=module.__name__, url_bases=module.url_bases, url_paths=paths)


def _patch_targets() -> list[type]:
    from moto.core.base_backend import BaseBackend
    from moto.s3.models import S3Backend

    return [BaseBackend, S3Backend]  # S3Backend re-reads its urls module on every access


def _apply(patches: Patches) -> None:
    guards: dict[Any, Handler] = {}
    for cls in _patch_targets():
        original = cls.__dict__["_url_module"]

        def url_module(self: Any, _original: Any = original) -> Any:
            return _guarded_module(_original.fget(self), type(self).__module__, guards)

        patches.replace(cls, "_url_module", property(url_module))


def install() -> bool:
    """Guard every moto handler and name task errors as AWS does; True when this call installed it.

    Idempotent. Call before the first request to a service: moto's server builds a service's routes
    once. Whoever installed it (and only they) uninstalls it.
    """
    installed_now = _patches.install(_apply)
    sfnerrors.install()
    return installed_now


def uninstall() -> None:
    _patches.uninstall()
    sfnerrors.uninstall()


def installed() -> bool:
    return _patches.installed
