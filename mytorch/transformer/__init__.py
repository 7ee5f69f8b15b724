"""Transformer building blocks in PyTorch, batch first: positions, masks, sublayers and layers.

The graded components are exported lazily (PEP 562): ``import mytorch.transformer`` imports
none of their modules, so grading mode can hide the references of the assignment being graded
while the earlier ones stay importable. ``from mytorch.transformer import pad_mask`` imports
only ``mytorch.transformer.masks``.
"""

from __future__ import annotations

from mytorch.lazy import lazy_exports, registered_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, registered_exports(__name__))
