"""Export a fine-tuned transformer model directory to ONNX and quantise it to int8, at packaging time.

PyTorch fp32 on a 2-core CPU endpoint scores a few dozen reviews per second; ONNX Runtime with int8
dynamically quantised weights scores several times more with the same labels. The export runs where the
model directory is written (``training.finetune.save_model``, ``training.ensemble``), so every
``model.tar.gz`` carries:

  model.onnx          the fp32 graph (inputs ``input_ids`` / ``attention_mask`` / ``token_type_ids`` when
                      the model takes them, dynamic batch and sequence axes; output ``logits``)
  model.int8.onnx     the same graph with int8 weights (ONNX Runtime dynamic quantisation)
  decision.json       ``"onnx": "model.int8.onnx"``: the file ``training.inference`` serves

The HF weights stay in the directory: the PyTorch path still loads them (GPU scoring, equivalence tests,
further fine-tuning). An ensemble's transformer members are exported one by one (``export_model_dir``).
"""

from __future__ import annotations

import inspect
import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.inference import DECISION_FILE, ONNX_KEY

log = logging.getLogger("training.onnx_export")

ONNX_FP32 = "model.onnx"
ONNX_INT8 = "model.int8.onnx"
OPSET = 17
#: The inputs a sequence classifier may take, in the order the exported graph declares them.
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
#: Per-channel weight scales: measured on MiniLM-L6 (training/bench_serving.py) as the same speed as
#: per-tensor and closer to fp32, so they are the default.
PER_CHANNEL = True
#: The exported fp32 graph must reproduce PyTorch's logits this closely (measured: about 1e-6).
VERIFY_ATOL = 1e-3


class ExportError(RuntimeError):
    """The exported graph does not compute what the PyTorch model computes."""


@dataclass(frozen=True)
class Exported:
    """What one export wrote into a model directory."""

    model_dir: Path
    fp32: Path
    int8: Path | None
    served: str  # the file named in decision.json
    inputs: tuple[str, ...]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "served": self.served,
            "fp32": self.fp32.name,
            "int8": self.int8.name if self.int8 else None,
            "inputs": list(self.inputs),
            "seconds": round(self.seconds, 2),
        }


def is_transformer_dir(model_dir: Path) -> bool:
    """A model directory with HF weights of its own (transformer, or transformer + linear mix)."""
    decision = _read_decision(model_dir)
    return (
        not decision.get("members")
        and decision.get("model_type", "transformer") in ("transformer", "ensemble")
        and (model_dir / "config.json").is_file()
    )


def export_model_dir(model_dir: str | Path, quantize: bool = True, force: bool = False) -> list[Exported]:
    """Export every transformer in a model directory: itself, or each member of an ensemble (recursively).

    A directory whose decision.json already names an existing ONNX file is left alone unless ``force``.
    """
    root = Path(model_dir)
    decision = _read_decision(root)
    if decision.get("members"):
        done: list[Exported] = []
        for member in decision["members"]:
            done.extend(export_model_dir(root / member["path"], quantize=quantize, force=force))
        return done
    if not is_transformer_dir(root):
        return []
    named = decision.get(ONNX_KEY)
    if named and (root / named).is_file() and not force:
        log.info("%s already serves %s", root, named)
        return []
    return [export_onnx(root, quantize=quantize)]


def export_onnx(
    model_dir: str | Path,
    quantize: bool = True,
    per_channel: bool = PER_CHANNEL,
    optimize: bool = False,
    record: bool = True,
) -> Exported:
    """Write ``model.onnx`` (+ ``model.int8.onnx``) from the directory's HF weights; name it in decision.json.

    ``optimize`` runs ONNX Runtime's transformer graph optimizer (fused attention / layer norm) before
    quantising, for BERT-family models; ``record`` writes the served file's name into decision.json.
    """
    started = time.perf_counter()
    root = Path(model_dir)
    fp32 = root / ONNX_FP32
    inputs = export_fp32(root, fp32)
    source = fp32
    if optimize:
        source = optimize_graph(root, fp32, root / "model.opt.onnx")
    int8: Path | None = None
    if quantize:
        int8 = quantize_int8(source, root / ONNX_INT8, per_channel=per_channel, optimized=optimize)
    if source != fp32:
        source.unlink()
    served = (int8 or fp32).name
    if record:
        decision = _read_decision(root)
        decision[ONNX_KEY] = served
        (root / DECISION_FILE).write_text(json.dumps(decision, indent=2) + "\n", encoding="utf-8")
    done = Exported(root, fp32, int8, served, inputs, time.perf_counter() - started)
    log.info("onnx export of %s: %s", root, json.dumps(done.to_dict()))
    return done


