"""The decoder-only Transformer (GPT-style language model), batch first."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from mytorch.registry import check_reference_available

# Checked before the imports below, so that grading mode names this module's component.
check_reference_available(__name__)

from mytorch.transformer.layers import SelfAttentionDecoderLayer  # noqa: E402
from mytorch.transformer.positional import PositionalEncoding  # noqa: E402


class DecoderOnlyTransformer(nn.Module):
    """A causal language model: embedding, positions, decoder layers, final norm, output head.

    Attributes:
        embedding: nn.Embedding(vocab_size, d_model), scaled by sqrt(d_model) on input.
        positional: PositionalEncoding(d_model, max_len, dropout).
        layers: nn.ModuleList of num_layers SelfAttentionDecoderLayer(d_model, num_heads, d_ff, dropout).
        norm: nn.LayerNorm(d_model), applied after the last layer (the layers are pre-LN).
        head: nn.Linear(d_model, vocab_size, bias=False); with tie_weights=True its weight is
            the embedding's weight (the same Parameter).

    The KV cache of `step` is a list with one (keys, values) pair per layer, each of shape
    (N, num_heads, t, d_model // num_heads), where t is the number of tokens seen so far.
    """

    def __init__(self, vocab_size: int, d_model: int, num_heads: int, num_layers: int,
                 d_ff: int, max_len: int, dropout: float = 0.0, tie_weights: bool = True):
        super().__init__()
        ### BEGIN SOLUTION
        self.d_model = d_model
        self.num_heads = num_heads
        self.embedding = nn.Embedding(vocab_size, d_model)
        # The sqrt(d_model) scale in forward gives the embedded tokens entries of about unit size,
        # like the positional table. The tied output head then starts with small logits.
        nn.init.normal_(self.embedding.weight, std=d_model ** -0.5)
        self.positional = PositionalEncoding(d_model, max_len, dropout)
        self.layers = nn.ModuleList(
            SelfAttentionDecoderLayer(d_model, num_heads, d_ff, dropout) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        if tie_weights:
            self.head.weight = self.embedding.weight
        ### END SOLUTION

    def forward(self, tokens, key_padding_mask=None, return_weights=False):
        """Return the next-token logits (N, T, vocab_size) for every position of tokens (N, T).

        key_padding_mask: optional (N, T) bool, True at padding.
        With return_weights=True, returns (logits, weights), where weights is a list with the
        self-attention weights (N, num_heads, T, T) of each layer. Without weights and padding,
        the attention runs on the fused causal path of `step` and computes no weights.
        """
        ### BEGIN SOLUTION
        if key_padding_mask is None and not return_weights:
            # The step from an empty cache computes the same logits with one fused causal
            # attention call per layer, which is faster than the layers' own forward.
            logits, _ = self.step(tokens)
            return logits

        x = self.embedding(tokens) * math.sqrt(self.d_model)  # (N, T, d_model)
        x = self.positional(x)

        weights = []
        for layer in self.layers:
            if return_weights:
                x, layer_weights = layer(x, key_padding_mask=key_padding_mask, return_weights=True)
                weights.append(layer_weights)  # (N, num_heads, T, T)
            else:
                x = layer(x, key_padding_mask=key_padding_mask)

        logits = self.head(self.norm(x))  # (N, T, vocab_size)
        ### END SOLUTION
        return (logits, weights) if return_weights else logits

    def step(self, tokens, cache=None):
        """Run the model on new tokens (N, t) that follow the tokens already in `cache`.

        cache: None before the first call, else the cache that the previous call returned.
        Returns (logits (N, t, vocab_size), the cache extended by these t tokens). The logits
        equal those of `forward` on the whole sequence, at the positions of the new tokens.
        Dropout acts as in `forward`, so decode in evaluation mode.
        """
        ### BEGIN SOLUTION
        N, t = tokens.shape
        past = 0 if cache is None else cache[0][0].shape[2]  # tokens already in the cache
        if past + t > self.positional.max_len:
            raise ValueError(f"step: {past + t} tokens exceed max_len={self.positional.max_len}")

        x = self.embedding(tokens) * math.sqrt(self.d_model)      # (N, t, d_model)
        x = x + self.positional.pe[past: past + t]               # positions past .. past + t - 1
        x = self.positional.dropout(x)

        # Query i (absolute position past + i) may attend to keys 0 .. past + i. SDPA's boolean
        # mask is True where attention is allowed; a single new token may attend to every key,
        # and without a cache the mask is the plain causal one (is_causal, the fastest kernel).
        allowed = None
        if t > 1 and past > 0:
            allowed = torch.ones(t, past + t, dtype=torch.bool, device=tokens.device).tril(diagonal=past)
        is_causal = t > 1 and past == 0

        new_cache = []
        for i, layer in enumerate(self.layers):
            sublayer = layer.self_attention
            attention = sublayer.attention
            h = sublayer.norm(x)
            q, k, v = F.linear(h, attention.in_proj_weight, attention.in_proj_bias).chunk(3, dim=-1)
            q, k, v = (z.view(N, t, self.num_heads, -1).transpose(1, 2) for z in (q, k, v))
            if cache is not None:
                k = torch.cat([cache[i][0], k], dim=2)            # (N, H, past + t, head_dim)
                v = torch.cat([cache[i][1], v], dim=2)
            new_cache.append((k, v))

            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, is_causal=is_causal)  # (N, H, t, head_dim)
            out = out.transpose(1, 2).reshape(N, t, self.d_model)
            x = x + sublayer.dropout(attention.out_proj(out))
            x = layer.feed_forward(x)

        logits = self.head(self.norm(x))  # (N, t, vocab_size)
        ### END SOLUTION
        return logits, new_cache
