"""Batch scoring on the champion model with a SageMaker Batch Transform job (AWS and the local cloud).

The same calls run against AWS and against the local cloud, whose SageMaker stand-in runs transform
jobs for real (``reviewsense.localcloud.sagemaker.transforms``):

1. the model: the endpoint's live ``champion`` variant's SageMaker model (built by the rollout from the
   approved model package), else a model built the same way from the newest Approved package;
2. the input: the rows as JSON Lines ``{"row", "title", "text"}``, in parts of ``PART_ROWS`` rows under
   ``s3://<lake>/batch/<job>/input/`` (a part's ``.out`` file appears when the part is done: that is
   the progress SageMaker exposes);
3. ``CreateTransformJob``: ``application/jsonlines`` in and out, ``SplitType=Line``,
   ``BatchStrategy=MultiRecord`` with ``MaxPayloadInMB`` far below the serving container's request
   limit, ``AssembleWith=Line``, and ``DataProcessing`` ``JoinSource=Input`` with an output filter that
   keeps the row number next to ``SageMakerOutput``, so every answer carries the row it belongs to;
4. polled (``DescribeTransformJob`` and the listing of ``.out`` files) with progress, stopped on
   Ctrl-C; the ``.out`` files are read back and joined to the input by row number.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.sagemaker import SageMakerGateway
from chalicelib.domain.pipeline import sagemaker_name
from chalicelib.services.rollout import CHAMPION
from reviewsense.batchscore import BatchRow, Prediction, Progress, chunks, prediction_of
from reviewsense.errors import OperatorError
from reviewsense.target import Target

#: Rows per input part (one ``.out`` file each: the progress step).
PART_ROWS = 1000
#: A mini-batch's size limit: far below the 6 MB the serving container accepts per request, and
#: MaxPayloadInMB x MaxConcurrentTransforms stays within SageMaker's 100 MB.
MAX_PAYLOAD_MB = 1
MAX_CONCURRENT_TRANSFORMS = 2
INVOCATION_TIMEOUT_S = 600
JSONLINES = "application/jsonlines"
ROW_KEY = "row"
OUTPUT_FILTER = f"$['{ROW_KEY}','SageMakerOutput']"
FINAL_STATUSES = ("Completed", "Failed", "Stopped")


def job_name(now: datetime | None = None) -> str:
    """``rs-batch-<UTC time>-<random>``: unique, within the 63-character transform job name pattern."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return sagemaker_name("rs", "batch", stamp, uuid.uuid4().hex[:6])


def transform_request(
    name: str, model: str, bucket: str, instance_type: str, environment: dict[str, str] | None = None
) -> dict[str, Any]:
    """The CreateTransformJob request of one batch (checked against botocore's model in the tests)."""
    prefix = f"s3://{bucket}/batch/{name}"
    request: dict[str, Any] = {
        "TransformJobName": name,
        "ModelName": model,
        "MaxConcurrentTransforms": MAX_CONCURRENT_TRANSFORMS,
        "MaxPayloadInMB": MAX_PAYLOAD_MB,
        "BatchStrategy": "MultiRecord",
        "ModelClientConfig": {
            "InvocationsTimeoutInSeconds": INVOCATION_TIMEOUT_S,
            "InvocationsMaxRetries": 1,
        },
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{prefix}/input/"}},
            "ContentType": JSONLINES,
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": f"{prefix}/output/", "Accept": JSONLINES, "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": 1},
        "DataProcessing": {"InputFilter": "$", "JoinSource": "Input", "OutputFilter": OUTPUT_FILTER},
        "Tags": [{"Key": "reviewsense:purpose", "Value": "batch-scoring"}],
    }
    if environment:
        request["Environment"] = environment
    return request


def part_key(name: str, index: int) -> str:
    return f"batch/{name}/input/part-{index:05d}.jsonl"


