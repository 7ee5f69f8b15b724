"""The checkpoint a student submits with notebook 04, and the quality score computed from it.

The file contains plain data only (tensors, numbers, strings), so it loads with
``torch.load(..., weights_only=True)``, which runs no code from the file:

    {"format": CHECKPOINT_FORMAT, "model_config": {...DecoderOnlyTransformer arguments...},
     "tokenizer": "web_char", "block_size": 128, "state_dict": {...}}

block_size is the context length the model was trained with, which evaluation uses too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from mytorch.data.lm import Perplexity, encode_corpus, evaluate_perplexity
from mytorch.data.text import load_text
from mytorch.data.tokenizers import load_tokenizer

CHECKPOINT_FORMAT = "mytorch-causal-lm-1"


class CheckpointError(RuntimeError):
    """The submitted checkpoint is missing, unreadable, or does not fit the model."""


def save_lm_checkpoint(path: str | Path, model: nn.Module, model_config: dict, tokenizer: str,
                       block_size: int, dtype: torch.dtype = torch.float16) -> Path:
    """Save the weights of `model` in `dtype`, with the arguments that rebuild it; return the path.

    float16 halves the file against float32. For a full-size course model it changed the
    character perplexity of the graded test slice by 0.0002 (8.5227 against 8.5225, measured
    once). Tensors shared inside the model (tied weights) are stored once.
    """
    converted: dict[int, torch.Tensor] = {}
    state_dict = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.data_ptr(), tuple(tensor.shape), tensor.dtype)
        if key not in converted:
            converted[key] = tensor.detach().to("cpu", dtype if tensor.is_floating_point() else tensor.dtype)
        state_dict[name] = converted[key]
    content = {"format": CHECKPOINT_FORMAT, "model_config": dict(model_config),
               "tokenizer": tokenizer, "block_size": int(block_size), "state_dict": state_dict}
    path = Path(path)
    torch.save(content, path)
    return path


def load_lm_checkpoint(path: str | Path, model_class: type[nn.Module]) -> tuple[nn.Module, dict]:
    """Build `model_class` from the checkpoint at `path` and load its weights.

    Returns (model in evaluation mode, float32, on the CPU; the checkpoint's content).
    Raises CheckpointError with the reason and the fix when the file is missing or unreadable,
    or when its weights do not fit the model that `model_class` builds.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path.resolve()}. Run the training cell with SIZE = 'full' (it saves "
            f"the model to {path.name} next to this notebook), and submit {path.name} with it."
        )
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or foreign files
        raise CheckpointError(
            f"{path} could not be read as a checkpoint ({type(error).__name__}: {error}). "
            f"Save it again with save_lm_checkpoint."
        ) from None
    if not isinstance(content, dict) or content.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a notebook-04 checkpoint written by save_lm_checkpoint")

    model = model_class(**content["model_config"])
    try:
        model.load_state_dict({k: v.float() for k, v in content["state_dict"].items()})
    except RuntimeError as error:
        raise CheckpointError(
            f"the weights in {path} do not fit the DecoderOnlyTransformer built from "
            f"{content['model_config']}: {error}. Retrain and save the model after changing the class."
        ) from None
    return model.float().eval(), content


def score_test_slice(model: nn.Module, tokenizer_name: str, block_size: int,
                          num_chars: int | None = None, batch_size: int = 32) -> Perplexity:
    """Score the first `num_chars` characters of the web test split (all of it with None).

    Non-overlapping windows of block_size tokens, as in mytorch.data.lm.evaluate_perplexity.
    With the character tokenizer, the token perplexity is the character perplexity.
    """
    text = load_text("web", "test")
    if num_chars is not None:
        text = text[:num_chars]
    tokenizer = load_tokenizer(tokenizer_name)
    ids = encode_corpus(text, tokenizer)
    device = next(model.parameters()).device
    return evaluate_perplexity(model, ids, num_chars=len(text), block_size=block_size,
                               batch_size=batch_size, device=device)


def quality_points(perplexity: float, tiers: Sequence[Sequence[float]]) -> float:
    """Return the points of the best tier whose maximum perplexity `perplexity` reaches.

    tiers: (maximum perplexity, points) pairs; a perplexity above every maximum scores 0.
    """
    reached = [points for maximum, points in tiers if perplexity <= maximum]
    return float(max(reached, default=0.0))
