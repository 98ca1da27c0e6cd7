"""MemoryStore: a cache's entries in this process.

A dict of entries, a sorted key index for prefix removals and, when the
store is bounded, recency order (``OrderedDict``) and an expiry heap, so
that making room finds expired entries first without scanning.

Reads take no lock: a dict read, and the ``move_to_end`` that refreshes a
bounded store's recency, are each one atomic step in CPython. Every change
takes the store's (re-entrant) lock. Because reads may reorder a bounded
store's OrderedDict at any moment, nothing iterates over it: walks go
through the sorted key index (``_walk``), which only changes under the
lock. The lock is never held while anything outside this module runs, except ``unchanged`` in
``put_if_unchanged``, which only reads a flag.

The heap keeps entries after they leave the dict (it cannot drop them
cheaply), so an entry leaving a bounded store is *retired*: its value is
replaced by ``RETIRED`` and freed at once; ``ConnectionCache`` reads a
retired entry as already gone.

Tags: ``_tagged`` maps each tag to the keys carrying it and ``_tags_of`` each
tagged key to its tags, so that removing by tag costs what it removes, and
every way an entry leaves (removal, replacement, expiry, eviction) takes it
out of both. A store that never saw a tag pays one truth test per write.
"""

from __future__ import annotations

import heapq
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ._keyindex import LOAD, SortedKeys

if TYPE_CHECKING:
    from ._codecs import Codec
from ._store import (
    NOTHING_DISPLACED,
    CorruptEntry,
    Displaced,
    Entry,
    FaultKind,
    Sink,
    Stamp,
    TaggedEntry,
    tags_of,
)


class _Retired:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<retired>"


#: The value of an entry that left a bounded store (see the module docstring).
RETIRED = _Retired()


