"""Things a class run can reuse from the last one: an empty gradebook and the student kit.

Creating a gradebook makes nbgrader run the ``alembic`` executable, and a kit copies the
bundled data; both take seconds. The cache lives in ``$XDG_CACHE_HOME/mytorch-grading``
(``~/.cache/mytorch-grading`` by default). A kit is keyed by a fingerprint of the files it is
built from (path, size and modification time), so a changed library gives a new kit.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from mytorch.course import RELEASE_DIR, REPO_ROOT

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = base / "mytorch-grading"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def empty_gradebook() -> Path:
    """Return an empty nbgrader gradebook of the installed nbgrader version (created once)."""
    import nbgrader
    from nbgrader.api import Gradebook

    path = cache_dir() / f"empty-gradebook-nbgrader-{nbgrader.__version__}.db"
    if not path.is_file():
        with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
            fresh = Path(scratch) / "gradebook.db"
            # nbgrader runs `alembic` from PATH to stamp a new gradebook.
            bin_dir = str(Path(sys.executable).parent)
            if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
                os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
            with Gradebook(f"sqlite:///{fresh}"):
                pass
            fresh.replace(path)
    return path


def _fingerprint(paths: list[Path]) -> str:
    hasher = hashlib.sha256()
    for root in paths:
        if root.is_file():
            files = [root]
        elif root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.is_file()
                           and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts)
        else:
            continue
        for path in files:
            stat = path.stat()
            hasher.update(f"{path.relative_to(REPO_ROOT)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return hasher.hexdigest()[:16]


# The bundled data is large and public: the sandbox mounts the repository's data folder
# read-only into the kit instead of the kit copying it.
SHARED_FOLDERS = ("data",)


def student_kit(assignment: str) -> Path:
    """Return the student kit of `assignment`, built with `build_kit` unless cached.

    The sandbox mounts the kit in place of the repository, then SHARED_FOLDERS and the
    virtual environment (when it lies inside the repository) into the kit. So the kit leaves
    out SHARED_FOLDERS and gets empty folders as mount points for all of them.
    """
    from mytorch.course.kit import KIT_FILES, build_kit

    files = tuple(name for name in KIT_FILES if name not in SHARED_FOLDERS)
    sources = [REPO_ROOT / name for name in files] + [REPO_ROOT / "mytorch", RELEASE_DIR]
    kits = cache_dir() / "kits"
    kits.mkdir(exist_ok=True)
    kit = kits / f"{assignment}-{_fingerprint(sources)}"
    if not kit.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=f"{assignment}-", dir=kits))
        logging.getLogger("mytorch.course.kit").setLevel(logging.WARNING)
        build_kit(assignment, staging / "kit", files=files)
        mount_points = [REPO_ROOT / name for name in SHARED_FOLDERS]
        mount_points += [Path(sys.prefix), Path(sys.base_prefix).resolve()]
        for path in mount_points:
            if path.is_relative_to(REPO_ROOT) and path != REPO_ROOT:
                (staging / "kit" / path.relative_to(REPO_ROOT)).mkdir(parents=True, exist_ok=True)
        for folder, dirs, files in os.walk(staging):
            os.chmod(folder, 0o755)
            for name in files:
                os.chmod(os.path.join(folder, name), 0o644)
        try:
            (staging / "kit").rename(kit)
        except OSError:  # another run built the same kit meanwhile
            pass
        shutil.rmtree(staging, ignore_errors=True)
        for old in kits.glob(f"{assignment}-*"):
            if old != kit and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
    return kit
