"""The one-source build: the committed notebooks are up to date, and staleness is named."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mytorch import registry
from mytorch.course import REPO_ROOT
from mytorch.course.sources import BEGIN_SOLUTION, component_source, module_path, strip_solutions

pytestmark = pytest.mark.slow


def run_check(root: Path) -> subprocess.CompletedProcess:
    """Run ``build --check`` with the package imported from `root`, not from this checkout."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-m", "mytorch.course", "build", "--check"],
                          cwd=root, env=env, capture_output=True, text=True)


@pytest.fixture
def checkout_copy(tmp_path) -> Path:
    """A copy of the checkout's sources, without the bundled data, the venv or run outputs."""
    ignore = shutil.ignore_patterns(".git", ".venv", "data", "runs", "dist", "__pycache__",
                                    "*.egg-info", ".pytest_cache", ".hypothesis")
    copy = tmp_path / "course"
    shutil.copytree(REPO_ROOT, copy, ignore=ignore)
    return copy


def test_committed_notebooks_up_to_date():
    result = run_check(REPO_ROOT)
    assert result.returncode == 0, result.stderr


def test_stale_setup_cell_named(checkout_copy):
    config = checkout_copy / "configs" / "course.yaml"
    config.write_text("repository_url: https://example.org/another/course.git\n")

    result = run_check(checkout_copy)
    assert result.returncode == 1
    assert "solutions/00_setup/00_setup.ipynb: cell 'course_setup'" in result.stderr
    assert "notebooks/00_setup/00_setup.ipynb: cell 'course_setup'" in result.stderr


def first_built_component() -> registry.Component | None:
    for component in registry.COMPONENTS:
        try:
            module_path(component.module)
        except FileNotFoundError:
            continue
        if (REPO_ROOT / component.notebook).is_file():
            return component
    return None


def test_edited_reference_names_file_and_cell(checkout_copy):
    component = first_built_component()
    if component is None:
        pytest.skip("no graded component has both a reference module and a notebook yet")
    module = checkout_copy / module_path(component.module).relative_to(REPO_ROOT)
    text = module.read_text()
    module.write_text(text.replace(BEGIN_SOLUTION, f"{BEGIN_SOLUTION}  # edited", 1))

    result = run_check(checkout_copy)
    assert result.returncode == 1
    assert f"{component.notebook}: cell '{component.grade_id}' ({component.name})" in result.stderr


def test_source_keeps_trailing_end_solution(tmp_path, monkeypatch):
    (tmp_path / "course_example.py").write_text(
        "class Example:\n"
        "    def f(self):\n"
        "        ### BEGIN SOLUTION\n"
        "        return 1\n"
        "        ### END SOLUTION\n"
        "\n"
        "# a comment of the module, not of the class\n"
        "VALUE = 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    component = registry.Component("Example", "course_example", registry.ASSIGNMENTS[0], "example")
    source = component_source(component)
    assert source.endswith("        ### END SOLUTION")
    assert "module" not in source


def test_strip_solutions_keeps_indentation():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
    assert strip_solutions(source, "yours") == "def f(x):\n    raise NotImplementedError('yours')\n"
