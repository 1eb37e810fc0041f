"""What a file is, told from its first bytes: a checkpoint or something that only has its name.

A failed download of a checkpoint is usually an HTML page (a login or "virus scan" page of the
file host), a partial file, or something else saved under the checkpoint's name. torch's loader
reports all of them as unsafe pickles, so the loader asks this module first.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

HEAD_BYTES = 512

_IMAGE_MAGIC = {
    b"\xff\xd8\xff": "a JPEG image",
    b"\x89PNG\r\n\x1a\n": "a PNG image",
    b"GIF87a": "a GIF image",
    b"GIF89a": "a GIF image",
}


@dataclass(frozen=True)
class FileKind:
    """A file's kind: `torch_zip`, `torch_legacy` and `safetensors` can hold a checkpoint."""

    name: str
    description: str

    @property
    def may_be_checkpoint(self) -> bool:
        """Whether the file has the layout of a checkpoint (its content is checked later)."""
        return self.name in ("torch_zip", "torch_legacy", "safetensors")


def _is_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    header_len = int.from_bytes(head[:8], "little")
    return 0 < header_len <= size - 8 and head[8:9] == b"{"


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)


def file_kind(path: Path) -> FileKind:
    """The kind of the file at `path`, from its size and first bytes."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    if size == 0:
        return FileKind("empty", "an empty file (0 bytes)")
    if head.startswith(b"PK\x03\x04"):
        if zipfile.is_zipfile(path):
            return FileKind("torch_zip", "a torch checkpoint (zip)")
        return FileKind(
            "truncated_zip",
            f"a truncated or damaged zip archive ({size} bytes; an interrupted download?)",
        )
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return FileKind("torch_legacy", "a torch checkpoint (legacy pickle)")
    if _is_safetensors(head, size):
        return FileKind("safetensors", "a safetensors file")
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered[:200]:
        return FileKind(
            "html",
            "an HTML web page, not a checkpoint (a failed download: the file host answered "
            "with a page, such as a sign-in or virus-scan notice, instead of the file)",
        )
    for magic, what in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            return FileKind("image", what)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return FileKind("image", "a WebP image")
    if head.startswith(b"\x1f\x8b"):
        return FileKind("gzip", "a gzip archive (unpack it first)")
    if _looks_like_text(head):
        return FileKind("text", "a text file")
    return FileKind("unknown", f"unknown binary data ({size} bytes)")
