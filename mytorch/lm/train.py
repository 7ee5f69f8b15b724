"""Train notebook 04's reference language model from the command line, in one or more processes.

A notebook runs in one process, so it trains on one device. With several GPUs in one machine,
start one process per GPU with torchrun. The processes split every batch between them
(DistributedDataParallel), and they write the same files as a single process would:

    python -m mytorch.lm.train --size gpu --out runs/lm_gpu
    torchrun --standalone --nproc_per_node=4 -m mytorch.lm.train --size gpu --out runs/lm_gpu

The config's data.batch_size is the global batch, so the result does not depend on the number
of processes. It must be a multiple of the number of processes. In <out> the run writes
lm_model.pt (the checkpoint that notebook 04's quality cell grades: submit it as the notebook's
own), training_state.pt (run the same command again to resume after an interruption) and
loss.png. It trains the library's reference DecoderOnlyTransformer, not a student's notebook code.

NOTE: data parallelism is tested on the CPU with gloo and 2 processes. It has not run on GPUs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mytorch.config import CONFIG_DIR, ConfigError
from mytorch.lm.checkpoint import save_lm_checkpoint, score_test_slice
from mytorch.lm.loss import lm_loss
from mytorch.lm.model import DecoderOnlyTransformer
from mytorch.lm.run import NOTEBOOK, TextBatches, load_run_config, model_arguments, validation_evaluator
from mytorch.training import Trainer, plot_history

CHECKPOINT = "lm_model.pt"
TRAINING_STATE = "training_state.pt"
LOSS_PLOT = "loss.png"


def loss_fn(model, batch):
    inputs, targets = batch
    return lm_loss(model(inputs), targets)


def train(size: str, out: Path, progress: bool = True) -> Path:
    """Train with configs/04_causal_lm/<size>.yaml; return the path of the saved checkpoint."""
    config = load_run_config(size)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(config.training.seed)
    arguments = model_arguments(config)
    model = DecoderOnlyTransformer(**arguments)
    trainer = Trainer(model, config.training, TextBatches(config.data), loss_fn,
                      evaluate=validation_evaluator(config.data),
                      checkpoint_path=out / TRAINING_STATE, progress=progress)
    is_main = trainer.context.is_main
    if is_main:
        print(f"{size} run: {sum(p.numel() for p in model.parameters()):,} parameters on "
              f"{trainer.context.world_size} process(es), device {trainer.device}, "
              f"precision {trainer.precision}")

    history = trainer.fit()
    trainer.close()
    if not is_main:
        return out / CHECKPOINT

    model = model.float().eval()
    checkpoint = save_lm_checkpoint(out / CHECKPOINT, model, arguments, config.data.tokenizer,
                                    config.data.block_size)
    plot_history(history, metric="val_loss", title=f"{size} run: loss per character").savefig(out / LOSS_PLOT)
    with torch.no_grad():
        test = score_test_slice(model, config.data.tokenizer, config.data.block_size)
    print(f"trained {history.steps[-1]} steps in {history.seconds / 60:.1f} minutes; "
          f"test split: {test}")
    print(f"saved {checkpoint}, {out / LOSS_PLOT}")
    return checkpoint


def run_sizes() -> list[str]:
    """Return the run sizes of notebook 04: its configs in configs/04_causal_lm/ but quality.yaml."""
    return sorted(path.stem for path in (CONFIG_DIR / NOTEBOOK).glob("*.yaml") if path.stem != "quality")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mytorch.lm.train",
        description="Train notebook 04's reference language model; start it with torchrun "
                    "to train on several GPUs.")
    parser.add_argument("--size", default="gpu", choices=run_sizes(),
                        help="the config in configs/04_causal_lm/ to train with; default gpu")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for the checkpoint, the training state and the loss plot")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    try:
        train(args.size, args.out, progress=not args.no_progress)
    except ConfigError as error:
        parser.exit(2, f"{parser.prog}: {error}\n")


if __name__ == "__main__":
    main()
