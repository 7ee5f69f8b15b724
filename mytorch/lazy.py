"""Package names that import their module on first access (PEP 562).

A package of graded references must not import them all when it is imported: grading mode
hides the references of the assignment being graded, and importing an ungraded neighbour
(``mytorch.asr.metrics``) or one earlier reference must still work. Each such package's
``__init__`` therefore lists its names and the modules that define them, and gets its
``__all__``, ``__getattr__`` and ``__dir__`` from `lazy_exports`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

from mytorch.registry import COMPONENTS


def registered_exports(package: str) -> dict[str, str]:
    """Map every registered component of `package` (and its subpackages) to its module."""
    return {c.name: c.module for c in COMPONENTS if c.module.startswith(package + ".")}


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[list[str], Callable[[str], object], Callable[[], list[str]]]:
    """Return ``__all__``, ``__getattr__`` and ``__dir__`` for `package`.

    exports maps each public name to the absolute name of the module that defines it. The
    module is imported when the name is first read.
    """
    exports = dict(exports)

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return sorted(exports), __getattr__, __dir__
