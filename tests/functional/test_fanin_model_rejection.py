"""A record the model refuses is quarantined with its reason; the rest of its batch is scored.

The whole path is real except the model: the fan-in's Lambda handler over moto (queue, table, lake), the
production ``SageMakerRuntimeScorer`` with a plain boto3 ``sagemaker-runtime`` client, and the endpoint
server the local cloud and ``reviewsense serve`` run, loading a small handler that answers as the
project's handler does when it cannot score an instance: the toolkit's error with status 400. The
container's 400 reaches the adapter as SageMaker's ``ModelError`` (``OriginalStatusCode`` 400) and is
decided by that status. Before, the ``ModelError`` escaped the fan-in: the whole SQS batch failed, was
retried and reached the DLQ, good records included.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.adapters.runtime import SageMakerRuntimeScorer
from chalicelib.config import Settings
from chalicelib.container import Container, reset_container
from chalicelib.domain.model_rejection import ModelRejection, model_rejection, splitting_helps
from reviewsense.localcloud import endpoint_server
from tests.functional.test_fanin import _SETTINGS, Cloud, app_review, inline

#: Refuses a request holding a text with "unscorable" (as training/inference.py refuses an instance
#: without review text: BaseInferenceToolkitError, 400), and one sent as anything but JSON (415).
HANDLER = """
import json


class BaseInferenceToolkitError(Exception):
    def __init__(self, status_code, message, phrase):
        super().__init__(status_code, message, phrase)
        self.status_code, self.message, self.phrase = status_code, message, phrase


def model_fn(model_dir):
    return None


def input_fn(body, content_type):
    if content_type != "application/json":
        raise BaseInferenceToolkitError(415, f"unsupported content type {content_type!r}", "unsupported")
    instances = json.loads(body)["instances"]
    for number, instance in enumerate(instances, start=1):
        if "unscorable" in instance["text"]:
            message = f"instance {number} has no review text"
            raise BaseInferenceToolkitError(400, message, message)
    return instances


def predict_fn(instances, model):
    out = []
    for instance in instances:
        negative = "terrible" in instance["text"].lower()
        probabilities = {"negative": 0.95, "neutral": 0.03, "positive": 0.02} if negative else {
            "negative": 0.02, "neutral": 0.08, "positive": 0.9}
        label = max(probabilities, key=probabilities.get)
        out.append({"label": label, "score": probabilities[label], "probabilities": probabilities})
    return out


def output_fn(predictions, accept):
    return json.dumps({"predictions": predictions})
"""


class Endpoint:
    """The endpoint server around ``HANDLER`` and the InvokeEndpoint calls it answered."""

    def __init__(self, model_dir: Path) -> None:
        (model_dir / "code").mkdir(parents=True)
        (model_dir / "code" / "refusing_handler.py").write_text(HANDLER)
        self.server = endpoint_server.make_server(
            endpoint_server.load_handler(model_dir, "refusing_handler.py")
        )
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def scorer(self) -> SageMakerRuntimeScorer:
        client = boto3.client(
            "sagemaker-runtime",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        return SageMakerRuntimeScorer(client, "reviewsense-local-sentiment", attempts=2, sleep=lambda s: None)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cloud(aws: Any, settings: Settings, tmp_path: Path) -> Iterator[Cloud]:
    s = replace(settings, alerts_topic_arn="arn:aws:sns:us-east-1:123456789012:reviewsense-local-alerts")
    _SETTINGS.append(s)
    made = Cloud(aws, s)
    endpoint = Endpoint(tmp_path / "model")
    container = Container(s, aws)
    container.__dict__["scorer"] = endpoint.scorer()  # the production adapter, over HTTP to the server
    reset_container(container)
    yield made
    reset_container()
    endpoint.close()
    _SETTINGS.pop()


def quarantined(c: Cloud) -> list[dict[str, Any]]:
    return [
        json.loads(c.s3.get_object(Bucket="reviewsense-lake", Key=key)["Body"].read())
        for key in c.keys("quarantine/feedback/")
    ]


def test_one_refused_record_is_quarantined_and_the_rest_of_the_batch_scored(cloud: Cloud) -> None:
    c = cloud
    for n in range(5):
        text = "This one is unscorable" if n == 3 else f"Terrible dress number {n}"
        c.send(inline("app", app_review(f"r-{n}", text, product=f"p-{n}")))

    result = c.poll()

    assert result is not None and result["batchItemFailures"] == []  # nothing retried, nothing to the DLQ
    assert (result["report"]["scored"], result["report"]["quarantined"]) == (4, 1)
    records = quarantined(c)
    assert len(records) == 1
    assert records[0]["rejected"][0]["reason"] == "model_bad_request"
    assert records[0]["rejected"][0]["detail"] == "instance 1 has no review text"  # it was alone by then
    assert records[0]["status"] == 400
    assert records[0]["record"]["text"] == "This one is unscorable"
    items = c.feedback_items()
    assert sorted(i["text"] for i in items) == [f"Terrible dress number {n}" for n in (0, 1, 2, 4)]
    assert all(i["label"] == "negative" and i.get("completed_at") for i in items)
    assert records[0]["feedback_id"] not in {i["id"] for i in items}
    assert len(c.predictions()) == 4
    assert c.poll() is None and c.drain(c.dlq) == []


def test_the_quarantine_reason_is_decided_by_the_status_alone() -> None:
    assert model_rejection(400) is ModelRejection.BAD_REQUEST
    assert model_rejection(413) is ModelRejection.PAYLOAD_TOO_LARGE
    assert model_rejection(415) is ModelRejection.UNSUPPORTED_CONTENT_TYPE
    assert model_rejection(406) is ModelRejection.NOT_ACCEPTABLE
    assert model_rejection(422) is ModelRejection.CLIENT_ERROR
    assert [model_rejection(s) for s in (200, 408, 429, 500, 503)] == [None] * 5  # retried, not quarantined
    assert splitting_helps(ModelRejection.BAD_REQUEST) and splitting_helps(ModelRejection.PAYLOAD_TOO_LARGE)
    assert not splitting_helps(ModelRejection.UNSUPPORTED_CONTENT_TYPE)
