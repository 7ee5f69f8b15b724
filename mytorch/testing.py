"""Checks that the notebooks' tests use, with failure messages in the student's terms.

Grading never trusts a student's return value: `as_array` copies it into a plain
`numpy.ndarray` of the expected dtype before anything compares it, so an object with an
always-true ``__eq__`` or an ndarray subclass with patched comparisons gains nothing.
The NumPy functions used here are bound when this module is imported, before any answer
cell runs, so patching ``numpy.allclose`` or ``numpy.testing`` in a notebook changes
nothing either.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

_array = np.array
_abs = np.abs
_argmax = np.argmax
_isfinite = np.isfinite
_unravel_index = np.unravel_index
_ndarray = np.ndarray


def _to_numpy(value: object) -> object:
    """Detach a torch tensor to NumPy without importing torch for NumPy-only notebooks."""
    module = type(value).__module__ or ""
    if module.startswith("torch") and hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value


def as_array(value: object, name: str, shape: tuple[int, ...] | None = None,
             dtype: type = np.float64) -> np.ndarray:
    """Copy `value` into a plain ndarray of `dtype`, checking its shape.

    Raises AssertionError naming `name` when the value is not numeric or has the wrong shape.
    """
    try:
        array = _array(_to_numpy(value), dtype=dtype, copy=True, subok=False)
    except (TypeError, ValueError) as error:
        raise AssertionError(
            f"{name}: expected an array of numbers, got {type(value).__name__} ({error})"
        ) from None

    if type(array) is not _ndarray:
        raise AssertionError(f"{name}: expected a plain numpy.ndarray, got {type(array).__name__}")
    if shape is not None and tuple(array.shape) != tuple(shape):
        raise AssertionError(f"{name}: expected shape {tuple(shape)}, got {tuple(array.shape)}")
    return array


def assert_close(actual: object, expected: object, name: str,
                 atol: float = 1e-8, rtol: float = 1e-6) -> None:
    """Assert that `actual` matches `expected` elementwise within atol + rtol * |expected|.

    The message names the output, the shapes, the largest difference and where it is.
    """
    expected = as_array(expected, f"{name} (expected value)")
    actual = as_array(actual, name, shape=expected.shape)

    finite = _isfinite(actual)
    if not finite.all():
        index = tuple(int(i) for i in _unravel_index(_argmax(~finite), actual.shape))
        raise AssertionError(f"{name}: contains {actual[index]} at index {index}")

    excess = _abs(actual - expected) - (atol + rtol * _abs(expected))
    if excess.size == 0 or excess.max() <= 0:
        return

    index = tuple(int(i) for i in _unravel_index(_argmax(excess), excess.shape))
    difference = _abs(actual - expected).max()
    raise AssertionError(
        f"{name}: largest difference {difference:.3g}; at index {index} got {actual[index]:.6g}, "
        f"expected {expected[index]:.6g} (tolerance atol={atol:g}, rtol={rtol:g})"
    )


def numerical_gradient(function: Callable[[np.ndarray], float], x: np.ndarray,
                       eps: float = 1e-6) -> np.ndarray:
    """Estimate the gradient of a scalar `function` at `x` by central differences.

    `x` is perturbed in place one element at a time and restored, so `function` may close
    over it. Use float64: in float32 the rounding error swamps a step of 1e-6.
    """
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient needs a float64 array, got {x.dtype}")

    gradient = np.zeros_like(x)
    flat_x, flat_gradient = x.reshape(-1), gradient.reshape(-1)
    for i in range(flat_x.size):
        original = flat_x[i]
        flat_x[i] = original + eps
        f_plus = float(function(x))
        flat_x[i] = original - eps
        f_minus = float(function(x))
        flat_x[i] = original
        flat_gradient[i] = (f_plus - f_minus) / (2 * eps)
    return gradient


def check_gradient(function: Callable[[np.ndarray], float], x: np.ndarray,
                   analytic: object, name: str, eps: float = 1e-6,
                   atol: float = 1e-6, rtol: float = 1e-4) -> None:
    """Assert that `analytic` is the gradient of `function` at `x`, by finite differences.

    The default tolerances suit float64 and functions of order one: central differences with
    eps=1e-6 are accurate to about 1e-8 there.
    """
    expected = numerical_gradient(function, x, eps)
    assert_close(analytic, expected, f"{name} (against finite differences)", atol=atol, rtol=rtol)
