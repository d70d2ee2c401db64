"""The ONNX export (training.onnx_export) and the ONNX Runtime path of training.inference.

A tiny BERT (2 layers, 32 wide, the packaged MiniLM tokenizer) initialised so that its probabilities
spread like a trained model's, exported to ONNX fp32 and int8, then scored by both backends on
real-looking reviews of varied lengths (a few past the 64-token truncation).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers.paths import ROOT
from tests.helpers.tinymodels import build_tiny_bert
from training import inference, model_io, onnx_export
from training.inference import SentimentPredictor, padded_batches

MAX_LEN = 64
#: int8 weights move a probability by at most this much on the fixture reviews (measured: 0.023 per channel).
INT8_TOLERANCE = 0.05
#: Where the fp32 model's top two probabilities are further apart than this, int8 picks the same label.
CLEAR_MARGIN = 0.1

REVIEWS: list[dict[str, str]] = [
    {
        "title": "Love it",
        "text": "Love this dress! It fits perfectly and the color is even better in person.",
    },
    {"title": "", "text": "ok"},
    {"title": "Disappointed", "text": "The fabric is thin and see-through. Returned it the next day."},
    {"title": "Runs small", "text": "I usually wear a medium but had to size up to a large in this top."},
    {
        "title": "Beautiful but delicate",
        "text": "The embroidery is gorgeous and I get compliments every time I wear it, but after two "
        "gentle washes a few threads started to come loose near the hem, so I now hand wash it and hang "
        "it to dry. Still worth it for the price on sale, though I would not pay full price again.",
    },
    {"title": "Meh", "text": "Not as pictured."},
    {"title": "Perfect summer top", "text": "Light, airy and flattering. Bought it in three colors."},
    {
        "title": "",
        "text": "I really wanted to love these pants. The waist is comfortable and the length is right for "
        "my 5'4\" frame, but the material pills after one wear, the pockets are so shallow that my phone "
        "falls out when I sit down, and the zipper snagged the second time I used it. The customer service "
        "team was helpful with the return, which is the only reason this gets two stars instead of one.",
    },
    {"title": "Great basic", "text": "Soft, true to size, washes well."},
    {"title": "Wrong color", "text": "The navy is much brighter than the photo suggests."},
    {"title": "Cute", "text": "Cute sweater, a little itchy."},
    {"title": "", "text": "Fell apart."},
    {"title": "Stunning", "text": "Wore it to a wedding and felt amazing all night. The lining is silky."},
    {"title": "Too short", "text": "Way too short for anyone over 5'6\". Otherwise nice quality."},
    {"title": "Average", "text": "It's fine. Nothing special, but it does the job for lounging at home."},
    {"title": "Do not buy", "text": "Cheap material, crooked seams, and it shrank in the wash."},
    {"title": "", "text": "Love love love! Ordered another one for my sister."},
    {"title": "Odd fit", "text": "The shoulders are huge while the hips are tight. Strange cut."},
    {"title": "Cozy", "text": "My new favorite cardigan for chilly evenings."},
    {"title": "Returned", "text": "Zipper broke on first wear."},
]


def build_spread_bert(folder: Path) -> Path:
    """A tiny BERT whose labels and probabilities spread on ``REVIEWS``, as a model directory.

    With the default initialisation (0.02) a 2-layer, 32-wide BERT pools nearly the same vector for
    every review; a wider one (0.2) gives varied labels with clear and unclear margins.
    """
    build_tiny_bert(folder, initializer_range=0.2)
    (folder / inference.LABEL_MAP_FILE).write_text(
        json.dumps({"labels": ["negative", "neutral", "positive"]}), encoding="utf-8"
    )
    decision = {"model_type": "transformer", "text_input": "title_text", "max_seq_length": MAX_LEN}
    (folder / inference.DECISION_FILE).write_text(json.dumps(decision), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory as it was before ONNX: HF weights, tokenizer, label map, decision."""
    return build_spread_bert(tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="module")
