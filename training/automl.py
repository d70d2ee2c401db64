"""Candidate search under a time budget, with a leaderboard (what the course did with Autopilot).

``reviewsense train --candidates linear,minilm-demo --data reviews.csv.gz`` runs this: it featurizes the
data if given raw, trains each candidate (the TF-IDF + LR baseline and / or transformer configurations,
run in-process by ``training.finetune``) while time is left, ranks them by validation macro-F1 (never
test), writes
``leaderboard.json`` / ``leaderboard.csv`` and copies the winner to ``<output>/best`` plus
``<output>/best/model.tar.gz``.

Candidates are names from :data:`CANDIDATES`, or a JSON list (inline or a file) of
``{"name": ..., "kind": "linear" | "transformer", "params": {...}}`` where params are the ``--key value``
arguments of ``training.train`` (the fields of ``training.train_config.TrainConfig``) /
``training.baselines``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.config import env, parse_config, setup_logging
from training.model_io import pack_model

log = logging.getLogger("training.automl")

CANDIDATES: dict[str, dict[str, Any]] = {
    "linear": {"kind": "linear", "params": {"c": 4.0, "text_input": "title_text"}},
    "linear-text": {"kind": "linear", "params": {"c": 4.0, "text_input": "text"}},
    "linear-c1": {"kind": "linear", "params": {"c": 1.0, "text_input": "title_text"}},
    # the bounded demo budget: about 7-9 minutes on 2 cores
    "minilm-demo": {"kind": "transformer", "params": {"max_steps": 250, "epochs": 1}},
    "minilm-1ep": {"kind": "transformer", "params": {"max_steps": 0, "epochs": 1}},
    # the best CPU configuration found (see docs/model.md): 45-65 minutes on 2 cores
    "minilm-best": {
        "kind": "transformer",
        "params": {"max_steps": 0, "epochs": 3, "learning_rate": 8e-5, "class_weighting": "sqrt"},
    },
    "minilm-focal": {
        "kind": "transformer",
        "params": {"max_steps": 0, "epochs": 2, "focal_gamma": 2.0, "class_weighting": "sqrt"},
    },
    # plain recipe: 2 epochs, lr 5e-5, no class weights (about 20 minutes on 2 cores with bf16)
    "minilm-2ep": {
        "kind": "transformer",
        "params": {"max_steps": 0, "epochs": 2, "learning_rate": 5e-5, "class_weighting": "none"},
    },
    "minilm-rating": {
        "kind": "transformer",
        "params": {
            "max_steps": 0,
            "epochs": 2,
            "learning_rate": 5e-5,
            "class_weighting": "none",
            "target": "rating",
        },
    },
    # the larger offline encoder (`make install-mpnet`): one epoch is about an hour on 2 cores with bf16
    "mpnet-1ep": {
        "kind": "transformer",
        "params": {
            "model_name_or_path": "packaged:all-mpnet-base-v2",
            "max_steps": 0,
            "epochs": 1,
            "batch_size": 16,
            "learning_rate": 3e-5,
            "class_weighting": "none",
            "eval_steps": 510,
            "early_stopping_patience": 0,
        },
    },
    # the GPU recipes (H200: 133 s and 67 s of training, measured; 2 CPU cores: about 2.8 and 1.9 hours)
    "mpnet-3ep": {
        "kind": "transformer",
        "params": {
            "model_name_or_path": "packaged:all-mpnet-base-v2",
            "max_steps": 0,
            "epochs": 3,
            "batch_size": 16,
            "learning_rate": 2e-5,
            "class_weighting": "none",
            "eval_steps": 340,
            "early_stopping_patience": 0,
        },
    },
    "mpnet-rating-2ep": {
        "kind": "transformer",
        "params": {
            "model_name_or_path": "packaged:all-mpnet-base-v2",
            "max_steps": 0,
            "epochs": 2,
            "batch_size": 32,
            "learning_rate": 3e-5,
            "class_weighting": "none",
            "target": "rating",
            "eval_steps": 170,
            "early_stopping_patience": 0,
        },
    },
}


@dataclass
class AutoMLConfig:
    """Search model / hyperparameter candidates under a time budget and pick the best on validation."""

    candidates: str = field(
        default="linear,minilm-demo",
        metadata={"help": f"comma-separated names ({', '.join(CANDIDATES)}) or a JSON list / JSON file"},
    )
    data: str = field(
        default="", metadata={"help": "raw labelled reviews to featurize first (CSV or Parquet)"}
    )
    train: str = field(
        default_factory=lambda: env("SM_CHANNEL_TRAIN", ".artifacts/features/train"),
        metadata={"help": "training split (when --data is not given)"},
    )
    validation: str = field(
        default_factory=lambda: env("SM_CHANNEL_VALIDATION", ".artifacts/features/validation"),
        metadata={"help": "validation split (ranking)"},
    )
    test: str = field(
        default_factory=lambda: env("SM_CHANNEL_TEST", ".artifacts/features/test"),
        metadata={"help": "test split (reported, never used to rank)"},
    )
    output_dir: str = field(
        default_factory=lambda: env("SM_MODEL_DIR", ".artifacts/automl"),
        metadata={"help": "leaderboard, one directory per candidate, best/"},
    )
    time_budget_minutes: float = field(default=30.0, metadata={"help": "total budget; later candidates skip"})
    model_name_or_path: str = field(
        default="", metadata={"help": "override the encoder of transformer candidates"}
    )
    seed: int = field(default=42, metadata={"help": "seed of the split and of every candidate"})
    json: bool = field(default=False, metadata={"help": "print the summary object on stdout"})


def resolve_candidates(spec: str) -> list[dict[str, Any]]:
    text = spec.strip()
    if text.startswith("["):
        raw = json.loads(text)
    elif text.endswith(".json") and Path(text).is_file():
        raw = json.loads(Path(text).read_text(encoding="utf-8"))
    else:
        raw = []
        for name in (n.strip() for n in text.split(",") if n.strip()):
            if name not in CANDIDATES:
                raise ValueError(f"unknown candidate {name!r}; known: {', '.join(CANDIDATES)}")
            raw.append({"name": name, **CANDIDATES[name]})
    out = []
    for cand in raw:
        if cand.get("kind") not in ("linear", "transformer"):
            raise ValueError(f"candidate {cand.get('name')!r}: kind must be linear or transformer")
        out.append({"name": str(cand["name"]), "kind": cand["kind"], "params": dict(cand.get("params", {}))})
    return out


def _argv(params: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for key, value in params.items():
        args += [f"--{key.replace('_', '-')}", str(value).lower() if isinstance(value, bool) else str(value)]
    return args


def run_candidate(
    cand: dict[str, Any], cfg: AutoMLConfig, channels: dict[str, str], remaining_minutes: float
) -> dict[str, Any]:
    out = Path(cfg.output_dir) / "candidates" / cand["name"]
    common = {
        "train": channels["train"],
        "validation": channels["validation"],
        "test": channels["test"],
        "model_dir": str(out / "model"),
        "output_data_dir": str(out / "output"),
    }
    t0 = time.perf_counter()
    if cand["kind"] == "linear":
        from training import baselines

        metrics = baselines.main(_argv({**common, **cand["params"]}))
    else:
        from training.finetune import fine_tune
        from training.train_config import TrainConfig

        params: dict[str, Any] = {"seed": cfg.seed, **cand["params"]}
        if cfg.model_name_or_path:
            params["model_name_or_path"] = cfg.model_name_or_path
        params["max_train_minutes"] = max(0.5, remaining_minutes * 0.8)
        metrics = fine_tune(parse_config(TrainConfig, _argv({**common, **params})))
    val = metrics["validation"]["tuned"]
    test = metrics.get("test", {}).get("tuned", {})
    return {
        "name": cand["name"],
        "kind": cand["kind"],
        "status": metrics.get("status", "ok"),
        "val_macro_f1": round(val["macro_f1"], 4),
        "val_accuracy": round(val["accuracy"], 4),
        "test_macro_f1": round(test["macro_f1"], 4) if test else None,
        "test_accuracy": round(test["accuracy"], 4) if test else None,
        "seconds": round(time.perf_counter() - t0, 1),
        "model_dir": str(out / "model"),
        "params": cand["params"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    setup_logging()
    cfg = parse_config(AutoMLConfig, argv)
    start = time.perf_counter()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    candidates = resolve_candidates(cfg.candidates)
    summary: dict[str, Any]
    with contextlib.redirect_stdout(sys.stderr):
        channels = {"train": cfg.train, "validation": cfg.validation, "test": cfg.test}
        if cfg.data:
            from training import featurize

            feat = out / "features"
            featurize.main(["--input", cfg.data, "--output-dir", str(feat), "--seed", str(cfg.seed)])
            channels = {s: str(feat / s) for s in ("train", "validation", "test")}
        board: list[dict[str, Any]] = []
        for cand in candidates:
            elapsed = (time.perf_counter() - start) / 60
            remaining = cfg.time_budget_minutes - elapsed
            if remaining <= 0:
                board.append({"name": cand["name"], "kind": cand["kind"], "status": "skipped: time budget"})
                log.warning(
                    "candidate %s skipped: time budget of %.1f min spent",
                    cand["name"],
                    cfg.time_budget_minutes,
                )
                continue
            log.info("candidate %s (%s), %.1f min left", cand["name"], cand["kind"], remaining)
            try:
                board.append(run_candidate(cand, cfg, channels, remaining))
            except Exception as exc:  # one failing candidate must not end the search
                log.exception("candidate %s failed", cand["name"])
                board.append({"name": cand["name"], "kind": cand["kind"], "status": f"failed: {exc}"})
        ranked = sorted(
            (r for r in board if "val_macro_f1" in r), key=lambda r: r["val_macro_f1"], reverse=True
        )
        leaderboard = ranked + [r for r in board if "val_macro_f1" not in r]
        for i, row in enumerate(leaderboard, start=1):
            row["rank"] = i if "val_macro_f1" in row else None
        summary = {
            "leaderboard": leaderboard,
            "best": ranked[0]["name"] if ranked else None,
            "seconds": round(time.perf_counter() - start, 1),
            "config": asdict(cfg),
        }
        if ranked:
            best_dir = out / "best"
            if best_dir.exists():
                shutil.rmtree(best_dir)
            shutil.copytree(ranked[0]["model_dir"], best_dir)
            summary["best_model_dir"] = str(best_dir)
            summary["best_model_tar"] = str(pack_model(best_dir, best_dir / "model.tar.gz"))
        (out / "leaderboard.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        columns = [
            "rank",
            "name",
            "kind",
            "status",
            "val_macro_f1",
            "val_accuracy",
            "test_macro_f1",
            "test_accuracy",
            "seconds",
        ]
        with (out / "leaderboard.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(leaderboard)
        log.info("leaderboard: %s", ", ".join(f"{r['name']}={r.get('val_macro_f1')}" for r in leaderboard))
    if cfg.json:
        sys.stdout.write(json.dumps(summary) + "\n")
    return summary


if __name__ == "__main__":
    main()
