"""Pre-LN sublayers of the Transformer, batch first: x + dropout(sublayer(norm(x))).

Each sublayer owns its LayerNorm, residual connection and dropout. Every mask is boolean and
True means "may not attend", as in nn.MultiheadAttention.
"""

import torch
from torch import nn

from mytorch.registry import check_reference_available

check_reference_available(__name__)


class SelfAttentionLayer(nn.Module):
    """Pre-LN multi-head self-attention sublayer: x + dropout(attention(norm(x))).

    Attributes (an incremental decoder with a KV cache calls them directly):
        norm: nn.LayerNorm(d_model), applied to the input before attention.
        attention: nn.MultiheadAttention(d_model, num_heads, batch_first=True), whose query,
            key and value are all norm(x).
        dropout: nn.Dropout(dropout), applied to the attention output before the residual sum.

    Dropout acts on the sublayer output only, never on the attention weights, so the weights
    returned are the weights used.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        ### BEGIN SOLUTION
        self.norm = nn.LayerNorm(d_model)
        self.attention = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        ### END SOLUTION

    def forward(self, x, key_padding_mask=None, attn_mask=None, return_weights=False):
        """Let each position of x attend to the positions of x that the masks allow.

        x: (N, T, d_model).
        key_padding_mask: optional (N, T) bool, True at keys that may not be attended to
            (padding).
        attn_mask: optional (T, T) bool, True at [t, s] when query t may not attend to key s
            (for example the future, in a decoder).

        Returns the output (N, T, d_model). With return_weights=True, returns the tuple
        (output, weights), where weights (N, num_heads, T, T) are the attention weights of
        each head. Without it, nn.MultiheadAttention does not compute them (its fast path).
        """
        ### BEGIN SOLUTION
        h = self.norm(x)  # (N, T, d_model)
        out, weights = self.attention(
            h, h, h,
            key_padding_mask=key_padding_mask, attn_mask=attn_mask,
            need_weights=return_weights, average_attn_weights=False,
        )  # (N, T, d_model), and (N, num_heads, T, T) or None
        x = x + self.dropout(out)
        ### END SOLUTION
        return (x, weights) if return_weights else x


class CrossAttentionLayer(nn.Module):
    """Pre-LN multi-head cross-attention sublayer: x + dropout(attention(norm(x), memory)).

    The queries come from x and the keys and values from memory (the encoder output).
    Only x is normalized here: a pre-LN encoder ends with a LayerNorm of its own, so memory
    arrives normalized.

    Attributes (an incremental decoder with a KV cache calls them directly):
        norm: nn.LayerNorm(d_model), applied to x before attention.
        attention: nn.MultiheadAttention(d_model, num_heads, batch_first=True).
        dropout: nn.Dropout(dropout), applied to the attention output before the residual sum.

    Dropout acts on the sublayer output only, never on the attention weights, so the weights
    returned are the weights used.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        ### BEGIN SOLUTION
        self.norm = nn.LayerNorm(d_model)
        self.attention = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        ### END SOLUTION

    def forward(self, x, memory, key_padding_mask=None, attn_mask=None, return_weights=False):
        """Let each position of x attend to the positions of memory that the masks allow.

        x: (N, T, d_model), the queries.
        memory: (N, S, d_model), the keys and values.
        key_padding_mask: optional (N, S) bool, True at positions of memory that may not be
            attended to (padding).
        attn_mask: optional (T, S) bool, True at [t, s] when query t may not attend to key s.

        Returns the output (N, T, d_model). With return_weights=True, returns the tuple
        (output, weights), where weights (N, num_heads, T, S) are the attention weights of
        each head. Without it, nn.MultiheadAttention does not compute them.
        """
        ### BEGIN SOLUTION
        h = self.norm(x)  # (N, T, d_model)
        out, weights = self.attention(
            h, memory, memory,
            key_padding_mask=key_padding_mask, attn_mask=attn_mask,
            need_weights=return_weights, average_attn_weights=False,
        )  # (N, T, d_model), and (N, num_heads, T, S) or None
        x = x + self.dropout(out)
        ### END SOLUTION
        return (x, weights) if return_weights else x


class FeedForwardLayer(nn.Module):
    """Pre-LN position-wise feed-forward sublayer: x + dropout(linear2(relu(linear1(norm(x))))).

    Attributes:
        norm: nn.LayerNorm(d_model), applied to the input first.
        linear1: nn.Linear(d_model, d_ff), followed by ReLU.
        linear2: nn.Linear(d_ff, d_model).
        dropout: nn.Dropout(dropout), applied to the output of linear2 before the residual sum.
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        ### BEGIN SOLUTION
        self.norm = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)
        ### END SOLUTION

    def forward(self, x):
        """Transform each position of x (N, T, d_model) independently and return (N, T, d_model)."""
        ### BEGIN SOLUTION
        h = self.linear1(self.norm(x))  # (N, T, d_ff)
        h = torch.relu(h)
        h = self.linear2(h)             # (N, T, d_model)
        x = x + self.dropout(h)
        ### END SOLUTION
        return x
