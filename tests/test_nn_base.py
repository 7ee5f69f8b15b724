"""Tests of the layer interface in mytorch.nn.base and the lazy exports of mytorch.nn."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from mytorch.nn.base import Module, Optimizer, Parameter


class Pair(Module):
    def __init__(self):
        self.first = Parameter(np.ones((2, 3)))
        self.children = [Leaf(), Leaf()]
        self.shared = self.first  # the same Parameter twice must be listed once


class Leaf(Module):
    def __init__(self):
        self.weight = Parameter(np.zeros(4))


def test_parameter_copies_to_float64():
    source = np.arange(3)
    parameter = Parameter(source)
    source[0] = 7

    assert parameter.data.dtype == np.float64
    assert parameter.data.tolist() == [0.0, 1.0, 2.0]
    assert parameter.grad.tolist() == [0.0, 0.0, 0.0]


def test_parameters_in_attribute_order_once():
    module = Pair()
    parameters = module.parameters()

    assert parameters[0] is module.first
    assert parameters[1] is module.children[0].weight
    assert parameters[2] is module.children[1].weight
    assert len(parameters) == 3


def test_zero_grad_keeps_grad_array():
    module = Pair()
    grad = module.first.grad
    grad += 5.0
    module.zero_grad()

    assert module.first.grad is grad
    assert not grad.any()


def test_optimizer_rejects_invalid_arguments():
    with pytest.raises(ValueError, match="no parameters"):
        Optimizer([], lr=0.1)
    with pytest.raises(TypeError, match="Parameter"):
        Optimizer([np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        Optimizer([Parameter(np.zeros(3))], lr=0.0)


def run_under_grading(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MYTORCH_GRADING": "01_attention_numpy"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_package_import_is_lazy_under_grading():
    result = run_under_grading(
        "import mytorch.nn\n"
        "from mytorch.nn import Parameter, CrossEntropyLoss, TokenAttentionModel\n"
        "from mytorch.nn.tasks import reversal_batch\n"
    )
    assert result.returncode == 0, result.stderr


def test_reference_hidden_under_grading():
    result = run_under_grading("from mytorch.nn import Linear")

    assert result.returncode != 0
    assert "ReferenceUnavailableError" in result.stderr
    assert "answer cell 'linear'" in result.stderr


def test_unknown_name_raises_attribute_error():
    import mytorch.nn

    with pytest.raises(AttributeError, match="no attribute 'Conv2d'"):
        mytorch.nn.Conv2d  # noqa: B018
