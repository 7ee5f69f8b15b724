"""The step function of the encoder-decoder model, for the decoders of notebook 04.

`CachedDecoder` runs the decoder of an EncoderDecoderTransformer one token at a time, with the
interface of `mytorch.lm.stepping`: ``step(tokens (B,), state) -> (log_probs (B, V), state)``.
For every decoder layer, its state keeps the projected keys and values of the self-attention
over the tokens so far: the KV cache of notebook 04. It also keeps the keys and values of the
cross-attention over the encoder output (the memory), which are projected once. A step
therefore costs one position of work per layer instead of the whole prefix.

`greedy_decode` and `beam_search` of `mytorch.lm.decoding` run on it unchanged, because the
state follows the beams through its `reorder` method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, T, d_model) -> (B, num_heads, T, d_model // num_heads)."""
    B, T, d_model = x.shape
    return x.view(B, T, num_heads, d_model // num_heads).transpose(1, 2)


def _merge_heads(x: Tensor) -> Tensor:
    """(B, num_heads, T, head_dim) -> (B, T, num_heads * head_dim)."""
    B, H, T, head_dim = x.shape
    return x.transpose(1, 2).reshape(B, T, H * head_dim)


def _project(attention: nn.MultiheadAttention, x: Tensor, rows: slice) -> Tensor:
    """Apply the rows `rows` of the packed query, key and value projection of `attention` to x."""
    bias = attention.in_proj_bias[rows] if attention.in_proj_bias is not None else None
    return F.linear(x, attention.in_proj_weight[rows], bias)


@dataclass
class DecoderState:
    """The state a CachedDecoder passes from one step to the next, one row per hypothesis.

    keys, values: per decoder layer, the self-attention keys and values of the tokens so far,
        (B, num_heads, t, head_dim).
    memory_keys, memory_values: per decoder layer, the projected encoder output,
        (B, num_heads, S, head_dim).
    memory_allowed: (B, 1, 1, S) bool, True where cross-attention may look (not padding).
    position: the index of the next token, the same for every hypothesis.
    """

    keys: list[Tensor]
    values: list[Tensor]
    memory_keys: list[Tensor]
    memory_values: list[Tensor]
    memory_allowed: Tensor
    position: int

    def reorder(self, indices: Tensor) -> DecoderState:
        """Return the state of the hypotheses `indices` (rows may repeat or be dropped)."""
        def select(tensors: list[Tensor]) -> list[Tensor]:
            return [t.index_select(0, indices) for t in tensors]

        return DecoderState(select(self.keys), select(self.values), select(self.memory_keys),
                            select(self.memory_values), self.memory_allowed.index_select(0, indices),
                            self.position)


class CachedDecoder:
    """Step the decoder of an EncoderDecoderTransformer one token at a time with a KV cache.

    Uses the model's attributes token_embedding, decoder_positions (its `pe` table),
    decoder_layers (CrossAttentionDecoderLayer: self_attention, cross_attention, feed_forward,
    each attention sublayer with `norm` and an nn.MultiheadAttention `attention`),
    decoder_norm and output. The model must be in evaluation mode: dropout is not applied.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.d_model = model.token_embedding.embedding_dim

    def initial_state(self, memory: Tensor, memory_lengths: Tensor) -> DecoderState:
        """Project the encoder output memory (B, S, d_model) once for every layer."""
        B, S, d = memory.shape
        memory_keys, memory_values = [], []
        for layer in self.model.decoder_layers:
            attention = layer.cross_attention.attention
            memory_keys.append(_split_heads(_project(attention, memory, slice(d, 2 * d)), attention.num_heads))
            memory_values.append(_split_heads(_project(attention, memory, slice(2 * d, 3 * d)), attention.num_heads))

        allowed = torch.arange(S, device=memory.device) < memory_lengths.to(memory.device).unsqueeze(1)
        empty = [memory.new_zeros(B, k.shape[1], 0, k.shape[3]) for k in memory_keys]
        return DecoderState(empty, list(empty), memory_keys, memory_values,
                            allowed[:, None, None, :], position=0)

    def step(self, last_tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """Feed one token per hypothesis (B,); return the next-token log-probabilities (B, V)."""
        model = self.model
        position = state.position
        pe = model.decoder_positions.pe
        if position >= pe.shape[0]:
            raise ValueError(f"the decoder has positions for {pe.shape[0]} tokens; cannot decode token {position + 1}")

        x = model.token_embedding(last_tokens).unsqueeze(1) * math.sqrt(self.d_model)  # (B, 1, d)
        x = x + pe[position]
        keys, values = [], []
        for i, layer in enumerate(model.decoder_layers):
            x, k, v = self._self_attention(layer.self_attention, x, state.keys[i], state.values[i])
            keys.append(k)
            values.append(v)
            x = self._cross_attention(layer.cross_attention, x, state.memory_keys[i],
                                      state.memory_values[i], state.memory_allowed)
            x = layer.feed_forward(x)

        logits = model.output(model.decoder_norm(x)).squeeze(1)  # (B, V)
        new_state = DecoderState(keys, values, state.memory_keys, state.memory_values,
                                 state.memory_allowed, position + 1)
        return logits.log_softmax(dim=-1), new_state

    @staticmethod
    def _self_attention(sublayer: nn.Module, x: Tensor, keys: Tensor, values: Tensor):
        attention = sublayer.attention
        d = x.shape[-1]
        h = sublayer.norm(x)                                             # (B, 1, d)
        q, k, v = (_split_heads(p, attention.num_heads) for p in _project(attention, h, slice(0, 3 * d)).split(d, dim=-1))
        keys = torch.cat([keys, k], dim=2)                               # (B, H, t + 1, head_dim)
        values = torch.cat([values, v], dim=2)
        out = F.scaled_dot_product_attention(q, keys, values)           # the newest token attends to every cached one
        return x + attention.out_proj(_merge_heads(out)), keys, values

    @staticmethod
    def _cross_attention(sublayer: nn.Module, x: Tensor, keys: Tensor, values: Tensor,
                         allowed: Tensor) -> Tensor:
        attention = sublayer.attention
        d = x.shape[-1]
        q = _split_heads(_project(attention, sublayer.norm(x), slice(0, d)), attention.num_heads)
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=allowed)  # True = may attend
        return x + attention.out_proj(_merge_heads(out))
