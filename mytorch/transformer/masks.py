"""Boolean attention masks. True means "may not attend", as in nn.MultiheadAttention."""

import torch

from mytorch.registry import check_reference_available

check_reference_available(__name__)


def pad_mask(padded, lengths):
    """Return the key padding mask of a padded batch: (N, T) bool, True at padding.

    padded: a batch of shape (N, T) or (N, T, ...), each sequence at the start of its row and
        padding after it.
    lengths: the N sequence lengths, as a list of ints or a 1-D tensor on any device.

    True means "may not attend", as in nn.MultiheadAttention's key_padding_mask. The mask is on
    padded's device. Raises ValueError if lengths does not hold one length per sequence.
    """
    ### BEGIN SOLUTION
    N, T = padded.shape[:2]
    lengths = torch.as_tensor(lengths, device=padded.device)
    if lengths.shape != (N,):
        raise ValueError(
            f"pad_mask: expected {N} lengths, one per sequence of the batch, "
            f"got lengths of shape {tuple(lengths.shape)}"
        )

    position = torch.arange(T, device=padded.device)         # (T,)
    mask = position.unsqueeze(0) >= lengths.unsqueeze(1)      # (N, T)
    ### END SOLUTION
    return mask


def causal_mask(T, device=None):
    """Return the causal mask of a sequence of length T: (T, T) bool, True above the diagonal.

    Entry [t, s] is True when s > t: query t may not attend to the later key s. True means
    "may not attend", as in nn.MultiheadAttention's attn_mask. The mask is on `device`
    (default: the current default device).
    """
    ### BEGIN SOLUTION
    mask = torch.ones(T, T, dtype=torch.bool, device=device).triu(diagonal=1)
    ### END SOLUTION
    return mask
