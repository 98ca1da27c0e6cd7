"""The conncache report: rows of per-test (or per-family) counts, as a table or JSON."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._hooks import hookimpl

FIELDS = ("hits", "misses", "sets", "invalidations", "expirations", "evictions")
Row = dict[str, Any]


class FamilyCounter:
    """An observer counting every cache event by key family (the key's text before its
    first ``:``), for ``--conncache-report=families``; ``take`` hands over and restarts.

    Hooks arrive from any thread (under each cache's own lock, but caches
    have different locks), so the counter keeps a lock of its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, int]] = {}

    def take(self) -> dict[str, dict[str, int]]:
        with self._lock:
            counts, self._counts = self._counts, {}
            return counts

    def _bump(self, key: str, field: str) -> None:
        family = family_of(key)
        with self._lock:
            counts = self._counts.get(family)
            if counts is None:
                counts = self._counts[family] = dict.fromkeys(FIELDS, 0)
            counts[field] += 1

    @hookimpl
    def conncache_hit(self, key: str) -> None:
        self._bump(key, "hits")

    @hookimpl
    def conncache_miss(self, key: str) -> None:
        self._bump(key, "misses")

    @hookimpl
    def conncache_set(self, key: str) -> None:
        self._bump(key, "sets")

    @hookimpl
    def conncache_invalidation(self, key: str) -> None:
        self._bump(key, "invalidations")

    @hookimpl
    def conncache_expiration(self, key: str) -> None:
        self._bump(key, "expirations")

    @hookimpl
    def conncache_eviction(self, key: str) -> None:
        self._bump(key, "evictions")


def family_of(key: str) -> str:
    return key.partition(":")[0]


def add_expired(into: dict[str, dict[str, int]], keys: Sequence[str]) -> None:
    """Count one expiration in the family of each of ``keys``."""
    for key in keys:
        counts = into.setdefault(family_of(key), dict.fromkeys(FIELDS, 0))
        counts["expirations"] += 1


def add_up(into: dict[str, dict[str, int]], counts: dict[str, dict[str, int]]) -> None:
    """Add per-family ``counts`` into ``into``."""
    for family, fields in counts.items():
        total = into.setdefault(family, dict.fromkeys(FIELDS, 0))
        for field in FIELDS:
            total[field] += fields.get(field, 0)


def family_rows(counts: dict[str, dict[str, int]]) -> list[Row]:
    """Table rows, one per family, sorted; labelled like tests (``nodeid``)."""
    return [{"nodeid": family or "(no ':')", **counts[family]} for family in sorted(counts)]


def touched(counts: dict[str, int]) -> bool:
    return any(counts.values())  # every value is one of FIELDS' counts


def totals(rows: Sequence[Row]) -> dict[str, int]:
    return {field: sum(row[field] for row in rows) for field in FIELDS}


def hit_ratio_text(counts: dict[str, int]) -> str:
    lookups = counts["hits"] + counts["misses"]
    return f"{100 * counts['hits'] / lookups:.1f}%" if lookups else "-"


def shorten(text: str, width: int) -> str:
    """Fit ``text`` into ``width`` characters by eliding its middle.

    Both ends of a node id carry meaning (where the test lives, which
    parametrization it is), so the middle goes first.
    """
    if len(text) <= width:
        return text
    if width < 3:
        return text[:width]
    head = (width - 1) // 2
    return text[:head] + "…" + text[-(width - 1 - head) :]


def shorten_distinct(texts: Sequence[str], width: int) -> list[str]:
    """Fit each of the distinct ``texts`` into ``width`` characters, keeping them distinct.

    A text that does not fit loses its middle, as in ``shorten``, unless that
    would print it the same as another text; then the cut moves away from
    the middle, a step at a time, until it keeps what sets the text apart.
    A text that no cut of that width can tell apart is printed whole: a row
    too wide beats two rows that read the same.
    """
    labels: list[str | None] = [text if len(text) <= width else None for text in texts]
    taken = {label for label in labels if label is not None}
    pending = [i for i, label in enumerate(labels) if label is None]
    middle = (width - 1) // 2
    # Cuts nearest the middle first, as shorten() makes them.
    for head in sorted(range(width), key=lambda head: (abs(head - middle), -head)):
        if not pending:
            break
        tail = width - 1 - head
        cuts = {i: texts[i][:head] + "…" + texts[i][len(texts[i]) - tail :] for i in pending}
        counts = Counter(cuts.values())
        still = []
        for i in pending:
            if counts[cuts[i]] == 1 and cuts[i] not in taken:
                labels[i] = cuts[i]
                taken.add(cuts[i])
            else:
                still.append(i)
        pending = still
    return [text if label is None else label for text, label in zip(texts, labels, strict=True)]


def common_prefix(nodeids: Sequence[str]) -> str:
    """The longest prefix shared by every node id, cut back to a ``/`` or ``::`` boundary."""
    if len(nodeids) < 2:
        return ""
    prefix = os.path.commonprefix(list(nodeids))
    slash, colons = prefix.rfind("/"), prefix.rfind("::")
    cut = max(slash + 1 if slash >= 0 else 0, colons + 2 if colons >= 0 else 0)
    return prefix[:cut]


# Short headers keep the numbers narrow and leave the width to the node ids.
HEADERS = ("hits", "misses", "hit%", "sets", "inval", "expired", "evicted")


def table(rows: Sequence[Row], width: int, first: str = "test") -> list[str]:
    """The report's lines: a header, one line per row, a rule and a total line.

    When the node ids do not fit beside the numbers, the prefix they all
    share is said once above the table and left out of the rows. ``first``
    heads the first column (``family`` for the families table).
    """
    all_rows: list[Row] = [*rows, {"nodeid": "TOTAL", **totals(rows)}]
    cells = [
        [str(row["hits"]), str(row["misses"]), hit_ratio_text(row)]
        + [str(row[field]) for field in FIELDS[2:]]
        for row in all_rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADERS)]
    room = max(width - sum(w + 1 for w in widths) - 1, 16)
    ids = [row["nodeid"] for row in rows]
    preamble: list[str] = []
    if first == "test" and max(map(len, ids), default=0) > room:
        prefix = common_prefix(ids)
        if prefix:
            ids = [nodeid[len(prefix) :] for nodeid in ids]
            preamble.append(shorten(f"node ids below start with {prefix}", width))
    id_width = min(max(len(i) for i in [*ids, first, "TOTAL"]), room)
    # Node ids are distinct, and so are the labels: no two rows read the same.
    ids = [*shorten_distinct(ids, id_width), "TOTAL"]

    def line(first: str, values: Sequence[str]) -> str:
        numbers = "".join(f" {v:>{w}}" for v, w in zip(values, widths, strict=True))
        return f"{first:<{id_width}}{numbers}"

    body = [line(nodeid, c) for nodeid, c in zip(ids, cells, strict=True)]
    header = line(first, HEADERS)
    return [*preamble, header, *body[:-1], "-" * len(header), body[-1]]


def write_json(path: Path, rows: Sequence[Row]) -> None:
    data = {
        "tests": [{"nodeid": row["nodeid"], **{f: row[f] for f in FIELDS}} for row in rows],
        "totals": totals(rows),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
