"""SortedKeys: the key index that lets invalidate_prefix skip the rest of the cache.

Keys sharing a prefix form one contiguous run in sorted order, so a prefix
lookup is two binary searches plus the run itself. The keys live in a list of
short sorted lists (at most ``2 * LOAD`` each), which keeps an insert at
O(log n + LOAD) instead of the O(n) shift one flat sorted list would cost.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Container, Iterator

LOAD = 512
_MAX_CHAR = chr(0x10FFFF)


def prefix_successor(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``.

    None when there is none (an empty prefix, or one made only of U+10FFFF).
    """
    stripped = prefix.rstrip(_MAX_CHAR)
    if not stripped:
        return None
    return stripped[:-1] + chr(ord(stripped[-1]) + 1)


class SortedKeys:
    __slots__ = ("_lists", "_maxes", "_len")

    def __init__(self) -> None:
        self._lists: list[list[str]] = []
        self._maxes: list[str] = []
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[str]:
        for sub in self._lists:
            yield from sub

    def add(self, key: str) -> None:
        """Insert ``key``; the caller guarantees it is not already present."""
        maxes = self._maxes
        self._len += 1
        if not maxes:
            self._lists.append([key])
            maxes.append(key)
            return
        pos = bisect_left(maxes, key)
        if pos == len(maxes):
            pos -= 1
            sub = self._lists[pos]
            sub.append(key)
            maxes[pos] = key
        else:
            sub = self._lists[pos]
            insort(sub, key)
        if len(sub) > 2 * LOAD:
            self._lists[pos : pos + 1] = [sub[:LOAD], sub[LOAD:]]
            maxes[pos : pos + 1] = [sub[LOAD - 1], sub[-1]]

    def discard(self, key: str) -> None:
        maxes = self._maxes
        pos = bisect_left(maxes, key)
        if pos == len(maxes):
            return
        sub = self._lists[pos]
        idx = bisect_left(sub, key)
        if idx == len(sub) or sub[idx] != key:
            return
        del sub[idx]
        self._len -= 1
        if not sub:
            del self._lists[pos]
            del maxes[pos]
        elif idx == len(sub):
            maxes[pos] = sub[-1]

    def pop_prefix(self, prefix: str) -> list[str]:
        """Remove and return every key that starts with ``prefix``, in sorted order.

        The keys form one contiguous run, so they leave as slices of the
        sublists: no binary search and no list shift per key, unlike
        ``discard`` in a loop.
        """
        upper = prefix_successor(prefix)
        found: list[str] = []
        lists = self._lists
        maxes = self._maxes
        pos = bisect_left(maxes, prefix)
        while pos < len(maxes):
            sub = lists[pos]
            start = bisect_left(sub, prefix) if sub[0] < prefix else 0
            if upper is not None and upper <= maxes[pos]:
                stop = bisect_left(sub, upper)  # the run ends in this sublist
                run_continues = False
            else:
                stop = len(sub)
                run_continues = True
            found.extend(sub[start:stop])
            del sub[start:stop]
            if not sub:
                del lists[pos]
                del maxes[pos]
            else:
                maxes[pos] = sub[-1]
                pos += 1
            if not run_continues:
                break
        self._len -= len(found)
        return found

    def retain(self, keep: Container[str]) -> None:
        """Drop every key not in ``keep``: one linear pass, for mass removals."""
        lists: list[list[str]] = []
        for sub in self._lists:
            kept = [key for key in sub if key in keep]
            if kept:
                lists.append(kept)
        self._lists = lists
        self._maxes = [sub[-1] for sub in lists]
        self._len = sum(len(sub) for sub in lists)

    def clear(self) -> None:
        self._lists = []
        self._maxes = []
        self._len = 0
