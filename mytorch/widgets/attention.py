"""A widget that steps through a decoded sequence and shows where each token looks.

The input is one sequence: a prompt and the tokens generated after it. A slider picks a
generated token, and the widget shows the self-attention that predicted it. That is the
attention of the position before the token over all tokens up to that position, drawn as a
heatmap labelled with those tokens. Pickers choose the layer and the head, or the mean over the heads, or all heads (one row
each).

The interactive view uses only ipywidgets' built-in controls, an Output widget and matplotlib
images, so it needs no JavaScript from the network: it works offline in JupyterLab and on
Colab. Where no one can move a slider it draws one static figure instead, which is saved in
the notebook: with static=True, under nbgrader, in the course's solution run, and when the
kernel was started by papermill, nbclient or nbconvert.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import torch

from mytorch.runtime import runs_without_frontend

# Characters that would be invisible or break a tick label.
VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥"}


def token_labels(tokens: Sequence[int], tokenizer) -> list[str]:
    """Return one printable label per token: its text, with spaces and line breaks made visible."""
    labels = []
    for token in tokens:
        text = tokenizer.decode([int(token)], strip_special=False)
        labels.append("".join(VISIBLE.get(ch, ch) for ch in text) or "∅")
    return labels


@torch.no_grad()
def attention_weights(model, tokens: torch.Tensor) -> np.ndarray:
    """Run `model` on one sequence (T,) and return its attention, (layers, heads, T, T).

    `model(tokens, return_weights=True)` must return (logits, list of (1, heads, T, T)).
    """
    model.eval()
    _, weights = model(tokens.unsqueeze(0), return_weights=True)
    return torch.stack([w[0] for w in weights]).float().cpu().numpy()


def _select_heads(weights: np.ndarray, layer: int, head: int | str, query: int) -> tuple[np.ndarray, list[str]]:
    """Rows of the heatmap for `query`: (rows, query + 1) and their labels."""
    row = weights[layer, :, query, : query + 1]  # (heads, query + 1)
    if head == "mean":
        return row.mean(axis=0, keepdims=True), ["mean"]
    if head == "all":
        return row, [f"head {h}" for h in range(row.shape[0])]
    return row[int(head): int(head) + 1], [f"head {head}"]


def draw_attention(axes, weights: np.ndarray, labels: Sequence[str], position: int, layer: int,
                   head: int | str = "mean", window: int = 48) -> None:
    """Draw the attention that predicted the token at `position` (>= 1).

    That is the attention of query position - 1 over the keys up to it, at most the last
    `window` of them. weights: (layers, heads, T, T). labels: T token labels. The query's own
    label is drawn in red.
    """
    query = position - 1
    rows, row_labels = _select_heads(weights, layer, head, query)
    first = max(0, query + 1 - window)
    rows = rows[:, first:]
    axes.imshow(rows, cmap="Blues", vmin=0, vmax=max(float(rows.max()), 1e-6), aspect="auto",
                interpolation="nearest")
    axes.set_xticks(range(rows.shape[1]), labels[first: query + 1], fontsize=8)
    axes.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    axes.get_xticklabels()[-1].set_color("tab:red")
    heads = head if head in ("mean", "all") else f"head {head}"
    axes.set_title(f"layer {layer}, {heads}: attention while predicting token {position} "
                   f"'{labels[position]}'", fontsize=9)


def static_figure(weights: np.ndarray, labels: Sequence[str], positions: Sequence[int],
                  head: int | str = "mean", window: int = 48):
    """Draw one heatmap per (generated position, layer): the figure used where widgets cannot run."""
    import matplotlib.pyplot as plt

    num_layers = weights.shape[0]
    figure, axes = plt.subplots(len(positions) * num_layers, 1,
                                figsize=(min(16, 0.25 * window + 2), 1.0 * len(positions) * num_layers + 1),
                                squeeze=False)
    for i, position in enumerate(positions):
        for layer in range(num_layers):
            draw_attention(axes[i * num_layers + layer, 0], weights, labels, position, layer, head, window)
    figure.tight_layout()
    return figure


def show_attention(model, tokens: torch.Tensor, tokenizer, first_generated: int = 1,
                   static: bool | None = None, window: int = 48):
    """Display the attention explorer for one decoded sequence `tokens` (T,).

    first_generated: the index of the first generated token (the prompt's length, at least 1);
        the slider runs from there to the end.
    static: None draws the static figure where no one can use a widget (see the module
        docstring); True always draws it.
    Returns the widget, or the static figure.
    """
    from IPython.display import display

    weights = attention_weights(model, tokens)  # (layers, heads, T, T)
    labels = token_labels(tokens.tolist(), tokenizer)
    T = len(labels)
    first_generated = min(max(first_generated, 1), T - 1)  # token 0 has no attention before it
    if static is None:
        static = runs_without_frontend()
    if static:
        import matplotlib.pyplot as plt

        positions = sorted({first_generated, (first_generated + T - 1) // 2, T - 1})
        figure = static_figure(weights, labels, positions, "mean", window)
        display(figure)
        plt.close(figure)
        return figure
    return _interactive(weights, labels, first_generated, window)


def _interactive(weights: np.ndarray, labels: Sequence[str], first_generated: int, window: int):
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    num_layers, num_heads, T, _ = weights.shape
    position = widgets.IntSlider(value=first_generated, min=first_generated, max=T - 1,
                                 description="token", continuous_update=False)
    layer = widgets.Dropdown(options=list(range(num_layers)), value=num_layers - 1, description="layer")
    head = widgets.Dropdown(options=["mean", "all", *range(num_heads)], value="mean", description="head")
    text = widgets.HTML()
    output = widgets.Output()

    def redraw(_=None) -> None:
        p = position.value
        text.value = (f"<code>{html.escape(''.join(labels[:first_generated]))}"
                      f"<b>{html.escape(''.join(labels[first_generated:p]))}</b>"
                      f"<b style='color:#c00'>{html.escape(labels[p])}</b></code>")
        with output:
            output.clear_output(wait=True)
            rows = num_heads if head.value == "all" else 1
            figure, axes = plt.subplots(figsize=(min(16, 0.25 * window + 2), 0.35 * rows + 1.4))
            draw_attention(axes, weights, labels, p, layer.value, head.value, window)
            figure.tight_layout()
            plt.show()

    for control in (position, layer, head):
        control.observe(redraw, names="value")
    redraw()
    box = widgets.VBox([widgets.HBox([position, layer, head]), text, output])
    display(box)
    return box
