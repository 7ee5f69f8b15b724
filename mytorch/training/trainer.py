"""The training loop: AdamW, warmup and cosine decay, clipping, mixed precision, gradient
accumulation, periodic validation, exactly resumable checkpoints and DistributedDataParallel.

The trainer is independent of the task. It calls two functions:

* ``batches(index)`` returns micro-batch number `index` (0, 1, 2, ...) of the whole run. It
  must be a pure function of the index (draw random batches from a generator seeded with the
  index, or index into a fixed order), because the index is the data position that a
  checkpoint stores and a resumed run continues from. Under data parallelism every process
  asks for the same global batch and keeps its share (`shard_batch`).
* ``loss_fn(model, batch)`` returns the scalar loss of a batch, averaged over its items.

Optional: ``evaluate(model)`` returns validation metrics, for example {"val_loss": 1.3}.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from mytorch.training.distributed import (
    DistributedContext,
    gather_objects,
    init_distributed,
    leave_distributed,
    mean_over_processes,
    shard_batch,
    value_of_main,
)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainerConfig:
    """Optimisation settings; a run config's `training` section."""

    max_steps: int  # optimizer steps; the cosine decay ends here
    lr: float = 1e-3  # peak learning rate, reached after warmup
    warmup_steps: int = 100  # linear warmup from lr / warmup_steps
    min_lr_ratio: float = 0.1  # the cosine decays to lr * min_lr_ratio
    weight_decay: float = 0.1  # AdamW decay of matrices; biases and norms get none
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float | None = 1.0  # maximum global gradient norm; None disables clipping
    accumulation_steps: int = 1  # micro-batches per optimizer step
    precision: str = "auto"  # fp32, bf16, fp16 (GPU only) or auto (see resolve_precision)
    eval_every: int = 0  # optimizer steps between evaluations; 0: only at the end
    checkpoint_every: int = 0  # optimizer steps between checkpoints; 0: only at the end
    time_budget_s: float | None = None  # stop after this many seconds, the schedule compressed to fit
    seed: int = 0  # seeds dropout and every other use of torch's global generator

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"invalid precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        if self.max_steps < 1 or self.accumulation_steps < 1:
            raise ValueError("max_steps and accumulation_steps must be at least 1")


