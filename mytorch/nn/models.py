"""A one-layer attention model built from the layers a student writes in notebook 01 (not graded).

The layer classes are arguments, not imports, because under grading mode the references in
`mytorch.nn` are hidden and the model must run on the notebook's own Linear and
MultiHeadAttention.
"""

from __future__ import annotations

import numpy as np

from mytorch.nn.base import Module


class TokenAttentionModel(Module):
    """Per-position classifier: token and position one-hots -> Linear -> self-attention -> Linear.

    ``forward(tokens)`` maps integer tokens (N, length) to logits (N, length, vocab_size).
    The input features are the one-hot token concatenated with the one-hot position, so
    attention can learn to match positions. ``backward(grad_logits)`` propagates to every
    parameter. ``linear`` and ``attention`` are the classes to build the layers from,
    called as ``linear(in_features, out_features, rng=rng)`` and
    ``attention(embed_dim, num_heads, rng=rng)``.
    """

    def __init__(self, vocab_size: int, length: int, embed_dim: int, num_heads: int, *,
                 linear: type, attention: type, rng: np.random.Generator | None = None):
        rng = np.random.default_rng() if rng is None else rng
        self.vocab_size = vocab_size
        self.length = length
        self.embed = linear(vocab_size + length, embed_dim, rng=rng)
        self.attention = attention(embed_dim, num_heads, rng=rng)
        self.head = linear(embed_dim, vocab_size, rng=rng)

    def features(self, tokens: np.ndarray) -> np.ndarray:
        """Return one-hot tokens and one-hot positions side by side, shape (N, length, vocab_size + length)."""
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or tokens.shape[1] != self.length:
            raise ValueError(f"expected tokens of shape (N, {self.length}), got {tokens.shape}")
        batch = tokens.shape[0]
        one_hot_tokens = np.eye(self.vocab_size)[tokens]
        one_hot_positions = np.broadcast_to(np.eye(self.length), (batch, self.length, self.length))
        return np.concatenate([one_hot_tokens, one_hot_positions], axis=-1)

    def forward(self, tokens: np.ndarray) -> np.ndarray:
        x = self.embed.forward(self.features(tokens))
        return self.head.forward(self.attention.forward(x, x, x))

    def backward(self, grad_logits: np.ndarray) -> None:
        grad_query, grad_key, grad_value = self.attention.backward(self.head.backward(grad_logits))
        # x fed query, key and value, so its gradient is the sum of the three.
        self.embed.backward(grad_query + grad_key + grad_value)
