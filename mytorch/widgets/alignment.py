"""A widget that shows where the decoder of a speech recogniser looks while it writes each character.

For one utterance it draws the log-mel spectrogram and, below it on the same time axis, the
cross-attention of the decoder: one row per output character, one column per encoder
position. Pickers choose the decoder layer and the head (or the mean over heads), a slider
picks an output character, whose attention is then drawn over the spectrogram, and the
transcript is shown with its errors against the reference marked.

The interactive view uses only ipywidgets and matplotlib's inline images, so it needs no
JavaScript from the network and works offline in JupyterLab and on Colab. Where no one can
move a slider (under nbgrader, in a solution run or another papermill or nbclient run, or
with static=True) it draws one static figure instead, which is saved in the notebook.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

from mytorch.asr.metrics import character_alignment
from mytorch.data.tokenizers import BOS_ID, EOS
from mytorch.runtime import runs_without_frontend

_OPERATION_STYLES = {
    "substitute": "background:#f8c9c9",
    "insert": "background:#c9daf8",
    "delete": "color:#999;text-decoration:line-through",
}


@dataclass
class Alignment:
    """The cross-attention of one decoded utterance.

    features: (T, n_mels) log-mel features of the utterance, without padding.
    weights: (layers, heads, L, S) cross-attention weights. Row t is the attention over the S
        encoder positions of the utterance when the decoder predicts output token t.
    labels: the L output tokens as text: the hypothesis characters, then EOS.
    hypothesis, reference: the decoded transcript and the true one (or None).
    frame_shift: seconds between two feature frames.
    subsampling: feature frames per encoder position.
    """

    features: np.ndarray
    weights: np.ndarray
    labels: list[str]
    hypothesis: str
    reference: str | None = None
    frame_shift: float = 0.01
    subsampling: int = 4

    @property
    def num_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def num_heads(self) -> int:
        return self.weights.shape[1]

    def attention(self, layer: int, head: int | str) -> np.ndarray:
        """Return the (L, S) weights of one layer: one head's, or their mean for head="mean"."""
        weights = self.weights[layer]
        return weights.mean(axis=0) if head == "mean" else weights[int(head)]


def compute_alignment(model, features, tokenizer, hypothesis: str, reference: str | None = None,
                      display_features=None) -> Alignment:
    """Run `model` with teacher forcing on `hypothesis` and collect its cross-attention.

    model: an EncoderDecoderTransformer (encode, and decode with return_weights=True).
    features: (T, n_mels) normalised features of one utterance, as the model reads them.
    display_features: what to draw as the spectrogram (default: `features`), for example the
        unnormalised log-mel features.
    """
    import torch

    model_was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            x = torch.as_tensor(features, dtype=torch.float32, device=device).unsqueeze(0)
            memory, memory_lengths = model.encode(x, torch.tensor([x.shape[1]], device=device))
            ids = [BOS_ID] + list(tokenizer.encode(hypothesis))
            tokens = torch.tensor([ids], dtype=torch.long, device=device)
            _, weights = model.decode(tokens, memory, memory_lengths, return_weights=True)
    finally:
        model.train(model_was_training)

    S = int(memory_lengths[0])
    stacked = torch.stack([w[0, :, :, :S] for w in weights]).float().cpu().numpy()  # (layers, H, L, S)
    spectrogram = features if display_features is None else display_features
    return Alignment(
        features=np.asarray(torch.as_tensor(spectrogram).float().cpu()),
        weights=stacked,
        labels=[tokenizer.decode([i]) or "?" for i in ids[1:]] + [EOS],
        hypothesis=hypothesis,
        reference=reference,
    )


def transcript_html(hypothesis: str, reference: str | None, current: int | None = None) -> str:
    """Return the hypothesis as HTML, errors against the reference marked, character `current` boxed.

    Substituted characters have a red background (the reference's character in the tooltip),
    inserted ones a blue background, and reference characters the hypothesis misses are
    shown struck through in grey.
    """
    if reference is None:
        pieces = [("equal", hypothesis, hypothesis)]
    else:
        pieces = character_alignment(reference, hypothesis)

    spans, position = [], 0  # position: index of the next hypothesis character
    for operation, ref, hyp in pieces:
        style = _OPERATION_STYLES.get(operation, "")
        if operation == "delete":
            spans.append(f'<span style="{style}" title="missing">{html.escape(ref)}</span>')
            continue
        for offset, char in enumerate(hyp):
            char_style = style
            if current is not None and position == current:
                char_style += ";outline:2px solid #e69f00;font-weight:bold"
            title = f' title="reference: {html.escape(ref[offset] if offset < len(ref) else "")}"' if operation == "substitute" else ""
            spans.append(f'<span style="{char_style}"{title}>{html.escape(char) if char != " " else "&nbsp;"}</span>')
            position += 1
    if current is not None and current == len(hypothesis):
        spans.append('<span style="outline:2px solid #e69f00;font-weight:bold">&lt;/s&gt;</span>')

    rows = [f'<div style="font-family:monospace;font-size:14px">hypothesis: {"".join(spans)}</div>']
    if reference is not None:
        rows.append(f'<div style="font-family:monospace;font-size:14px;color:#555">reference:&nbsp; {html.escape(reference)}</div>')
    return "\n".join(rows)


