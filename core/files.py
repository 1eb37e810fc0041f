"""Writing a file so that readers see the old one or the whole new one, never a part:
the one write-to-a-temporary-name-then-rename of the project. Torch-free."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

PARTIAL_SUFFIX = ".part"


def partial_path(target: Path) -> Path:
    """The hidden temporary name a file is written under beside `target`."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}{PARTIAL_SUFFIX}")


@contextlib.contextmanager
def replaced_atomically(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside `target` for the block to write; renamed onto `target`
    when the block ends without an error, removed when it raises."""
    temp = partial_path(Path(target))
    try:
        yield temp
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
