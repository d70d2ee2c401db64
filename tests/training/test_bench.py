"""The training benchmark runs its modes side by side (tiny model, a few steps)."""

from __future__ import annotations

import json
from pathlib import Path

from training import bench


def test_bench_compares_bucketed_and_fixed_padding(
    features_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    summary = bench.main(
        [
            "--data",
            str(features_dir / "train"),
            "--model-name-or-path",
            str(tiny_model_dir),
            "--steps",
            "3",
            "--warmup-steps",
            "1",
            "--batch-size",
            "8",
            "--max-seq-length",
            "32",
            "--inference-rows",
            "16",
            "--output",
            str(tmp_path / "bench.json"),
        ]
    )
    train = summary["train"]
    assert set(train) == {"bucket", "fixed", "bucket-bf16"}
    assert {mode["steps"] for mode in train.values()} == {3}  # warm-up steps are not timed
    assert train["bucket-bf16"]["padding_share"] == train["bucket"]["padding_share"]
    assert train["fixed"]["mean_batch_width"] == 32
    assert train["bucket"]["padding_share"] < train["fixed"]["padding_share"]
    # The speed-ups are the ratios of the modes' throughputs (how large they are is the benchmark's report).
    ratio = train["bucket"]["samples_per_second"] / train["fixed"]["samples_per_second"]
    assert summary["speedup_bucket_over_fixed"] == round(ratio, 2)
    ratio = train["bucket-bf16"]["samples_per_second"] / train["bucket"]["samples_per_second"]
    assert summary["speedup_bf16_over_fp32"] == round(ratio, 2)
    assert isinstance(summary["inference_reviews_per_second"], float)
    assert json.loads((tmp_path / "bench.json").read_text()) == json.loads(json.dumps(summary))
