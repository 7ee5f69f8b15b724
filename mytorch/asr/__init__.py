"""Speech recognition with an encoder-decoder Transformer (notebook 05), batch first.

Graded components, each written by the student in its own cell of ``solutions/05_asr/05_asr.ipynb``:

* ``frontend``: ``normalize_features`` and ``SpecAugment``.
* ``embedding``: ``SpeechEmbedding``, the convolutional front end that reduces time 4x.
* ``model``: ``EncoderDecoderTransformer`` with a CTC head on the encoder output.
* ``loss``: ``joint_loss``, attention cross-entropy plus weighted CTC.
* ``decoding``: ``transcribe``, greedy or beam-search decoding to text.

Given to students (ungraded): ``metrics`` (CER, WER, results table), ``stepping`` (the
KV-cached decoder step that ``transcribe`` runs), ``pipeline`` (datasets, feature statistics
and evaluation batches), ``training`` (the run configuration, and training batches, loss and
evaluation for the trainer of notebook 04), ``checkpoint`` (saving, loading and grading a
trained model).

The names are loaded lazily (PEP 562), so that importing an ungraded module never imports a
reference that grading mode hides.
"""

from __future__ import annotations

import importlib

from mytorch.registry import COMPONENTS

_EXPORTS: dict[str, str] = {
    component.name: component.module
    for component in COMPONENTS
    if component.module.startswith(__name__ + ".")
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    """Import the module of component `name` on first access and return the component."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