class MemoryStore:
    """The in-process store behind every ``ConnectionCache`` without a backend."""

    shared = False
    fail_open_reads = True
    fail_open_invalidations = False

    def __init__(self, max_entries: int | None = None) -> None:
        self.max_entries = max_entries
        self._lock = threading.RLock()
        self._index = SortedKeys()
        self._tagged: dict[str, set[str]] = {}
        self._tags_of: dict[str, tuple[str, ...]] = {}
        if max_entries is None:
            self._data: dict[str, Entry] = {}
            self._order: OrderedDict[str, Entry] | None = None
            self._heap: list[Entry] | None = None
        else:
            self._order = OrderedDict()
            self._data = self._order
            self._heap = []

    def fault_kind(self, error: BaseException) -> FaultKind:
        return None  # nothing here is ever unreachable

    def describe(self) -> str:
        return f"entries={len(self._data)} max_entries={self.max_entries!r}"

    def close(self) -> None:
        self.wipe()

    # -- reads ---------------------------------------------------------------

    def lookup(self, key: str, codec: Codec | None = None) -> Entry | None:
        entry = self._data.get(key)
        if entry is not None and self._order is not None:
            try:  # noqa: SIM105 - contextlib.suppress would cost a read more than this
                self._order.move_to_end(key)  # atomic, like the read: no lock
            except KeyError:
                pass  # removed meanwhile (and retired)
        return entry

    def lookup_many(
        self, keys: Sequence[str], codec: Codec | None = None
    ) -> list[Entry | CorruptEntry | None]:
        if self._order is None:
            return list(map(self._data.get, keys))
        return [self.lookup(key) for key in keys]

    def lookup_for_fill(
        self, key: str, codec: Codec | None = None
    ) -> tuple[Entry | None, Stamp | None]:
        # In one process the cache's flights see every change: no stamp needed.
        return self.lookup(key), None

    def peek(self, key: str, codec: Codec | None = None) -> Entry | None:
        return self._data.get(key)

    def contains(self, key: str) -> bool:
        return key in self._data

    def keys(self) -> list[str]:
        """In storage order (recency order when bounded)."""
        with self._lock:
            for _ in range(3):
                try:
                    return list(self._data)
                except RuntimeError:  # a read moved a key meanwhile: try again
                    continue
            return list(self._index)

    def size(self) -> int:
        return len(self._data)

    def expired_keys(self, after: float, until: float) -> list[str]:
        with self._lock:
            return [entry.key for entry in self._walk() if after < entry.expires_at <= until]

    # -- writes --------------------------------------------------------------

    def put(self, entry: Entry, now: float, codec: Codec | None = None) -> list[Displaced]:
        lock = self._lock
        lock.acquire()  # acquire/release, not ``with``: set's hot path, measured faster
        try:
            key = entry.key
            data = self._data
            old = data.get(key)
            if (
                old is not None
                and self._order is None
                and not self._tags_of
                and type(entry) is Entry
            ):
                data[key] = entry  # the commonest write: a replacement, unbounded
                if old.expires_at <= now:
                    return [(old, "expired")]  # replaced after it expired, unread
                return NOTHING_DISPLACED
            tagged = type(entry) is TaggedEntry
            displaced = NOTHING_DISPLACED
            if old is not None and old.expires_at <= now:
                displaced = [(old, "expired")]
            if old is None:
                if self.max_entries is not None and len(data) >= self.max_entries:
                    displaced = self._make_room(now)
                self._index.add(key)
            if tagged or self._tags_of:
                self._retag(key, tags_of(entry))
            data[key] = entry
            if self._order is not None:
                if old is not None:
                    self._order.move_to_end(key)
                    old.value = RETIRED
                if entry.expires_at != math.inf:
                    self._push_expiry(entry)
            return displaced
        finally:
            lock.release()

    def put_many(
        self, entries: Sequence[Entry], now: float, codec: Codec | None = None
    ) -> list[Displaced]:
        displaced: list[Displaced] = []
        with self._lock:
            for entry in entries:
                displaced += self.put(entry, now)
        return displaced

    def put_if_unchanged(
        self,
        entry: Entry,
        now: float,
        stamp: Stamp | None,
        unchanged: Callable[[], bool],
        codec: Codec | None = None,
    ) -> tuple[bool, list[Displaced]]:
        with self._lock:  # re-entered by put: the check and the write are one step
            if not unchanged():
                return False, NOTHING_DISPLACED
            return True, self.put(entry, now)

    def _push_expiry(self, entry: Entry) -> None:
        heap = self._heap
        assert heap is not None
        heapq.heappush(heap, entry)
        # Retired entries stay in the heap until popped; rebuild once they
        # outnumber the live ones, so the heap stays O(entries).
        if len(heap) > 2 * len(self._data) + LOAD:
            live = [e for e in self._walk() if e.expires_at != math.inf]
            heapq.heapify(live)
            self._heap = live

    def _make_room(self, now: float) -> list[Displaced]:
        """Under the lock: every expired entry, else the least recently used one."""
        data = self._data
        heap = self._heap
        order = self._order
        limit = self.max_entries
        assert heap is not None and order is not None and limit is not None
        displaced: list[Displaced] = []
        while heap and heap[0].expires_at <= now:
            candidate = heapq.heappop(heap)
            if data.get(candidate.key) is candidate:
                self._drop(candidate)
                displaced.append((candidate, "expired"))
        if len(data) >= limit:
            _, oldest = order.popitem(last=False)
            self._index.discard(oldest.key)
            if self._tags_of:
                self._retag(oldest.key, ())
            displaced.append((oldest, "evicted"))
            self._retire(oldest)
        return displaced

    # -- removals --------------------------------------------------------------

    def _drop(self, entry: Entry) -> None:
        """Under the lock: take a stored entry out of every structure."""
        del self._data[entry.key]
        self._index.discard(entry.key)
        if self._tags_of:
            self._retag(entry.key, ())
        self._retire(entry)

    def _walk(self) -> list[Entry]:
        """Under the lock: every stored entry, found through the key index."""
        data = self._data
        return [data[key] for key in self._index]

    def _retag(self, key: str, tags: tuple[str, ...]) -> None:
        """Under the lock: ``key`` now carries ``tags`` (none: it left the store)."""
        tagged = self._tagged
        for tag in self._tags_of.pop(key, ()):
            keys = tagged[tag]
            keys.discard(key)
            if not keys:
                del tagged[tag]
        if tags:
            self._tags_of[key] = tags
            for tag in tags:
                tagged.setdefault(tag, set()).add(key)

    def _retire(self, entry: Entry) -> None:
        if self._heap is not None:
            # Still referenced by the heap: let its value go now.
            entry.value = RETIRED

    def remove(self, keys: Sequence[str]) -> list[str]:
        removed: list[str] = []
        with self._lock:
            data = self._data
            for key in keys:
                entry = data.get(key)
                if entry is not None:
                    self._drop(entry)
                    removed.append(key)
        return removed

    def remove_expired(self, entries: Sequence[Entry]) -> list[Entry]:
        removed: list[Entry] = []
        with self._lock:
            data = self._data
            for entry in entries:
                if data.get(entry.key) is entry:  # else replaced or removed meanwhile
                    self._drop(entry)
                    removed.append(entry)
        return removed

    def claim_fill(
        self, key: str, now: Callable[[], float], codec: Codec | None = None
    ) -> tuple[Entry | None, object]:
        return None, None  # one process: the cache's own single-flight is enough

    def release_fill(self, key: str, token: object) -> None:
        return None

    def remove_prefix(self, prefix: str, sink: Sink[str]) -> None:
        with self._lock:
            doomed = self._index.pop_prefix(prefix)
            self._pop(doomed)
        sink(doomed)

    def remove_matching(self, matches: Callable[[str], object], sink: Sink[str]) -> None:
        with self._lock:
            doomed = [key for key in self._index if matches(key)]
            self._remove_listed(doomed)
        sink(doomed)

    def _pop(self, keys: list[str]) -> None:
        """Under the lock: take stored ``keys`` out of the dict and the tags (not the
        key index)."""
        if self._tags_of:
            for key in keys:
                self._retag(key, ())
        data = self._data
        if self._heap is None:
            for key in keys:
                del data[key]
        else:
            for key in keys:
                data.pop(key).value = RETIRED  # see _retire

    def _remove_listed(self, keys: list[str]) -> None:
        """Under the lock: remove stored ``keys``."""
        self._pop(keys)
        index = self._index
        # Past about 1/16 of the index, one linear pass beats a binary
        # search and a list deletion per key.
        if len(keys) * 16 > len(index):
            index.retain(self._data)
        else:
            for key in keys:
                index.discard(key)

    def remove_tags(self, tags: Sequence[str], sink: Sink[str]) -> None:
        with self._lock:
            tagged = self._tagged
            doomed = list(dict.fromkeys(k for tag in tags for k in tagged.get(tag, ())))
            self._remove_listed(doomed)
        sink(doomed)

    def remove_all(self, sink: Sink[str]) -> None:
        with self._lock:
            doomed = list(self._index)
            self._clear()
        sink(doomed)

    def purge_expired(self, now: float, sink: Sink[Entry]) -> None:
        with self._lock:
            expired = [e for e in self._walk() if now >= e.expires_at]
            self._remove_listed([e.key for e in expired])
        sink(expired)

    def wipe(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        if self._heap is not None:
            for entry in self._walk():
                entry.value = RETIRED
            self._heap.clear()
        self._data.clear()
        self._index.clear()
        self._tagged.clear()
        self._tags_of.clear()

    # -- awaitable twins: in memory nothing waits, so they run inline ----------

    async def alookup(self, key: str, codec: Codec | None = None) -> Entry | None:
        return self.lookup(key)

    async def alookup_many(
        self, keys: Sequence[str], codec: Codec | None = None
    ) -> list[Entry | CorruptEntry | None]:
        return self.lookup_many(keys)

    async def alookup_for_fill(
        self, key: str, codec: Codec | None = None
    ) -> tuple[Entry | None, Stamp | None]:
        return self.lookup_for_fill(key)

    async def apeek(self, key: str, codec: Codec | None = None) -> Entry | None:
        return self.peek(key)

    async def acontains(self, key: str) -> bool:
        return self.contains(key)

    async def akeys(self) -> list[str]:
        return self.keys()

    async def asize(self) -> int:
        return self.size()

    async def aput(self, entry: Entry, now: float, codec: Codec | None = None) -> list[Displaced]:
        return self.put(entry, now)

    async def aput_many(
        self, entries: Sequence[Entry], now: float, codec: Codec | None = None
    ) -> list[Displaced]:
        return self.put_many(entries, now)

    async def aput_if_unchanged(
        self,
        entry: Entry,
        now: float,
        stamp: Stamp | None,
        unchanged: Callable[[], bool],
        codec: Codec | None = None,
    ) -> tuple[bool, list[Displaced]]:
        return self.put_if_unchanged(entry, now, stamp, unchanged)

    async def aremove(self, keys: Sequence[str]) -> list[str]:
        return self.remove(keys)

    async def aremove_expired(self, entries: Sequence[Entry]) -> list[Entry]:
        return self.remove_expired(entries)

    async def aclaim_fill(
        self, key: str, now: Callable[[], float], codec: Codec | None = None
    ) -> tuple[Entry | None, object]:
        return self.claim_fill(key, now)

    async def arelease_fill(self, key: str, token: object) -> None:
        return None

    async def aremove_prefix(self, prefix: str, sink: Sink[str]) -> None:
        self.remove_prefix(prefix, sink)

    async def aremove_matching(self, matches: Callable[[str], object], sink: Sink[str]) -> None:
        self.remove_matching(matches, sink)

    async def aremove_all(self, sink: Sink[str]) -> None:
        self.remove_all(sink)

    async def aremove_tags(self, tags: Sequence[str], sink: Sink[str]) -> None:
        self.remove_tags(tags, sink)

    async def apurge_expired(self, now: float, sink: Sink[Entry]) -> None:
        self.purge_expired(now, sink)
