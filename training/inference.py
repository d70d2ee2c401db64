"""Scoring a ReviewSense model directory, and the SageMaker PyTorch serving handler.

This one file is the single scoring path: every trainer copies it into ``<model_dir>/code/inference.py``
with ``training.model_io.install_serving_code`` (what the SageMaker PyTorch serving container loads:
model_fn / input_fn / predict_fn / output_fn), and
``evaluate.py``, the candidate search and the local endpoint load models through it (via model_io).
It must therefore stay self-contained: stdlib + numpy at module level, torch / transformers /
onnxruntime imported lazily, nothing from the ``training`` package. Scoring an ONNX model never imports
torch (the tokenizer comes from transformers, which runs without it).

A model directory holds:
  label_map.json      {"labels": [...], "label2id": {...}}
  decision.json       how to score: model type (transformer | linear | ensemble), input mode
                      (text | title_text), max length, ensemble weight, logit bias tuned on validation,
                      optionally ``members``: sub-directories whose probabilities are mixed
  HF weights + tokenizer (save_pretrained) for transformer / ensemble models
  model.onnx, model.int8.onnx   the same transformer for ONNX Runtime (``training.onnx_export``);
                      decision.json's ``onnx`` names the one served
  linear_model.json   TF-IDF + logistic regression exported as plain numbers (linear / ensemble models)
"""

from __future__ import annotations

import codecs
import csv
import importlib
import io
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

LABEL_MAP_FILE = "label_map.json"
DECISION_FILE = "decision.json"
LINEAR_MODEL_FILE = "linear_model.json"
#: decision.json key naming the ONNX file to serve (``training.onnx_export`` writes it).
ONNX_KEY = "onnx"
BACKEND_ENV = "REVIEWSENSE_INFERENCE_BACKEND"
#: Reviews per forward pass when the caller names no batch size. ONNX Runtime on a CPU is fastest with small
#: length-sorted micro-batches (little padding; measured side by side, a request of 32 real reviews scores
#: 308 vs 163 reviews/s in micro-batches of 4 vs one batch of 32, same run); PyTorch keeps larger ones.
ONNX_MICRO_BATCH = 4
TORCH_MICRO_BATCH = 64
BACKENDS = ("auto", "onnx", "torch")
DEFAULT_LABELS = ("negative", "neutral", "positive")

JSON_CONTENT_TYPES = ("application/json",)
JSONLINES_CONTENT_TYPES = ("application/jsonlines", "application/x-jsonlines", "application/jsonl")
CSV_CONTENT_TYPES = ("text/csv",)
TEXT_CONTENT_TYPES = ("text/plain",)
#: The keys of an instance object that may hold the review text, in the order they are looked up.
TEXT_KEYS = ("text", "review_text", "inputs")
#: A first CSV row made only of these names (any case) is a header: ``text`` or ``title,text``.
CSV_HEADERS = (("text",), ("title", "text"))


def _toolkit_error_base() -> type[Exception]:
    """The SageMaker inference toolkit's ``BaseInferenceToolkitError`` when it is installed (the serving
    container): its transformer answers such an error with the error's ``status_code`` and turns any other
    exception into a 500. Elsewhere a stand-in of the same name and attributes, which the local endpoint
    server (``reviewsense.localcloud.endpoint_server.handler_status``) recognises the same way."""
    try:
        base: type[Exception] = importlib.import_module(
            "sagemaker_inference.errors"
        ).BaseInferenceToolkitError
    except ImportError:

        class BaseInferenceToolkitError(Exception):
            """Stand-in for ``sagemaker_inference.errors.BaseInferenceToolkitError`` (same attributes)."""

        base = BaseInferenceToolkitError
    return base


if TYPE_CHECKING:

    class _ToolkitError(Exception): ...

else:
    _ToolkitError = _toolkit_error_base()


