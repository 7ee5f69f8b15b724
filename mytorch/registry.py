"""Which assignment each graded component belongs to, and the grading mode that hides references.

Every graded component has a reference implementation in this package, written once, with
the part a student writes between ``### BEGIN SOLUTION`` and ``### END SOLUTION``. The course
build copies that source into the answer cell named by ``grade_id`` in the assignment's
solution notebook.

Grading mode: when the environment variable ``MYTORCH_GRADING`` names an assignment, the
reference modules of that assignment and of every later one refuse to import. A notebook
under grading must then run the student's own cell, and a later notebook still imports the
earlier references it builds on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

GRADING_ENV = "MYTORCH_GRADING"

# The course sequence. A later assignment may import the references of earlier ones.
ASSIGNMENTS: tuple[str, ...] = (
    "01_attention_numpy",
    "02_positions_and_masks",
    "03_transformer_layers",
    "04_causal_lm",
    "05_asr",
)


@dataclass(frozen=True)
class Component:
    """A graded component: a class or function a student writes in one answer cell."""

    name: str  # the name the notebook defines, e.g. "Linear"
    module: str  # the module that holds the reference, e.g. "mytorch.nn.linear"
    assignment: str  # the assignment it belongs to, one of ASSIGNMENTS
    grade_id: str  # the nbgrader grade_id of its answer cell

    @property
    def notebook(self) -> str:
        return f"solutions/{self.assignment}/{self.assignment}.ipynb"


def _assignment(assignment: str, module: str, *names_and_ids: tuple[str, str]) -> list[Component]:
    return [Component(name, module, assignment, grade_id) for name, grade_id in names_and_ids]


COMPONENTS: tuple[Component, ...] = tuple(
    # 01: attention and optimizers in NumPy, forward and backward.
    _assignment("01_attention_numpy", "mytorch.nn.linear", ("Linear", "linear"))
    + _assignment("01_attention_numpy", "mytorch.nn.softmax", ("Softmax", "softmax"))
    + _assignment(
        "01_attention_numpy", "mytorch.nn.attention",
        ("ScaledDotProductAttention", "scaled_dot_product_attention"),
        ("MultiHeadAttention", "multi_head_attention"),
    )
    + _assignment("01_attention_numpy", "mytorch.nn.optim", ("SGD", "sgd"), ("Adam", "adam"))
    # 02: positions and masks, in PyTorch from here on.
    + _assignment(
        "02_positions_and_masks", "mytorch.transformer.positional",
        ("PositionalEncoding", "positional_encoding"),
    )
    + _assignment(
        "02_positions_and_masks", "mytorch.transformer.masks",
        ("pad_mask", "pad_mask"), ("causal_mask", "causal_mask"),
    )
    # 03: pre-LN sublayers and the layers built from them.
    + _assignment(
        "03_transformer_layers", "mytorch.transformer.sublayers",
        ("SelfAttentionLayer", "self_attention_layer"),
        ("CrossAttentionLayer", "cross_attention_layer"),
        ("FeedForwardLayer", "feed_forward_layer"),
    )
    + _assignment(
        "03_transformer_layers", "mytorch.transformer.layers",
        ("SelfAttentionDecoderLayer", "self_attention_decoder_layer"),
        ("CrossAttentionDecoderLayer", "cross_attention_decoder_layer"),
        ("SelfAttentionEncoderLayer", "self_attention_encoder_layer"),
    )
    # 04: the decoder-only language model, its loss and its decoders.
    + _assignment(
        "04_causal_lm", "mytorch.lm.model",
        ("DecoderOnlyTransformer", "decoder_only_transformer"),
    )
    + _assignment("04_causal_lm", "mytorch.lm.loss", ("lm_loss", "lm_loss"))
    + _assignment(
        "04_causal_lm", "mytorch.lm.decoding",
        ("greedy_decode", "greedy_decode"),
        ("top_k_top_p_filter", "top_k_top_p_filter"),
        ("sample_decode", "sample_decode"),
        ("beam_search", "beam_search"),
    )
    # 05: speech recognition with an encoder-decoder Transformer.
    + _assignment(
        "05_asr", "mytorch.asr.frontend",
        ("normalize_features", "normalize_features"), ("SpecAugment", "spec_augment"),
    )
    + _assignment("05_asr", "mytorch.asr.embedding", ("SpeechEmbedding", "speech_embedding"))
    + _assignment(
        "05_asr", "mytorch.asr.model", ("EncoderDecoderTransformer", "encoder_decoder_transformer"),
    )
    + _assignment("05_asr", "mytorch.asr.loss", ("joint_loss", "joint_loss"))
    + _assignment("05_asr", "mytorch.asr.decoding", ("transcribe", "transcribe"))
)


class ReferenceUnavailableError(ImportError):
    """Raised when grading mode hides the reference a notebook tried to import."""


def assignment_index(assignment: str) -> int:
    """Return the position of `assignment` in the course sequence."""
    try:
        return ASSIGNMENTS.index(assignment)
    except ValueError:
        raise ValueError(
            f"unknown assignment {assignment!r}; the course has: {', '.join(ASSIGNMENTS)}"
        ) from None


def grading_assignment() -> str | None:
    """Return the assignment being graded, or None when grading mode is off."""
    value = os.environ.get(GRADING_ENV, "").strip()
    if not value:
        return None
    assignment_index(value)  # a misspelled assignment must not silently switch grading off
    return value


def components_of(assignment: str) -> tuple[Component, ...]:
    """Return the graded components of one assignment, in registry order."""
    assignment_index(assignment)
    return tuple(c for c in COMPONENTS if c.assignment == assignment)


def is_hidden(component: Component, graded: str | None) -> bool:
    """Tell whether grading `graded` hides the reference of `component`."""
    if graded is None:
        return False
    return assignment_index(component.assignment) >= assignment_index(graded)


def check_reference_available(module: str) -> None:
    """Raise ReferenceUnavailableError if grading mode hides a component defined in `module`.

    Every reference module calls this at import time, with its own ``__name__``.
    """
    graded = grading_assignment()
    hidden = [c for c in COMPONENTS if c.module == module and is_hidden(c, graded)]
    if not hidden:
        return

    cells = ", ".join(
        f"{c.name} in the answer cell '{c.grade_id}' of {c.assignment}.ipynb" for c in hidden
    )
    raise ReferenceUnavailableError(
        f"{module} holds the reference of graded components and is unavailable while "
        f"{graded} is graded. Define {cells}, and run those cells instead of importing from mytorch."
    )
