"""Language-model batches and perplexity.

Two ways to feed a causal language model:

* A token stream cut into fixed-length windows: inputs ``ids[i:i+T]`` and
  targets ``ids[i+1:i+T+1]``, as a Dataset (:class:`TokenWindows`) or as random
  batches drawn on the fly (:func:`random_batch`).
* Sentence batches: each sentence becomes input ``<s> w1 .. wn`` and target
  ``w1 .. wn </s>``, right-padded with PAD_ID (:func:`collate_sentences`).
  Pass ``ignore_index=PAD_ID`` to the cross-entropy loss.

Shapes are batch first: (batch, time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from mytorch.data.tokenizers import BOS_ID, EOS_ID, PAD_ID


def encode_corpus(text: str, tokenizer) -> Tensor:
    """Encode a whole text into a 1-D int64 tensor of token ids."""
    return torch.tensor(tokenizer.encode(text), dtype=torch.long)


class TokenWindows(Dataset):
    """Fixed-length (input, target) windows over a 1-D token stream.

    Window ``k`` starts at ``k * stride``. The default stride equals
    ``block_size``, so the windows tile the stream without overlap and one pass
    scores every token once, except the first, which has no context.
    """

    def __init__(self, ids: Tensor, block_size: int, stride: int | None = None):
        if ids.dim() != 1:
            raise ValueError(f"expected a 1-D tensor of token ids, got shape {tuple(ids.shape)}")
        if len(ids) < block_size + 1:
            raise ValueError(f"a stream of {len(ids)} tokens is too short for block_size={block_size}")
        self.ids = ids
        self.block_size = block_size
        self.stride = stride or block_size

    def __len__(self) -> int:
        return (len(self.ids) - 1 - self.block_size) // self.stride + 1

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        start = index * self.stride
        chunk = self.ids[start: start + self.block_size + 1]
        return chunk[:-1], chunk[1:]  # (T,), (T,)


def random_batch(
    ids: Tensor,
    batch_size: int,
    block_size: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """Draw ``batch_size`` windows at random offsets: inputs and targets, each (batch, block_size)."""
    starts = torch.randint(len(ids) - block_size, (batch_size,), generator=generator)
    offsets = torch.arange(block_size + 1)
    chunks = ids[starts[:, None] + offsets]  # (batch, block_size + 1)
    x, y = chunks[:, :-1], chunks[:, 1:]
    if device is not None:
        x, y = x.to(device), y.to(device)
    return x, y


def collate_sentences(sentences: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor, Tensor]:
    """Build teacher-forcing pairs from token-id lists.

    Returns inputs (batch, T) starting with ``<s>``, targets (batch, T) ending
    with ``</s>``, both padded with PAD_ID, and lengths (batch,) with
    T = max(lengths) = longest sentence + 1.
    """
    inputs = [torch.tensor([BOS_ID, *s], dtype=torch.long) for s in sentences]
    targets = [torch.tensor([*s, EOS_ID], dtype=torch.long) for s in sentences]
    lengths = torch.tensor([len(s) + 1 for s in sentences], dtype=torch.long)
    return (
        pad_sequence(inputs, batch_first=True, padding_value=PAD_ID),
        pad_sequence(targets, batch_first=True, padding_value=PAD_ID),
        lengths,
    )


class SentenceDataset(Dataset):
    """Sentences encoded with a tokenizer; batch them with :func:`collate_sentences`."""

    def __init__(self, sentences: Sequence[str], tokenizer):
        self.sentences = list(sentences)
        self.ids = [tokenizer.encode(s) for s in self.sentences]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> list[int]:
        return self.ids[index]


@dataclass
class Perplexity:
    """Summed negative log-likelihood (nats) of a text, with its token and character counts.

    Token perplexity depends on the tokenizer, so models with different
    tokenizers are compared by character perplexity, exp(total NLL / characters),
    or equivalently bits per character.
    """

    total_nll: float
    num_tokens: int
    num_chars: int

    @property
    def token_perplexity(self) -> float:
        return math.exp(self.total_nll / self.num_tokens)

    @property
    def char_perplexity(self) -> float:
        return math.exp(self.total_nll / self.num_chars)

    @property
    def bits_per_char(self) -> float:
        return self.total_nll / self.num_chars / math.log(2)

    def __str__(self) -> str:
        return (f"token perplexity {self.token_perplexity:.3f}, "
                f"char perplexity {self.char_perplexity:.3f} ({self.bits_per_char:.3f} bits/char) "
                f"over {self.num_tokens:,} tokens, {self.num_chars:,} characters")


@torch.no_grad()
def evaluate_perplexity(model, ids: Tensor, num_chars: int, block_size: int,
                        batch_size: int = 32, device: torch.device | str = "cpu") -> Perplexity:
    """Score every token of ``ids`` after the first with ``model`` in non-overlapping windows.

    ``model`` maps inputs (batch, T) to logits (batch, T, vocab). ``num_chars``
    is the character count of the text that ``ids`` encodes. Tokens in the
    final partial window are scored too, with the shorter context they have.
    """
    # Any callable works; an nn.Module is put in eval mode and restored after.
    was_training = isinstance(model, torch.nn.Module) and model.training
    if isinstance(model, torch.nn.Module):
        model.eval()
    total_nll, num_tokens = 0.0, 0
    starts = list(range(0, len(ids) - 1, block_size))
    for i in range(0, len(starts), batch_size):
        windows = [ids[s: s + block_size + 1] for s in starts[i: i + batch_size]]
        inputs = pad_sequence([w[:-1] for w in windows], batch_first=True, padding_value=PAD_ID)
        # Padded target positions get -100, which cross_entropy ignores.
        targets = pad_sequence([w[1:] for w in windows], batch_first=True, padding_value=-100)
        logits = model(inputs.to(device))
        nll = torch.nn.functional.cross_entropy(
            logits.flatten(0, 1).float(), targets.to(device).flatten(), ignore_index=-100, reduction="sum"
        )
        total_nll += nll.item()
        num_tokens += int((targets != -100).sum())
    if was_training:
        model.train()
    return Perplexity(total_nll, num_tokens, num_chars)
