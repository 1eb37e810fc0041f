"""Whether this worker's work folder (MCNET_WORK_DIR, else the temp folder) can hold a job.

A worker whose folder has become read-only, full or unreachable cannot run any job: it
must stop taking jobs rather than fail each one. `work_folder_problem` writes, syncs and
removes a small probe file there; its answer is the problem (for the log, the health
file and /readyz, without the path), or None.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

PROBE_PREFIX = "mcnet-probe-"
_PROBE_BYTES = 1 << 20  # a job needs more; a folder without this much is surely unusable


def work_folder_problem(work_dir: Path | None) -> str | None:
    """None when a job's files can be written in the work folder; else why not."""
    root = work_dir or Path(tempfile.gettempdir())
    folder: str | None = None
    try:
        folder = tempfile.mkdtemp(dir=root, prefix=f"{PROBE_PREFIX}{os.getpid()}-")
        with open(Path(folder) / "probe", "wb") as handle:
            handle.write(b"\0" * _PROBE_BYTES)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        logger.debug("work folder probe failed", exc_info=True)
        why = exc.strerror or type(exc).__name__
        return f"its work folder (MCNET_WORK_DIR) cannot be written: {why}"
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return None
