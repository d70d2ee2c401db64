"""Serving throughput of one transformer: PyTorch fp32 vs ONNX Runtime fp32 / int8 variants, side by side.

Decides what ``training.onnx_export`` writes (per-channel or per-tensor int8 weights, with or without
ONNX Runtime's transformer graph optimizer) and shows what the endpoint gains over PyTorch. Every variant
scores the same real reviews in requests of ``--batch-size`` (each request one ``predict_proba`` call, as
the endpoint receives them), round after round in turn, so a contended machine slows all of them alike:
compare the ratios. ``throughput`` is the measurement, for other benchmarks to call.

    python -m training.bench_serving --reviews 1024 --batch-size 32 --rounds 2
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from training import onnx_export, packaged
from training.config import parse_config, setup_logging
from training.data import load_reviews
from training.inference import DECISION_FILE, LABEL_MAP_FILE, ONNX_KEY, SentimentPredictor

log = logging.getLogger("training.bench_serving")
DATASET = "../shared/data/womens_clothing_ecommerce_reviews.csv.gz"  # as the Makefile's DATA
#: The baseline: a plain ``transformers`` text-classification pipeline on the same fp32 weights.
PIPELINE = "transformers-pipeline"
#: name -> (ONNX file or None for PyTorch, graph optimizer, per-channel int8; None = fp32)
VARIANTS: dict[str, tuple[str | None, bool, bool | None]] = {
    PIPELINE: (None, False, None),
    "torch-fp32": (None, False, None),
    "onnx-fp32": ("model.onnx", False, None),
    "onnx-fp32-opt": ("model.opt.onnx", True, None),
    "onnx-int8-tensor": ("model.int8.tensor.onnx", False, False),
    "onnx-int8-channel": ("model.int8.channel.onnx", False, True),
    "onnx-int8-tensor-opt": ("model.opt.int8.tensor.onnx", True, False),
    "onnx-int8-channel-opt": ("model.opt.int8.channel.onnx", True, True),
}


@dataclass
class BenchServingConfig:
    """Reviews per second of PyTorch and of ONNX Runtime variants of one model, measured side by side."""

    model: str = field(
        default="", metadata={"help": "model directory (HF weights + tokenizer); empty = packaged MiniLM-L6"}
    )
    data: str = field(default=DATASET, metadata={"help": "raw Kaggle CSV or a featurized split"})
    reviews: int = field(default=1024, metadata={"help": "reviews scored per variant and round"})
    batch_size: int = field(default=32, metadata={"help": "reviews per request"})
    rounds: int = field(default=2, metadata={"help": "rounds; each variant's best round is reported"})
    variants: str = field(default=",".join(VARIANTS), metadata={"help": "comma-separated variant names"})
    max_seq_length: int = field(default=128, metadata={"help": "tokens per review after truncation"})
    seed: int = field(default=0, metadata={"help": "sample of reviews and random head"})
    workdir: str = field(default="", metadata={"help": "where the variants are written; empty = a temp dir"})


@dataclass(frozen=True)
class Rate:
    """One measurement: ``reviews`` scored in ``seconds`` in requests of ``batch_size``."""

    reviews: int
    seconds: float
    batch_size: int

    @property
    def per_second(self) -> float:
        return self.reviews / self.seconds if self.seconds > 0 else 0.0


def throughput(predictor: Any, reviews: Sequence[object], batch_size: int) -> tuple[Rate, np.ndarray]:
    """Score ``reviews`` in requests of ``batch_size``: the rate and the raw probabilities."""
    out = []
    started = time.perf_counter()
    for start in range(0, len(reviews), batch_size):
        out.append(predictor.predict_proba(reviews[start : start + batch_size], adjusted=False))
    seconds = time.perf_counter() - started
    return Rate(len(reviews), seconds, batch_size), np.concatenate(out)


class PipelineBaseline:
    """A plain ``pipeline("text-classification")`` on the same weights: no serving path of this project.

    The review text goes in as is (truncated to the model's ``max_seq_length``), in batches of the request
    size; the probabilities come back in the model's label order, so agreement can be compared.
    """

    def __init__(self, model_dir: Path, batch_size: int, max_seq_length: int) -> None:
        from transformers import pipeline

        self.pipe: Any = pipeline(
            "text-classification", model=str(model_dir), tokenizer=str(model_dir), device=-1
        )
        labels: dict[int, str] = {int(k): str(v) for k, v in (self.pipe.model.config.id2label or {}).items()}
        self.order = [labels[i] for i in range(len(labels))]
        self.batch_size, self.max_seq_length = batch_size, max_seq_length

    def predict_proba(self, reviews: Sequence[object], adjusted: bool = False) -> np.ndarray:
        texts = [str(r.get("text", "")) if isinstance(r, dict) else str(r) for r in reviews]
        answers: list[list[dict[str, Any]]] = self.pipe(
            texts, batch_size=self.batch_size, truncation=True, max_length=self.max_seq_length, top_k=None
        )
        return np.asarray(
            [[{a["label"]: a["score"] for a in row}[lab] for lab in self.order] for row in answers]
        )


def sample_reviews(path: str | Path, n: int, seed: int) -> list[dict[str, str]]:
    """``n`` reviews with text (title and text), sampled with ``seed``."""
    frame = load_reviews(Path(path))
    frame = frame[frame["text"].astype(str).str.strip() != ""]
    picked = frame.sample(n=min(n, len(frame)), random_state=seed)
    return [{"title": str(t), "text": str(x)} for t, x in zip(picked["title"], picked["text"], strict=True)]


def random_head_model(target: Path, max_seq_length: int, seed: int) -> Path:
    """The packaged MiniLM-L6 with a random 3-class head, as a model directory (no ONNX yet)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    source = str(packaged.minilm_path())
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=3)
    model.save_pretrained(str(target))
    AutoTokenizer.from_pretrained(source).save_pretrained(str(target))
    (target / LABEL_MAP_FILE).write_text(json.dumps({"labels": ["negative", "neutral", "positive"]}))
    decision = {"model_type": "transformer", "text_input": "title_text", "max_seq_length": max_seq_length}
    (target / DECISION_FILE).write_text(json.dumps(decision))
    return target


