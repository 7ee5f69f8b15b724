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

from mytorch.lazy import lazy_exports, registered_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, registered_exports(__name__))
