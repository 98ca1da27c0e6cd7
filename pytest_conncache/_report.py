"""Per-test cache counts: collecting them from the hooks, and printing them as a table."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._hooks import hookimpl

FIELDS = ("hits", "misses", "sets", "invalidations", "expirations", "evictions")
Row = dict[str, Any]


class TestCounter:
    """An observer that counts every cache event since the last ``restart``.

    Hooks arrive from any thread (under each cache's own lock, but caches
    have different locks), so the counter keeps a lock of its own.
    """

    __test__ = False  # not a test class, despite the name

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(FIELDS, 0)

    def restart(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(FIELDS, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def _bump(self, field: str) -> None:
        with self._lock:
            self._counts[field] += 1

    @hookimpl
    def conncache_hit(self) -> None:
        self._bump("hits")

    @hookimpl
    def conncache_miss(self) -> None:
        self._bump("misses")

    @hookimpl
    def conncache_set(self) -> None:
        self._bump("sets")

    @hookimpl
    def conncache_invalidation(self) -> None:
        self._bump("invalidations")

    @hookimpl
    def conncache_expiration(self) -> None:
        self._bump("expirations")

    @hookimpl
    def conncache_eviction(self) -> None:
        self._bump("evictions")


def touched(counts: dict[str, int]) -> bool:
    return any(counts.get(field, 0) for field in FIELDS)


def totals(rows: Sequence[Row]) -> dict[str, int]:
    return {field: sum(row[field] for row in rows) for field in FIELDS}


def hit_ratio_text(counts: dict[str, int]) -> str:
    lookups = counts["hits"] + counts["misses"]
    return f"{100 * counts['hits'] / lookups:.1f}%" if lookups else "-"


def shorten(nodeid: str, width: int) -> str:
    """Fit ``nodeid`` into ``width`` characters.

    The test's name (after the first ``::``) matters most, so the path is
    cut from the left first; only a name that alone is too long is cut too.
    """
    if len(nodeid) <= width:
        return nodeid
    path, sep, name = nodeid.partition("::")
    room = width - len(sep) - len(name) - 1
    if sep and room >= 4:
        return "…" + path[-room:] + sep + name
    return "…" + nodeid[-(width - 1) :] if width > 1 else nodeid[:width]


# Short headers keep the numbers narrow and leave the width to the node ids.
HEADERS = ("hits", "misses", "hit%", "sets", "inval", "expired", "evicted")


def table(rows: Sequence[Row], width: int) -> list[str]:
    """The report's lines: a header, one line per row, and a total line."""
    total: Row = {"nodeid": "TOTAL", **totals(rows)}
    cells = [
        [str(row["hits"]), str(row["misses"]), hit_ratio_text(row)]
        + [str(row[field]) for field in FIELDS[2:]]
        for row in [*rows, total]
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADERS)]
    numbers_width = sum(w + 2 for w in widths)
    longest = max(len(row["nodeid"]) for row in [*rows, total])
    id_width = max(min(longest, width - numbers_width - 1), 16)

    def line(first: str, values: Sequence[str]) -> str:
        numbers = "".join(f"  {v:>{w}}" for v, w in zip(values, widths, strict=True))
        return f"{shorten(first, id_width):<{id_width}}{numbers}".rstrip()

    lines = [line("test", HEADERS)]
    lines += [line(row["nodeid"], c) for row, c in zip([*rows, total], cells, strict=True)]
    return lines


def write_json(path: Path, rows: Sequence[Row]) -> None:
    data = {
        "tests": [{"nodeid": row["nodeid"], **{f: row[f] for f in FIELDS}} for row in rows],
        "totals": totals(rows),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