def export_fp32(model_dir: Path, target: Path) -> tuple[str, ...]:
    """The fp32 graph of the directory's sequence classifier (TorchScript exporter); returns its inputs."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), dtype=torch.float32)
    model.eval()
    accepted = set(inspect.signature(model.forward).parameters)
    produced = set(tokenizer.model_input_names)
    names = tuple(n for n in INPUT_NAMES if n in accepted and (n in produced or n == "attention_mask"))

    class Logits(torch.nn.Module):
        """The classifier with positional inputs in ``names`` order and the logits as its only output."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.model(**dict(zip(names, args, strict=True))).logits
            return out

    # eval mode on the wrapper itself: the exporter restores the wrapper's mode (recursively) afterwards
    wrapper = Logits().eval()
    # A padded dummy batch: the trace must keep the attention mask (an all-ones mask may be skipped).
    dummy = _batch(tokenizer, (8, 6))
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["logits"] = {0: "batch"}
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # the tracer's notes on Python-level branches (fixed for a classifier with a mask) are noise here;
        # verify_export checks the graph on another shape instead
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            tuple(dummy[n] for n in names),
            str(target),
            input_names=list(names),
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
        verify_export(wrapper, names, target, _batch(tokenizer, (13, 3, 9)))
    return names


def _batch(tokenizer: Any, lengths: tuple[int, ...]) -> dict[str, Any]:
    """A right-padded batch of token ids with the given lengths (width: the longest)."""
    import torch

    width = max(lengths)
    ids = torch.full((len(lengths), width), int(tokenizer.pad_token_id or 0), dtype=torch.long)
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.arange(1000, 1000 + n)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


def verify_export(module: Any, names: tuple[str, ...], path: Path, batch: dict[str, Any]) -> None:
    """The graph gives PyTorch's logits on a batch of another shape than the traced one, or raise."""
    import numpy as np
    import onnxruntime as ort

    want = module(*(batch[n] for n in names)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {n: batch[n].numpy() for n in names})[0]
    gap = float(np.abs(got - want).max())
    if gap > VERIFY_ATOL:
        raise ExportError(f"{path}: ONNX logits differ from PyTorch by {gap:.2e} on a batch of another shape")


def optimize_graph(model_dir: Path, source: Path, target: Path) -> Path:
    """ONNX Runtime's transformer optimizer (BERT-family fusions); the source graph when it has none."""
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    kind = str(config.get("model_type", ""))
    if kind not in ("bert", "roberta", "xlm-roberta"):
        log.info("no transformer graph optimizer for %s: exported graph kept", kind or "this model")
        return source
    optimized = optimize_model(
        str(source),
        model_type="bert",
        num_heads=int(config.get("num_attention_heads", 0)),
        hidden_size=int(config.get("hidden_size", 0)),
        opt_level=1,
        use_gpu=False,
    )
    optimized.save_model_to_file(str(target))
    return target


def quantize_int8(
    source: Path, target: Path, per_channel: bool = PER_CHANNEL, optimized: bool = False
) -> Path:
    """Dynamic quantisation: int8 weights (per channel or per tensor), activations quantised at run time."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    extra: dict[str, Any] = {}
    if optimized:  # the optimizer's fused nodes lose type information the quantiser needs
        extra["DefaultTensorType"] = onnx.TensorProto.FLOAT
    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        extra_options=extra,
    )
    return target


def _read_decision(model_dir: Path) -> dict[str, Any]:
    path = model_dir / DECISION_FILE
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