def exported(plain_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> onnx_export.Exported:
    folder = tmp_path_factory.mktemp("exported") / "model"
    shutil.copytree(plain_dir, folder)
    return onnx_export.export_onnx(folder)


def decision_of(model_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((model_dir / inference.DECISION_FILE).read_text(encoding="utf-8"))
    return data


def serving(model_dir: Path, onnx_file: str, target: Path) -> Path:
    """A copy of ``model_dir`` whose decision.json names ``onnx_file``."""
    shutil.copytree(model_dir, target)
    decision = decision_of(target)
    decision[inference.ONNX_KEY] = onnx_file
    (target / inference.DECISION_FILE).write_text(json.dumps(decision), encoding="utf-8")
    return target


def test_export_writes_both_graphs_and_names_the_int8_one_in_decision(exported: onnx_export.Exported) -> None:
    import onnx

    folder = exported.model_dir
    assert exported.served == "model.int8.onnx"
    assert (folder / "model.onnx").is_file() and (folder / "model.int8.onnx").is_file()
    decision = decision_of(folder)
    assert decision["onnx"] == "model.int8.onnx"
    assert decision["text_input"] == "title_text" and decision["max_seq_length"] == MAX_LEN  # kept
    graph = onnx.load(str(folder / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in graph.output] == ["logits"]
    for tensor in graph.input:  # batch and sequence are symbolic: any number of reviews of any length
        assert [d.dim_param for d in tensor.type.tensor_type.shape.dim] == ["batch", "sequence"]
    int8_bytes = (folder / "model.int8.onnx").stat().st_size
    assert int8_bytes < (folder / "model.onnx").stat().st_size
    int8_types = {t.data_type for t in onnx.load(str(folder / "model.int8.onnx")).graph.initializer}
    assert onnx.TensorProto.INT8 in int8_types


def test_onnx_fp32_scores_as_pytorch_does(exported: onnx_export.Exported, tmp_path: Path) -> None:
    fp32_dir = serving(exported.model_dir, "model.onnx", tmp_path / "fp32")
    onnx_model = SentimentPredictor(fp32_dir, batch_size=4)
    torch_model = SentimentPredictor(fp32_dir, batch_size=4, backend="torch")
    assert (onnx_model.backend, torch_model.backend) == ("onnx", "torch")
    got = onnx_model.predict_proba(REVIEWS, adjusted=False)
    want = torch_model.predict_proba(REVIEWS, adjusted=False)
    assert np.abs(got - want).max() <= 1e-4
    assert got.argmax(axis=1).tolist() == want.argmax(axis=1).tolist()
    assert len(set(want.argmax(axis=1).tolist())) > 1  # the fixture model is not a constant


def test_int8_stays_within_tolerance_of_fp32(exported: onnx_export.Exported, tmp_path: Path) -> None:
    fp32 = SentimentPredictor(serving(exported.model_dir, "model.onnx", tmp_path / "fp32"), batch_size=8)
    int8 = SentimentPredictor(exported.model_dir, batch_size=8)
    assert int8.onnx_path == exported.model_dir / "model.int8.onnx" and int8.backend == "onnx"
    p32 = fp32.predict_proba(REVIEWS, adjusted=False)
    p8 = int8.predict_proba(REVIEWS, adjusted=False)
    assert np.abs(p8 - p32).max() <= INT8_TOLERANCE
    top2 = np.sort(p32, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > CLEAR_MARGIN
    assert clear.sum() >= len(REVIEWS) // 2
    assert p8[clear].argmax(axis=1).tolist() == p32[clear].argmax(axis=1).tolist()


def test_a_directory_without_onnx_scores_with_pytorch(
    plain_dir: Path, exported: onnx_export.Exported
) -> None:
    plain = SentimentPredictor(plain_dir, batch_size=8)
    assert plain.onnx_path is None and plain.backend == "torch"
    forced = SentimentPredictor(exported.model_dir, batch_size=8, backend="torch")
    assert forced.backend == "torch"
    # the exported directory's HF weights are the plain directory's: the PyTorch path scores the same
    assert np.allclose(plain.predict_proba(REVIEWS), forced.predict_proba(REVIEWS), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="names no ONNX file"):
        SentimentPredictor(plain_dir, backend="onnx")


def test_a_named_onnx_file_that_is_missing_falls_back_to_pytorch(plain_dir: Path, tmp_path: Path) -> None:
    missing = serving(plain_dir, "model.int8.onnx", tmp_path / "missing")
    predictor = SentimentPredictor(missing)
    assert predictor.onnx_path is None and predictor.backend == "torch"


def test_the_environment_variable_forces_the_pytorch_path(
    exported: onnx_export.Exported, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(inference.BACKEND_ENV, "torch")
    assert SentimentPredictor(exported.model_dir).backend == "torch"
    monkeypatch.setenv(inference.BACKEND_ENV, "tensorrt")
    with pytest.raises(ValueError, match="unknown inference backend"):
        SentimentPredictor(exported.model_dir)


def test_model_tar_round_trip_keeps_the_onnx_model(exported: onnx_export.Exported, tmp_path: Path) -> None:
    model_io.install_serving_code(exported.model_dir)
    archive = model_io.pack_model(exported.model_dir, tmp_path / "model.tar.gz")
    unpacked = model_io.resolve_model_dir(archive, cache_dir=tmp_path / "cache")
    assert (unpacked / "model.int8.onnx").is_file() and (unpacked / "model.onnx").is_file()
    served = model_io.load_predictor(archive, batch_size=8)
    assert served.backend == "onnx"
    want = SentimentPredictor(exported.model_dir, batch_size=8).predict_proba(REVIEWS)
    assert np.array_equal(served.predict_proba(REVIEWS), want)


# torch as absent as in an image without it: `import torch` raises ModuleNotFoundError and
# importlib.util.find_spec("torch") answers None (how transformers decides torch is not available).
NO_TORCH = """
import json, sys

sys.modules["torch"] = None
sys.path.insert(0, sys.argv[1])
import inference  # the copy in code/, as the serving container loads it

model = inference.model_fn(sys.argv[2])
preds = inference.predict_fn(json.loads(sys.argv[3]), model)
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "torch" and sys.modules[m] is not None)
print(json.dumps({"backend": model.backend, "torch": loaded, "preds": preds}))
"""


def test_the_onnx_path_loads_and_scores_without_torch(exported: onnx_export.Exported) -> None:
    code_dir = model_io.install_serving_code(exported.model_dir).parent
    reviews = REVIEWS[:6]
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(NO_TORCH),
            str(code_dir),
            str(exported.model_dir),
            json.dumps(reviews),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["backend"] == "onnx" and out["torch"] == []
    want = SentimentPredictor(exported.model_dir).predict(reviews)
    assert [p["label"] for p in out["preds"]] == [p["label"] for p in want]
    got = np.array([list(p["probabilities"].values()) for p in out["preds"]])
    assert np.allclose(got, [list(p["probabilities"].values()) for p in want], atol=1e-6)


def test_the_blocked_import_really_fails_without_the_onnx_model(plain_dir: Path) -> None:
    """The guard of the test above works: the PyTorch path cannot load under it."""
    code_dir = model_io.install_serving_code(plain_dir).parent
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(NO_TORCH), str(code_dir), str(plain_dir), '["fine"]'],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert run.returncode != 0
    assert "ModuleNotFoundError: import of torch halted" in run.stderr


def test_ensemble_members_are_exported_one_by_one(plain_dir: Path, tmp_path: Path) -> None:
    ensemble = tmp_path / "ensemble"
    for member in ("m0", "m1"):
        shutil.copytree(plain_dir, ensemble / "members" / member)
    shutil.copy(plain_dir / inference.LABEL_MAP_FILE, ensemble / inference.LABEL_MAP_FILE)
    members = [{"path": "members/m0", "weight": 0.5}, {"path": "members/m1", "weight": 0.5}]
    decision = {"model_type": "ensemble", "members": members, "logit_bias": [0.0, 0.0, 0.0]}
    (ensemble / inference.DECISION_FILE).write_text(json.dumps(decision), encoding="utf-8")
    done = onnx_export.export_model_dir(ensemble)
    assert sorted(d.model_dir.name for d in done) == ["m0", "m1"]
    assert decision_of(ensemble) == decision  # the ensemble's own rule names no ONNX file
    predictor = SentimentPredictor(ensemble)
    assert [m.backend for m, _ in predictor.members] == ["onnx", "onnx"]
    assert onnx_export.export_model_dir(ensemble) == []  # already exported: left alone


def test_save_model_exports_unless_told_not_to(plain_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.decision import Decision
    from training.finetune import save_model
    from training.train_config import TrainConfig

    model = AutoModelForSequenceClassification.from_pretrained(str(plain_dir))
    tokenizer = AutoTokenizer.from_pretrained(str(plain_dir))
    rule = decision_of(plain_dir)
    for flag, expected in ((True, "model.int8.onnx"), (False, None)):
        cfg = TrainConfig(model_dir=str(tmp_path / str(flag)), export_onnx=flag)
        out = save_model(cfg, model, tokenizer, Decision(dict(rule), {}, {}))
        assert decision_of(out).get("onnx") == expected
        assert (out / "model.int8.onnx").is_file() is flag
        assert (out / "code" / "inference.py").is_file()


def test_padded_batches_sorts_by_length_and_pads_each_batch_to_its_longest() -> None:
    encoded = {
        "input_ids": [[1, 7, 2], [1, 2], [1, 5, 6, 7, 2], [1, 9, 9, 2]],
        "token_type_ids": [[0, 0, 0], [0, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1]],
    }
    batches = list(padded_batches(encoded, batch_size=2, pad_id=0))
    assert [rows for rows, _ in batches] == [[1, 0], [3, 2]]
    first, second = batches[0][1], batches[1][1]
    assert first["input_ids"].tolist() == [[1, 2, 0], [1, 7, 2]]
    assert first["attention_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]
    assert second["input_ids"].shape == (2, 5) and second["input_ids"].dtype == np.int64
    assert second["token_type_ids"].tolist() == [[0, 0, 1, 1, 0], [0, 0, 1, 1, 1]]
    assert set(padded_batches({"input_ids": [[1, 2]]}, 8, 0).__next__()[1]) == {"input_ids", "attention_mask"}


SERVE_ONCE = """
import json, sys

sys.path.insert(0, sys.argv[1])
import inference

model = inference.model_fn(sys.argv[2])
print(json.dumps({"backend": model.backend, "preds": inference.predict_fn(["Love it, fits well"], model)}))
"""


def test_the_emulated_serving_container_serves_the_onnx_model(
    exported: onnx_export.Exported, tmp_path: Path
) -> None:
    """The local cloud's serving image (its manifest + code/requirements.txt) finds onnxruntime."""
    from chalicelib import images
    from reviewsense.localcloud.sagemaker import containers

    code = model_io.install_serving_code(exported.model_dir).parent
    requirements = code / "requirements.txt"
    assert containers.unsatisfied(requirements) == []  # the workstation has every serving pin
    container = containers.container_for(images.INFERENCE_CPU.uri("us-east-1"))
    assert container is not None and "onnxruntime" not in container.distributions
    installed = containers.installed_by_container(requirements)
    assert "onnxruntime" in installed

    def run(names: list[str], folder: str) -> subprocess.CompletedProcess[str]:
        env = containers.guarded_env(container, tmp_path / folder, [code], names, {**os.environ})
        command = [sys.executable, "-c", SERVE_ONCE, str(code), str(exported.model_dir)]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False)

    served = run(installed, "with")
    assert served.returncode == 0, served.stderr[-3000:]
    assert json.loads(served.stdout.strip().splitlines()[-1])["backend"] == "onnx"
    bare = run([], "bare")  # without the install step the image has no transformers / onnxruntime
    assert bare.returncode != 0 and "No module named" in bare.stderr


def test_export_checks_the_graph_against_pytorch_on_another_shape(
    plain_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(plain_dir, folder)
    monkeypatch.setattr(onnx_export, "VERIFY_ATOL", -1.0)  # no graph can pass: the check must run
    with pytest.raises(onnx_export.ExportError, match="differ from PyTorch"):
        onnx_export.export_onnx(folder)
    assert "onnx" not in decision_of(folder)  # nothing names a graph that failed its check
