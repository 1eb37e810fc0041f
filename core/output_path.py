"""Where a command writes its MP4: checked before any work (`mcnet animate`, `mcnet submit`).

Standard library only: the client (`mcnet submit`) uses it too.
"""

from __future__ import annotations

import os
from pathlib import Path


def output_problem(path: Path) -> str | None:
    """Why the result cannot be written at `path` (checked before any work), or None."""
    if path.suffix.lower() != ".mp4":
        return f"{path}: the result is an MP4; give an output path ending in .mp4"
    folder = path.parent
    if not folder.is_dir():
        return f"{path}: the folder {folder} does not exist; create it or choose another path"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{path}: the folder {folder} is not writable; choose another path"
    if path.is_dir():
        return f"{path} is a folder; give a file name ending in .mp4"
    return None
