"""Local stand-in for API Gateway (REST, Lambda proxy): the app's routes, IAM auth included.

On AWS the Chalice routes are served by API Gateway in front of one Lambda (``<app>-<stage>``), and a
route with ``authorizer=IAMAuthorizer()`` accepts only requests signed with AWS Signature Version 4
for the ``execute-api`` service. moto has no such gateway for a Chalice app, and ``chalice local``
skips IAM auth, so the local cloud serves the routes itself, on the moto server's port:

    http://127.0.0.1:<port>/_api/<stage>/<route path>      (``api_url``; ``_`` never starts a bucket name)

For an IAM route the signature is recomputed from what was received (method, raw path, raw query,
the headers the client listed in ``SignedHeaders``, the body's SHA-256) with the secret of the
caller's access key (the local cloud's ``testing`` key, or any key moto's IAM or STS issued) using
botocore's ``SigV4Auth``, and compared in constant time. Failures answer 403 with API Gateway's
``{"message": ...}`` body and ``x-amzn-ErrorType``: no ``Authorization`` header
(``MissingAuthenticationTokenException``), an unknown key (``UnrecognizedClientException``), a
malformed header, a wrong scope or a signature that does not match (``InvalidSignatureException``,
``IncompleteSignatureException``), an ``X-Amz-Date`` more than 5 minutes from now ("Signature
expired"). An unknown path or method is 403 "Missing Authentication Token", as on API Gateway.

The Lambda proxy event is built with Chalice's own ``LambdaEventConverter`` (route matching, path
parameters, query strings) and completed with what API Gateway adds (stage, request id, and
``requestContext.identity`` with the caller's ``accessKey``, ``user``, ``userArn`` and ``accountId``
for an IAM route); the handler runs through the local Lambda runtime (``runtime.py``) as the
``<app>-<stage>`` function. A function error answers 502 ``{"message": "Internal server error"}``.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from reviewsense.localcloud.runtime import FunctionError, LocalLambdaRuntime

API_PREFIX = "/_api"
SERVICE = "execute-api"
MAX_SKEW = timedelta(minutes=5)
LOCAL_SECRETS = {"testing": "testing"}  # the local cloud's own credentials (reviewsense.target.local_client)
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]+)$"
)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"

StartResponse = Callable[..., Any]


class GatewayError(Exception):
    """An answer API Gateway gives before (or instead of) invoking the function."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class Caller:
    access_key: str
    user_id: str
    user_arn: str
    account_id: str


def _forbidden(error_type: str, message: str) -> GatewayError:
    return GatewayError(403, error_type, message)


