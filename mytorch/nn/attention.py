"""Reference of the graded components ScaledDotProductAttention and MultiHeadAttention (notebook 01)."""

from __future__ import annotations

import numpy as np

from mytorch.nn.base import Module
from mytorch.registry import check_reference_available

check_reference_available(__name__)

# Imported after the check, so that grading mode reports this module's components and not
# those of Linear or Softmax, which it hides too.
from mytorch.nn.linear import Linear  # noqa: E402
from mytorch.nn.softmax import Softmax  # noqa: E402


class ScaledDotProductAttention(Module):
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(E) + mask) V, with its backward pass.

    Shapes: ``q`` (N, ..., L, E), ``k`` (N, ..., S, E), ``v`` (N, ..., S, Ev), with the same
    leading axes (N, ...). The output has shape (N, ..., L, Ev).

    ``mask`` is optional: a boolean array broadcastable to (N, ..., L, S) where True means
    that query l may not attend to key s. Masked pairs get weight exactly 0. A query whose
    keys are all masked gets all-zero weights, hence a zero output and zero gradients,
    never NaN (``torch.nn.functional.scaled_dot_product_attention`` does the same).

    ``forward`` stores the weights, shape (N, ..., L, S), in ``self.attention_weights``.
    ``backward(grad_output)`` takes dL/dOut and returns (dL/dQ, dL/dK, dL/dV).
    """

    def __init__(self):
        self.softmax = Softmax(dim=-1)

    def forward(self, q: np.ndarray, k: np.ndarray, v: np.ndarray,
                mask: np.ndarray | None = None) -> np.ndarray:
        ### BEGIN SOLUTION
        self.q, self.k, self.v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
        self.scale = 1.0 / np.sqrt(self.q.shape[-1])
        scores = (self.q @ np.swapaxes(self.k, -1, -2)) * self.scale  # (N, ..., L, S)

        self.fully_masked = None
        if mask is not None:
            mask = np.broadcast_to(np.asarray(mask, dtype=bool), scores.shape)
            # A row with every key masked would be all -inf, and its softmax 0/0. Leave such
            # rows unmasked for the softmax and zero their weights afterwards.
            self.fully_masked = mask.all(axis=-1, keepdims=True)
            scores = np.where(mask & ~self.fully_masked, -np.inf, scores)

        weights = self.softmax.forward(scores)
        if self.fully_masked is not None:
            weights = np.where(self.fully_masked, 0.0, weights)
        self.attention_weights = weights
        return weights @ self.v
        ### END SOLUTION

    def backward(self, grad_output: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ### BEGIN SOLUTION
        grad_output = np.asarray(grad_output, dtype=np.float64)
        grad_v = np.swapaxes(self.attention_weights, -1, -2) @ grad_output
        grad_weights = grad_output @ np.swapaxes(self.v, -1, -2)
        if self.fully_masked is not None:
            grad_weights = np.where(self.fully_masked, 0.0, grad_weights)

        grad_scores = self.softmax.backward(grad_weights) * self.scale
        grad_q = grad_scores @ self.k
        grad_k = np.swapaxes(grad_scores, -1, -2) @ self.q
        return grad_q, grad_k, grad_v
        ### END SOLUTION

    def __repr__(self) -> str:
        return "ScaledDotProductAttention()"


class MultiHeadAttention(Module):
    """Multi-head attention over batch-first inputs, as ``torch.nn.MultiheadAttention(batch_first=True)``.

    Shapes: ``query`` (N, L, E), ``key`` and ``value`` (N, S, E), with E = ``embed_dim``.
    Each of ``q_proj``, ``k_proj``, ``v_proj`` and ``out_proj`` is a ``Linear(E, E)``. The
    projected queries, keys and values are split into ``num_heads`` heads of size
    D = E / num_heads: feature e belongs to head e // D. Every head attends on its own with
    ``self.attention`` (a ScaledDotProductAttention), the heads' outputs are concatenated
    back in head order, and ``out_proj`` maps them to the output, shape (N, L, E).

    Masks (True means "may not attend"), both optional and combined with logical or:

    - ``key_padding_mask`` (N, S): key s of batch element n is padding.
    - ``attn_mask`` (L, S): query l may not attend to key s, in every batch element.

    ``forward`` returns the output only and stores the weights of every head, shape
    (N, num_heads, L, S), in ``self.attention_weights``. ``backward(grad_output)`` returns
    (d_query, d_key, d_value) and adds the gradients of all four projections to their
    parameters. For self-attention, where query, key and value are the same array, the
    gradient of that array is the sum of the three.
    """

    def __init__(self, embed_dim: int, num_heads: int, rng: np.random.Generator | None = None):
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        rng = np.random.default_rng() if rng is None else rng
        self.q_proj = Linear(embed_dim, embed_dim, rng=rng)
        self.k_proj = Linear(embed_dim, embed_dim, rng=rng)
        self.v_proj = Linear(embed_dim, embed_dim, rng=rng)
        self.out_proj = Linear(embed_dim, embed_dim, rng=rng)
        self.attention = ScaledDotProductAttention()

    def split_heads(self, x: np.ndarray) -> np.ndarray:
        """Reshape (N, T, E) into (N, num_heads, T, D)."""
        ### BEGIN SOLUTION
        batch, length, _ = x.shape
        return x.reshape(batch, length, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)
        ### END SOLUTION

    def merge_heads(self, x: np.ndarray) -> np.ndarray:
        """Reshape (N, num_heads, T, D) into (N, T, E): the inverse of split_heads."""
        ### BEGIN SOLUTION
        batch, _, length, _ = x.shape
        return x.transpose(0, 2, 1, 3).reshape(batch, length, self.embed_dim)
        ### END SOLUTION

    def forward(self, query: np.ndarray, key: np.ndarray, value: np.ndarray,
                key_padding_mask: np.ndarray | None = None,
                attn_mask: np.ndarray | None = None) -> np.ndarray:
        ### BEGIN SOLUTION
        q = self.split_heads(self.q_proj.forward(query))
        k = self.split_heads(self.k_proj.forward(key))
        v = self.split_heads(self.v_proj.forward(value))

        # Both masks broadcast to (N, num_heads, L, S).
        mask = None
        if attn_mask is not None:
            mask = np.asarray(attn_mask, dtype=bool)[None, None, :, :]
        if key_padding_mask is not None:
            padding = np.asarray(key_padding_mask, dtype=bool)[:, None, None, :]
            mask = padding if mask is None else mask | padding

        heads = self.attention.forward(q, k, v, mask)
        self.attention_weights = self.attention.attention_weights
        return self.out_proj.forward(self.merge_heads(heads))
        ### END SOLUTION

    def backward(self, grad_output: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ### BEGIN SOLUTION
        grad_heads = self.split_heads(self.out_proj.backward(grad_output))
        grad_q, grad_k, grad_v = self.attention.backward(grad_heads)
        grad_query = self.q_proj.backward(self.merge_heads(grad_q))
        grad_key = self.k_proj.backward(self.merge_heads(grad_k))
        grad_value = self.v_proj.backward(self.merge_heads(grad_v))
        return grad_query, grad_key, grad_value
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"MultiHeadAttention(embed_dim={self.embed_dim}, num_heads={self.num_heads})"