def _error_marks(hypothesis: str, reference: str | None) -> str:
    """Return a line under the hypothesis with ^ below each substituted or inserted character."""
    if reference is None:
        return ""
    marks = []
    for operation, _, hyp in character_alignment(reference, hypothesis):
        if operation != "delete":
            marks.append(("^" if operation in ("substitute", "insert") else " ") * len(hyp))
    return "".join(marks)


def draw_alignment(alignment: Alignment, layer: int = -1, head: int | str = "mean",
                   current: int | None = None, with_transcript: bool = False):
    """Draw the spectrogram and the cross-attention of one layer; return the matplotlib figure.

    With `current` (an output token index), its row is boxed and its attention is drawn over
    the spectrogram. With `with_transcript`, the reference and hypothesis are written under
    the plots, with ^ under each wrong character.
    """
    import matplotlib.pyplot as plt

    layer = layer % alignment.num_layers
    weights = alignment.attention(layer, head)                    # (L, S)
    L, S = weights.shape
    T, n_mels = alignment.features.shape
    seconds = T * alignment.frame_shift
    position_seconds = alignment.subsampling * alignment.frame_shift  # each encoder position

    height = 2.2 + 0.16 * L + (0.7 if with_transcript else 0)
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, height), sharex=True,
        gridspec_kw={"height_ratios": [2.2, max(0.16 * L, 1.5)]},
    )
    top.imshow(alignment.features.T, origin="lower", aspect="auto", cmap="magma",
               extent=(0, seconds, 0, n_mels))
    top.set_ylabel("mel channel")
    head_name = "mean over heads" if head == "mean" else f"head {head}"
    top.set_title(f"cross-attention of decoder layer {layer + 1} of {alignment.num_layers}, {head_name}")

    bottom.imshow(weights, aspect="auto", cmap="Greys", interpolation="nearest",
                  extent=(0, S * position_seconds, L, 0), vmin=0)
    bottom.set_yticks(np.arange(L) + 0.5)
    bottom.set_yticklabels([label if label != " " else "␣" for label in alignment.labels], fontsize=7,
                           family="monospace")
    bottom.set_ylabel("output character")
    bottom.set_xlabel("time (s)")
    bottom.set_xlim(0, seconds)

    if current is not None:
        row = weights[current]
        bottom.add_patch(plt.Rectangle((0, current), S * position_seconds, 1, fill=False,
                                       edgecolor="#e69f00", linewidth=1.5))
        # The attended frames, scaled to the height of the spectrogram.
        times = (np.arange(S) + 0.5) * position_seconds
        top.fill_between(times, 0, n_mels * row / max(row.max(), 1e-9), step="mid",
                         color="#56b4e9", alpha=0.45)
        label = alignment.labels[current]
        top.text(0.01, 0.92, f"character {current + 1}: {label!r}", transform=top.transAxes,
                 color="white", fontsize=9, family="monospace")

    if with_transcript:
        lines = []
        if alignment.reference is not None:
            lines.append(f"reference:  {alignment.reference}")
        lines.append(f"hypothesis: {alignment.hypothesis}")
        if alignment.reference is not None:
            lines.append(f"            {_error_marks(alignment.hypothesis, alignment.reference)}")
        figure.text(0.01, 0.01, "\n".join(lines), family="monospace", fontsize=8, va="bottom")
        figure.tight_layout(rect=(0, 0.09 * len(lines) / height * 2.2, 1, 1))
    else:
        figure.tight_layout()
    return figure


def show_alignment(alignment: Alignment, static: bool | None = None):
    """Display the alignment widget, or the static figure where no one can use a widget.

    static: None chooses by `runs_without_frontend`; True always draws the static figure.
    Returns the widget (interactive) or the figure (static).
    """
    import matplotlib.pyplot as plt
    from IPython.display import HTML, display

    if static is None:
        static = runs_without_frontend()
    if static:
        figure = draw_alignment(alignment, layer=-1, head="mean", with_transcript=True)
        display(figure)
        plt.close(figure)
        display(HTML(transcript_html(alignment.hypothesis, alignment.reference)))
        return figure

    import ipywidgets as widgets

    layer_picker = widgets.Dropdown(
        options=[(f"layer {i + 1}", i) for i in range(alignment.num_layers)],
        value=alignment.num_layers - 1, description="layer",
    )
    head_picker = widgets.Dropdown(
        options=[("mean", "mean")] + [(f"head {h + 1}", h) for h in range(alignment.num_heads)],
        value="mean", description="head",
    )
    character = widgets.IntSlider(value=0, min=0, max=len(alignment.labels) - 1,
                                  description="character", continuous_update=False)
    picture = widgets.Output()
    transcript = widgets.HTML()

    def redraw(_=None):
        transcript.value = transcript_html(alignment.hypothesis, alignment.reference, character.value)
        with picture:
            picture.clear_output(wait=True)
            figure = draw_alignment(alignment, layer_picker.value, head_picker.value, character.value)
            display(figure)
            plt.close(figure)

    for control in (layer_picker, head_picker, character):
        control.observe(redraw, names="value")
    redraw()
    widget = widgets.VBox([widgets.HBox([layer_picker, head_picker, character]), transcript, picture])
    display(widget)
    return widget
