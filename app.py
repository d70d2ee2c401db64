"""ReviewSense's Chalice app: the Lambda entry points, a few lines each.

Handlers turn the event into a typed input, call one service and return a dict. All logic lives in
``chalicelib``; nothing heavy (torch, transformers, sagemaker, pandas) is imported here.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from chalice.app import BadRequestError, Chalice, CloudWatchEvent, IAMAuthorizer, Response, SQSEvent

from chalicelib import events
from chalicelib.config import feedback_queue_name
from chalicelib.container import get_container
from chalicelib.services.watchdog import TRAINING_JOB_STATE_CHANGE

app = Chalice(app_name="reviewsense")
logger = Logger(service="reviewsense")

RAW_OBJECT_CREATED = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
    "detail": {"object": {"key": [{"prefix": "raw/"}]}},
}


@app.on_cw_event(RAW_OBJECT_CREATED, name="ingest")
def ingest(event: CloudWatchEvent) -> dict[str, Any]:
    """S3 upload under ``raw/`` (via EventBridge) -> curated Parquet, quarantine, catalog, event.

    The rule also matches ``raw/feedback/``: the service skips those keys (the fan-in's) by name.
    """
    source = events.source_object_from_eventbridge(event.to_dict())
    logger.append_keys(source_key=source.key)
    result: dict[str, Any] = get_container().ingest_service.ingest(source)
    return result


# -- real-time feedback: three entry points, one queue, one fan-in -------------------------------------

FEEDBACK_OBJECT_CREATED = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
    "detail": {"object": {"key": [{"prefix": "raw/feedback/"}]}},
}
#: Handlers whose SQS event source mapping reports partial batch failures. Chalice's decorator has no
#: such argument: the packaged template and the local cloud's poller set ``FunctionResponseTypes`` from
#: this (see ``chalicelib/services/fanin.py`` for why).
SQS_FUNCTION_RESPONSE_TYPES = {"feedback_fanin": ["ReportBatchItemFailures"]}


# The queue's name is read when this module is imported: ``chalice package --stage S`` sets stage S's
# environment variables first, so each stage reads its own ``reviewsense-<stage>-feedback``.
@app.on_sqs_message(queue=feedback_queue_name(), batch_size=10, name="feedback_fanin")
def feedback_fanin(event: SQSEvent) -> dict[str, Any]:
    """A batch of feedback messages -> scored, stored, alerted, reviewed or quarantined."""
    result: dict[str, Any] = get_container().fanin.handle(events.queue_messages(event.to_dict()))
    return result


@app.route("/feedback", methods=["POST"], authorizer=IAMAuthorizer(), content_types=["application/json"])
def post_feedback() -> Response:
    """One feedback envelope (SigV4-signed) -> the feedback queue; 202 with the message id."""
    from chalicelib.services.feedback_intake import InvalidFeedbackError

    request = app.current_request
    try:
        result = get_container().feedback_intake.submit(request.json_body if request else None)
    except InvalidFeedbackError as exc:
        raise BadRequestError(str(exc)) from exc
    return Response(body=result, status_code=202)


@app.on_cw_event(FEEDBACK_OBJECT_CREATED, name="feedback_upload")
def feedback_upload(event: CloudWatchEvent) -> dict[str, Any]:
    """A file under ``raw/feedback/<channel>/`` -> one pointer message on the feedback queue."""
    source = events.source_object_from_eventbridge(event.to_dict())
    result: dict[str, Any] = get_container().feedback_intake.enqueue_upload(source)
    return result


@app.schedule("rate(1 hour)", name="reconcile_raw")
def reconcile_raw(event: CloudWatchEvent) -> dict[str, Any]:
    """Hourly safety net: ingest raw objects whose upload event was missed or whose ingest failed."""
    context: Any = event.context
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    result: dict[str, Any] = get_container().reconcile_service.reconcile(
        time_left_s=(lambda: remaining() / 1000) if remaining else None
    )
    return result


# -- training pipeline steps (Step Functions Lambda tasks) -------------------------------------------


@app.lambda_function(name="pipeline_prepare")
def pipeline_prepare(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Plan a run: names, S3 locations, the SageMaker requests and the current champion."""
    request = {**event.get("input", {}), "execution_name": event.get("execution_name", "manual")}
    result: dict[str, Any] = get_container().pipeline_steps.prepare(request)
    return result


@app.lambda_function(name="pipeline_gate")
def pipeline_gate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Quality gate over the candidate's and the champion's evaluation on the same test split."""
    result: dict[str, Any] = get_container().pipeline_steps.gate(event["run"])
    return result


@app.lambda_function(name="pipeline_register")
def pipeline_register(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Model package (Approved or Rejected) with data/code versions, hyperparameters, metrics, gate."""
    result: dict[str, Any] = get_container().pipeline_steps.register(
        event["run"], event["gate"], event["training_job"]
    )
    return result


@app.lambda_function(name="pipeline_deploy")
def pipeline_deploy(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Roll the approved model out as the challenger variant next to the champion."""
    result: dict[str, Any] = get_container().pipeline_steps.deploy(event["run"])
    return result


@app.lambda_function(name="pipeline_deploy_status")
def pipeline_deploy_status(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One poll of the endpoint deployment: pending, deployed or failed (status and failure reason)."""
    result: dict[str, Any] = get_container().pipeline_steps.deployment_status(event["deploy"])
    return result


@app.lambda_function(name="pipeline_cleanup")
def pipeline_cleanup(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """After a failure: delete what the run created, never the serving endpoint."""
    run = event.get("input", {}).get("run")
    if not run:
        return {"deleted": []}
    result: dict[str, Any] = get_container().pipeline_steps.cleanup(run)
    return result


# -- triggers -----------------------------------------------------------------------------------------


@app.on_cw_event(
    {"source": ["reviewsense.ingest"], "detail-type": ["Reviews Ingested"]}, name="retrain_on_new_data"
)
def retrain_on_new_data(event: CloudWatchEvent) -> dict[str, Any]:
    """Start the pipeline once ingestion has added enough new labelled reviews."""
    result: dict[str, Any] = get_container().pipeline_trigger.on_reviews_ingested(
        int(event.detail.get("labelled", 0))
    )
    return result


@app.schedule("rate(7 days)", name="retrain_on_schedule")
def retrain_on_schedule(event: CloudWatchEvent) -> dict[str, Any]:
    """Weekly retraining, one execution per scheduled hour."""
    result: dict[str, Any] = get_container().pipeline_trigger.on_schedule(event.to_dict().get("time"))
    return result


# -- watchdog -----------------------------------------------------------------------------------------


@app.on_cw_event(TRAINING_JOB_STATE_CHANGE, name="watchdog_on_event")
def watchdog_on_event(event: CloudWatchEvent) -> dict[str, Any]:
    """A training job changed state: check its health now."""
    result: dict[str, Any] = get_container().watchdog.check_job(str(event.detail["TrainingJobName"]))
    return result


@app.schedule("rate(2 minutes)", name="watchdog_on_schedule")
def watchdog_on_schedule(event: CloudWatchEvent) -> list[dict[str, Any]]:
    """Every few minutes: apply the training-health rules to every running job."""
    result: list[dict[str, Any]] = get_container().watchdog.check_running()
    return result
