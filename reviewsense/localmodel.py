"""A tiny served model on the local cloud, for the fan-in benchmark and the end-to-end tests.

Measuring or testing the feedback fan-in needs a real endpoint that serves ``training/inference.py``,
but no training run: the archive here carries a TF-IDF + logistic regression written by hand
("terrible" is negative, "great" positive, anything else one third each, a low-confidence tie).
``serve`` deploys it as the app's endpoint the way the rollout does (model, endpoint configuration,
endpoint, optionally with data capture of inputs and outputs) and waits until it is in service;
``subscribe`` adds an SQS queue to the alerts topic to watch what the scores lead to. One copy for
``reviewsense.bench_feedback`` and the tests (tests may import this package, never the reverse).
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

from reviewsense.errors import OperatorError
from reviewsense.target import local_client

ROLE = "arn:aws:iam::123456789012:role/reviewsense-local-execution"
LABELS = ["negative", "neutral", "positive"]
#: TF-IDF + logistic regression as ``training/inference.py``'s LinearTextModel reads it.
LINEAR_MODEL = {
    "vocabulary": {"terrible": 0, "great": 1},
    "idf": [1.0, 1.0],
    "coef": [[6.0, -6.0], [0.0, 0.0], [-6.0, 6.0]],
    "intercept": [0.0, 0.0, 0.0],
    "ngram_range": [1, 1],
}


def model_archive(project_root: Path) -> bytes:
    """The ``model.tar.gz`` of the linear model with the project's serving handler as its code."""
    files = {
        "label_map.json": json.dumps({"labels": LABELS, "label2id": {n: i for i, n in enumerate(LABELS)}}),
        "decision.json": json.dumps({"model_type": "linear"}),
        "linear_model.json": json.dumps(LINEAR_MODEL),
        "code/inference.py": (project_root / "training" / "inference.py").read_text(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def serve(
    endpoint: str,
    settings: Any,
    project_root: Path,
    tag: str,
    capture: bool = False,
    timeout_s: float = 180.0,
) -> None:
    """The app's endpoint (``settings.endpoint_name``) serving the linear model, in service on return.

    ``tag`` names the archive (``models/<tag>/model.tar.gz``) and the model and endpoint configuration
    (``rs-<tag>-<ms>``); ``capture`` turns on data capture of inputs and outputs under ``capture/``
    of the lake, as the rollout sets it.
    """
    s3, sm = local_client(endpoint, "s3"), local_client(endpoint, "sagemaker")
    key = f"models/{tag}/model.tar.gz"
    s3.put_object(Bucket=settings.lake_bucket, Key=key, Body=model_archive(project_root))
    name = f"rs-{tag}-{int(time.time() * 1000)}"
    sm.create_model(
        ModelName=name,
        PrimaryContainer={
            "Image": settings.inference_image,
            "ModelDataUrl": f"s3://{settings.lake_bucket}/{key}",
        },
        ExecutionRoleArn=ROLE,
    )
    config: dict[str, Any] = {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": "champion",
                "ModelName": name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
    }
    if capture:
        config["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://{settings.lake_bucket}/capture/",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
        }
    sm.create_endpoint_config(**config)
    sm.create_endpoint(EndpointName=settings.endpoint_name, EndpointConfigName=name)
    deadline = time.monotonic() + timeout_s
    while sm.describe_endpoint(EndpointName=settings.endpoint_name)["EndpointStatus"] != "InService":
        if time.monotonic() > deadline:
            raise OperatorError(f"the endpoint {name} did not come into service in {timeout_s:.0f} s")
        time.sleep(0.2)


def subscribe(endpoint: str, topic_arn: str, name: str, filter_policy: dict[str, Any] | None = None) -> str:
    """A new SQS queue ``name`` subscribed to ``topic_arn`` (filtered by ``filter_policy``): its URL."""
    sqs, sns = local_client(endpoint, "sqs"), local_client(endpoint, "sns")
    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"Attributes": {"FilterPolicy": json.dumps(filter_policy)}} if filter_policy else {}
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, **attributes)
    return url
