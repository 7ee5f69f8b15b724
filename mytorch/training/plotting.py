"""The loss curve of a training run."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mytorch.training.trainer import History


def plot_history(history: History, metric: str = "val_loss", smoothing: int = 20,
                 title: str = "Training") -> Figure:
    """Plot the training loss (raw and as a moving average) and a validation metric by step."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    steps, losses = history.steps, history.train_loss
    axes.plot(steps, losses, color="tab:blue", alpha=0.25, linewidth=0.8, label="training loss")
    if len(losses) >= smoothing > 1:
        smoothed = [sum(losses[i - smoothing + 1: i + 1]) / smoothing for i in range(smoothing - 1, len(losses))]
        axes.plot(steps[smoothing - 1:], smoothed, color="tab:blue",
                  label=f"training loss (mean of {smoothing} steps)")
    validation = [(step, values[metric]) for step, values in history.evaluations if metric in values]
    if validation:
        axes.plot(*zip(*validation), "o-", color="tab:orange", label=metric.replace("_", " "))
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss (nats per token)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return figure
