"""A generic trainer: AdamW with warmup and cosine decay, mixed precision, gradient
accumulation, exactly resumable checkpoints and data-parallel training under torchrun.

The language model (notebook 04) and the speech recogniser (notebook 05) both use it.
"""

from mytorch.training.plotting import plot_history
from mytorch.training.trainer import History, Trainer, TrainerConfig

__all__ = ["History", "Trainer", "TrainerConfig", "plot_history"]
