"""Length-bucketing batch sampler: batches of similar lengths waste little padding."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class LengthBucketSampler(Sampler[list[int]]):
    """Yield batches of indices whose lengths are close, in random order.

    Each epoch shuffles all indices, cuts them into pools of
    ``batch_size * pool_factor`` items, sorts each pool by length and slices it
    into batches, then shuffles the batch order. Large pools give tighter
    batches, small pools more randomness. With ``max_frames`` set, a batch
    instead grows until (items * longest length) would exceed ``max_frames``.
    Call ``set_epoch`` before each epoch for a new, reproducible order.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int = 32,
        max_frames: int | None = None,
        pool_factor: int = 50,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if max_frames is not None and max_frames < max(lengths, default=0):
            raise ValueError(f"max_frames={max_frames} is shorter than the longest item ({max(lengths)})")
        self.lengths = torch.as_tensor(lengths, dtype=torch.long)
        self.batch_size = batch_size
        self.max_frames = max_frames
        self.pool_factor = pool_factor
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        n = len(self.lengths)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        pool_size = self.batch_size * self.pool_factor

        batches = []
        for start in range(0, n, pool_size):
            pool = order[start: start + pool_size]
            pool = pool[torch.argsort(self.lengths[pool], stable=True)].tolist()
            batches += self._slice(pool)

        if self.shuffle:
            permutation = torch.randperm(len(batches), generator=generator).tolist()
            batches = [batches[i] for i in permutation]
        return batches

    def _slice(self, sorted_pool: list[int]) -> list[list[int]]:
        if self.max_frames is None:
            batches = [sorted_pool[i: i + self.batch_size] for i in range(0, len(sorted_pool), self.batch_size)]
            if self.drop_last and batches and len(batches[-1]) < self.batch_size:
                batches.pop()
            return batches

        batches, current = [], []
        for index in sorted_pool:
            # The pool is sorted, so the newest item is the longest of the batch.
            longest = int(self.lengths[index])
            if current and (len(current) + 1) * longest > self.max_frames:
                batches.append(current)
                current = []
            current.append(index)
        if current:
            batches.append(current)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._batches()

    def __len__(self) -> int:
        return len(self._batches())


def padding_fraction(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Return the share of padded positions when ``batches`` are padded to their longest item."""
    padded = used = 0
    for batch in batches:
        batch_lengths = [lengths[i] for i in batch]
        padded += max(batch_lengths) * len(batch)
        used += sum(batch_lengths)
    return 1.0 - used / padded if padded else 0.0
