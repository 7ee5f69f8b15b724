"""The trainer: exact resume after an interruption, gradient accumulation, and DDP on 2 processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from mytorch.lm.loss import lm_loss
from mytorch.lm.model import DecoderOnlyTransformer
from mytorch.training import Trainer, TrainerConfig, plot_history

VOCAB = 12


def tiny_model(dropout: float = 0.0, seed: int = 0) -> DecoderOnlyTransformer:
    torch.manual_seed(seed)
    return DecoderOnlyTransformer(VOCAB, d_model=16, num_heads=2, num_layers=1, d_ff=32,
                                  max_len=16, dropout=dropout)


def batches(index: int, batch_size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Micro-batch `index`: a pure function of the index, as the trainer requires."""
    generator = torch.Generator().manual_seed(index)
    chunk = torch.randint(1, VOCAB, (batch_size, 9), generator=generator)
    return chunk[:, :-1], chunk[:, 1:]


def loss_fn(model, batch):
    inputs, targets = batch
    return lm_loss(model(inputs), targets)


def config(**overrides) -> TrainerConfig:
    settings = dict(max_steps=6, lr=3e-3, warmup_steps=2, precision="fp32", checkpoint_every=3)
    return TrainerConfig(**{**settings, **overrides})


class Interrupted(Exception):
    pass


def test_resume_gives_same_losses(tmp_path):
    straight = Trainer(tiny_model(dropout=0.2), config(), batches, loss_fn,
                       checkpoint_path=tmp_path / "straight.pt", progress=False)
    expected = straight.fit()

    def batches_until_kill(index):
        if index >= 4:  # the checkpoint of step 3 is on disk; die inside step 5
            raise Interrupted
        return batches(index)

    killed = Trainer(tiny_model(dropout=0.2), config(), batches_until_kill, loss_fn,
                     checkpoint_path=tmp_path / "run.pt", progress=False)
    with pytest.raises(Interrupted):
        killed.fit()

    # A fresh process would build the model with other weights and other RNG states.
    torch.manual_seed(123)
    resumed = Trainer(tiny_model(dropout=0.2, seed=99), config(), batches, loss_fn,
                      checkpoint_path=tmp_path / "run.pt", progress=False)
    history = resumed.fit()

    assert history.steps == expected.steps
    assert history.train_loss == expected.train_loss  # exactly equal, not approximately
    for name, parameter in straight.model.state_dict().items():
        assert torch.equal(parameter, resumed.model.state_dict()[name]), name


def test_accumulation_matches_large_batch(tmp_path):
    large = Trainer(tiny_model(), config(max_steps=3), batches, loss_fn, progress=False).fit()

    def half_batches(index):
        inputs, targets = batches(index // 2)
        rows = slice(0, 4) if index % 2 == 0 else slice(4, 8)
        return inputs[rows], targets[rows]

    accumulated = Trainer(tiny_model(), config(max_steps=3, accumulation_steps=2), half_batches,
                          loss_fn, progress=False).fit()
    assert accumulated.train_loss == pytest.approx(large.train_loss, rel=1e-5)


def test_schedule_warmup_then_cosine():
    trainer = Trainer(tiny_model(), config(max_steps=10, warmup_steps=4, min_lr_ratio=0.1),
                      batches, loss_fn, progress=False)
    history = trainer.fit()
    assert history.lr[:4] == pytest.approx([3e-3 * k / 4 for k in range(1, 5)])
    assert history.lr[4:] == sorted(history.lr[4:], reverse=True)
    assert min(history.lr) > 3e-4


def test_evaluations_recorded_and_plotted(tmp_path):
    trainer = Trainer(tiny_model(), config(eval_every=2), batches, loss_fn,
                      evaluate=lambda model: {"val_loss": 1.0}, progress=False)
    history = trainer.fit()
    assert [step for step, _ in history.evaluations] == [2, 4, 6]
    figure = plot_history(history)
    assert figure.axes[0].get_xlabel() == "optimizer step"


DDP_WORKER = textwrap.dedent('''
    import json, sys
    import torch
    from mytorch.training import Trainer
    sys.path.insert(0, sys.argv[2])
    from test_trainer import batches, config, loss_fn, tiny_model

    torch.set_num_threads(1)
    trainer = Trainer(tiny_model(), config(max_steps=4, checkpoint_every=0), batches, loss_fn,
                      progress=False)
    history = trainer.fit()
    if trainer.context.rank == 0:
        weights = {k: v.tolist() for k, v in trainer.model.state_dict().items()}
        json.dump({"loss": history.train_loss, "weights": weights,
                   "world_size": trainer.context.world_size}, open(sys.argv[1], "w"))
    trainer.close()
''')

# Process 0 alone evaluates, and its evaluation outlasts the time budget. Had each process read
# its own clock, process 1 would start step 3 alone and wait there for process 0 forever.
DDP_BUDGET_WORKER = textwrap.dedent('''
    import json, sys, time
    import torch
    from mytorch.training import Trainer
    sys.path.insert(0, sys.argv[2])
    from test_trainer import batches, config, loss_fn, tiny_model

    def slow_evaluation(model):
        time.sleep(3.0)
        return {"val_loss": 1.0}

    torch.set_num_threads(1)
    trainer = Trainer(tiny_model(), config(max_steps=50, checkpoint_every=0, eval_every=2,
                                           time_budget_s=2.0),
                      batches, loss_fn, evaluate=slow_evaluation, progress=False)
    history = trainer.fit()
    json.dump({"steps": history.steps[-1]}, open(f"{sys.argv[1]}.{trainer.context.rank}", "w"))
    trainer.close()
''')


def torchrun(tmp_path: Path, script: str, output: Path) -> None:
    """Run `script` in 2 CPU processes under torchrun; fail the test with their stderr."""
    worker = tmp_path / "worker.py"
    worker.write_text(script)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(worker), str(output), str(Path(__file__).parent)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_ddp_two_processes_match_one(tmp_path):
    output = tmp_path / "ddp.json"
    torchrun(tmp_path, DDP_WORKER, output)
    ddp = json.loads(output.read_text())
    assert ddp["world_size"] == 2

    torch.set_num_threads(1)
    single = Trainer(tiny_model(), config(max_steps=4, checkpoint_every=0), batches, loss_fn,
                     progress=False)
    history = single.fit()
    assert ddp["loss"] == pytest.approx(history.train_loss, rel=1e-5)
    # Loose: the key bias has zero gradient in exact arithmetic, so its gradient is rounding
    # noise, which Adam's normalisation turns into updates of up to lr per step.
    for name, value in single.model.state_dict().items():
        torch.testing.assert_close(torch.tensor(ddp["weights"][name]), value, rtol=0, atol=4 * 3e-3)


@pytest.mark.slow
def test_ddp_time_budget_same_last_step(tmp_path):
    output = tmp_path / "steps.json"
    torchrun(tmp_path, DDP_BUDGET_WORKER, output)
    steps = [json.loads(Path(f"{output}.{rank}").read_text())["steps"] for rank in (0, 1)]
    assert steps == [2, 2]