def build_variants(base: Path, names: Sequence[str], into: Path) -> dict[str, Path]:
    """A model directory per variant under ``into``: links to ``base``'s files, its own ONNX file named in
    decision.json (the files made here are written under ``into``; ``base`` is only read)."""
    base, into = base.resolve(), into.resolve()
    into.mkdir(parents=True, exist_ok=True)
    fp32 = base / onnx_export.ONNX_FP32
    if not fp32.is_file():
        fp32 = into / onnx_export.ONNX_FP32
        if not fp32.is_file():
            onnx_export.export_fp32(base, fp32)
    optimized = into / "model.opt.onnx"
    if any(VARIANTS[n][1] for n in names) and not optimized.is_file():
        onnx_export.optimize_graph(base, fp32, optimized)
    dirs: dict[str, Path] = {}
    for name in names:
        onnx_file, optimize, per_channel = VARIANTS[name]
        made = fp32 if onnx_file == onnx_export.ONNX_FP32 else optimized if per_channel is None else None
        if onnx_file and per_channel is not None:
            made = into / onnx_file
            if not made.is_file():
                source = optimized if optimize else fp32
                onnx_export.quantize_int8(source, made, per_channel=per_channel, optimized=optimize)
        folder = into / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        for f in base.iterdir():
            if f.is_file() and f.suffix != ".onnx" and f.name != DECISION_FILE:
                (folder / f.name).symlink_to(f)
        decision = json.loads((base / DECISION_FILE).read_text())
        decision.pop(ONNX_KEY, None)
        if onnx_file and made is not None:
            (folder / onnx_file).symlink_to(made)
            decision[ONNX_KEY] = onnx_file
        (folder / DECISION_FILE).write_text(json.dumps(decision))
        dirs[name] = folder
    return dirs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    setup_logging()
    cfg = parse_config(BenchServingConfig, argv)
    names = [n.strip() for n in cfg.variants.split(",") if n.strip()]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown variants {unknown} (known: {', '.join(VARIANTS)})")
    work = Path(cfg.workdir or tempfile.mkdtemp(prefix="bench-serving-"))
    base = work / "base"
    if cfg.model:
        base = Path(cfg.model)
    elif not (base / "config.json").is_file():
        base.mkdir(parents=True, exist_ok=True)
        random_head_model(base, cfg.max_seq_length, cfg.seed)
    reviews = sample_reviews(cfg.data, cfg.reviews, cfg.seed)
    dirs = build_variants(base, names, work / "variants")
    predictors: dict[str, Any] = {
        n: PipelineBaseline(base, cfg.batch_size, cfg.max_seq_length)
        if n == PIPELINE
        else SentimentPredictor(d, backend="torch" if VARIANTS[n][0] is None else "onnx")
        for n, d in dirs.items()
    }
    for p in predictors.values():  # warm-up: first-call allocations and graph preparation
        p.predict_proba(reviews[: cfg.batch_size])
    best: dict[str, Rate] = {}
    probs: dict[str, np.ndarray] = {}
    for round_ in range(cfg.rounds):
        for name, predictor in predictors.items():
            rate, probs[name] = throughput(predictor, reviews, cfg.batch_size)
            log.info("round %d %s: %.1f reviews/s", round_ + 1, name, rate.per_second)
            if name not in best or rate.per_second > best[name].per_second:
                best[name] = rate
    reference = names[0]
    results: dict[str, Any] = {"config": asdict(cfg), "reference": reference, "variants": {}}
    for name in names:
        diff = np.abs(probs[name] - probs[reference])
        same = float((probs[name].argmax(axis=1) == probs[reference].argmax(axis=1)).mean())
        onnx_file = VARIANTS[name][0]
        results["variants"][name] = {
            "reviews_per_second": round(best[name].per_second, 1),
            "ratio": round(best[name].per_second / best[reference].per_second, 2),
            "max_abs_prob_diff": float(diff.max()),
            "same_label": round(same, 4),
            "onnx_mb": round((dirs[name] / onnx_file).stat().st_size / 1e6, 1) if onnx_file else None,
        }
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