class RequestError(_ToolkitError, ValueError):
    """A request the client must fix: the container answers ``status_code`` with ``message``.

    ``status_code``, ``message`` and ``phrase`` are the attributes the toolkit's ``Transformer.handle_error``
    reads; ``reason`` is a stable machine-readable name for logs and callers.
    """

    status_code = 400
    reason = "bad_request"

    def __init__(self, message: str, reason: str | None = None) -> None:
        Exception.__init__(self, message)
        self.message = message
        self.phrase = message.replace("\r", " ").replace("\n", " ")  # an HTTP reason phrase: one line
        if reason is not None:
            self.reason = reason

    def __str__(self) -> str:
        return self.message


class BadRequestError(RequestError):
    """400: the body has no review to score, is not valid JSON / JSON Lines / CSV, or is not valid text."""


class UnsupportedContentTypeError(RequestError):
    """415: the request's Content-Type is not one the handler reads."""

    status_code = 415
    reason = "unsupported_content_type"


class NotAcceptableError(RequestError):
    """406: none of the types in the request's Accept is one the handler writes."""

    status_code = 406
    reason = "unsupported_accept"


def _clean(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value).strip()


def normalize_item(item: object) -> dict[str, str]:
    """Accept a plain text or an object with ``text`` (or ``review_text``/``inputs``) and ``title``."""
    if isinstance(item, str):
        return {"title": "", "text": item.strip()}
    if isinstance(item, Mapping):
        text = item.get("text", item.get("review_text", item.get("inputs", "")))
        return {"title": _clean(item.get("title")), "text": _clean(text)}
    raise ValueError(f"cannot score {type(item).__name__}: expected a string or an object with 'text'")


def review_instance(item: object, position: str) -> dict[str, str]:
    """One instance of a request as ``{"title", "text"}``, or ``BadRequestError`` naming what is wrong.

    Stricter than ``normalize_item`` (which scores whatever a data set holds): a request must carry review
    text, so a missing, ``null``, non-string or blank text is refused, never scored as an empty review.
    """
    title, text = _title_and_text(item, position)
    if not text.strip():
        raise BadRequestError(f"{position} has an empty review text", "missing_text")
    return {"title": _clean(title), "text": text.strip()}


def _title_and_text(item: object, position: str) -> tuple[object, str]:
    if isinstance(item, str):
        return "", item
    if not isinstance(item, Mapping):
        raise BadRequestError(
            f"{position} is {_json_type(item)}: expected a string or an object with 'text'", "invalid_text"
        )
    key = next((k for k in TEXT_KEYS if k in item), None)
    if key is None:
        names = ", ".join(repr(str(k)) for k in list(item)[:5]) or "none"
        raise BadRequestError(
            f"{position} has no review text: expected a key 'text' (keys given: {names})", "missing_text"
        )
    text, title = item[key], item.get("title")
    if title is not None and not isinstance(title, str) and not _is_nan(title):
        raise BadRequestError(
            f"{position}: 'title' must be a string, not {_json_type(title)}", "invalid_text"
        )
    if not isinstance(text, str):
        problem = "missing_text" if text is None or _is_nan(text) else "invalid_text"
        raise BadRequestError(f"{position}: '{key}' must be a string, not {_json_type(text)}", problem)
    return title, text


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _json_type(value: object) -> str:
    names = {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names.update({list: "a list", dict: "an object"})
    return names.get(type(value), "an object" if isinstance(value, Mapping) else type(value).__name__)


def linear_input(title: str, text: str, text_input: str) -> str:
    """The string the linear model sees."""
    if text_input == "title_text" and title:
        return f"{title} . {text}"
    return text


def collapse_head(head_probs: np.ndarray, head_to_label: Sequence[int] | None, n_labels: int) -> np.ndarray:
    """Sum a finer head's probabilities (e.g. 1-5 stars) into the labels; identity without a map."""
    if head_to_label is None:
        return head_probs
    out = np.zeros((head_probs.shape[0], n_labels), dtype=np.float64)
    for col, label in enumerate(head_to_label):
        out[:, label] += head_probs[:, col]
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=-1, keepdims=True))


