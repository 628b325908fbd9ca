"""The scratch output folder of a storage workload: emptied before each run, removed after.

Both only touch the disk for what is there: an empty or missing folder costs one system call, not a tree walk.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def clear_folder(path: Path) -> None:
    """Make ``path`` an empty folder, touching the disk only for what is there (no rmtree of nothing)."""
    try:
        with os.scandir(path) as entries:
            if next(entries, None) is None:
                return  # already empty
    except FileNotFoundError:
        path.mkdir(parents=True, exist_ok=True)
        return
    except NotADirectoryError:
        path.unlink()
        path.mkdir(parents=True, exist_ok=True)
        return
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


def remove_folder(path: Path) -> None:
    """Remove ``path`` and its contents if it exists."""
    try:
        path.rmdir()  # the usual case: left empty, or already gone
    except FileNotFoundError:
        return
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
