"""The student kit of one assignment: its release notebooks and a library without its answers."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from mytorch import registry
from mytorch.course import REPO_ROOT, RELEASE_DIR
from mytorch.course.sources import module_path, strip_solutions

log = logging.getLogger(__name__)

# Top-level files a student needs besides the notebooks, the library and the kit's README.
KIT_FILES = ("pyproject.toml", "environment.yml", "configs", "data")
# The repository's README is written for instructors and maintainers, so the kit gets its own.
KIT_README = Path(__file__).parent / "templates" / "kit_README.md"


def stubbed_modules(assignment: str) -> dict[Path, list[registry.Component]]:
    """Map each reference module hidden for `assignment` to the components it holds."""
    hidden: dict[Path, list[registry.Component]] = {}
    for component in registry.COMPONENTS:
        if registry.is_hidden(component, assignment):
            hidden.setdefault(module_path(component.module), []).append(component)
    return hidden


def build_kit(assignment: str, destination: Path, files: tuple[str, ...] = KIT_FILES) -> Path:
    """Write the student kit of `assignment` into `destination` and return it.

    The kit holds the release notebooks of assignments 1..k, and the library with every
    solution region of assignments k and later replaced by ``raise NotImplementedError``.
    `files` are the other top-level files and folders copied from the repository.
    """
    index = registry.assignment_index(assignment)
    if destination.exists():
        raise FileExistsError(f"{destination} already exists: remove it or choose another folder")

    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "cache", ".ipynb_checkpoints")
    destination.mkdir(parents=True)
    for name in files:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignore)
        elif source.is_file():
            shutil.copy2(source, destination / name)

    shutil.copytree(REPO_ROOT / "mytorch", destination / "mytorch", ignore=ignore)
    for path, components in sorted(stubbed_modules(assignment).items()):
        relative = path.relative_to(REPO_ROOT)
        cells = ", ".join(f"{c.name} in {c.assignment}.ipynb" for c in components)
        message = f"not in the student kit: write and run your own {cells}"
        stubbed = strip_solutions(path.read_text(encoding="utf-8"), message)
        (destination / relative).write_text(stubbed, encoding="utf-8")
        log.info("stubbed %s", relative)

    released = [a for a in registry.ASSIGNMENTS[: index + 1] if (RELEASE_DIR / a).is_dir()]
    extra = [p.name for p in sorted(RELEASE_DIR.iterdir()) if p.name not in registry.ASSIGNMENTS]
    for name in extra + released:
        shutil.copytree(RELEASE_DIR / name, destination / "notebooks" / name, ignore=ignore)

    readme = KIT_README.read_text(encoding="utf-8").format(
        assignment=assignment, notebooks=", ".join(f"`{name}`" for name in extra + released)
    )
    (destination / "README.md").write_text(readme, encoding="utf-8")
    return destination
