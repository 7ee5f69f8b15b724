"""The training run of notebook 04: its YAML config, the batches, and the loop around Trainer.

configs/04_causal_lm/<size>.yaml (smoke, full, gpu) follows `LMRunConfig`;
configs/04_causal_lm/quality.yaml, the grading thresholds, follows `QualityConfig`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from mytorch.config import config_path, load_config
from mytorch.data.lm import encode_corpus, evaluate_perplexity, random_batch
from mytorch.data.text import load_text
from mytorch.data.tokenizers import load_tokenizer
from mytorch.training import TrainerConfig

NOTEBOOK = "04_causal_lm"


@dataclass
class ModelConfig:
    """Arguments of DecoderOnlyTransformer, except vocab_size, which the tokenizer sets."""

    d_model: int
    num_heads: int
    num_layers: int
    d_ff: int
    max_len: int  # the maximum sequence length of the model; at least data.block_size
    dropout: float = 0.0
    tie_weights: bool = True


@dataclass
class DataConfig:
    corpus: str = "web"
    tokenizer: str = "web_char"
    block_size: int = 128  # tokens of context in a training window
    batch_size: int = 32  # windows per micro-batch (the global batch under data parallelism)
    seed: int = 0  # the windows of micro-batch i are drawn with seed * 1_000_003 + i
    val_chars: int | None = 20_000  # characters of the validation split scored during training


@dataclass
class LMRunConfig:
    model: ModelConfig
    training: TrainerConfig
    data: DataConfig = field(default_factory=DataConfig)
    num_threads: int | None = None  # torch.set_num_threads on the CPU; None keeps torch's choice


@dataclass
class QualityConfig:
    """Settings of the graded quality cell, which scores the submitted checkpoint."""

    test_chars: int  # the graded slice: the first test_chars characters of the web test split
    tiers: list[list[float]]  # [maximum character perplexity, points], best tier first
    batch_size: int = 32


def load_run_config(size: str) -> LMRunConfig:
    """Read configs/04_causal_lm/<size>.yaml (size: smoke, full or gpu)."""
    return load_config(config_path(NOTEBOOK, size), LMRunConfig)


def load_quality_config() -> QualityConfig:
    return load_config(config_path(NOTEBOOK, "quality"), QualityConfig)


def model_arguments(config: LMRunConfig) -> dict:
    """Return the keyword arguments of DecoderOnlyTransformer for this run."""
    vocab_size = load_tokenizer(config.data.tokenizer).vocab_size
    return {"vocab_size": vocab_size, **asdict(config.model)}


class TextBatches:
    """Random training windows of the corpus: `batches(i)` is micro-batch i, the same on every call.

    Returns (inputs, targets), each (batch_size, block_size) int64, targets shifted by one.
    """

    def __init__(self, data: DataConfig, split: str = "train"):
        self.data = data
        self.ids = encode_corpus(load_text(data.corpus, split), load_tokenizer(data.tokenizer))

    def __call__(self, index: int) -> tuple[Tensor, Tensor]:
        generator = torch.Generator().manual_seed(self.data.seed * 1_000_003 + index)
        return random_batch(self.ids, self.data.batch_size, self.data.block_size, generator=generator)


def validation_evaluator(data: DataConfig):
    """Return evaluate(model) -> {"val_loss", "val_perplexity"} (per token) on the validation slice."""
    text = load_text(data.corpus, "validation")
    if data.val_chars is not None:
        text = text[: data.val_chars]
    ids = encode_corpus(text, load_tokenizer(data.tokenizer))

    def evaluate(model) -> dict[str, float]:
        device = next(model.parameters()).device
        result = evaluate_perplexity(model, ids, num_chars=len(text), block_size=data.block_size,
                                     device=device)
        return {"val_loss": result.total_nll / result.num_tokens,
                "val_perplexity": result.token_perplexity}

    return evaluate
