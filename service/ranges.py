"""HTTP Range requests (RFC 9110, one byte range) for the result MP4, so players can seek."""

from __future__ import annotations

from core.errors import RangeNotSatisfiableError

_HUGE = 2**63  # any position with more digits than this is past the end of every file


def _number(digits: str) -> int:
    """The value of a position; bounded, so a number of thousands of digits costs nothing."""
    return _HUGE if len(digits) > 18 else int(digits)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range `header` asks for in a file of `size` bytes.

    None means "send the whole file": no header, another unit, several ranges, or a
    syntactically invalid header (which RFC 9110 says to ignore). Raises
    RangeNotSatisfiableError when the range lies wholly past the end.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    spec = spec.strip()
    if unit.strip().lower() != "bytes" or not spec or "," in spec:
        return None
    first, dash, last = spec.partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if first == "":
        if last == "":
            return None
        suffix = _number(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiableError(header, size)
        return max(0, size - suffix), size - 1
    start = _number(first)
    if last and _number(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiableError(header if len(header) <= 64 else header[:64] + "...", size)
    end = _number(last) if last else size - 1
    return start, min(end, size - 1)
