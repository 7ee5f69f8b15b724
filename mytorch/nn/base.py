"""The interface that every layer and optimizer of notebook 01 shares.

A layer is a `Module` with ``forward`` and ``backward``. ``forward`` keeps what ``backward``
needs (the input, intermediate results) on the layer. ``backward`` takes the gradient of the
loss with respect to the layer's output, returns the gradient with respect to its input,
and adds the gradients of its parameters to their ``grad`` arrays, as PyTorch does. An
optimizer keeps the list returned by ``model.parameters()``, reads each ``grad`` and updates
each ``data`` in place.

A training step therefore reads::

    loss = loss_fn.forward(model.forward(inputs), targets)
    optimizer.zero_grad()
    model.backward(loss_fn.backward())
    optimizer.step()

Nothing here is graded, so grading mode never hides this module.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np


class Parameter:
    """A trainable float64 array (`data`) and the gradient of the loss with respect to it (`grad`)."""

    def __init__(self, data: object):
        self.data = np.array(data, dtype=np.float64)
        self.grad = np.zeros_like(self.data)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def zero_grad(self) -> None:
        """Set the gradient to zero in place, so that views of it stay valid."""
        self.grad[...] = 0.0

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape})"


class Module:
    """Base class of the NumPy layers: parameter discovery and ``layer(x)`` as ``layer.forward(x)``.

    `parameters` finds every `Parameter` and every sub-`Module` stored as an attribute, or in
    a list or tuple attribute, in the order the attributes were set.
    """

    def forward(self, *inputs: np.ndarray) -> object:
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, grad_output: np.ndarray) -> object:
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self.forward(*args, **kwargs)

    def parameters(self) -> list[Parameter]:
        """Return the parameters of this module and of its sub-modules, each once."""
        found: list[Parameter] = []
        seen: set[int] = set()
        for parameter in self._walk_parameters():
            if id(parameter) not in seen:
                seen.add(id(parameter))
                found.append(parameter)
        return found

    def zero_grad(self) -> None:
        for parameter in self.parameters():
            parameter.zero_grad()

    def _walk_parameters(self) -> Iterator[Parameter]:
        for value in vars(self).values():
            items = value if isinstance(value, (list, tuple)) else (value,)
            for item in items:
                if isinstance(item, Parameter):
                    yield item
                elif isinstance(item, Module):
                    yield from item._walk_parameters()


class Optimizer:
    """Base class of the optimizers: the parameters, the learning rate and `zero_grad`."""

    def __init__(self, parameters: Iterable[Parameter], lr: float):
        self.parameters = list(parameters)
        if not self.parameters:
            raise ValueError("the optimizer received no parameters: pass model.parameters()")
        for parameter in self.parameters:
            if not isinstance(parameter, Parameter):
                raise TypeError(
                    f"expected Parameter objects (from model.parameters()), got {type(parameter).__name__}"
                )
        if not lr > 0:
            raise ValueError(f"invalid learning rate {lr}: it must be positive")
        self.lr = lr

    def zero_grad(self) -> None:
        for parameter in self.parameters:
            parameter.zero_grad()

    def step(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not define step")
