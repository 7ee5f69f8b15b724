"""Transformer layers built from the pre-LN sublayers, batch first.

Every mask is boolean and True means "may not attend", as in nn.MultiheadAttention. With
return_weights=True a layer returns its output followed by the attention weights of each of
its attention sublayers, in the order they run, each of shape (N, num_heads, T, keys).
"""

from torch import nn

from mytorch.registry import check_reference_available

# Checked before the imports below, so that grading mode names the components of this module
# rather than those of the sublayers it imports.
check_reference_available(__name__)

from mytorch.transformer.masks import causal_mask  # noqa: E402
from mytorch.transformer.sublayers import (  # noqa: E402
    CrossAttentionLayer,
    FeedForwardLayer,
    SelfAttentionLayer,
)


class SelfAttentionDecoderLayer(nn.Module):
    """Decoder layer of a decoder-only model: causal self-attention, then feed-forward.

    Attributes: self_attention (SelfAttentionLayer), feed_forward (FeedForwardLayer).
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        ### BEGIN SOLUTION
        self.self_attention = SelfAttentionLayer(d_model, num_heads, dropout)
        self.feed_forward = FeedForwardLayer(d_model, d_ff, dropout)
        ### END SOLUTION

    def forward(self, x, key_padding_mask=None, return_weights=False):
        """Transform x (N, T, d_model) so that position t depends only on positions 0..t.

        key_padding_mask: optional (N, T) bool, True at padding, which may not be attended to.
        Returns the output (N, T, d_model), or with return_weights=True the tuple
        (output, self-attention weights (N, num_heads, T, T)).
        """
        ### BEGIN SOLUTION
        attn_mask = causal_mask(x.size(1), device=x.device)  # (T, T), True above the diagonal

        if return_weights:
            x, weights = self.self_attention(
                x, key_padding_mask=key_padding_mask, attn_mask=attn_mask, return_weights=True
            )
        else:
            x = self.self_attention(x, key_padding_mask=key_padding_mask, attn_mask=attn_mask)

        x = self.feed_forward(x)  # (N, T, d_model)
        ### END SOLUTION
        return (x, weights) if return_weights else x


class CrossAttentionDecoderLayer(nn.Module):
    """Decoder layer of an encoder-decoder model: causal self-attention, cross-attention over
    the encoder output, then feed-forward.

    Attributes: self_attention (SelfAttentionLayer), cross_attention (CrossAttentionLayer),
    feed_forward (FeedForwardLayer).
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        ### BEGIN SOLUTION
        self.self_attention = SelfAttentionLayer(d_model, num_heads, dropout)
        self.cross_attention = CrossAttentionLayer(d_model, num_heads, dropout)
        self.feed_forward = FeedForwardLayer(d_model, d_ff, dropout)
        ### END SOLUTION

    def forward(self, x, memory, key_padding_mask=None, memory_key_padding_mask=None,
                return_weights=False):
        """Transform x (N, T, d_model) using its own past and all of memory (N, S, d_model).

        key_padding_mask: optional (N, T) bool, True at padding of x.
        memory_key_padding_mask: optional (N, S) bool, True at padding of memory.
        Padding may not be attended to. Returns the output (N, T, d_model), or with
        return_weights=True the tuple (output, self-attention weights (N, num_heads, T, T),
        cross-attention weights (N, num_heads, T, S)).
        """
        ### BEGIN SOLUTION
        attn_mask = causal_mask(x.size(1), device=x.device)  # (T, T), True above the diagonal

        if return_weights:
            x, self_weights = self.self_attention(
                x, key_padding_mask=key_padding_mask, attn_mask=attn_mask, return_weights=True
            )
            x, cross_weights = self.cross_attention(
                x, memory, key_padding_mask=memory_key_padding_mask, return_weights=True
            )
        else:
            x = self.self_attention(x, key_padding_mask=key_padding_mask, attn_mask=attn_mask)
            x = self.cross_attention(x, memory, key_padding_mask=memory_key_padding_mask)

        x = self.feed_forward(x)  # (N, T, d_model)
        ### END SOLUTION
        return (x, self_weights, cross_weights) if return_weights else x


class SelfAttentionEncoderLayer(nn.Module):
    """Encoder layer: self-attention over the whole sequence, then feed-forward.

    Attributes: self_attention (SelfAttentionLayer), feed_forward (FeedForwardLayer).
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        ### BEGIN SOLUTION
        self.self_attention = SelfAttentionLayer(d_model, num_heads, dropout)
        self.feed_forward = FeedForwardLayer(d_model, d_ff, dropout)
        ### END SOLUTION

    def forward(self, x, key_padding_mask=None, return_weights=False):
        """Transform x (N, T, d_model), each position attending to every unpadded position.

        key_padding_mask: optional (N, T) bool, True at padding, which may not be attended to.
        Returns the output (N, T, d_model), or with return_weights=True the tuple
        (output, self-attention weights (N, num_heads, T, T)).
        """
        ### BEGIN SOLUTION
        if return_weights:
            x, weights = self.self_attention(
                x, key_padding_mask=key_padding_mask, return_weights=True
            )
        else:
            x = self.self_attention(x, key_padding_mask=key_padding_mask)

        x = self.feed_forward(x)  # (N, T, d_model)
        ### END SOLUTION
        return (x, weights) if return_weights else x
