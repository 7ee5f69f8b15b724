"""The first cell of every notebook: Colab set-up, and grading mode under nbgrader."""

from __future__ import annotations

from dataclasses import dataclass
from string import Template

import nbformat

from mytorch.config import CONFIG_DIR, load_config
from mytorch.registry import ASSIGNMENTS, GRADING_ENV

SETUP_GRADE_ID = "course_setup"


@dataclass
class CourseConfig:
    repository_url: str


_TEMPLATE = Template('''\
# Course set-up (ungraded, read-only). In JupyterLab this cell does nothing. On Google Colab it
# clones the course and installs its library once per runtime, keeping Colab's own torch.
# Under nbgrader, in a graded notebook, it switches on grading mode, which hides the
# reference code of this assignment's components.
import os
import sys

${grading_mode}if "google.colab" in sys.modules and not os.environ.get("NBGRADER_EXECUTION"):
    import subprocess

    COURSE_DIR = "/content/course"
    if not os.path.isdir(COURSE_DIR):
        subprocess.run(["git", "clone", "--depth=1", "$repository_url", COURSE_DIR], check=True)
        # --no-deps keeps Colab's torch, torchaudio and numpy; then add what Colab lacks.
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", COURSE_DIR], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "jiwer", "tokenizers"], check=True)
    if COURSE_DIR not in sys.path:
        sys.path.insert(0, COURSE_DIR)
''')


def setup_cell(assignment: str) -> nbformat.NotebookNode:
    """Return the set-up cell of `assignment`, as a locked nbgrader cell.

    Locked, so that ``nbgrader autograde`` restores it from the source even if a student
    edited it, and grading mode is always switched on.
    """
    course = load_config(CONFIG_DIR / "course.yaml", CourseConfig)
    grading_mode = ""
    if assignment in ASSIGNMENTS:
        grading_mode = (
            'if os.environ.get("NBGRADER_EXECUTION"):\n'
            f'    os.environ["{GRADING_ENV}"] = "{assignment}"\n\n'
        )
    source = _TEMPLATE.substitute(
        grading_mode=grading_mode, repository_url=course.repository_url
    )

    cell = nbformat.v4.new_code_cell(source)
    cell.id = "course-setup"  # fixed, so that rebuilding writes the same file
    cell.metadata = {
        "nbgrader": {
            "grade": False,
            "grade_id": SETUP_GRADE_ID,
            "locked": True,
            "schema_version": 3,
            "solution": False,
            "task": False,
        }
    }
    return cell