class LinearTextModel:
    """TF-IDF (word n-grams, sublinear tf, l2 norm) + multinomial logistic regression, from plain JSON.

    Re-implements ``TfidfVectorizer.transform`` + ``LogisticRegression.predict_proba`` so that serving
    needs neither scikit-learn nor pickle; ``training.linear`` exports it and tests check both agree.
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.vocabulary: dict[str, int] = dict(spec["vocabulary"])
        self.idf = np.asarray(spec["idf"], dtype=np.float64)
        self.coef = np.asarray(spec["coef"], dtype=np.float64)  # (n_classes, n_features)
        self.intercept = np.asarray(spec["intercept"], dtype=np.float64)
        self.ngram_range = tuple(spec.get("ngram_range", (1, 1)))
        self.lowercase = bool(spec.get("lowercase", True))
        self.sublinear_tf = bool(spec.get("sublinear_tf", True))
        self.token_re = re.compile(spec.get("token_pattern", r"(?u)\b\w\w+\b"))
        self.text_input = str(spec.get("text_input", "text"))

    @classmethod
    def load(cls, path: str | Path) -> LinearTextModel:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def _features(self, doc: str) -> dict[int, float]:
        tokens = self.token_re.findall(doc.lower() if self.lowercase else doc)
        lo, hi = self.ngram_range
        counts: Counter[int] = Counter()
        for n in range(lo, hi + 1):
            for i in range(len(tokens) - n + 1):
                idx = self.vocabulary.get(" ".join(tokens[i : i + n]))
                if idx is not None:
                    counts[idx] += 1
        weights: dict[int, float] = {}
        for idx, count in counts.items():
            tf = 1.0 + math.log(count) if self.sublinear_tf else float(count)
            weights[idx] = tf * float(self.idf[idx])
        norm = math.sqrt(sum(w * w for w in weights.values()))
        if norm > 0:
            weights = {k: v / norm for k, v in weights.items()}
        return weights

    def decision_function(self, docs: Sequence[str]) -> np.ndarray:
        out = np.tile(self.intercept, (len(docs), 1))
        for row, doc in enumerate(docs):
            feats = self._features(doc)
            if feats:
                idx = np.fromiter(feats.keys(), dtype=np.int64)
                val = np.fromiter(feats.values(), dtype=np.float64)
                out[row] += self.coef[:, idx] @ val
        return out

    def predict_proba_items(self, items: Sequence[Mapping[str, str]]) -> np.ndarray:
        docs = [linear_input(it["title"], it["text"], self.text_input) for it in items]
        return softmax(self.decision_function(docs))


def resolve_device(name: str) -> str:
    """``auto`` is the GPU on a GPU instance (SageMaker ml.g*/p*, a GPU endpoint), the CPU elsewhere."""
    if name not in {"auto", "cpu", "cuda"} and not name.startswith("cuda:"):
        raise ValueError(f"unknown device {name!r} (auto | cpu | cuda)")
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_backend(name: str | None) -> str:
    """``auto`` (ONNX Runtime when the directory names an ONNX file, else PyTorch) | ``onnx`` | ``torch``.

    ``None`` reads ``REVIEWSENSE_INFERENCE_BACKEND`` (default ``auto``): how equivalence tests and
    benchmarks force the PyTorch path of an artifact that has an ONNX model.
    """
    chosen = (name if name is not None else os.environ.get(BACKEND_ENV, "auto")).strip().lower() or "auto"
    if chosen not in BACKENDS:
        raise ValueError(f"unknown inference backend {chosen!r} ({' | '.join(BACKENDS)})")
    return chosen


def cpu_count() -> int:
    """The cores this process may run on (the container's share, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no sched_getaffinity (macOS)
        return max(1, os.cpu_count() or 1)


def padded_batches(
    encoded: Mapping[str, Sequence[Sequence[int]]], batch_size: int, pad_id: int
) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
    """Length-sorted micro-batches with dynamic padding: (row indices, int64 arrays per model input).

    Sorting by token count keeps the padding inside each batch small (a batch is as wide as its
    longest review, not ``max_seq_length``); the caller writes each batch's result back to its rows.
    """
    ids = encoded["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = max(len(ids[i]) for i in rows)
        arrays = {"input_ids": np.full((len(rows), width), pad_id, dtype=np.int64)}
        arrays["attention_mask"] = np.zeros((len(rows), width), dtype=np.int64)
        extra = [k for k in ("token_type_ids",) if encoded.get(k) is not None]
        for key in extra:
            arrays[key] = np.zeros((len(rows), width), dtype=np.int64)
        for row, i in enumerate(rows):
            n = len(ids[i])
            arrays["input_ids"][row, :n] = ids[i]
            arrays["attention_mask"][row, :n] = 1
            for key in extra:
                arrays[key][row, :n] = encoded[key][i]
        yield rows, arrays


class TorchLogits:
    """The HF weights of a model directory in PyTorch: padded batch arrays -> logits."""

    def __init__(self, model_dir: Path, device: str) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification

        # fp32 whatever the checkpoint's dtype: a bf16-saved model scores like its fp32 twin on any CPU
        model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), dtype=torch.float32)
        self.device = resolve_device(device)
        model.to(torch.device(self.device))
        model.eval()
        self.model = model

    def __call__(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            batch = {k: torch.from_numpy(v).to(self.model.device) for k, v in arrays.items()}
            logits = self.model(**batch).logits
            return np.asarray(logits.float().cpu().numpy())


class OnnxLogits:
    """An ONNX graph of the model on ONNX Runtime's CPU provider: padded batch arrays -> logits.

    One inference session per model, all cores for the operators of one batch (intra-op threads),
    operators run one after another (sequential execution: a BERT graph is a chain).
    """

    def __init__(self, path: Path, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or cpu_count()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = path
        self.device = "cpu"
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        feed = {name: arrays.get(name, np.zeros_like(arrays["input_ids"])) for name in self.inputs}
        return np.asarray(self.session.run(["logits"], feed)[0])


class SentimentPredictor:
    """Loads a model directory and turns reviews into labels and class probabilities.

    A transformer scores with ONNX Runtime when decision.json names an ONNX file that the directory has
    (``"onnx": "model.int8.onnx"``, written by ``training.onnx_export``) and with PyTorch otherwise;
    ``backend`` (or ``REVIEWSENSE_INFERENCE_BACKEND``) forces one: ``auto`` | ``onnx`` | ``torch``.
    The ONNX path never imports torch. An explicit CUDA device keeps PyTorch (the ONNX path is CPU).
    """

    def __init__(
        self,
        model_dir: str | Path,
        device: str = "auto",
        batch_size: int | None = None,
        backend: str | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        label_map = _read_json(self.model_dir / LABEL_MAP_FILE, {"labels": list(DEFAULT_LABELS)})
        self.labels: list[str] = list(label_map["labels"])
        self.decision: dict[str, Any] = _read_json(self.model_dir / DECISION_FILE, {})
        self.model_type: str = self.decision.get("model_type", "transformer")
        self.text_input: str = self.decision.get("text_input", "text")
        self.max_seq_length = int(self.decision.get("max_seq_length", 128))
        self.ensemble_weight = float(self.decision.get("ensemble_weight", 1.0))
        # a head trained on finer classes (e.g. 1-5 stars) names the label each of its outputs adds to
        head = self.decision.get("head_to_label")
        self.head_to_label: list[int] | None = [int(i) for i in head] if head else None
        bias = self.decision.get("logit_bias") or [0.0] * len(self.labels)
        self.logit_bias = np.asarray(bias, dtype=np.float64)
        self.batch_size = batch_size or TORCH_MICRO_BATCH  # None: by backend, once it is known
        self._batch_size_given = batch_size is not None
        self.backend_choice = resolve_backend(backend)
        self.backend = ""  # onnx | torch once a transformer is loaded
        self.device = device if device == "auto" else resolve_device(device)  # auto: at transformer load
        self.linear: LinearTextModel | None = None
        self._logits: TorchLogits | OnnxLogits | None = None
        self._tokenizer: Any = None
        # an ensemble of model directories (e.g. two fine-tuned encoders + the linear model), each
        # contributing its own un-adjusted probabilities with a weight tuned on validation
        self.members: list[tuple[SentimentPredictor, float]] = [
            (
                SentimentPredictor(self.model_dir / m["path"], self.device, batch_size, self.backend_choice),
                float(m["weight"]),
            )
            for m in self.decision.get("members", [])
        ]
        if self.members:
            return
        if self.model_type in ("linear", "ensemble"):
            self.linear = LinearTextModel.load(self.model_dir / LINEAR_MODEL_FILE)
        if self.model_type in ("transformer", "ensemble"):
            self._load_transformer()

    @property
    def onnx_path(self) -> Path | None:
        """The ONNX file decision.json names, when the directory has it."""
        name = self.decision.get(ONNX_KEY)
        if not name or not (self.model_dir / name).is_file():
            return None
        return self.model_dir / str(name)

    def _load_transformer(self) -> None:
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
        onnx_path = self.onnx_path
        if self.backend_choice == "onnx" and onnx_path is None:
            raise FileNotFoundError(f"{self.model_dir}: decision.json names no ONNX file that exists")
        use_onnx = onnx_path is not None and self.backend_choice != "torch"
        if use_onnx and self.backend_choice == "auto" and self.device.startswith("cuda"):
            use_onnx = False
        if use_onnx:
            assert onnx_path is not None
            self._logits = OnnxLogits(onnx_path)
            self.backend = "onnx"
            if not self._batch_size_given:
                self.batch_size = ONNX_MICRO_BATCH
        else:
            self._logits = TorchLogits(self.model_dir, self.device)
            self.backend = "torch"
        self.device = self._logits.device

    def tokenize(self, items: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        """Token ids (no padding, truncated to ``max_seq_length``): the title / text pair or the text."""
        use_title = self.text_input == "title_text"
        titles = [it["title"] for it in items]
        texts = [it["text"] for it in items]
        enc = self._tokenizer(
            titles if use_title else texts,
            texts if use_title else None,
            truncation=True,
            max_length=self.max_seq_length,
        )
        return dict(enc)

    def transformer_proba(self, items: Sequence[Mapping[str, str]]) -> np.ndarray:
        """The head's probabilities (collapsed into the labels), whichever backend computes the logits."""
        logits_of = self._logits
        assert logits_of is not None
        out = np.zeros((len(items), len(self.head_to_label or self.labels)), dtype=np.float64)
        pad = int(self._tokenizer.pad_token_id or 0)
        for rows, arrays in padded_batches(self.tokenize(items), self.batch_size, pad):
            out[rows] = softmax(logits_of(arrays).astype(np.float64))
        return collapse_head(out, self.head_to_label, len(self.labels))

    def predict_proba(self, items: Iterable[object], adjusted: bool = True) -> np.ndarray:
        """Class probabilities; ``adjusted`` applies the tuned logit bias (what the label is taken from)."""
        norm = [normalize_item(it) for it in items]
        if not norm:
            return np.zeros((0, len(self.labels)))
        if self.members:
            probs = sum(w * m.predict_proba(norm, adjusted=False) for m, w in self.members)
            probs = np.asarray(probs, dtype=np.float64)
        elif self.model_type == "linear":
            assert self.linear is not None
            probs = self.linear.predict_proba_items(norm)
        elif self.model_type == "ensemble":
            assert self.linear is not None
            w = self.ensemble_weight
            probs = w * self.transformer_proba(norm) + (1.0 - w) * self.linear.predict_proba_items(norm)
        else:
            probs = self.transformer_proba(norm)
        if not adjusted:
            return probs
        return softmax(np.log(np.clip(probs, 1e-12, 1.0)) + self.logit_bias)

    def predict(self, items: Iterable[object]) -> list[dict[str, Any]]:
        probs = self.predict_proba(items)
        results = []
        for row in probs:
            best = int(np.argmax(row))
            results.append(
                {
                    "label": self.labels[best],
                    "label_id": best,
                    "score": float(row[best]),
                    "probabilities": {lab: float(p) for lab, p in zip(self.labels, row, strict=True)},
                }
            )
        return results


def _read_json(path: Path, default: dict[str, Any]) -> dict[str, Any]:
    if not path.exists():
        return default
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


# ---- SageMaker PyTorch serving handler -------------------------------------------------------------


def model_fn(model_dir: str, context: object = None) -> SentimentPredictor:
    return SentimentPredictor(model_dir)


def input_fn(request_body: str | bytes, request_content_type: str = "application/json") -> list[object]:
    """The reviews of a request; a client error (``RequestError``) when there is none to score.

    Content types (parameters such as ``charset`` honoured; the body must be valid in that charset,
    UTF-8 by default, a byte-order mark ignored):

    * ``application/json``: ``{"instances": [...]}``, ``{"inputs": [...]}``, a list, one object or one
      string; an instance is a string (the text) or an object with ``text`` (or ``review_text`` /
      ``inputs``) and optionally ``title``; other keys (``feedback_id`` ...) are ignored;
    * ``application/jsonlines`` (also ``application/x-jsonlines``, ``application/jsonl``): one such
      instance per line, blank lines skipped;
    * ``text/csv``: one review per row, RFC 4180 quoting (a field with commas, quotes or line breaks is
      quoted, ``""`` inside quotes is a quote): one column is the text, two columns are title,text; a first
      row that is exactly ``text`` or ``title,text`` is a header and skipped; blank lines skipped;
    * ``text/plain``: one review per line, blank lines skipped.

    Anything else is 415; a body with no review, an instance without text, or a body that is not valid
    JSON / CSV / text in its charset is 400, with a message saying which instance or line is wrong.
    """
    media_type, params = _media_type(request_content_type or "application/json")
    if media_type not in (
        *JSON_CONTENT_TYPES,
        *JSONLINES_CONTENT_TYPES,
        *CSV_CONTENT_TYPES,
        *TEXT_CONTENT_TYPES,
    ):
        readable = ", ".join(
            (*JSON_CONTENT_TYPES, *JSONLINES_CONTENT_TYPES[:1], *CSV_CONTENT_TYPES, "text/plain")
        )
        raise UnsupportedContentTypeError(
            f"unsupported content type {request_content_type!r}: send one of {readable}"
        )
    body = _decode(request_body, params.get("charset", "utf-8"))
    if media_type in JSONLINES_CONTENT_TYPES:
        instances = _json_lines(body)
    elif media_type in JSON_CONTENT_TYPES:
        instances = _json_instances(body)
    elif media_type in CSV_CONTENT_TYPES:
        instances = _csv_instances(body)
    else:
        instances = [line for line in body.splitlines() if line.strip()]
    if not instances:
        raise BadRequestError("the request holds no review to score", "no_instances")
    for number, item in enumerate(instances, start=1):
        review_instance(item, f"instance {number}")
    return instances


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    """``type/subtype`` in lower case and the parameters of a Content-Type or Accept entry."""
    media, *rest = value.split(";")
    params = {}
    for param in rest:
        name, _, val = param.partition("=")
        params[name.strip().lower()] = val.strip().strip('"')
    return media.strip().lower(), params


def _decode(body: str | bytes, charset: str) -> str:
    if isinstance(body, str):  # the toolkit already decoded it (application/json, text/csv as UTF-8)
        return body.removeprefix("\ufeff")
    try:
        codec = codecs.lookup(charset).name
    except LookupError as exc:
        raise UnsupportedContentTypeError(f"unsupported charset {charset!r}: send UTF-8") from exc
    try:
        return body.decode("utf-8-sig" if codec == "utf-8" else codec)
    except UnicodeDecodeError as exc:
        raise BadRequestError(
            f"the body is not valid {codec}: byte {exc.start} ({body[exc.start : exc.start + 1]!r}) "
            f"cannot be decoded; send UTF-8 text or declare its charset",
            "bad_encoding",
        ) from exc


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequestError(f"{where} is not valid JSON: {exc}", "invalid_json") from exc


def _json_instances(body: str) -> list[object]:
    payload = _json(body, "the body")
    if isinstance(payload, Mapping):
        if "instances" in payload:
            instances = payload["instances"]
            if not isinstance(instances, list):
                raise BadRequestError(
                    f"'instances' must be a list, not {_json_type(instances)}", "invalid_json"
                )
            return list(instances)
        if isinstance(payload.get("inputs"), list):
            return list(payload["inputs"])
        return [payload]
    if isinstance(payload, list):
        return payload
    if isinstance(payload, str):
        return [payload]
    raise BadRequestError(
        f"the body is {_json_type(payload)}: expected {{'instances': [...]}}, a list, an object or a string",
        "invalid_json",
    )


def _json_lines(body: str) -> list[object]:
    return [_json(line, f"line {n}") for n, line in enumerate(body.splitlines(), start=1) if line.strip()]


def _csv_instances(body: str) -> list[object]:
    reader = csv.reader(io.StringIO(body, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise BadRequestError(
            f"the body is not valid CSV at line {reader.line_num}: {exc}", "invalid_csv"
        ) from exc
    if rows and tuple(cell.strip().lower() for cell in rows[0][1]) in CSV_HEADERS:
        rows = rows[1:]
    instances: list[object] = []
    for line, row in rows:
        if len(row) > 2:
            raise BadRequestError(
                f"CSV row ending at line {line} has {len(row)} columns: expected text, or title,text",
                "invalid_csv",
            )
        title, text = ("", row[0]) if len(row) == 1 else (row[0], row[1])
        if not text.strip():
            raise BadRequestError(f"CSV row ending at line {line} has an empty review text", "missing_text")
        instances.append({"title": title, "text": text})
    return instances


def predict_fn(input_data: list[object], model: SentimentPredictor) -> list[dict[str, Any]]:
    return model.predict(input_data)


def output_fn(prediction: list[dict[str, Any]], accept: str = "application/json") -> str:
    """The predictions in the first type of ``accept`` (a comma-separated list) that the handler writes.

    ``application/json`` (also for ``*/*`` and ``application/*``): ``{"predictions": [...]}``;
    ``application/jsonlines``: one prediction per line; ``text/csv``: one row per review, no header:
    ``label,score,<probability of each label, in label order>``. Anything else is 406.
    """
    for entry in (accept or "application/json").split(","):
        accept_type, _ = _media_type(entry)
        if accept_type in JSONLINES_CONTENT_TYPES:
            return "".join(json.dumps(p) + "\n" for p in prediction)
        if accept_type in (*JSON_CONTENT_TYPES, "*/*", "application/*"):
            return json.dumps({"predictions": prediction})
        if accept_type in CSV_CONTENT_TYPES:
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            for p in prediction:
                writer.writerow([p["label"], p["score"], *p["probabilities"].values()])
            return out.getvalue()
    raise NotAcceptableError(
        f"unsupported accept type {accept!r}: ask for application/json, application/jsonlines or text/csv"
    )
