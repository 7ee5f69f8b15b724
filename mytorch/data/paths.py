"""Locations of the course data, and the error raised when some of it is missing.

The data root is the repository's ``data/`` folder unless the environment
variable ``MYTORCH_DATA`` names another folder. Generated files (feature caches,
downloads) go under ``<data root>/cache/``, which is not committed.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV_VAR = "MYTORCH_DATA"


class DataNotFoundError(FileNotFoundError):
    """A corpus, split or dataset root is missing. The message names the fix."""


def data_root() -> Path:
    """Return the data root: ``$MYTORCH_DATA`` if set, else the repository's data/."""
    override = os.environ.get(DATA_ENV_VAR)
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parents[2] / "data"


def cache_root() -> Path:
    """Return the folder for generated files that are never committed."""
    return data_root() / "cache"


def require_path(path: Path, what: str, command: str) -> Path:
    """Return ``path`` if it exists, else raise DataNotFoundError naming ``command``.

    ``what`` describes the missing thing in a few words ("the WEB text corpus"),
    and ``command`` is the exact shell command that makes or fetches it.
    """
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(
            f"{what} not found: {path} does not exist. "
            f"Create it with:\n    {command}\n"
            f"(The data root is {data_root()}; set {DATA_ENV_VAR} to use another folder.)"
        )
    return path
