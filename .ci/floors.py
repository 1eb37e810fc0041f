"""Print pip constraints that pin every direct dependency of pyproject.toml to its floor.

`name>=X` becomes `name==X` (extras dropped; upper bounds ignored; a package named twice,
as the dev extra does for what the tests need, gets the higher floor). torch is left out:
CI installs the one CPU wheel it has on local disk. Used by .ci/run's floors job:
    python .ci/floors.py > floors.txt && pip install -c floors.txt -e '.[worker,dev]'
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

SKIP = {"torch"}


def floors(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)$", requirement)
        if match is None:
            raise ValueError(f"cannot read the requirement {requirement!r}")
        name, spec = match.group(1), match.group(3)
        floor = re.search(r">=\s*([0-9][^,;\s]*)", spec)
        if floor is None:
            raise ValueError(f"{requirement!r} has no lower bound")
        version = floor.group(1)
        if name.lower() not in SKIP and _key(version) > _key(pins.get(name, "0")):
            pins[name] = version
    return [f"{name}=={version}" for name, version in pins.items()]


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    sys.stdout.write("\n".join(floors(root / "pyproject.toml")) + "\n")