@dataclass
class History:
    """Measurements of a run: the training loss of every optimizer step and each evaluation."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    evaluations: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    seconds: float = 0.0  # wall time of training, evaluations included, over every resumed part

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "evaluations": [[s, dict(m)] for s, m in self.evaluations]}

    @classmethod
    def from_dict(cls, data: dict) -> History:
        data = dict(data)
        data["evaluations"] = [(int(step), dict(metrics)) for step, metrics in data["evaluations"]]
        return cls(**data)


class Trainer:
    """Train `model` on `batches` with `loss_fn`; see the module docstring for the contract.

    checkpoint_path: where checkpoints are written (by process 0). If the file exists when
        `fit` starts, training resumes from it, and the losses continue exactly as they would
        have without the interruption.
    device: default cuda:LOCAL_RANK when CUDA is available, else cpu.
    progress: show a tqdm progress bar (process 0 only).
    """

    def __init__(self, model: nn.Module, config: TrainerConfig, batches: Callable[[int], Any],
                 loss_fn: Callable[[nn.Module, Any], Tensor],
                 evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
                 checkpoint_path: str | Path | None = None, device: str | torch.device | None = None,
                 progress: bool = True):
        self.config = config
        self.batches = batches
        self.loss_fn = loss_fn
        self.evaluate = evaluate
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.progress = progress

        if device is None:
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
            device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.context: DistributedContext = init_distributed(self.device.type)

        self.precision = resolve_precision(config.precision, self.device)
        self.model = model.to(self.device)
        self.optimizer = make_adamw(self.model, config, fused=self.device.type in ("cpu", "cuda"))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.step = 0
        self.history = History()

        torch.manual_seed(config.seed + self.context.rank)
        self.train_model = (
            DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            if self.context.enabled else self.model
        )

    # ----------------------------------------------------------------------------- schedule

    def progress_fraction(self) -> float:
        """Return the fraction of the run done, from 0 to 1: by steps, or by time if that is further."""
        fraction = self.step / self.config.max_steps
        if self.config.time_budget_s:
            fraction = max(fraction, self.history.seconds / self.config.time_budget_s)
        return min(fraction, 1.0)

    def learning_rate(self) -> float:
        """Linear warmup over warmup_steps, then cosine decay to lr * min_lr_ratio at the end.

        Under a time budget the warmup also ends once the run's progress reaches
        warmup_steps / max_steps, so a slower machine warms up over proportionally fewer steps.
        """
        config = self.config
        progress = self.progress_fraction()
        warmup_fraction = config.warmup_steps / config.max_steps
        if self.step < config.warmup_steps and progress < warmup_fraction:
            return config.lr * max((self.step + 1) / config.warmup_steps, progress / warmup_fraction)
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)

    # ----------------------------------------------------------------------------- training

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def train_step(self) -> float:
        """Run one optimizer step over accumulation_steps micro-batches; return the mean loss."""
        config = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()

        total = 0.0
        for micro in range(config.accumulation_steps):
            index = self.step * config.accumulation_steps + micro
            batch = shard_batch(to_device(self.batches(index), self.device), self.context.rank,
                                self.context.world_size)
            last = micro == config.accumulation_steps - 1
            # Under DDP, gradients are averaged over processes only on the last micro-batch.
            sync = contextlib.nullcontext() if last or not self.context.enabled else self.train_model.no_sync()
            with sync:
                with self.autocast():
                    loss = self.loss_fn(self.train_model, batch)
                self.scaler.scale(loss / config.accumulation_steps).backward()
            total += loss.item()

        if config.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return mean_over_processes(total / config.accumulation_steps, self.context)

    def run_evaluation(self) -> None:
        if self.evaluate is None or not self.context.is_main:
            return
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            metrics = {key: float(value) for key, value in self.evaluate(self.model).items()}
        self.model.train(was_training)
        self.history.evaluations.append((self.step, metrics))

    def fit(self) -> History:
        """Train until max_steps (or the time budget) is reached; return the history.

        Resumes from checkpoint_path if that file exists. Writes a checkpoint every
        checkpoint_every steps and at the end.
        """
        from tqdm.auto import tqdm

        if self.checkpoint_path is not None and self.checkpoint_path.is_file():
            self.load_checkpoint(self.checkpoint_path)

        config = self.config
        bar = tqdm(total=config.max_steps, initial=self.step, unit="step", mininterval=2.0,
                   disable=not (self.progress and self.context.is_main))
        self.model.train()
        resumed_at = time.perf_counter() - self.history.seconds
        while self.step < config.max_steps and self.progress_fraction() < 1.0:
            lr = self.learning_rate()
            loss = self.train_step()
            if not math.isfinite(loss):
                raise FloatingPointError(f"the training loss is {loss} at step {self.step}; "
                                         f"lower the learning rate or check the data")
            self.step += 1
            self.history.steps.append(self.step)
            self.history.train_loss.append(loss)
            self.history.lr.append(lr)
            self.history.seconds = self.elapsed_since(resumed_at)

            if config.eval_every and self.step % config.eval_every == 0:
                self.run_evaluation()
                self.history.seconds = self.elapsed_since(resumed_at)
            if config.checkpoint_every and self.step % config.checkpoint_every == 0:
                self.save_checkpoint()
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", refresh=False)
        bar.close()

        # Only process 0 evaluates and records evaluations, so its record decides for all.
        evaluated_last = bool(self.history.evaluations) and self.history.evaluations[-1][0] == self.step
        if not value_of_main(float(evaluated_last), self.context):
            self.run_evaluation()
            self.history.seconds = self.elapsed_since(resumed_at)
        self.save_checkpoint()
        return self.history

    def elapsed_since(self, start: float) -> float:
        """Return the seconds since `start` by process 0's clock.

        Every process must stop at the same step under a time budget: one that stopped alone
        would leave the others waiting in their next gradient exchange.
        """
        return value_of_main(time.perf_counter() - start, self.context)

    def close(self) -> None:
        """End a data-parallel run: wait for every process, then leave the process group.

        Call it once, at the end of a script launched with torchrun, after the last `fit` and
        checkpoint. It does nothing in a single process.
        """
        if not self.context.enabled or not dist.is_initialized():
            return
        dist.barrier()
        self.train_model = self.model  # the DDP wrapper references the group, so release it first
        gc.collect()
        leave_distributed()

    # ----------------------------------------------------------------------------- checkpoints

    def save_checkpoint(self, path: str | Path | None = None) -> None:
        """Write everything a resumed run needs; process 0 writes, the others contribute RNG states."""
        path = Path(path) if path else self.checkpoint_path
        rng_states = gather_objects(capture_rng_state(), self.context)
        if path is None or not self.context.is_main:
            return
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,  # the data position is step * accumulation_steps
            "history": self.history.as_dict(),
            "rng": rng_states,  # one entry per process, in rank order
            "world_size": self.context.world_size,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".partial")
        torch.save(state, temporary)
        os.replace(temporary, path)  # a kill while saving leaves the previous checkpoint intact

    def load_checkpoint(self, path: str | Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=True)
        if state["world_size"] != self.context.world_size:
            raise ValueError(
                f"{path} was written by {state['world_size']} processes; resume it with the same "
                f"number, not {self.context.world_size}"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = state["step"]
        self.history = History.from_dict(state["history"])
        restore_rng_state(state["rng"][self.context.rank])


def resolve_precision(precision: str, device: torch.device) -> str:
    """Turn "auto" into fp32, bf16 or fp16 for `device`; reject fp16 on the CPU.

    auto: on a GPU, bf16 where it is supported, else fp16 with loss scaling. On the CPU, bf16
    when the processor multiplies bf16 natively (AVX512-BF16 or AMX), else fp32, because
    emulated bf16 is slower than fp32.
    """
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    return precision


def cpu_has_native_bf16() -> bool:
    """Tell whether the CPU has bf16 matrix instructions (Linux only: reads /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def make_adamw(model: nn.Module, config: TrainerConfig, fused: bool) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (embeddings included), not on biases or norms."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (decay if parameter.dim() >= 2 else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), fused=fused)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor of a nested batch to `device`."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    if hasattr(batch, "_fields"):
        return type(batch)(*(to_device(value, device) for value in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device) for value in batch)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return dataclasses.replace(batch, **{f.name: to_device(getattr(batch, f.name), device)
                                             for f in dataclasses.fields(batch)})
    return batch


def capture_rng_state() -> dict:
    """The states of every random generator a training step may use, as tensors and numbers."""
    numpy_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": (numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