def part_body(rows: Sequence[BatchRow]) -> bytes:
    lines = [json.dumps({ROW_KEY: r.row, "title": r.title, "text": r.text}, ensure_ascii=False) for r in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def output_key(name: str, index: int) -> str:
    """Where SageMaker writes a part's results: the output path + the input's relative key + ``.out``."""
    return f"batch/{name}/output/part-{index:05d}.jsonl.out"


def parse_output(body: bytes, rows_by_number: dict[int, BatchRow]) -> list[Prediction]:
    """A part's ``.out`` lines (``{"row": n, "SageMakerOutput": {...}}``) as predictions of their rows."""
    out: list[Prediction] = []
    for line in body.decode("utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        number = int(record[ROW_KEY])
        if number not in rows_by_number:
            raise OperatorError(f"the transform job answered for row {number}, which was not sent")
        out.append(prediction_of(rows_by_number[number], record["SageMakerOutput"]))
    return out


def champion_model(tgt: Target, role_arn: str) -> str:
    """The SageMaker model of the champion: what the endpoint serves, else the newest Approved package."""
    container = tgt.container()
    champion = container.rollout.live_models().get(CHAMPION)
    if champion is not None:
        return str(champion["model_name"])
    gateway: SageMakerGateway = container.sagemaker
    s = tgt.settings
    for summary in gateway.model_packages(s.model_package_group):
        if summary.get("ModelApprovalStatus") != "Approved":
            continue
        package = gateway.describe_model_package(str(summary["ModelPackageArn"]))
        spec = package["InferenceSpecification"]["Containers"][0]
        name = sagemaker_name("rs", "batch", "v" + str(package.get("ModelPackageVersion", "0")))
        if gateway.describe_model(name) is None:
            gateway.create_model(
                name,
                role_arn,
                {
                    "Image": spec["Image"],
                    "ModelDataUrl": spec["ModelDataUrl"],
                    "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
                },
            )
        return name
    raise OperatorError(
        f"no champion: the endpoint {s.endpoint_name} serves none and {s.model_package_group} has no "
        "Approved package; give --model PATH to score with a model directory or model.tar.gz"
    )


class TransformJobScorer:
    """Scores rows with one Batch Transform job on the champion model."""

    def __init__(
        self,
        tgt: Target,
        poll_s: float = 2.0,
        name: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.tgt = tgt
        self.poll_s = poll_s
        self.name = name or job_name()
        self.sleep = sleep
        self.sagemaker = SageMakerGateway(tgt.client("sagemaker"))
        self.s3 = tgt.client("s3")

    def score(self, rows: Sequence[BatchRow], progress: Progress) -> list[Prediction]:
        s = self.tgt.settings
        model = champion_model(self.tgt, s.sagemaker_role_arn)
        parts = list(chunks(rows, PART_ROWS))
        for index, part in enumerate(parts):
            self.s3.put_object(Bucket=s.lake_bucket, Key=part_key(self.name, index), Body=part_body(part))
        self.sagemaker.create_transform_job(
            transform_request(self.name, model, s.lake_bucket, s.inference_instance_type)
        )
        progress.note(
            f"transform job {self.name} on model {model}: {len(rows):,} rows in {len(parts)} parts "
            f"under s3://{s.lake_bucket}/batch/{self.name}/"
        )
        try:
            self._wait(parts, progress)
        except KeyboardInterrupt:
            self.sagemaker.stop_transform_job(self.name)
            raise
        by_number = {r.row: r for r in rows}
        out: list[Prediction] = []
        for index in range(len(parts)):
            body = self.s3.get_object(Bucket=s.lake_bucket, Key=output_key(self.name, index))["Body"].read()
            out += parse_output(body, by_number)
        return out

    def _done_parts(self) -> set[str]:
        s = self.tgt.settings
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=s.lake_bucket, Prefix=f"batch/{self.name}/output/"
        )
        return {str(o["Key"]) for page in pages for o in page.get("Contents", [])}

    def _wait(self, parts: Sequence[Sequence[BatchRow]], progress: Progress) -> None:
        keys = [output_key(self.name, i) for i in range(len(parts))]
        while True:
            job = self.sagemaker.describe_transform_job(self.name)
            status = str(job["TransformJobStatus"])
            done = self._done_parts()
            progress.update(sum(len(p) for k, p in zip(keys, parts, strict=True) if k in done))
            if status == "Completed":
                return
            if status in FINAL_STATUSES:
                reason = job.get("FailureReason") or "no reason given"
                raise OperatorError(f"transform job {self.name} {status}: {reason}")
            self.sleep(self.poll_s)
