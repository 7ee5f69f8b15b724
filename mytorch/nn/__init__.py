"""NumPy layers and optimizers with hand-written backward passes (notebook 01).

``from mytorch.nn import Linear`` works, but the names are loaded lazily (PEP 562), so that
``import mytorch.nn`` alone, or importing an ungraded module such as `mytorch.nn.base`,
never imports a reference that grading mode hides. ``from mytorch.nn import *`` imports
every reference, and fails under grading mode.
"""

from __future__ import annotations

from mytorch.lazy import lazy_exports

_EXPORTS = {  # name -> the module that defines it
    "Parameter": "mytorch.nn.base",
    "Module": "mytorch.nn.base",
    "Optimizer": "mytorch.nn.base",
    "Linear": "mytorch.nn.linear",
    "Softmax": "mytorch.nn.softmax",
    "ScaledDotProductAttention": "mytorch.nn.attention",
    "MultiHeadAttention": "mytorch.nn.attention",
    "SGD": "mytorch.nn.optim",
    "Adam": "mytorch.nn.optim",
    "CrossEntropyLoss": "mytorch.nn.losses",
    "TokenAttentionModel": "mytorch.nn.models",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
