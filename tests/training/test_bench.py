"""The training benchmark runs its modes side by side (tiny model, a few steps)."""

from __future__ import annotations

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
    assert set(summary["train"]) == {"bucket", "fixed", "bucket-bf16"}
    assert summary["train"]["bucket-bf16"]["padding_share"] == summary["train"]["bucket"]["padding_share"]
    assert summary["speedup_bf16_over_fp32"] > 0
    assert summary["train"]["fixed"]["mean_batch_width"] == 32
    assert summary["train"]["bucket"]["padding_share"] < summary["train"]["fixed"]["padding_share"]
    assert summary["speedup_bucket_over_fixed"] > 0
    assert summary["inference_reviews_per_second"] > 0
    assert (tmp_path / "bench.json").is_file()