def _caller(access_key: str, region: str, account_id: str) -> tuple[Caller, str] | None:
    """The caller behind an access key and its secret, as moto's STS/IAM know them; None if unknown."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends
    from moto.utilities.utils import get_partition

    sts = sts_backends[account_id][get_partition(region)]
    secret: str | None = LOCAL_SECRETS.get(access_key)
    role = sts.get_assumed_role_from_access_key(access_key) if secret is None else None
    if role is not None:
        secret = str(role.secret_access_key)
    for accounts in iam_backends.values() if secret is None else ():
        for backend in accounts.values():
            for key in backend.get_all_access_keys_for_all_users():
                if key.access_key_id == access_key:
                    secret = str(key.secret_access_key)
    if secret is None:
        return None
    user_id, arn, account = sts.get_caller_identity(access_key, region)
    return Caller(access_key, str(user_id), str(arn), str(account)), secret


class _ReceivedRequestSigner(SigV4Auth):  # type: ignore[misc]
    """``SigV4Auth`` over a received request: the client's ``SignedHeaders``, the client's timestamp."""

    def __init__(self, credentials: Credentials, region: str, signed: list[str]) -> None:
        super().__init__(credentials, SERVICE, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> Any:
        from botocore.compat import HTTPHeaders

        headers = HTTPHeaders()
        for name in self._signed:
            for value in request.headers.get_all(name) or []:
                headers[name] = value
        return headers

    def expected(self, request: AWSRequest) -> tuple[str, str]:
        """(signature, canonical request) for the request as received."""
        canonical = self.canonical_request(request)
        return self.signature(self.string_to_sign(request, canonical), request), canonical


def verify_sigv4(
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    region: str,
    account_id: str,
    now: datetime | None = None,
) -> Caller:
    """Check an ``execute-api`` SigV4 signature as API Gateway's IAM auth does; the caller or a 403."""
    received = AWSRequest(method=method, url=url, data=body)
    for name, value in headers:
        received.headers.add_header(name, value)
    authorization = received.headers.get("Authorization")
    if not authorization:
        raise _forbidden("MissingAuthenticationTokenException", "Missing Authentication Token")
    match = _AUTH.match(authorization.strip())
    if match is None:
        raise _forbidden(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential' parameter. Authorization header requires "
            "'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. "
            f"Authorization={authorization}",
        )
    access_key, _, scope = match["credential"].partition("/")
    scope_date, _, rest = scope.partition("/")
    scope_region, _, rest = rest.partition("/")
    scope_service, _, terminator = rest.partition("/")
    amz_date = received.headers.get("X-Amz-Date")
    if not amz_date:
        raise _forbidden(
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        )
    try:
        signed_at = datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError as exc:
        raise _forbidden(
            "IncompleteSignatureException", f"Date must be in ISO-8601 format: {amz_date}"
        ) from exc
    current = now or datetime.now(UTC)
    if signed_at < current - MAX_SKEW:
        raise _forbidden(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is now earlier than {(current - MAX_SKEW).strftime(_AMZ_DATE)} "
            f"({current.strftime(_AMZ_DATE)} - 5 min.)",
        )
    if signed_at > current + MAX_SKEW:
        raise _forbidden(
            "InvalidSignatureException",
            f"Signature not yet current: {amz_date} is still later than "
            f"{(current + MAX_SKEW).strftime(_AMZ_DATE)} ({current.strftime(_AMZ_DATE)} + 5 min.)",
        )
    if (scope_date, scope_region, scope_service, terminator) != (
        amz_date[:8],
        region,
        SERVICE,
        "aws4_request",
    ):
        raise _forbidden(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region, service and date: '{scope}' "
            f"(expected '{amz_date[:8]}/{region}/{SERVICE}/aws4_request').",
        )
    known = _caller(access_key, region, account_id)
    if known is None:
        raise _forbidden(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    caller, secret = known
    signed = match["signed"].split(";")
    if "host" not in signed:
        raise _forbidden(
            "InvalidSignatureException", "'Host' must be a 'SignedHeader' in the AWS Authorization."
        )
    token = received.headers.get("X-Amz-Security-Token")
    signer = _ReceivedRequestSigner(Credentials(access_key, secret, token), region, signed)
    received.context["timestamp"] = amz_date
    signature, canonical = signer.expected(received)
    if not hmac.compare_digest(signature, match["signature"]):
        raise _forbidden(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your "
            "AWS Secret Access Key and signing method. Consult the service documentation for details.\n\n"
            f"The Canonical String for this request should have been\n'{canonical}'\n",
        )
    return caller


class ApiGateway:
    """WSGI middleware: requests under ``/_api/<stage>/`` go to the app's routes, the rest to moto."""

    def __init__(self, inner: Any, *, stage: str, region: str, account_id: str) -> None:
        self._inner = inner
        self._stage = stage
        self._region = region
        self._account = account_id
        self._api_id = f"local{stage}"[:10]
        self._app: Any = None
        self._runtime: LocalLambdaRuntime | None = None
        self._function = ""
        self._converter: Any = None

    @property
    def base_path(self) -> str:
        return f"{API_PREFIX}/{self._stage}"

    def mount(self, app: Any, runtime: LocalLambdaRuntime, function_name: str) -> None:
        """Serve ``app``'s routes through ``runtime``'s function ``function_name`` from now on."""
        from chalice.local import LambdaEventConverter, RouteMatcher

        self._converter = LambdaEventConverter(RouteMatcher(list(app.routes)), app.api.binary_types)
        self._runtime = runtime
        self._function = function_name
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Any:
        path = str(environ.get("PATH_INFO", ""))
        if not (path == API_PREFIX or path.startswith(f"{API_PREFIX}/")):
            return self._inner(environ, start_response)
        request_id = str(uuid.uuid4())
        try:
            status, headers, body = self._handle(environ, request_id)
        except GatewayError as err:
            status = err.status
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": err.error_type}
            body = json.dumps({"message": err.message}).encode()
        headers = {**headers, "x-amzn-RequestId": request_id, "Content-Length": str(len(body))}
        start_response(f"{status} {_reason(status)}", list(headers.items()))
        return [body]

    # -- internals ---------------------------------------------------------------------------------

    def _handle(self, environ: dict[str, Any], request_id: str) -> tuple[int, dict[str, str], bytes]:
        method = str(environ["REQUEST_METHOD"]).upper()
        raw_path = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ["PATH_INFO"])
        raw_path, _, raw_query = raw_path.partition("?")
        raw_query = raw_query or str(environ.get("QUERY_STRING", ""))
        route_path = str(environ["PATH_INFO"]).removeprefix(self.base_path)
        missing = _forbidden("MissingAuthenticationTokenException", "Missing Authentication Token")
        if self._app is None or not str(environ["PATH_INFO"]).startswith(self.base_path):
            raise missing
        route_path = route_path or "/"
        if route_path != "/" and not route_path.startswith("/"):
            raise missing
        headers = _headers(environ)
        body = _body(environ)
        try:
            event = self._converter.create_lambda_event(
                method=method,
                path=f"{route_path}?{raw_query}" if raw_query else route_path,
                headers=dict(headers),
                body=body,
            )
        except ValueError:
            raise missing from None
        resource = event["requestContext"]["resourcePath"]
        entry = self._app.routes.get(resource, {}).get(method)
        if entry is None and method != "OPTIONS":
            raise missing
        identity = _anonymous_identity(environ, headers)
        if entry is not None and type(entry.authorizer).__name__ == "IAMAuthorizer":
            host = dict(headers).get("Host") or str(environ.get("HTTP_HOST", ""))
            url = f"http://{host}{raw_path}" + (f"?{raw_query}" if raw_query else "")
            caller = verify_sigv4(method, url, headers, body, region=self._region, account_id=self._account)
            identity.update(
                {
                    "accountId": caller.account_id,
                    "accessKey": caller.access_key,
                    "caller": caller.user_id,
                    "user": caller.user_id,
                    "userArn": caller.user_arn,
                }
            )
        self._complete_event(event, environ, headers, body, identity, route_path, request_id)
        assert self._runtime is not None
        try:
            response = self._runtime.invoke(self._function, event)
        except FunctionError:
            raise GatewayError(502, "InternalServerErrorException", "Internal server error") from None
        return _proxy_response(response)

    def _complete_event(
        self,
        event: dict[str, Any],
        environ: dict[str, Any],
        headers: list[tuple[str, str]],
        body: bytes,
        identity: dict[str, Any],
        route_path: str,
        request_id: str,
    ) -> None:
        """What API Gateway's proxy integration adds to the event Chalice's converter builds."""
        now = datetime.now(UTC)
        multi: dict[str, list[str]] = {}
        for name, value in headers:
            multi.setdefault(name.lower(), []).append(value)
        query = event.get("multiValueQueryStringParameters")
        binary = bool(event.get("isBase64Encoded"))
        event.update(
            {
                "resource": event["requestContext"]["resourcePath"],
                "path": route_path,
                "httpMethod": event["requestContext"]["httpMethod"],
                "multiValueHeaders": multi,
                "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
                "isBase64Encoded": binary,
                "body": event["body"]
                if binary
                else (body.decode("utf-8", errors="replace") if body else None),
            }
        )
        event["requestContext"].update(
            {
                "accountId": self._account,
                "apiId": self._api_id,
                "stage": self._stage,
                "requestId": request_id,
                "extendedRequestId": request_id,
                "resourceId": "local",
                "domainName": str(environ.get("HTTP_HOST", "")),
                "protocol": str(environ.get("SERVER_PROTOCOL", "HTTP/1.1")),
                "path": f"/{self._stage}{route_path}",
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "identity": identity,
            }
        )


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").title(), str(value)))
    if environ.get("CONTENT_TYPE"):
        headers.append(("Content-Type", str(environ["CONTENT_TYPE"])))
    if environ.get("CONTENT_LENGTH"):
        headers.append(("Content-Length", str(environ["CONTENT_LENGTH"])))
    return headers


def _body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    return bytes(stream.read(length)) if stream is not None and length > 0 else b""


def _anonymous_identity(environ: dict[str, Any], headers: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "cognitoIdentityPoolId": None,
        "cognitoIdentityId": None,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "accountId": None,
        "caller": None,
        "accessKey": None,
        "apiKey": None,
        "apiKeyId": None,
        "principalOrgId": None,
        "sourceIp": str(environ.get("REMOTE_ADDR", "127.0.0.1")),
        "user": None,
        "userArn": None,
        "userAgent": dict(headers).get("User-Agent"),
    }


def _proxy_response(response: Any) -> tuple[int, dict[str, str], bytes]:
    """API Gateway's answer from a Lambda proxy response (``statusCode``, headers, body)."""
    if not isinstance(response, dict) or "statusCode" not in response:
        raise GatewayError(502, "InternalServerErrorException", "Internal server error")
    headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers[str(name)] = ",".join(str(v) for v in values)
    raw = response.get("body") or ""
    body = base64.b64decode(raw) if response.get("isBase64Encoded") else str(raw).encode()
    return int(response["statusCode"]), headers, body
