"""Grading mode: the references of the graded assignment and later ones refuse to import."""

import importlib
import subprocess
import sys

import pytest

from mytorch import registry
from mytorch.course.sources import component_source, module_path


def test_every_component_has_a_known_assignment():
    for component in registry.COMPONENTS:
        assert component.assignment in registry.ASSIGNMENTS, component


def test_grade_ids_unique_within_assignment():
    for assignment in registry.ASSIGNMENTS:
        grade_ids = [c.grade_id for c in registry.components_of(assignment)]
        assert len(grade_ids) == len(set(grade_ids)), assignment


def test_hidden_up_to_its_own_assignment():
    first, second, third = registry.ASSIGNMENTS[:3]
    component = registry.Component("Thing", "mytorch.thing", second, "thing")
    assert not registry.is_hidden(component, None)
    assert registry.is_hidden(component, first)  # a later assignment's reference is hidden too
    assert registry.is_hidden(component, second)
    assert not registry.is_hidden(component, third)  # later notebooks build on it


def test_misspelled_grading_assignment_rejected(monkeypatch):
    monkeypatch.setenv(registry.GRADING_ENV, "03_transformers_layers")
    with pytest.raises(ValueError, match="unknown assignment '03_transformers_layers'"):
        registry.grading_assignment()


def existing_components():
    """The registered components whose reference module exists in this checkout."""
    found = []
    for component in registry.COMPONENTS:
        try:
            module_path(component.module)
        except FileNotFoundError:
            continue
        found.append(component)
    return found


@pytest.mark.parametrize("component", existing_components(), ids=lambda c: c.name)
def test_reference_import_blocked_under_grading(component):
    """Import each reference in a fresh interpreter with grading mode on for its assignment."""
    code = f"from {component.module} import {component.name}"
    env = {"PATH": "/usr/bin:/bin", registry.GRADING_ENV: component.assignment}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "ReferenceUnavailableError" in result.stderr
    assert f"cell '{component.grade_id}'" in result.stderr


@pytest.mark.parametrize("component", existing_components(), ids=lambda c: c.name)
def test_reference_has_solution_region(component):
    assert "### BEGIN SOLUTION" in component_source(component)


def test_earlier_reference_available_under_later_grading():
    earlier = [c for c in existing_components() if c.assignment != registry.ASSIGNMENTS[-1]]
    if not earlier:
        pytest.skip("no reference module of an earlier assignment exists yet")
    component = earlier[0]
    later = registry.ASSIGNMENTS[registry.assignment_index(component.assignment) + 1]
    code = f"from {component.module} import {component.name}"
    env = {"PATH": "/usr/bin:/bin", registry.GRADING_ENV: later}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_import_mytorch_loads_no_reference():
    code = "import sys, mytorch; print(sorted(m for m in sys.modules if m.startswith('mytorch')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['mytorch']"
    assert importlib.import_module("mytorch").__version__
