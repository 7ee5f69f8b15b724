"""Submissions and roster of a class run.

Submissions come as a folder with one folder per student, either holding the notebooks
(``DIR/alice/01_attention_numpy.ipynb``) or nbgrader's layout
(``DIR/alice/01_attention_numpy/01_attention_numpy.ipynb``), or as the zip file a learning
management system exports, which ``nbgrader zip_collect`` unpacks into that layout first.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
ROSTER_FIELDS = ("first_name", "last_name", "email", "lms_user_id")


@dataclass
class Submission:
    student: str
    folder: Path  # the student's files for this assignment
    notebooks: dict[str, Path]  # release notebook name -> the student's file for it
    timestamp: str | None = None
    notes: list[str] = field(default_factory=list)
    digest: str = ""  # content hash, set by the class run


def _find_notebooks(folder: Path, names: list[str]) -> tuple[dict[str, Path], list[str]]:
    found = {name: folder / f"{name}.ipynb" for name in names if (folder / f"{name}.ipynb").is_file()}
    notes = []
    others = sorted(p for p in folder.glob("*.ipynb") if p.stem not in names)
    if len(names) == 1 and not found and len(others) == 1:
        found[names[0]] = others[0]
        notes.append(f"notebook named {others[0].name}; graded as {names[0]}.ipynb")
    elif others:
        notes.append("notebooks not in the release, not graded: " + ", ".join(p.name for p in others))
    return found, notes


def collect_folder(root: Path, assignment: str, names: list[str]) -> tuple[list[Submission], list[str]]:
    """Return the submissions under `root` (a folder per student) and the entries skipped."""
    submissions, skipped = [], []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            skipped.append(f"{entry.name}: not a folder, so not a student's submission")
            continue
        if not STUDENT_ID.match(entry.name):
            skipped.append(f"{entry.name}: invalid student id (use letters, digits and ._@+-)")
            continue
        folder = entry / assignment if (entry / assignment).is_dir() else entry
        notebooks, notes = _find_notebooks(folder, names)
        timestamp_file = folder / "timestamp.txt"
        timestamp = timestamp_file.read_text().strip() if timestamp_file.is_file() else None
        submissions.append(Submission(entry.name, folder, notebooks, timestamp or None, notes))
    return submissions, skipped


def default_zip_regexp(extracted: Path, names: list[str]) -> str:
    """Match ``.../STUDENT/NAME.ipynb`` and ``.../STUDENT_anything_NAME.ipynb`` under
    `extracted`, where NAME is a release notebook; a renamed notebook matches neither.

    zip_collect extracts each archive into a folder named after it, hence the leading
    folders. They are matched greedily, so that the student is the innermost match."""
    notebooks = "|".join(re.escape(f"{name}.ipynb") for name in names)
    return (rf"^{re.escape(str(extracted))}/(?:.*/)?(?P<student_id>[A-Za-z0-9.@+-]+)[_/]"
            rf"(?:.*[_/])?(?P<file_id>{notebooks})$")


def collect_zip(archive: Path, assignment: str, release_dir: Path, work: Path,
                regexp: str | None) -> Path:
    """Unpack an LMS export with ``nbgrader zip_collect``; return the submitted folder.

    The file names inside the archive are matched against `regexp` (nbgrader's
    ``FileNameCollectorPlugin.named_regexp``, applied to the absolute path of each extracted
    file), which must provide ``student_id`` and ``file_id`` groups.
    """
    course = work / "intake"
    archive_dir = course / "downloaded" / assignment / "archive"
    archive_dir.mkdir(parents=True)
    shutil.copy2(archive, archive_dir / archive.name)
    shutil.copytree(release_dir, course / "release" / assignment)
    extracted = course / "downloaded" / assignment / "extracted"
    names = sorted(p.stem for p in release_dir.glob("*.ipynb"))
    command = [
        sys.executable, "-m", "nbgrader", "zip_collect", assignment, "--force",
        f"--CourseDirectory.root={course}",
        "--CourseDirectory.release_directory=release",
        "--CourseDirectory.submitted_directory=submitted",
        f"--CourseDirectory.db_url=sqlite:///{course / 'gradebook.db'}",
        f"--FileNameCollectorPlugin.named_regexp={regexp or default_zip_regexp(extracted, names)}",
    ]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"nbgrader zip_collect failed on {archive}:\n{result.stderr[-3000:]}")
    submitted = course / "submitted"
    if not submitted.is_dir() or not any(submitted.iterdir()):
        raise RuntimeError(
            f"nbgrader zip_collect found no submission in {archive}: no file name matched "
            f"the regular expression; pass --zip-regexp with student_id and file_id groups. "
            f"Its log:\n{result.stderr[-3000:]}"
        )
    return submitted


def read_roster(path: Path) -> dict[str, dict[str, str]]:
    """Read a roster CSV with a column ``id`` (or ``student_id``) and optional name columns."""
    with path.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.DictReader(stream)
        columns = reader.fieldnames or []
        if "id" in columns:
            key = "id"
        elif "student_id" in columns:
            key = "student_id"
        else:
            raise ValueError(f"{path}: the roster needs a column 'id' (or 'student_id'); "
                             f"it has: {', '.join(columns)}")
        roster = {}
        for number, row in enumerate(reader, start=2):
            student = (row.get(key) or "").strip()
            if not STUDENT_ID.match(student):
                raise ValueError(f"{path}, line {number}: invalid student id {student!r}")
            roster[student] = {f: row[f].strip() for f in ROSTER_FIELDS if row.get(f)}
    return roster
