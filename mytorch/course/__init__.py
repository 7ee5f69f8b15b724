"""Course tooling for instructors and maintainers: the notebook build, student kits and the solution run.

Nothing here is imported by the notebooks. Run it as ``python -m mytorch.course --help``.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS_DIR = REPO_ROOT / "solutions"
RELEASE_DIR = REPO_ROOT / "notebooks"
AUTOGRADER_DIR = REPO_ROOT / "autograder"


def notebook_names(solutions_dir: Path = SOLUTIONS_DIR) -> list[str]:
    """Return the course notebooks in order: every folder of `solutions/` with its notebook."""
    return sorted(
        folder.name for folder in solutions_dir.iterdir()
        if (folder / f"{folder.name}.ipynb").is_file()
    )


def solution_notebook(name: str, solutions_dir: Path = SOLUTIONS_DIR) -> Path:
    return solutions_dir / name / f"{name}.ipynb"
