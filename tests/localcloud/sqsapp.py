"""A small Chalice app for the local cloud's SQS poller and API Gateway tests.

It has the trigger kinds the real-time feedback fan-in uses, and nothing else: two SQS handlers (one
whole-batch, one reporting item failures through ``SQS_FUNCTION_RESPONSE_TYPES``), an IAM-authorised
route and an open one. The handlers record what they received in ``RECEIVED``; a message whose body
starts with ``fail`` makes its batch raise, one starting with ``bad`` is reported as a failed item.
"""

from __future__ import annotations

import threading
from typing import Any

from chalice.app import Chalice, IAMAuthorizer, SQSEvent

app = Chalice(app_name="reviewsense")

INBOX = "rs-test-inbox"
PARTIAL = "rs-test-partial"
#: Handler name -> the event source mapping's FunctionResponseTypes (what the template would set).
SQS_FUNCTION_RESPONSE_TYPES = {"partial": ["ReportBatchItemFailures"]}

RECEIVED: dict[str, list[dict[str, Any]]] = {"inbox": [], "partial": []}
_lock = threading.Lock()


def received(handler: str) -> list[dict[str, Any]]:
    with _lock:
        return list(RECEIVED[handler])


@app.on_sqs_message(queue=INBOX, batch_size=5)
def inbox(event: SQSEvent) -> None:
    raw = event.to_dict()
    with _lock:
        RECEIVED["inbox"].append(raw)
    if any(r["body"].startswith("fail") for r in raw["Records"]):
        raise RuntimeError("a poisoned batch")


@app.on_sqs_message(queue=PARTIAL, batch_size=10, maximum_batching_window_in_seconds=1)
def partial(event: SQSEvent) -> dict[str, Any]:
    raw = event.to_dict()
    with _lock:
        RECEIVED["partial"].append(raw)
    return {
        "batchItemFailures": [
            {"itemIdentifier": r["messageId"]} for r in raw["Records"] if r["body"].startswith("bad")
        ]
    }


@app.route("/feedback", methods=["POST"], authorizer=IAMAuthorizer())
def post_feedback() -> dict[str, Any]:
    request = app.current_request
    assert request is not None
    return {"received": request.json_body, "identity": request.context["identity"]}


@app.route("/open/{name}", methods=["GET"])
def open_route(name: str) -> dict[str, Any]:
    request = app.current_request
    assert request is not None
    return {"name": name, "query": request.query_params, "identity": request.context["identity"]}
