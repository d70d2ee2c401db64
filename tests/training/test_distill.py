"""Distillation: the teacher file (written by training.teacher, read by training.distill) and the loss."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from training import teacher, train
from training.data import load_reviews
from training.distill import (
    PROBABILITY_COLUMNS,
    TEACHER_FILE,
    attach_teacher,
    distillation_loss,
    frame_keys,
    read_teacher,
    resolve_teacher_path,
    sharpen,
    text_sha,
)


def _teacher_rows(frame: pd.DataFrame, probs: np.ndarray, split: str = "train") -> pd.DataFrame:
    out = frame_keys(frame)
    out["split"] = split
    for i, col in enumerate(PROBABILITY_COLUMNS):
        out[col] = probs[:, i]
    return out


def _reviews() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "review_id": ["r1", "r2", "r3"],
            "title": ["Nice", "", "Meh"],
            "text": ["love it", "runs small", "it is ok"],
        }
    )


def test_the_key_is_the_review_id_and_its_text() -> None:
    assert text_sha("Nice", "love it") == text_sha("Nice", "love it")
    assert text_sha("Nice", "love it") != text_sha("", "Nice love it")
    keys = frame_keys(_reviews())
    assert list(keys.columns) == ["review_id", "text_sha"] and keys["text_sha"].str.len().eq(12).all()


def test_soft_labels_attach_only_to_the_same_review(tmp_path: Path) -> None:
    reviews = _reviews()
    probs = np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [0.2, 0.6, 0.2]])
    rows = _teacher_rows(reviews, probs)
    rows.loc[2, "text_sha"] = text_sha("Meh", "another review under the same id")
    path = tmp_path / "teacher.csv.gz"
    rows.to_csv(path, index=False)
    soft = attach_teacher(reviews, read_teacher(path))
    assert np.allclose(soft[:2], probs[:2])
    assert np.isnan(soft[2]).all()  # same id, other text: no soft label
    renamed = reviews.assign(review_id=["lake-a", "lake-b", "lake-c"])
    assert np.allclose(attach_teacher(renamed, read_teacher(path))[:2], probs[:2])  # same text, other id


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["p_neutral"]), "lacks columns"),
        (lambda f: f.assign(p_positive=f["p_positive"] + 0.5), "summing to 1"),
        (lambda f: pd.concat([f, f.iloc[:1]]), "duplicate"),
    ],
)
def test_a_broken_teacher_file_is_refused(tmp_path: Path, change: Any, message: str) -> None:
    rows = _teacher_rows(_reviews(), np.full((3, 3), 1 / 3))
    path = tmp_path / "teacher.csv"
    change(rows).to_csv(path, index=False)
    with pytest.raises(ValueError, match=message):
        read_teacher(path)


def test_temperature_softens_and_keeps_missing_rows_missing() -> None:
    probs = np.array([[0.8, 0.15, 0.05], [np.nan, np.nan, np.nan]])
    assert np.allclose(sharpen(probs, 1.0)[0], probs[0])
    soft = sharpen(probs, 3.0)
    assert soft[0, 0] < 0.8 and soft[0, 2] > 0.05 and np.isclose(soft[0].sum(), 1.0)
    assert np.isnan(soft[1]).all()


def test_the_loss_mixes_hard_and_soft_terms_on_rows_with_a_teacher() -> None:
    import torch
    import torch.nn.functional as F  # noqa: N812

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]], requires_grad=True)
    labels = torch.tensor([0, 1])
    soft = torch.tensor([[0.2, 0.3, 0.5], [0.0, 0.0, 0.0]])
    has = torch.tensor([1.0, 0.0])
    hard = F.cross_entropy(logits, labels)
    t = 2.0
    loss = distillation_loss(logits, labels, soft, has, hard_loss=hard, alpha=0.25, temperature=t)
    student = F.log_softmax(logits[0] / t, dim=-1)
    kl = float((soft[0] * (soft[0].log() - student)).sum())
    assert float(loss) == pytest.approx(0.25 * float(hard) + 0.75 * kl * t * t, rel=1e-6)
    no_teacher = distillation_loss(
        logits, labels, soft, torch.zeros(2), hard_loss=hard, alpha=0.25, temperature=t
    )
    assert float(no_teacher) == pytest.approx(float(hard))
    loss.backward()  # differentiable end to end
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0


def test_teacher_paths_resolve_from_the_source_directory(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_teacher_path("") is None and resolve_teacher_path("none") is None
    assert resolve_teacher_path("packaged") == TEACHER_FILE
    assert resolve_teacher_path("training/distill.py") == Path(train.__file__).with_name("distill.py")


def test_a_student_follows_its_teacher(
    features_dir: Path, tiny_model_dir: Path, tmp_path: Path, train_args: Any
) -> None:
    """A teacher that calls every training review negative, weighted fully: the student learns to say so."""
    frame = load_reviews(features_dir / "train")
    probs = np.tile([0.98, 0.01, 0.01], (len(frame), 1))
    path = tmp_path / "teacher.csv.gz"
    _teacher_rows(frame, probs).to_csv(path, index=False)
    args = train_args(features_dir, tiny_model_dir, tmp_path / "student")
    metrics = train.main(
        [
            *args,
            "--teacher-probabilities",
            str(path),
            "--distill-alpha",
            "0",
            "--distill-temperature",
            "1",
            "--tune-decision",
            "false",
            "--ensemble-linear",
            "false",
            "--class-weighting",
            "none",
        ]
    )
    assert metrics["config"]["teacher_probabilities"] == str(path)
    raw = metrics["test"]["raw"]
    assert raw["per_class"]["negative"]["recall"] == 1.0  # all called negative, as the teacher says
    assert raw["per_class"]["positive"]["recall"] == 0.0


def test_the_teacher_file_is_written_from_member_scores(
    features_dir: Path, trained: dict[str, Any], tmp_path: Path
) -> None:
    out, card_path = tmp_path / "probabilities.csv.gz", tmp_path / "teacher.json"
    card = teacher.main(
        [
            "--models",
            str(trained["model_dir"]),
            "--features",
            str(features_dir),
            "--out",
            str(out),
            "--card",
            str(card_path),
            "--score-cache",
            "",
            "--precision",
            "fp32",
        ]
    )
    table = read_teacher(out)
    rows = {s: len(load_reviews(features_dir / s)) for s in ("train", "validation", "test")}
    assert table["split"].value_counts().to_dict() == rows
    assert json.loads(card_path.read_text())["file_sha256"] == card["file_sha256"]
    assert card["test"]["tuned"]["n"] == rows["test"]
    soft = attach_teacher(load_reviews(features_dir / "train"), table)
    assert np.isfinite(soft).all()  # every training review has its soft label
