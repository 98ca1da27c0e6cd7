"""Print the floor pins for the floor job: ``name==X`` for each ``name>=X`` in pyproject.toml.

Every runtime dependency is printed, and must have a ``>=`` floor. Names
given as arguments are looked up in the optional dependencies (extras) too;
an exact pin there (``==``, the newest-release job's pin) is not a floor and
is passed over in favour of a ``>=`` elsewhere, but a tool that has only a
pin (mypy, which the suite runs on a snippet) is installed at that pin. A
name with neither is an error, so the floor job never quietly installs a
newest release.

    python3 .ci/floors.py hypothesis pytest-asyncio > floors.txt   # Python 3.11+ (tomllib)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

FLOOR = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*>=\s*([^\s,;]+)")
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*==\s*([^\s,;]+)")


def _name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise SystemExit(f"floors.py: cannot read the requirement {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def _floors(requirements: list[str], pattern: re.Pattern[str] = FLOOR) -> dict[str, str]:
    found = {}
    for requirement in requirements:
        match = pattern.match(requirement)
        if match is not None:
            found[_name(requirement)] = match.group(2)
    return found


def main(names: list[str]) -> int:
    project = tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = project["dependencies"]
    floors = _floors(runtime)
    missing = [requirement for requirement in runtime if _name(requirement) not in floors]
    if missing:
        raise SystemExit(f"floors.py: runtime dependencies without a >= floor: {missing}")
    optional = [r for group in project["optional-dependencies"].values() for r in group]
    extras = _floors(optional)
    tools = _floors(optional, PIN)
    pins = dict(floors)
    for name in names:
        key = _name(name)
        if key not in extras and key not in floors and key not in tools:
            raise SystemExit(
                f"floors.py: {name!r} has no >= floor (nor == pin) in pyproject.toml; give it "
                "one (or leave it out of the floor job)"
            )
        pins.setdefault(key, extras.get(key) or tools[key])
    for key, version in pins.items():
        print(f"{key}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
