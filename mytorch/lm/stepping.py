"""The step-function interface of the decoders, and step functions for a language model.

A decoder (greedy, sampling, beam search) sees a model only through a step function::

    step(tokens, state) -> (log_probs, new_state)

tokens: (B,) int, one new token per hypothesis.
state: what the step function needs to continue each hypothesis: the KV cache, and for an
    encoder-decoder model the encoder memory too. It is either None, a nest of tensors, lists,
    tuples and dicts whose tensors have one row per hypothesis on dimension 0, or an object with
    a method ``reorder(indices)``. Decoders call `reorder_state` to follow beams, so everything
    with one row per hypothesis must be inside the state, not captured by the step function.
log_probs: (B, V) float, the log-probabilities of the token that follows `tokens`.

A prompt is fed before decoding: `start_decoding` runs the model on all prompt tokens but the
last and returns the state and the last prompt token, which is the first input of the decoder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

State = Any
StepFunction = Callable[[Tensor, State], tuple[Tensor, State]]


def reorder_state(state: State, indices: Tensor) -> State:
    """Return `state` with the rows `indices` (1-D int tensor) of every tensor in it.

    Rows may repeat (to expand a batch into beams) or be dropped. None stays None.
    """
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.index_select(0, indices)
    if hasattr(state, "reorder"):
        return state.reorder(indices)
    if isinstance(state, dict):
        return {key: reorder_state(value, indices) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(reorder_state(value, indices) for value in state)
    raise TypeError(
        f"a decoder state must contain tensors, lists, tuples, dicts or objects with a reorder "
        f"method, got {type(state).__name__}"
    )


def cached_step(model: nn.Module) -> StepFunction:
    """Return the step function of a language model with a `step(tokens, cache)` method.

    The state is the model's KV cache, so each call runs the model on one token per hypothesis.
    """
    def step(tokens: Tensor, cache: State) -> tuple[Tensor, State]:
        logits, cache = model.step(tokens.unsqueeze(1), cache)  # (B, 1, V)
        return logits[:, -1].float().log_softmax(dim=-1), cache

    return step


def recompute_step(model: nn.Module) -> StepFunction:
    """Return a step function that runs the model on the whole prefix at every step.

    The state is the prefix itself, (B, t) token ids. It gives the same log-probabilities as
    `cached_step` at a cost that grows with the prefix: the baseline that a KV cache avoids.
    """
    def step(tokens: Tensor, prefix: State) -> tuple[Tensor, State]:
        prefix = tokens.unsqueeze(1) if prefix is None else torch.cat([prefix, tokens.unsqueeze(1)], dim=1)
        logits = model(prefix)  # (B, t, V)
        return logits[:, -1].float().log_softmax(dim=-1), prefix

    return step


@torch.no_grad()
def start_decoding(model: nn.Module, prompt: Tensor, cached: bool = True
                   ) -> tuple[StepFunction, State, Tensor]:
    """Prepare to continue `prompt` (B, P) with P >= 1: return (step, state, first_tokens).

    With cached=True the state is the KV cache of prompt[:, :-1]; otherwise it is that prefix
    and every step recomputes it. first_tokens is prompt[:, -1], the decoder's first input.
    Call the model in evaluation mode.
    """
    if prompt.dim() != 2 or prompt.shape[1] < 1:
        raise ValueError(f"expected a prompt of shape (B, P) with P >= 1, got {tuple(prompt.shape)}")
    head, last = prompt[:, :-1], prompt[:, -1]
    if not cached:
        return recompute_step(model), (head if head.shape[1] else None), last
    state = model.step(head, None)[1] if head.shape[1] else None
    return cached_step(model), state, last
