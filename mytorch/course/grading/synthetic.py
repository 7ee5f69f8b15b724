"""A tiny assignment for testing and benchmarking the class grader.

Three graded functions in NumPy (``softmax`` worth 2 points, ``relu`` and ``normalize`` 1 each),
each followed by one test cell with visible and hidden tests. It is written into a
throwaway course as the solution notebook of a registered assignment (by default
``01_attention_numpy``), so that grading mode and the student kit of that assignment apply:
the kit hides that assignment's references, such as ``mytorch.nn.softmax``.

Expected values are literals computed here with `math`, so that a submission that patches
NumPy cannot change what a test expects.
"""

from __future__ import annotations

import math
from pathlib import Path

import nbformat

from mytorch.course import cells
from mytorch.course.setup_cell import setup_cell

DEFAULT_ASSIGNMENT = "01_attention_numpy"
POINTS = {"test_softmax": 2.0, "test_relu": 1.0, "test_normalize": 1.0}
MAX_SCORE = sum(POINTS.values())


def _softmax(row: list[float]) -> list[float]:
    top = max(row)
    exps = [math.exp(value - top) for value in row]
    return [value / sum(exps) for value in exps]


def _normalize(row: list[float]) -> list[float]:
    norm = math.sqrt(sum(value * value for value in row))
    return [value / norm for value in row]


SOLUTIONS = {
    "softmax": '''\
def softmax(x):
    """Return the softmax of each row of `x` (the last axis)."""
    ### BEGIN SOLUTION
    shifted = x - np.max(x, axis=-1, keepdims=True)
    exps = np.exp(shifted)
    return exps / exps.sum(axis=-1, keepdims=True)
    ### END SOLUTION''',
    "relu": '''\
def relu(x):
    """Return max(x, 0) elementwise."""
    ### BEGIN SOLUTION
    return np.maximum(x, 0.0)
    ### END SOLUTION''',
    "normalize": '''\
def normalize(x):
    """Scale each row of `x` to unit Euclidean norm."""
    ### BEGIN SOLUTION
    return x / np.linalg.norm(x, axis=-1, keepdims=True)
    ### END SOLUTION''',
}


def _tests() -> dict[str, str]:
    visible_softmax = [_softmax([0.0, 0.0]), _softmax([1.0, 3.0])]
    hidden_softmax = [_softmax([1000.0, 1001.0, 999.0])]
    hidden_normalize = [_normalize([3.0e6, -4.0e6]), _normalize([1.0, 2.0])]
    return {
        "test_softmax": f'''\
import numpy as np
from mytorch.testing import assert_close

assert_close(softmax(np.array([[0.0, 0.0], [1.0, 3.0]])), {visible_softmax!r}, "softmax of two rows")
### BEGIN HIDDEN TESTS
assert_close(softmax(np.array([[1000.0, 1001.0, 999.0]])), {hidden_softmax!r}, "softmax of large logits")
### END HIDDEN TESTS''',
        "test_relu": '''\
import numpy as np
from mytorch.testing import assert_close

assert_close(relu(np.array([-1.0, 0.0, 2.0])), [0.0, 0.0, 2.0], "relu of a vector")
### BEGIN HIDDEN TESTS
assert_close(relu(np.array([[-3.5, 4.25], [0.5, -0.0]])), [[0.0, 4.25], [0.5, 0.0]], "relu of a matrix")
### END HIDDEN TESTS''',
        "test_normalize": f'''\
import numpy as np
from mytorch.testing import assert_close

assert_close(normalize(np.array([[3.0, 4.0]])), [[0.6, 0.8]], "normalize of one row")
### BEGIN HIDDEN TESTS
assert_close(normalize(np.array([[3.0e6, -4.0e6], [1.0, 2.0]])), {hidden_normalize!r}, "normalize of large rows")
### END HIDDEN TESTS''',
    }


def solution_notebook(assignment: str = DEFAULT_ASSIGNMENT) -> nbformat.NotebookNode:
    """Return the solution notebook of the synthetic assignment."""
    tests = _tests()
    body = [
        setup_cell(assignment),
        cells.markdown("# A small graded notebook\n\nThree functions, each with its tests."),
        cells.readonly("imports", "import numpy as np"),
    ]
    for name, test in (("softmax", "test_softmax"), ("relu", "test_relu"),
                       ("normalize", "test_normalize")):
        body.append(cells.markdown(f"## `{name}`"))
        body.append(cells.answer(name, SOLUTIONS[name]))
        body.append(cells.tests(test, POINTS[test], tests[test]))
    return cells.new_notebook(body)


def write_course(root: Path, assignment: str = DEFAULT_ASSIGNMENT) -> Path:
    """Write the synthetic assignment as ``root/solutions/<assignment>/`` and return the notebook."""
    folder = Path(root) / "solutions" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assignment}.ipynb"
    nbformat.write(solution_notebook(assignment), path)
    return path
