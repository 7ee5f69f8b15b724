"""Data-parallel helpers: the process group that torchrun describes, and batch sharding."""

from __future__ import annotations

import atexit
import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class DistributedContext:
    """This process's place among the data-parallel processes (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistributedContext:
    """Join the process group if torchrun started several processes; else return one process.

    torchrun sets WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. The backend is gloo
    on the CPU. On CUDA, NCCL carries the GPU tensors and gloo the small CPU ones (losses, clocks,
    random states).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    if not dist.is_initialized():
        dist.init_process_group(backend="cpu:gloo,cuda:nccl" if device_type == "cuda" else "gloo")
        # A group left to the interpreter's teardown can abort the process ("terminate called
        # without an active exception") after training succeeded. Trainer.close() leaves it
        # cleanly, and this hook covers scripts that do not call it.
        atexit.register(leave_distributed)
    return DistributedContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def leave_distributed() -> None:
    """Leave the process group, if this process is in one. Safe to call more than once."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard_batch(batch: Any, rank: int, world_size: int) -> Any:
    """Return this rank's equal share, along dimension 0, of every tensor in `batch`.

    `batch` may nest tensors in tuples, lists, dicts and dataclasses; other values are kept
    whole. Raises ValueError if a tensor's first dimension is not divisible by world_size.
    """
    if world_size == 1:
        return batch
    if isinstance(batch, Tensor):
        if batch.dim() == 0:
            return batch
        if batch.shape[0] % world_size:
            raise ValueError(
                f"a batch of {batch.shape[0]} rows cannot be split evenly over {world_size} "
                f"processes; make the batch size a multiple of the number of processes"
            )
        share = batch.shape[0] // world_size
        return batch[rank * share: (rank + 1) * share]
    if isinstance(batch, dict):
        return {key: shard_batch(value, rank, world_size) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)) and not hasattr(batch, "_fields"):
        return type(batch)(shard_batch(value, rank, world_size) for value in batch)
    if hasattr(batch, "_fields"):  # a named tuple
        return type(batch)(*(shard_batch(value, rank, world_size) for value in batch))
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        changes = {f.name: shard_batch(getattr(batch, f.name), rank, world_size)
                   for f in dataclasses.fields(batch)}
        return dataclasses.replace(batch, **changes)
    return batch


def mean_over_processes(value: float, context: DistributedContext) -> float:
    """Average a Python number over the processes (itself when there is one)."""
    if not context.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor.item()) / context.world_size


def value_of_main(value: float, context: DistributedContext) -> float:
    """Return process 0's `value` on every process, so that all of them take the same decision."""
    if not context.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def gather_objects(obj: Any, context: DistributedContext) -> list[Any]:
    """Return the list of `obj` from every process, in rank order."""
    if not context.enabled:
        return [obj]
    objects: list[Any] = [None] * context.world_size
    dist.all_gather_object(objects, obj)
    return objects
