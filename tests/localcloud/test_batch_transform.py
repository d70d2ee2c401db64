"""``reviewsense score --batch`` on the local cloud: a real Batch Transform job on the champion model.

The client code is the one that runs against AWS (``reviewsense.batchtransform``): the input goes to
``batch/<job>/input/`` as JSON Lines parts, ``CreateTransformJob`` reaches moto (strict: checked against
botocore's model) and the local SageMaker runs the job with the model's own serving handler
(``training/inference.py`` in the tiny linear archive of ``reviewsense.localmodel``), writing one
``.out`` per part. The champion is what the endpoint serves, else the newest Approved model package.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from chalicelib.config import Settings
from reviewsense import batchscore as bs
from reviewsense import batchtransform as bt
from reviewsense import localmodel
from reviewsense.cli import main
from reviewsense.errors import OperatorError
from reviewsense.target import Target
from tests.helpers.cloud import InProcessCloud, in_process_cloud
from tests.helpers.paths import ROOT
from tests.helpers.reviews import make_kaggle_frame
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.localcloud


class Cloud(InProcessCloud):
    settings = Settings()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    home = tmp_path_factory.mktemp("batch-cloud")
    with in_process_cloud(home, None, persist=False, cls=Cloud, state_machines=False) as started:
        assert isinstance(started, Cloud)
        started.settings = Settings.from_env()
        localmodel.serve(started.endpoint, started.settings, ROOT, "batch-test")
        yield started
        # moto's backends outlive this cloud in the test process: leave no endpoint of the app's name behind
        # (the next module serving it, test_fanin_cloud.py, would find it taken)
        started.client("sagemaker").delete_endpoint(EndpointName=started.settings.endpoint_name)


def target(cloud: Cloud, settings: Settings | None = None) -> Target:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return Target(settings or cloud.settings, session, cloud.endpoint, "local")


def shuffled_file(n: int, seed: int) -> tuple[bytes, dict[str, str]]:
    """JSON Lines with shuffled ids, a row without text and one that is not JSON; id -> expected label."""
    rnd = random.Random(seed)
    expected: dict[str, str] = {}
    lines = []
    for i in range(n):
        word, label = rnd.choice([("great", "positive"), ("terrible", "negative")])
        review_id = f"r{rnd.randrange(10**6):06d}-{i}"
        expected[review_id] = label
        lines.append(json.dumps({"review_id": review_id, "title": "", "text": f"{word} thing {i}"}))
    lines.insert(5, json.dumps({"review_id": "blank", "text": ""}))
    lines.insert(9, "{not json")
    return ("\n".join(lines) + "\n").encode(), expected


def test_the_champion_scores_a_file_as_a_transform_job_joined_to_the_input_ids(
    cloud: Cloud, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bt, "PART_ROWS", 10)  # four parts: four .out files, progress between them
    data, expected = shuffled_file(35, seed=4)
    batch = bs.parse_file("in.jsonl", data)
    scorer = bt.TransformJobScorer(target(cloud), poll_s=0.2)
    stream = io.StringIO()
    summary = bs.run_batch(batch, tmp_path / "p.jsonl", scorer.score, "job", stream, progress_interval_s=0.0)
    assert (summary.total, summary.scored, summary.rejected) == (37, 35, 2)
    assert summary.reasons == {"missing_text": 1, "unreadable_row": 1}
    written = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert {w["id"]: w["label"] for w in written} == expected
    assert [w["row"] for w in written] == sorted(w["row"] for w in written)

    sm = cloud.client("sagemaker")
    job = sm.describe_transform_job(TransformJobName=scorer.name)
    assert job["TransformJobStatus"] == "Completed"
    assert re.fullmatch(r"rs-batch-test-\d+", job["ModelName"])  # the endpoint's champion model
    assert (job["BatchStrategy"], job["DataProcessing"]["JoinSource"]) == ("MultiRecord", "Input")
    s3 = cloud.client("s3")
    listed = s3.list_objects_v2(Bucket=cloud.settings.lake_bucket, Prefix=f"batch/{scorer.name}/output/")
    assert [o["Key"].rsplit("/", 1)[1] for o in listed["Contents"]] == [
        f"part-{i:05d}.jsonl.out" for i in range(4)
    ]
    first = s3.get_object(Bucket=cloud.settings.lake_bucket, Key=bt.output_key(scorer.name, 0))
    record = json.loads(first["Body"].read().decode().splitlines()[0])
    assert sorted(record) == ["SageMakerOutput", "row"]  # the output filter kept the row and the answer
    assert sorted(record["SageMakerOutput"]) == ["label", "label_id", "probabilities", "score"]

    lines = stream.getvalue().splitlines()
    assert lines[0] == "scored 0/35 (0.0 %)  0 reviews/s  ETA unknown"
    assert re.fullmatch(
        rf"transform job {scorer.name} on model rs-batch-test-\d+: 35 rows in 4 parts "
        rf"under s3://{cloud.settings.lake_bucket}/batch/{scorer.name}/",
        lines[1],
    )
    assert re.fullmatch(r"scored 35/35 \(100\.0 %\)  [\d,]+ reviews/s  done", lines[-1])


def register(cloud: Cloud, group: str, status: str, model_data: str) -> str:
    sm = cloud.client("sagemaker")
    return str(
        sm.create_model_package(
            ModelPackageGroupName=group,
            InferenceSpecification={
                "Containers": [{"Image": cloud.settings.inference_image, "ModelDataUrl": model_data}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus=status,
        )["ModelPackageArn"]
    )


def test_without_a_serving_champion_the_newest_approved_package_scores(cloud: Cloud, tmp_path: Any) -> None:
    group = "batch-registry"
    cloud.client("sagemaker").create_model_package_group(ModelPackageGroupName=group)
    model_data = f"s3://{cloud.settings.lake_bucket}/models/batch-test/model.tar.gz"  # uploaded by serve
    register(cloud, group, "Approved", model_data)
    register(cloud, group, "Rejected", f"s3://{cloud.settings.lake_bucket}/models/none/model.tar.gz")
    settings = replace(cloud.settings, endpoint_name="no-such-endpoint", model_package_group=group)
    batch = bs.rows_of_records("table:t", [{"id": "a", "text": "great"}, {"id": "b", "text": "terrible"}])
    scorer = bt.TransformJobScorer(target(cloud, settings), poll_s=0.2)
    predictions = scorer.score(batch.rows, bs.Progress(2, stream=io.StringIO()))
    assert sorted((p.id, p.label) for p in predictions) == [("a", "positive"), ("b", "negative")]
    model = cloud.client("sagemaker").describe_model(ModelName="rs-batch-v1")
    assert model["PrimaryContainer"]["ModelDataUrl"] == model_data
    assert model["PrimaryContainer"]["Environment"] == {"SAGEMAKER_PROGRAM": "inference.py"}

    nothing = replace(settings, model_package_group="no-such-group")
    with pytest.raises(OperatorError, match="no champion"):
        bt.TransformJobScorer(target(cloud, nothing)).score(batch.rows, bs.Progress(2, stream=io.StringIO()))


def test_a_job_whose_model_cannot_load_fails_with_a_reason_and_cannot_be_stopped(cloud: Cloud) -> None:
    sm, bucket = cloud.client("sagemaker"), cloud.settings.lake_bucket
    sm.create_model(
        ModelName="rs-batch-missing",
        PrimaryContainer={
            "Image": cloud.settings.inference_image,
            "ModelDataUrl": f"s3://{bucket}/nope/model.tar.gz",
        },
        ExecutionRoleArn=localmodel.ROLE,
    )
    name = bt.job_name()
    cloud.client("s3").put_object(
        Bucket=bucket, Key=bt.part_key(name, 0), Body=b'{"row": 1, "text": "great"}\n'
    )
    sm.create_transform_job(**bt.transform_request(name, "rs-batch-missing", bucket, "ml.m5.large"))
    wait_until(
        lambda: sm.describe_transform_job(TransformJobName=name)["TransformJobStatus"] != "InProgress",
        timeout_s=60,
        what="transform job finished",
    )
    job = sm.describe_transform_job(TransformJobName=name)
    assert job["TransformJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(f"ClientError: cannot read s3://{bucket}/nope/model.tar.gz")
    with pytest.raises(sm.exceptions.ClientError, match="in status Failed"):
        sm.stop_transform_job(TransformJobName=name)
    with pytest.raises(sm.exceptions.ResourceInUse):
        sm.create_transform_job(**bt.transform_request(name, "rs-batch-missing", bucket, "ml.m5.large"))


def test_the_command_scores_the_raw_kaggle_csv_on_the_local_cloud(
    cloud: Cloud, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = make_kaggle_frame(n=40)
    raw = tmp_path / "kaggle.csv.gz"
    raw.write_bytes(gzip.compress(frame.to_csv(index=True).encode("utf-8")))
    out = tmp_path / "kaggle-scores.parquet"
    monkeypatch.setenv("REVIEWSENSE_HOME", str(cloud.options.home))  # where endpoint.json is
    code = main(["score", "--batch", str(raw), "--out", str(out), "--poll-seconds", "0.2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    scored = pq.read_table(out).to_pylist()
    texts = {str(i): t for i, t in frame["Review Text"].items() if isinstance(t, str)}
    assert [r["id"] for r in scored] == list(texts)  # the Kaggle index, in input order, rows 13 and 47 out
    for r in scored:  # the linear model knows only "great" and "terrible": anything else is a tie
        text = texts[r["id"]]
        if "great" in text and "terrible" not in text:
            assert r["label"] == "positive", text
    rejects = [
        json.loads(line) for line in (tmp_path / "kaggle-scores.rejects.jsonl").read_text().splitlines()
    ]
    assert [(r["id"], r["reason"]) for r in rejects] == [("13", "missing_text")]
    assert re.search(r"transform job rs-batch-[\d-]+-[0-9a-f]{6} on model rs-batch-test-\d+", captured.err)
    assert re.search(
        r"scored 39 of 40 rows in [\d.]+ s \([\d,]+ reviews/s, transform job rs-batch-", captured.out
    )
