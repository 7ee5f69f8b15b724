"""Grading mode: the references of the graded assignment and later ones refuse to import."""

import importlib
import json
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


# Imports each named component in one fresh interpreter and prints the error each raised.
IMPORT_ALL = """
import importlib, json, sys
errors = {}
for module, name in json.loads(sys.argv[1]):
    try:
        getattr(importlib.import_module(module), name)
        errors[name] = None
    except Exception as error:
        errors[name] = f"{type(error).__name__}: {error}"
print(json.dumps(errors))
"""


def import_under_grading(components, graded: str) -> dict:
    pairs = json.dumps([[c.module, c.name] for c in components])
    env = {"PATH": "/usr/bin:/bin", registry.GRADING_ENV: graded}
    result = subprocess.run([sys.executable, "-c", IMPORT_ALL, pairs], env=env,
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


@pytest.mark.parametrize("assignment", registry.ASSIGNMENTS)
def test_reference_import_blocked_under_grading(assignment):
    components = [c for c in existing_components() if c.assignment == assignment]
    if not components:
        pytest.skip(f"no reference module of {assignment} exists yet")
    errors = import_under_grading(components, assignment)
    for component in components:
        error = errors[component.name]
        assert error is not None, f"{component.name} imported under grading"
        assert error.startswith("ReferenceUnavailableError"), error
        assert f"{component.name} in the answer cell '{component.grade_id}'" in error


@pytest.mark.parametrize("component", existing_components(), ids=lambda c: c.name)
def test_reference_has_solution_region(component):
    assert "### BEGIN SOLUTION" in component_source(component)


def test_earlier_references_available_under_last_grading():
    last = registry.ASSIGNMENTS[-1]
    earlier = [c for c in existing_components() if c.assignment != last]
    if not earlier:
        pytest.skip("no reference module of an earlier assignment exists yet")
    errors = import_under_grading(earlier, last)
    assert {name: error for name, error in errors.items() if error} == {}


def test_import_mytorch_loads_no_reference():
    code = "import sys, mytorch; print(sorted(m for m in sys.modules if m.startswith('mytorch')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['mytorch']"
    assert importlib.import_module("mytorch").__version__
