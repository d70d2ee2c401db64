"""``reviewsense score --batch``: inputs, rejects with reasons, the join, progress, outputs, requests.

Scoring uses the tiny linear model of ``reviewsense.localmodel`` ("great" positive, "terrible"
negative) through ``training/inference.py``, so every expected label is known from the text alone and a
join that mixed rows up shows as a wrong label under an id.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import re
from collections.abc import Sequence
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from reviewsense import batchscore as bs
from reviewsense import batchtransform as bt
from reviewsense.cli import main
from reviewsense.errors import OperatorError
from reviewsense.localcloud.validation import validate
from reviewsense.localmodel import model_archive
from tests.helpers.paths import ROOT
from tests.helpers.reviews import make_kaggle_frame

LABEL_OF = {"great": "positive", "terrible": "negative"}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.tar.gz"
    path.write_bytes(model_archive(ROOT))
    return path


def expected_label(text: str) -> str:
    return next(label for word, label in LABEL_OF.items() if word in text)


def test_csv_with_a_text_column_keeps_ids_and_rejects_bad_rows_with_reasons() -> None:
    data = (
        b"review_id,title,text\n"
        b"a1,Nice,great dress\n"
        b"a2,,\n"  # no text
        b'a3,"Bad","terrible, \'truly\' bad"\n'
        b"a4,too,many,fields\n"  # unreadable
        b",,great again\n"  # no id: the row number stands in
        b"a6,,caf\xe9 great\n"  # not UTF-8
    )
    batch = bs.parse_file("reviews.csv", data)
    assert [(r.row, r.id, r.title, r.text) for r in batch.rows] == [
        (1, "a1", "Nice", "great dress"),
        (3, "a3", "Bad", "terrible, 'truly' bad"),
        (5, "5", "", "great again"),
    ]
    assert [(r.row, r.id, r.reason.value) for r in batch.rejects] == [
        (2, "a2", "missing_text"),
        (4, "4", "unreadable_row"),
        (6, "a6", "unreadable_row"),
    ]
    assert batch.rejects[2].detail == "not valid UTF-8"
    assert batch.rejects[2].raw == "a6,,caf\\xe9 great"
    assert batch.total == 6


def test_json_lines_rows_without_text_or_unreadable_are_rejected_with_their_id() -> None:
    lines = [
        json.dumps({"id": "j1", "review_text": "great", "title": "t"}),
        json.dumps({"id": "j2", "subject": "no body"}),
        "{oops",
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": "j5", "text": {"nested": "x"}}),
        json.dumps({"id": "j6", "body": "terrible"}),
        json.dumps({"id": "j7", "text": "x" * (bs.MAX_TEXT_CHARS + 1)}),
    ]
    batch = bs.parse_file("in.jsonl", ("\n".join(lines) + "\n").encode())
    assert [(r.row, r.id, r.text) for r in batch.rows] == [(1, "j1", "great"), (6, "j6", "terrible")]
    assert [(r.row, r.id, r.reason.value) for r in batch.rejects] == [
        (2, "j2", "missing_text"),
        (3, "3", "unreadable_row"),
        (4, "4", "unreadable_row"),
        (5, "j5", "unreadable_row"),
        (7, "j7", "text_too_long"),
    ]


def test_the_raw_kaggle_csv_as_downloaded_uses_its_unnamed_index_as_the_id(tmp_path: Path) -> None:
    frame = make_kaggle_frame(n=60)
    raw = tmp_path / "womens_clothing_ecommerce_reviews.csv.gz"
    raw.write_bytes(gzip.compress(frame.to_csv(index=True).encode("utf-8")))
    assert raw.read_bytes()[:2] == b"\x1f\x8b"
    batch = bs.read_file(raw)
    assert batch.total == 60
    assert [(r.row, r.id, r.reason.value) for r in batch.rejects] == [
        (14, "13", "missing_text"),
        (48, "47", "missing_text"),
    ]
    first = batch.rows[0]
    assert (first.row, first.id, first.text) == (1, "0", frame.loc[0, "Review Text"])
    assert first.title == ""  # the Kaggle file's empty Title cell
    assert (batch.rows[1].id, batch.rows[1].title) == ("1", frame.loc[1, "Title"])


def test_a_csv_without_a_text_column_is_refused_before_scoring() -> None:
    with pytest.raises(OperatorError, match="no text column"):
        bs.parse_file("x.csv", b"id,rating\n1,5\n")
    with pytest.raises(OperatorError, match="not CSV, JSON Lines or JSON"):
        bs.parse_file("x.bin", b"\x00\x01binary")


def test_table_records_map_like_files() -> None:
    records: list[dict[str, object]] = [
        {"review_id": "r-1", "title": None, "text": "great"},
        {"review_id": "r-2", "title": "x", "text": None},
        {"review_id": "r-3", "title": float("nan"), "text": "terrible"},
    ]
    batch = bs.rows_of_records("table:reviews", records)
    assert [(r.row, r.id, r.title, r.text) for r in batch.rows] == [
        (1, "r-1", "", "great"),
        (3, "r-3", "", "terrible"),
    ]
    assert [(r.id, r.reason.value) for r in batch.rejects] == [("r-2", "missing_text")]


def test_table_names_and_files_are_told_apart(tmp_path: Path) -> None:
    existing = tmp_path / "reviews"
    existing.write_text("text\nhi\n")
    assert bs.table_name("table:reviews") == "reviews"
    assert bs.table_name("reviewsense.reviews") == "reviews"
    assert bs.table_name(str(existing)) is None
    assert bs.table_name("data/in.csv") is None
    with pytest.raises(OperatorError, match="not a table name"):
        bs.table_name('table:x"; DROP TABLE y')


def shuffled_rows(n: int, seed: int) -> list[bs.BatchRow]:
    rnd = random.Random(seed)
    words = ["great"] * (n // 2) + ["terrible"] * (n - n // 2)
    rnd.shuffle(words)
    ids = [f"id-{i:03d}" for i in range(n)]
    rnd.shuffle(ids)
    return [bs.BatchRow(i + 1, ids[i], "", f"{w} item {i}") for i, w in enumerate(words)]


def test_local_scoring_joins_every_prediction_to_its_own_row_and_id(model: Path) -> None:
    rows = shuffled_rows(50, seed=3)
    scorer = bs.LocalModelScorer(model)
    progress = bs.Progress(len(rows), stream=io.StringIO(), interval_s=0.0)
    predictions = scorer.score(rows, progress, chunk=7)
    by_id = {p.id: p for p in predictions}
    assert len(by_id) == 50
    for row in rows:
        p = by_id[row.id]
        assert (p.row, p.label) == (row.row, expected_label(row.text))
        assert p.score == max(p.probabilities.values())
        assert sorted(p.probabilities) == ["negative", "neutral", "positive"]
    bs.check_joined(rows, predictions)


def test_a_join_that_lost_or_mixed_rows_is_an_error() -> None:
    rows = shuffled_rows(4, seed=1)
    good = [bs.Prediction(r.row, r.id, "positive", 1.0, {"positive": 1.0}) for r in rows]
    mixed = [bs.Prediction(r.row, rows[(i + 1) % 4].id, "positive", 1.0, {}) for i, r in enumerate(rows)]
    with pytest.raises(OperatorError, match="do not join"):
        bs.check_joined(rows, mixed)
    with pytest.raises(OperatorError, match=r"missing rows \[4\]"):
        bs.check_joined(rows, good[:3])
    with pytest.raises(OperatorError, match="5 predictions"):
        bs.check_joined(rows, [*good, good[0]])


def test_transform_output_is_joined_by_row_number_whatever_its_order() -> None:
    rows = shuffled_rows(20, seed=5)
    answers = []
    for r in rows:
        label = expected_label(r.text)
        answers.append(
            {"row": r.row, "SageMakerOutput": {"label": label, "score": 0.9, "probabilities": {label: 0.9}}}
        )
    random.Random(2).shuffle(answers)
    body = ("\n".join(json.dumps(a) for a in answers) + "\n").encode()
    predictions = bt.parse_output(body, {r.row: r for r in rows})
    assert {(p.row, p.id, p.label) for p in predictions} == {
        (r.row, r.id, expected_label(r.text)) for r in rows
    }
    with pytest.raises(OperatorError, match="row 99"):
        bt.parse_output(b'{"row": 99, "SageMakerOutput": {}}\n', {r.row: r for r in rows})


def test_progress_lines_show_count_rate_and_eta() -> None:
    now = [100.0]
    stream = io.StringIO()
    progress = bs.Progress(1000, stream=stream, interval_s=1.0, clock=lambda: now[0])
    progress.update(0, force=True)
    now[0] = 102.0
    progress.update(200)
    now[0] = 102.5
    progress.update(300)  # within the interval: not shown
    now[0] = 104.0
    progress.update(1000)
    assert stream.getvalue().splitlines() == [
        "scored 0/1,000 (0.0 %)  0 reviews/s  ETA unknown",
        "scored 200/1,000 (20.0 %)  100 reviews/s  ETA 8 s",
        "scored 1,000/1,000 (100.0 %)  250 reviews/s  done",
    ]
    assert bs.format_seconds(125) == "2 min 05 s"
    assert bs.format_seconds(7300) == "2 h 01 min"


def predictions_fixture() -> list[bs.Prediction]:
    return [
        bs.Prediction(2, "b", "negative", 0.8, {"negative": 0.8, "neutral": 0.1, "positive": 0.1}),
        bs.Prediction(1, "a", "positive", 0.7, {"negative": 0.1, "neutral": 0.2, "positive": 0.7}),
    ]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_outputs_are_in_row_order_with_one_probability_column_per_class(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"preds{suffix}"
    bs.write_predictions(out, predictions_fixture())
    if suffix == ".csv":
        with out.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        got = [(r["row"], r["id"], r["label"], r["p_negative"]) for r in rows]
        assert got == [("1", "a", "positive", "0.1"), ("2", "b", "negative", "0.8")]
    elif suffix == ".jsonl":
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert [(r["row"], r["id"], r["label"], r["probabilities"]["negative"]) for r in lines] == [
            (1, "a", "positive", 0.1),
            (2, "b", "negative", 0.8),
        ]
    else:
        table = pq.read_table(out).to_pylist()
        assert table == [
            {
                "row": 1,
                "id": "a",
                "label": "positive",
                "score": 0.7,
                "p_negative": 0.1,
                "p_neutral": 0.2,
                "p_positive": 0.7,
            },
            {
                "row": 2,
                "id": "b",
                "label": "negative",
                "score": 0.8,
                "p_negative": 0.8,
                "p_neutral": 0.1,
                "p_positive": 0.1,
            },
        ]
    with pytest.raises(OperatorError, match=r"\.csv, \.jsonl or \.parquet"):
        bs.output_format(tmp_path / "preds.xlsx")


def test_cli_scores_a_file_writes_rejects_next_to_it_and_prints_progress(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = shuffled_rows(30, seed=9)
    lines = [json.dumps({"id": r.id, "text": r.text}) for r in rows]
    lines.insert(10, json.dumps({"id": "empty", "text": "  "}))
    lines.insert(20, "not json")
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out" / "preds.csv"
    code = main(
        ["score", "--batch", str(source), "--out", str(out), "--model", str(model), "--progress-seconds", "0"]
    )
    captured = capsys.readouterr()
    assert code == 0
    with out.open(newline="") as fh:
        written = list(csv.DictReader(fh))
    assert {(w["id"], w["label"]) for w in written} == {(r.id, expected_label(r.text)) for r in rows}
    rejects = [
        json.loads(line) for line in (tmp_path / "out" / "preds.rejects.jsonl").read_text().splitlines()
    ]
    assert [(r["row"], r["id"], r["reason"]) for r in rejects] == [
        (11, "empty", "missing_text"),
        (21, "21", "unreadable_row"),
    ]
    err = captured.err.splitlines()
    assert err[0] == f"{source}: 32 rows, 30 to score, 2 rejected"
    progress = [line for line in err if line.startswith("scored ")]
    assert progress[0] == "scored 0/30 (0.0 %)  0 reviews/s  ETA unknown"
    assert re.fullmatch(r"scored 30/30 \(100\.0 %\)  [\d,]+ reviews/s  done", progress[-1])
    out_lines = captured.out.splitlines()
    assert re.fullmatch(
        rf"scored 30 of 32 rows in [\d.]+ s \([\d,]+ reviews/s, {re.escape(str(model))}, in this process\) "
        rf"-> {re.escape(str(out))}",
        out_lines[0],
    )
    assert (
        out_lines[1]
        == f"rejected 2 (missing_text 1, unreadable_row 1) -> {tmp_path / 'out' / 'preds.rejects.jsonl'}"
    )


def test_cli_refuses_texts_with_batch_and_batch_without_out(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "hello", "--batch", "x.csv", "--out", "y.csv"]) == 2
    assert main(["score", "--batch", "x.csv"]) == 2
    assert main(["score"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "error: give texts to score or --batch, not both",
        "error: --batch SOURCE needs --out PATH (and --out/--model need --batch)",
        "error: give at least one text to score, or --batch SOURCE --out PATH",
    ]


def violations(operation: str, params: dict[str, object]) -> Sequence[object]:
    return validate("sagemaker", operation, params)


def test_transform_requests_satisfy_sagemakers_constraints() -> None:
    name = bt.job_name()
    assert re.fullmatch(r"rs-batch-\d{8}-\d{6}-[0-9a-f]{6}", name)
    assert len(name) <= 63
    request = bt.transform_request(name, "rs-" + "m" * 60, "reviewsense-dev-lake-123456789012", "ml.m5.large")
    assert violations("CreateTransformJob", request) == []
    assert request["MaxPayloadInMB"] * request["MaxConcurrentTransforms"] <= 100
    assert violations("DescribeTransformJob", {"TransformJobName": name}) == []
    assert violations("StopTransformJob", {"TransformJobName": name}) == []
    # the checks are real: a name over 63 characters and an unknown instance type are refused
    bad = bt.transform_request("x" * 64, "m", "b", "ml.t2.medium")
    found = [(v.path, v.constraint.split(":")[0]) for v in validate("sagemaker", "CreateTransformJob", bad)]
    assert found == [
        ("transformJobName", "Member must have length less than or equal to 63"),
        ("transformJobName", "Member must satisfy regular expression pattern"),
        ("transformResources.instanceType", "Member must satisfy enum value set"),
    ]


def test_a_transform_part_and_its_output_key_follow_sagemakers_layout() -> None:
    rows = [bs.BatchRow(7, "a", "T", "great \u00e9"), bs.BatchRow(9, "b", "", "terrible")]
    assert bt.part_body(rows).decode().splitlines() == [
        '{"row": 7, "title": "T", "text": "great \u00e9"}',
        '{"row": 9, "title": "", "text": "terrible"}',
    ]
    assert bt.part_key("job", 3) == "batch/job/input/part-00003.jsonl"
    assert bt.output_key("job", 3) == "batch/job/output/part-00003.jsonl.out"
