"""The student kit of assignment k: release notebooks 1..k and a library without the answers of k on."""

from __future__ import annotations

import pytest

from mytorch import registry
from mytorch.course import REPO_ROOT
from mytorch.course.kit import build_kit
from mytorch.course.sources import BEGIN_SOLUTION, module_path

ASSIGNMENT = "02_positions_and_masks"


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return build_kit(ASSIGNMENT, tmp_path_factory.mktemp("kit") / "kit")


def reference_modules(hidden: bool) -> set:
    """Reference modules present in this checkout, hidden or not by the kit's assignment."""
    modules = set()
    for component in registry.COMPONENTS:
        try:
            path = module_path(component.module)
        except FileNotFoundError:
            continue
        if registry.is_hidden(component, ASSIGNMENT) == hidden:
            modules.add(path.relative_to(REPO_ROOT))
    return modules


def test_notebooks_up_to_assignment(kit):
    released = {p.name for p in (kit / "notebooks").iterdir()}
    index = registry.assignment_index(ASSIGNMENT)
    for later in registry.ASSIGNMENTS[index + 1:]:
        assert later not in released
    for earlier in registry.ASSIGNMENTS[: index + 1]:
        if (REPO_ROOT / "notebooks" / earlier).is_dir():
            assert earlier in released


def test_hidden_references_stubbed(kit):
    modules = reference_modules(hidden=True)
    if not modules:
        pytest.skip("no reference module of this assignment or a later one exists yet")
    for relative in modules:
        text = (kit / relative).read_text()
        assert BEGIN_SOLUTION not in text, relative
        assert "raise NotImplementedError(" in text, relative


def test_earlier_references_kept(kit):
    for relative in reference_modules(hidden=False):
        assert (kit / relative).read_text() == (REPO_ROOT / relative).read_text()


def test_existing_destination_rejected(kit):
    with pytest.raises(FileExistsError, match="already exists"):
        build_kit(ASSIGNMENT, kit)


def test_kit_readme_for_students(kit):
    readme = (kit / "README.md").read_text(encoding="utf-8")
    assert f"student kit for {ASSIGNMENT}" in readme
    assert "`01_attention_numpy`" in readme
    assert "pip install" in readme
    assert "make " not in readme  # the kit has no Makefile
    assert "solutions" not in readme
