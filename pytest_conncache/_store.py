"""The storage interface: what a ConnectionCache needs from wherever its entries live.

A ``ConnectionCache`` validates, counts, notifies observers, keeps the
removal record, runs single-flight and decides what a fault means; a store
only stores. ``MemoryStore`` keeps entries in this process, ``RedisStore``
on a Redis server. Each operation has a sync and an awaitable half, and the
cache calls one or the other. A store never calls back into a cache.

Times are the cache's clock readings, passed in: a store reads no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from ._codecs import Codec

T = TypeVar("T")

#: Where a store hands what a long removal removed, a batch at a time, as it goes.
Sink = Callable[[list[T]], None]

#: What a store error means to the cache: the server cannot be reached (served
#: as a miss where configured), it refuses writes (out of memory, read-only),
#: or None: anything else, which the cache always raises.
FaultKind = Literal["unreachable", "refused"] | None

# Why an entry left a store without anybody asking for that key.
Displaced = tuple["Entry", Literal["expired", "evicted"]]

# What a store hands back for "nothing displaced": shared, never mutated.
NOTHING_DISPLACED: list[Displaced] = []


class Entry:
    """One stored value, with its expiry on the cache's clock. Never mutated.

    Entries order by expiry so that a bounded memory store can keep them in
    a heap and find expired ones first without scanning.
    """

    __slots__ = ("key", "value", "expires_at", "ttl")

    def __init__(self, key: str, value: Any, expires_at: float, ttl: float) -> None:
        self.key = key
        self.value = value
        self.expires_at = expires_at
        self.ttl = ttl

    def __lt__(self, other: Entry) -> bool:
        return self.expires_at < other.expires_at

    def __repr__(self) -> str:
        return f"Entry({self.key!r}, expires_at={self.expires_at!r}, ttl={self.ttl!r})"


class TaggedEntry(Entry):
    """An entry with tags (``set(..., tags=...)``): a subclass, so that untagged
    entries, the common kind, pay no slot for them."""

    __slots__ = ("tags",)

    def __init__(
        self, key: str, value: Any, expires_at: float, ttl: float, tags: tuple[str, ...]
    ) -> None:
        super().__init__(key, value, expires_at, ttl)
        self.tags = tags


def tags_of(entry: Entry) -> tuple[str, ...]:
    return entry.tags if type(entry) is TaggedEntry else ()


class CorruptEntry(Exception):
    """A stored value that this package cannot read back (foreign or damaged bytes).

    Raised by a store's reads; the cache treats the key as a miss, counts
    one error and warns once, and the next write replaces the value.
    """

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"cache entry {key!r} cannot be read: {reason}")
        self.key = key
        self.reason = reason


class Stamp(Protocol):
    """Opaque: what a store needs to tell whether a key changed since a lookup."""


class Store(Protocol):
    """Where one cache's entries live. Every method may be called from many threads.

    ``shared`` stores are seen by other processes, so a cache on one reads
    wall time by default (monotonic readings of two processes differ).
    ``fault_kind`` says what an error raised by one of its calls means.
    """

    shared: bool
    fail_open_reads: bool
    fail_open_invalidations: bool

    def fault_kind(self, error: BaseException) -> FaultKind: ...

    def describe(self) -> str:
        """A few words for the cache's repr, e.g. ``backend=redis namespace='x'``."""
        ...

    # -- reads ---------------------------------------------------------------
    # ``codec``: how this call's values are encoded (typed values); None: the
    # store's own way. Stores that keep objects ignore it.

    def lookup(self, key: str, codec: Codec | None = None) -> Entry | None:
        """The stored entry (expired or not) for a read that counts; may refresh recency."""
        ...

    def lookup_many(
        self, keys: Sequence[str], codec: Codec | None = None
    ) -> list[Entry | CorruptEntry | None]:
        """``lookup`` of each key; an unreadable entry is its ``CorruptEntry``, in place."""
        ...

    def lookup_for_fill(
        self, key: str, codec: Codec | None = None
    ) -> tuple[Entry | None, Stamp | None]:
        """``lookup``, plus a stamp that ``put_if_unchanged`` checks (get_or_set)."""
        ...

    def peek(self, key: str, codec: Codec | None = None) -> Entry | None:
        """The stored entry without refreshing recency."""
        ...

    def contains(self, key: str) -> bool:
        """Stored, expired or not."""
        ...

    def keys(self) -> list[str]: ...

    def size(self) -> int: ...

    def expired_keys(self, after: float, until: float) -> list[str]:
        """The keys of stored entries whose expiry lies in ``(after, until]`` (the
        plugin's report: entries that expired during a test and nobody removed)."""
        ...

    # -- writes --------------------------------------------------------------
    def put(self, entry: Entry, now: float, codec: Codec | None = None) -> list[Displaced]:
        """Store or replace (with its tags, if a ``TaggedEntry``); what had to leave to
        make room (bounded stores)."""
        ...

    def put_many(
        self, entries: Sequence[Entry], now: float, codec: Codec | None = None
    ) -> list[Displaced]: ...

    def put_if_unchanged(
        self,
        entry: Entry,
        now: float,
        stamp: Stamp | None,
        unchanged: Callable[[], bool],
        codec: Codec | None = None,
    ) -> tuple[bool, list[Displaced]]:
        """Store ``entry`` only if ``unchanged()`` holds and no process changed the key
        since the lookup that gave ``stamp``, as one step with respect to every other
        write of this store. (stored?, displaced)."""
        ...

    # -- removals (each returns the keys that were stored and are now gone) ---
    def remove(self, keys: Sequence[str]) -> list[str]: ...

    def remove_expired(self, entries: Sequence[Entry]) -> list[Entry]:
        """Remove each entry still stored as it was read; those removed."""
        ...

    def remove_prefix(self, prefix: str, sink: Sink[str]) -> None:
        """Remove keys starting with ``prefix``; each batch removed goes to ``sink``."""
        ...

    def remove_matching(self, matches: Callable[[str], object], sink: Sink[str]) -> None: ...

    def remove_all(self, sink: Sink[str]) -> None: ...

    def remove_tags(self, tags: Sequence[str], sink: Sink[str]) -> None:
        """Remove every entry carrying any of ``tags``: the cost follows what is removed."""
        ...

    def purge_expired(self, now: float, sink: Sink[Entry]) -> None:
        """Remove entries expired at ``now`` (unreadable ones stay), batches to ``sink``."""
        ...

    def wipe(self) -> None:
        """Remove everything, reporting nothing (test isolation, backend switches)."""
        ...

    # -- the cross-process fill lock (a no-op where one process owns the data) ---
    def claim_fill(
        self, key: str, now: Callable[[], float], codec: Codec | None = None
    ) -> tuple[Entry | None, object]:
        """Before get_or_set's factory runs: (another process's live entry, None),
        or (None, a token for ``release_fill``, None when nothing was taken)."""
        ...

    def release_fill(self, key: str, token: object) -> None: ...

    # -- the same, awaitable -------------------------------------------------
    async def alookup(self, key: str, codec: Codec | None = None) -> Entry | None: ...

    async def alookup_many(
        self, keys: Sequence[str], codec: Codec | None = None
    ) -> list[Entry | CorruptEntry | None]: ...

    async def alookup_for_fill(
        self, key: str, codec: Codec | None = None
    ) -> tuple[Entry | None, Stamp | None]: ...

    async def apeek(self, key: str, codec: Codec | None = None) -> Entry | None: ...

    async def acontains(self, key: str) -> bool: ...

    async def akeys(self) -> list[str]: ...

    async def asize(self) -> int: ...

    async def aput(
        self, entry: Entry, now: float, codec: Codec | None = None
    ) -> list[Displaced]: ...

    async def aput_many(
        self, entries: Sequence[Entry], now: float, codec: Codec | None = None
    ) -> list[Displaced]: ...

    async def aput_if_unchanged(
        self,
        entry: Entry,
        now: float,
        stamp: Stamp | None,
        unchanged: Callable[[], bool],
        codec: Codec | None = None,
    ) -> tuple[bool, list[Displaced]]: ...

    async def aremove(self, keys: Sequence[str]) -> list[str]: ...

    async def aremove_expired(self, entries: Sequence[Entry]) -> list[Entry]: ...

    async def aremove_prefix(self, prefix: str, sink: Sink[str]) -> None: ...

    async def aremove_matching(self, matches: Callable[[str], object], sink: Sink[str]) -> None: ...

    async def aremove_all(self, sink: Sink[str]) -> None: ...

    async def aremove_tags(self, tags: Sequence[str], sink: Sink[str]) -> None: ...

    async def apurge_expired(self, now: float, sink: Sink[Entry]) -> None: ...

    async def aclaim_fill(
        self, key: str, now: Callable[[], float], codec: Codec | None = None
    ) -> tuple[Entry | None, object]: ...

    async def arelease_fill(self, key: str, token: object) -> None: ...

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...


class Backend(Protocol):
    """Something ``ConnectionCache.use_backend`` accepts: it opens a store for a cache."""

    def open_store(
        self, *, max_entries: int | None, count_near_hit: Callable[[], object] | None = None
    ) -> Store:
        """A store for one cache. ``count_near_hit``: what a store that answers some
        lookups from a copy in this process calls for each (``stats.near_hits``)."""
        ...

    def close(self) -> None:
        """Release the backend's connections (at a service's shutdown)."""
        ...
