"""Training-throughput benchmark: length-bucketed dynamic padding vs fixed max-length padding.

The modes (``--modes``, default ``bucket,fixed,bucket-bf16``: padding, optionally with bf16 autocast) train
the same model (same initial weights, same seed) for the same number of steps in one process, interleaved
step by step, so the speed-up is measured side by side under the same machine load.
Reports samples/s, seconds/step, mean padded batch width and the share of padding tokens; also the
inference throughput of the length-sorted scoring path. ``make bench-train`` runs it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from training import packaged
from training.config import env, parse_config, setup_logging
from training.data import load_reviews
from training.encoding import collate, encode, make_batches, predict_proba
from training.train_config import DEFAULT_MODEL

log = logging.getLogger("training.bench")


@dataclass
class BenchConfig:
    """Measure training throughput with bucketed dynamic padding and with fixed padding, side by side."""

    data: str = field(
        default_factory=lambda: env("SM_CHANNEL_TRAIN", ".artifacts/features/train"),
        metadata={"help": "labelled reviews (split dir, Parquet lake or raw CSV)"},
    )
    model_name_or_path: str = field(default=DEFAULT_MODEL, metadata={"help": "encoder to benchmark"})
    modes: str = field(
        default="bucket,fixed,bucket-bf16",
        metadata={"help": "modes, in order: padding (bucket | fixed), optionally -bf16 (autocast)"},
    )
    steps: int = field(default=20, metadata={"help": "timed training steps per mode"})
    warmup_steps: int = field(default=2, metadata={"help": "untimed steps per mode"})
    batch_size: int = field(default=32, metadata={"help": "training batch size"})
    max_seq_length: int = field(default=128, metadata={"help": "truncation length and fixed padding width"})
    text_input: str = field(default="title_text", metadata={"help": "text | title_text"})
    bucket_multiplier: int = field(default=50, metadata={"help": "bucket chunk = batch size * this"})
    inference_rows: int = field(default=512, metadata={"help": "rows for the inference throughput; 0 = skip"})
    num_threads: int = field(default=0, metadata={"help": "torch CPU threads; 0 = all cores"})
    seed: int = field(default=42, metadata={"help": "seed of the sampled batches"})
    output: str = field(default=".artifacts/bench/bench.json", metadata={"help": "where results are written"})
    json: bool = field(default=False, metadata={"help": "print the result object on stdout"})


def run(cfg: BenchConfig) -> dict[str, Any]:  # noqa: PLR0915  a benchmark read top to bottom: set up, interleaved steps, summary
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    frame = load_reviews(cfg.data)
    path = packaged.resolve(cfg.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    pad_id = int(tokenizer.pad_token_id or 0)
    data = encode(tokenizer, frame, cfg.text_input, cfg.max_seq_length)
    lengths = data.lengths
    torch.manual_seed(cfg.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=3, ignore_mismatched_sizes=True
    )
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}

    # the modes are interleaved step by step (each with its own copy of the model and optimizer), so a
    # machine whose load changes during the run slows both alike
    modes = [m.strip() for m in cfg.modes.split(",") if m.strip()]
    state: dict[str, dict[str, Any]] = {}
    for mode in modes:
        padding, _, precision = mode.partition("-")
        if padding not in {"bucket", "fixed"} or precision not in {"", "fp32", "bf16"}:
            raise ValueError(f"unknown mode {mode!r} (bucket | fixed, optionally with -bf16)")
        m = copy.deepcopy(model)
        m.load_state_dict(initial)
        m.train()
        batches = make_batches(
            lengths, cfg.batch_size, np.random.default_rng(cfg.seed), padding, cfg.bucket_multiplier
        )
        state[mode] = {
            "model": m,
            "optimizer": torch.optim.AdamW(m.parameters(), lr=5e-5),
            "batches": batches[: cfg.warmup_steps + cfg.steps],
            "fixed": padding == "fixed",
            "bf16": precision == "bf16",
            "seconds": 0.0,
            "samples": 0,
            "tokens": 0,
            "padded": 0,
        }
    for i in range(cfg.warmup_steps + cfg.steps):
        for mode in modes:
            st = state[mode]
            if i >= len(st["batches"]):
                continue
            idx = st["batches"][i]
            inputs, labels = collate(data, idx, pad_id, cfg.max_seq_length if st["fixed"] else None)
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=st["bf16"]):
                logits = st["model"](**inputs).logits
            loss: Any = torch.nn.functional.cross_entropy(logits.float(), labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(st["model"].parameters(), 1.0)
            st["optimizer"].step()
            st["optimizer"].zero_grad(set_to_none=True)
            if i >= cfg.warmup_steps:
                st["seconds"] += time.perf_counter() - t0
                st["samples"] += len(idx)
                st["tokens"] += int(inputs["attention_mask"].sum())
                st["padded"] += int(inputs["attention_mask"].numel())
    results: dict[str, Any] = {}
    for mode in modes:
        st = state[mode]
        timed = max(len(st["batches"]) - cfg.warmup_steps, 1)
        results[mode] = {
            "steps": timed,
            "samples_per_second": round(st["samples"] / max(st["seconds"], 1e-9), 2),
            "seconds_per_step": round(st["seconds"] / timed, 3),
            "mean_batch_width": round(st["padded"] / max(st["samples"], 1), 1),
            "padding_share": round(1 - st["tokens"] / max(st["padded"], 1), 3),
        }
        log.info("bench mode: %s %s", mode, " ".join(f"{k}: {v}" for k, v in results[mode].items()))
    summary: dict[str, Any] = {
        "model": cfg.model_name_or_path,
        "threads": torch.get_num_threads(),
        "batch_size": cfg.batch_size,
        "max_seq_length": cfg.max_seq_length,
        "mean_tokens_per_example": round(float(lengths.mean()), 1),
        "train": results,
    }
    if "bucket" in results and "fixed" in results:
        summary["speedup_bucket_over_fixed"] = round(
            results["bucket"]["samples_per_second"] / max(results["fixed"]["samples_per_second"], 1e-9), 2
        )
    if "bucket" in results and "bucket-bf16" in results:
        summary["speedup_bf16_over_fp32"] = round(
            results["bucket-bf16"]["samples_per_second"] / max(results["bucket"]["samples_per_second"], 1e-9),
            2,
        )
    if cfg.inference_rows > 0:
        n = min(cfg.inference_rows, len(frame))
        sub = encode(tokenizer, frame.iloc[:n], cfg.text_input, cfg.max_seq_length)
        t0 = time.perf_counter()
        predict_proba(model, sub, 64, pad_id)
        summary["inference_reviews_per_second"] = round(n / (time.perf_counter() - t0), 1)
    summary["config"] = asdict(cfg)
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    setup_logging()
    cfg = parse_config(BenchConfig, argv)
    with contextlib.redirect_stdout(sys.stderr):
        summary = run(cfg)
        out = Path(cfg.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        log.info(
            "speed-up of bucketed dynamic padding over fixed: %s; of bf16 autocast over fp32: %s",
            summary.get("speedup_bucket_over_fixed"),
            summary.get("speedup_bf16_over_fp32"),
        )
    if cfg.json:
        sys.stdout.write(json.dumps(summary) + "\n")
    return summary


if __name__ == "__main__":
    main()
