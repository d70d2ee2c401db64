"""The SageMaker serving handler and the plain-JSON linear model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from training import inference
from training.data import load_reviews
from training.linear import LinearCandidate, LinearParams


def test_input_fn_accepts_instances_lists_objects_and_json_lines() -> None:
    body = json.dumps({"instances": ["great", {"title": "Nope", "text": "bad"}]})
    assert inference.input_fn(body, "application/json") == ["great", {"title": "Nope", "text": "bad"}]
    assert inference.input_fn(json.dumps(["a", "b"]), "application/json; charset=utf-8") == ["a", "b"]
    assert inference.input_fn(json.dumps({"text": "x"}).encode(), "application/json") == [{"text": "x"}]
    lines = '{"text": "a"}\n\n"b"\n'
    assert inference.input_fn(lines, "application/jsonlines") == [{"text": "a"}, "b"]
    with pytest.raises(ValueError, match="unsupported content type"):
        inference.input_fn("x", "image/png")


def test_handler_round_trip(trained: dict[str, Any]) -> None:
    model = inference.model_fn(str(trained["model_dir"]))
    items = inference.input_fn(
        json.dumps({"instances": ["love this dress", {"title": "Awful", "text": "returned it"}]}),
        "application/json",
    )
    preds = inference.predict_fn(items, model)
    assert len(preds) == 2
    for p in preds:
        assert set(p["probabilities"]) == {"negative", "neutral", "positive"}
        assert p["label"] == max(p["probabilities"], key=p["probabilities"].get)
        assert abs(sum(p["probabilities"].values()) - 1.0) < 1e-6
        assert p["score"] == max(p["probabilities"].values())
    body = json.loads(inference.output_fn(preds, "application/json"))
    assert body["predictions"] == preds
    jl = inference.output_fn(preds, "application/jsonlines").splitlines()
    assert [json.loads(x) for x in jl] == preds


def test_normalize_item_rejects_non_text() -> None:
    assert inference.normalize_item({"review_text": " hi ", "title": None}) == {"title": "", "text": "hi"}
    with pytest.raises(ValueError):
        inference.normalize_item(42)


def test_exported_linear_model_matches_scikit_learn(features_dir: Path, tmp_path: Path) -> None:
    train = load_reviews(features_dir / "train")
    test = load_reviews(features_dir / "test")
    model = LinearCandidate(LinearParams(min_df=1, c=2.0)).fit(train)
    model.save(tmp_path)
    served = inference.LinearTextModel.load(tmp_path / inference.LINEAR_MODEL_FILE)
    items = [{"title": t, "text": x} for t, x in zip(test["title"], test["text"], strict=True)]
    assert np.allclose(served.predict_proba_items(items), model.predict_proba(test), atol=1e-5)
