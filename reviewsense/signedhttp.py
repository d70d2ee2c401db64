"""Calls the app's IAM-authenticated HTTP routes: JSON over HTTPS (or the local cloud's HTTP), SigV4-signed.

A route declared with ``authorizer=IAMAuthorizer()`` accepts only requests signed with AWS Signature
Version 4 for the ``execute-api`` service, on AWS (API Gateway) and on the local cloud
(``reviewsense/localcloud/apigateway.py``) alike. ``post_json`` signs with the credentials of a boto3
session (a profile, a role, or the local cloud's fixed ``testing`` key) and returns the status and the
decoded answer. Where the routes are: ``local_api_url`` for the running local cloud (its
``endpoint.json``), ``deployed_api_url`` for a stage on AWS (the ``EndpointURL`` output Chalice's
packaged template gives the stack when the app has routes). Nothing else here knows which it talks to.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

SERVICE = "execute-api"


def local_api_url(endpoint_info: dict[str, Any]) -> str:
    """The base URL of the routes of a running local cloud, from its ``endpoint.json``."""
    return str(endpoint_info["api_url"])


def deployed_api_url(cloudformation: Any, stack_name: str) -> str:
    """The base URL of a deployed stage's routes (``https://<api>.execute-api.<region>.amazonaws.com/<stage>/``)."""
    from reviewsense.errors import StageNotDeployedError

    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    for output in stacks[0].get("Outputs", []) if stacks else []:
        if output["OutputKey"] == "EndpointURL":
            return str(output["OutputValue"])
    raise StageNotDeployedError(f"stack {stack_name} has no EndpointURL output: the app has no routes there")


def signed_request(
    method: str,
    url: str,
    body: bytes,
    session: Any,
    region: str,
    headers: dict[str, str] | None = None,
) -> urllib.request.Request:
    """A ``urllib`` request for ``url`` signed (SigV4, ``execute-api``) with ``session``'s credentials."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = session.get_credentials()
    if credentials is None:
        raise ValueError("no AWS credentials to sign the request with")
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(credentials.get_frozen_credentials(), SERVICE, region).add_auth(request)
    return urllib.request.Request(
        url, data=body or None, method=method, headers=dict(request.headers.items())
    )


def post_json(url: str, body: Any, session: Any, region: str, timeout_s: float = 30.0) -> tuple[int, Any]:
    """POST ``body`` as JSON to ``url``, signed; (HTTP status, decoded JSON answer or text or None)."""
    data = json.dumps(body).encode()
    request = signed_request("POST", url, data, session, region, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status), _decode(response.read())
    except urllib.error.HTTPError as err:
        return int(err.code), _decode(err.read())


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")
