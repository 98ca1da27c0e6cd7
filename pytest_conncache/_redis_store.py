"""RedisStore: a cache's entries in one namespace of a Redis server or a Redis Cluster.

Each operation is written once, as a *plan*: a generator that yields Redis
steps (``_redis_io``: a command, a Lua script call, a page of SCAN, or a
``Fan`` of independent steps sent together), receives their replies (or
has their errors thrown in), and returns the operation's result; a long
removal also yields ``Batch`` results, which go to the caller's sink as
they come. ``_run`` executes a plan with the synchronous client, ``_arun``
with this event loop's asyncio client, so the sync and the awaitable half
of the ``Store`` protocol share every line but the driver's one call; what
sends a step (one server or a cluster) is the executor's business
(``_redis_io``). ``_Feed`` does the rest of a driver's work: advancing the
plan and the server's outage state.

Plans are bucket-aware (``_redis_layout``): a key's entry and bookkeeping
are in its bucket, every script touches one bucket, and work that spans
buckets is fanned out, one step per bucket. On one server there is one
bucket and every plan sends what it always sent.

The layout of a bucket (entries, index, tag sets, change stamps) and every
multi-key step are in ``_redis_scripts.py``.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
import zlib
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, TypeVar, cast

import redis.asyncio.cluster
import redis.cluster
from redis.exceptions import ResponseError

from . import _redis_scripts as lua
from ._codecs import Codec
from ._envelope import decode, encode, server_px
from ._keyindex import prefix_successor
from ._redis import RedisBackend
from ._redis_io import (
    NODES,
    AsyncClusterIO,
    AsyncServerIO,
    Call,
    ClusterIO,
    Fan,
    Health,
    Lua,
    Scan,
    ServerIO,
    ShortCircuit,
    Step,
    explain,
    fault_kind,
    is_outage,
    short_circuit,
)
from ._redis_layout import Bucket
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

__all__ = ["Batch", "Call", "Lua", "RedisStore"]

R = TypeVar("R")
T = TypeVar("T")


class Batch:
    """Not a command: a batch of results handed to the caller of a walking plan."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items


Plan = Generator[Step | Batch, Any, R]
# A walk's page: the entry names it met, by bucket.
Groups = list[tuple[Bucket, list[bytes]]]


def _ignore(batch: list[Any]) -> None:
    return None


# Keys longer than this check the stamp of every prefix invalidation
# (``prefix``) instead of one field per prefix of theirs.
_LONG_KEY = 256


class _Stamp:
    """What ``lookup_for_fill`` saw: the newest invalidation stamp of the key's
    bucket (empty when it had none) and the entry's bytes (None when there was none)."""

    __slots__ = ("gen", "raw")

    def __init__(self, gen: bytes, raw: bytes | None) -> None:
        self.gen = gen
        self.raw = raw

    @property
    def seen(self) -> bytes:
        """The SHA1 the store script compares with (empty: nothing was there)."""
        return b"" if self.raw is None else hashlib.sha1(self.raw).hexdigest().encode()


class RedisStore:
    """The ``Store`` of a ``ConnectionCache`` on a ``RedisBackend``."""

    shared = True

    def __init__(self, backend: RedisBackend) -> None:
        self.backend = backend
        self.fail_open_reads = backend.fail_open_reads
        self.fail_open_invalidations = backend.fail_open_invalidations
        self._connections = connections = backend.connections
        # One server: its outage state, followed by the driver (``_Feed``). A
        # cluster: each master's, followed by the executor; none here.
        self._outage: Health = _UNTRACKED if connections.cluster else connections.outage
        self._layout = backend.layout
        self._buckets = backend.layout.buckets
        self._serializer = backend.serializer
        self._batch = backend.scan_batch
        self._stores = 0
        self._prune_from = ["-"] * len(self._buckets)
        wait = backend.replica_ack_timeout
        self._wait_ms = None if wait is None else max(1, math.ceil(wait * 1000))
        client = connections.client
        self._io: ServerIO | ClusterIO = (
            ClusterIO(client, self._wait_ms, connections.node_outage, backend.namespace)
            if isinstance(client, redis.cluster.RedisCluster)
            else ServerIO(client)
        )

    def open(self) -> RedisStore:
        """Make sure every bucket has its stamps (without them, a fill running during
        the bucket's first invalidation is refused to be safe); an unreachable
        server is no reason to fail here."""
        try:
            self._run(self._plan_stamp([]))
        except Exception as error:
            if fault_kind(error) is None:
                raise
        return self

    def fault_kind(self, error: BaseException) -> FaultKind:
        return fault_kind(error)

    def describe(self) -> str:
        where = " cluster" if self._layout.cluster else ""
        return f"backend=redis{where} namespace={self.backend.namespace!r}"

    def close(self) -> None:
        return None  # the connections belong to the backend

    # -- drivers -----------------------------------------------------------------------

    def _run(self, plan: Plan[R], sink: Sink[Any] = _ignore, fail_fast: bool = False) -> R:
        if fail_fast and self._outage.short_circuited():
            plan.close()
            raise self._short_circuit()
        run: Callable[[Step], Any] = self._io.run_fast if fail_fast else self._io.run
        feed = _Feed(plan, sink, self._outage, self.backend.namespace, self._layout.cluster)
        while (step := feed.next()) is not None:
            with feed:
                feed.reply = run(step)
        return cast(R, feed.result)

    async def _arun(self, plan: Plan[R], sink: Sink[Any] = _ignore, fail_fast: bool = False) -> R:
        if fail_fast and self._outage.short_circuited():
            plan.close()
            raise self._short_circuit()
        feed = _Feed(plan, sink, self._outage, self.backend.namespace, self._layout.cluster)
        try:
            io = await self._async_io_now()
        except Exception:  # a cluster client that could not learn the topology
            plan.close()
            raise
        run: Callable[[Step], Awaitable[Any]] = io.run_fast if fail_fast else io.run
        while (step := feed.next()) is not None:
            with feed:
                feed.reply = await run(step)
        return cast(R, feed.result)

    async def _async_io_now(self) -> AsyncServerIO | AsyncClusterIO:
        """An executor on this event loop's client (made per call: a store keeps no
        reference to a loop's client, which would keep a closed loop alive)."""
        client = await self._connections.async_client()
        if isinstance(client, redis.asyncio.cluster.RedisCluster):
            await client.initialize()  # the topology, before a fan routes by it
            return AsyncClusterIO(
                client, self._wait_ms, self._connections.node_outage, self.backend.namespace
            )
        return AsyncServerIO(client)

    def _short_circuit(self) -> ShortCircuit:
        return short_circuit(self._outage)

    # -- plans: reads --------------------------------------------------------------------

    def _decode(self, key: str, raw: bytes | None, codec: Codec | None) -> Entry | None:
        if raw is None:
            return None
        try:
            payload, expires_at, ttl, tags = decode(raw)
            value = (codec or self._serializer).loads(payload)
        except Exception as error:  # foreign bytes, bad JSON, too deep, not of the type
            raise CorruptEntry(key, f"{type(error).__name__}: {error}"[:200]) from None
        if tags:
            return TaggedEntry(key, value, expires_at, ttl, tags)
        return Entry(key, value, expires_at, ttl)

    def _decode_each(
        self, keys: Sequence[str], raws: list[bytes | None], codec: Codec | None
    ) -> list[Entry | CorruptEntry | None]:
        found: list[Entry | CorruptEntry | None] = []
        for key, raw in zip(keys, raws, strict=True):
            try:
                found.append(self._decode(key, raw, codec))
            except CorruptEntry as corrupt:
                found.append(corrupt)
        return found

    def _plan_lookup(self, key: str, codec: Codec | None) -> Plan[Entry | None]:
        try:
            raw = yield Call(("GET", self._layout.bucket(key).prefix + key))
        except ResponseError as error:
            if "WRONGTYPE" not in str(error):
                raise
            raise CorruptEntry(key, "a Redis key of another type, not an entry") from None
        return self._decode(key, raw, codec)

    def _plan_lookup_many(
        self, keys: Sequence[str], codec: Codec | None
    ) -> Plan[list[Entry | CorruptEntry | None]]:
        if not keys:
            return []
        groups = self._layout.by_bucket(keys)
        if len(groups) == 1:
            prefix = groups[0][0].prefix
            raws = yield Call(("MGET", *[prefix + key for key in keys]))
            return self._decode_each(keys, raws, codec)
        replies = yield Fan(
            [Call(("MGET", *[b.prefix + keys[i] for i in positions])) for b, positions in groups]
        )
        _raise_first(replies)
        raws = [None] * len(keys)
        for (_, positions), reply in zip(groups, replies, strict=True):
            for i, raw in zip(positions, reply, strict=True):
                raws[i] = raw
        return self._decode_each(keys, raws, codec)

    def _plan_lookup_for_fill(
        self, key: str, codec: Codec | None
    ) -> Plan[tuple[Entry | None, Stamp | None]]:
        bucket = self._layout.bucket(key)
        raw, gen = yield Lua(lua.LOOKUP_FOR_FILL, [bucket.prefix + key, bucket.stamps], [])
        stamp = _Stamp(b"" if gen is None else gen, raw)
        try:
            return self._decode(key, raw, codec), stamp
        except CorruptEntry:
            return None, stamp  # a miss: the fill replaces it

    def _plan_contains(self, key: str) -> Plan[bool]:
        return bool((yield Call(("EXISTS", self._layout.bucket(key).prefix + key))))

    def _plan_walk(self, handle: Callable[[Groups], Plan[None]]) -> Plan[None]:
        """SCAN the namespace in batches, on every node at once (one server: the
        server); ``handle`` the entry names of each round not seen before (SCAN may
        return a key twice), grouped by bucket."""
        layout = self._layout
        nodes: list[str | None] = yield NODES
        cursors = dict.fromkeys(nodes, 0)
        seen: set[bytes] = set()
        while cursors:
            walking = list(cursors)
            replies = yield Fan(
                [Scan(cursors[node], layout.scan_glob, self._batch, node) for node in walking]
            )
            _raise_first(replies)
            fresh: list[bytes] = []
            for node, (cursor, page) in zip(walking, replies, strict=True):
                if cursor == 0:
                    del cursors[node]
                else:
                    cursors[node] = cursor
                fresh += [name for name in page if name not in seen]
            if fresh:
                seen.update(fresh)
                groups = layout.entries(fresh)
                if groups:
                    yield from handle(groups)

    def _plan_read(self, groups: Groups) -> Plan[list[tuple[Bucket, list[bytes], list[Any]]]]:
        """MGET the names of a walk's page, one MGET per bucket."""
        replies = yield Fan([Call(("MGET", *names)) for _, names in groups])
        _raise_first(replies)
        return [(b, names, raws) for (b, names), raws in zip(groups, replies, strict=True)]

    def _plan_keys(self) -> Plan[list[str]]:
        keys: list[str] = []

        def collect(groups: Groups) -> Plan[None]:
            for bucket, names in groups:
                keys.extend(bucket.key_of(name) for name in names)
            yield from ()

        yield from self._plan_walk(collect)
        return sorted(keys)

    def _plan_expired_keys(self, after: float, until: float) -> Plan[list[str]]:
        found: list[str] = []

        def collect(groups: Groups) -> Plan[None]:
            for bucket, names, raws in (yield from self._plan_read(groups)):
                for name, raw in zip(names, raws, strict=True):
                    try:
                        expires_at = decode(raw)[1] if raw is not None else math.nan
                    except ValueError:
                        continue  # not ours
                    if after < expires_at <= until:
                        found.append(bucket.key_of(name))

        yield from self._plan_walk(collect)
        return found

    def _plan_size(self) -> Plan[int]:
        found = 0

        def count(groups: Groups) -> Plan[None]:
            nonlocal found
            found += sum(len(names) for _, names in groups)
            yield from ()

        yield from self._plan_walk(count)
        return found

    # -- plans: writes ---------------------------------------------------------------------

    def _blob(self, entry: Entry, codec: Codec | None) -> bytes:
        encoder = codec or self._serializer
        try:
            payload = encoder.dumps(entry.value)
        except Exception as error:
            raise TypeError(
                f"value for key {entry.key!r:.200} cannot be stored with {encoder!r}: "
                f"{type(entry.value).__name__} {entry.value!r:.80} ({error})"[:600]
                + ("" if codec else "; give value_type= to store typed values")
            ) from error
        return encode(payload, entry.expires_at, entry.ttl, tags_of(entry))

    def _plan_put(self, entry: Entry, codec: Codec | None) -> Plan[list[Displaced]]:
        blob = self._blob(entry, codec)
        bucket = self._layout.bucket(entry.key)
        tags = tags_of(entry)
        self._stores += 1
        prune = "" if self._stores % lua.PRUNE_EVERY else self._prune_from[bucket.number]
        next_from = yield Lua(
            lua.STORE,
            [bucket.prefix + entry.key, bucket.index, *[bucket.tag_prefix + t for t in tags]],
            [blob, _px(entry.ttl), bucket.skip, prune, *tags],
        )
        if prune:
            self._prune_from[bucket.number] = next_from.decode() if next_from else "-"
        return NOTHING_DISPLACED

    def _plan_put_many(
        self, entries: Sequence[Entry], codec: Codec | None
    ) -> Plan[list[Displaced]]:
        if entries:
            blobs = [self._blob(entry, codec) for entry in entries]
            first = entries[0]  # set_many: one ttl and one set of tags for all
            tags = tags_of(first)
            steps: list[Lua] = []
            for b, positions in self._layout.by_bucket([entry.key for entry in entries]):
                steps.append(
                    Lua(
                        lua.STORE_MANY,
                        [
                            b.index,
                            *[b.prefix + entries[i].key for i in positions],
                            *[b.tag_prefix + tag for tag in tags],
                        ],
                        [_px(first.ttl), b.skip, len(positions), *[blobs[i] for i in positions]]
                        + list(tags),
                    )
                )
            _raise_first((yield Fan(steps)))
        return NOTHING_DISPLACED

    def _plan_put_if_unchanged(
        self,
        entry: Entry,
        stamp: Stamp | None,
        unchanged: Callable[[], bool],
        codec: Codec | None,
    ) -> Plan[tuple[bool, list[Displaced]]]:
        blob = self._blob(entry, codec)
        if not unchanged() or not isinstance(stamp, _Stamp):
            return False, NOTHING_DISPLACED  # this process changed it: no round trip
        key = entry.key
        bucket = self._layout.bucket(key)
        tags = tags_of(entry)
        fields = [_stamp_field(key), "all", *["t:" + tag for tag in tags]]
        if len(key) > _LONG_KEY:
            fields.append("prefix")
        else:
            fields += ["p:" + key[:i] for i in range(len(key) + 1)]
        stored = yield Lua(
            lua.STORE_IF_UNCHANGED,
            [
                bucket.prefix + key,
                bucket.index,
                bucket.stamps,
                *[bucket.tag_prefix + tag for tag in tags],
            ],
            [blob, _px(entry.ttl), bucket.skip, stamp.gen, stamp.seen, len(fields), *fields, *tags],
        )
        return bool(stored), NOTHING_DISPLACED

    # -- plans: removals -------------------------------------------------------------------
    #
    # A removal that invalidates yields a durable Fan: on a cluster it counts
    # once a replica of each master it ran on acknowledged it.

    def _plan_stamp(self, fields: list[str], durable: bool = False) -> Plan[None]:
        """Stamp ``fields`` now in every bucket (none: make sure the stamps exist)."""
        steps = [Lua(lua.BUMP, [b.stamps], fields) for b in self._buckets]
        _raise_first((yield Fan(steps, durable)))

    def _remove_call(self, bucket: Bucket, names: Sequence[Any], fields: Sequence[str]) -> Lua:
        return Lua(lua.REMOVE, [bucket.index, bucket.stamps, *names], [bucket.skip, *fields])

    def _plan_remove(self, keys: Sequence[str]) -> Plan[list[str]]:
        if not keys:
            return []
        groups = self._layout.by_bucket(keys)
        replies = yield Fan(
            [
                self._remove_call(
                    b,
                    [b.prefix + keys[i] for i in positions],
                    [_stamp_field(keys[i]) for i in positions],
                )
                for b, positions in groups
            ],
            durable=True,
        )
        _raise_first(replies)
        return [
            keys[positions[int(i) - 1]]
            for (_, positions), reply in zip(groups, replies, strict=True)
            for i in reply
        ]

    def _plan_remove_expired(self, entries: Sequence[Entry]) -> Plan[list[Entry]]:
        """Remove entries still holding the expiry they were read with."""
        groups = self._layout.by_bucket([entry.key for entry in entries])
        replies = yield Fan(
            [
                self._remove_expired_call(b, [entries[i] for i in positions])
                for b, positions in groups
            ]
        )
        _raise_first(replies)
        return [
            entries[positions[int(i) - 1]]
            for (_, positions), reply in zip(groups, replies, strict=True)
            for i in reply
        ]

    def _remove_expired_call(self, bucket: Bucket, entries: Sequence[Entry]) -> Lua:
        return Lua(
            lua.REMOVE_IF_EXPIRES,
            [bucket.index, *[bucket.prefix + e.key for e in entries]],
            [bucket.skip, *[repr(e.expires_at) for e in entries]],
        )

    def _plan_remove_names(
        self, doomed: list[tuple[Bucket, list[bytes]]], fields: list[str], durable: bool
    ) -> Plan[None]:
        """Remove entries by name, one script per bucket; a batch of what went."""
        replies = yield Fan([self._remove_call(b, names, fields) for b, names in doomed], durable)
        yield Batch(_removed_keys(doomed, replies))
        _raise_first(replies)

    def _plan_remove_matching(self, matches: Callable[[str], object], how: str) -> Plan[None]:
        """Remove the keys ``matches`` accepts, walking the namespace a page at a time."""
        fields = [] if how == "wipe" else ["all"]
        if fields:
            yield from self._plan_stamp(fields, durable=True)

        def remove(groups: Groups) -> Plan[None]:
            doomed = [
                (b, chosen)
                for b, names in groups
                if (chosen := [name for name in names if matches(b.key_of(name))])
            ]
            if doomed:
                yield from self._plan_remove_names(doomed, fields, durable=bool(fields))

        yield from self._plan_walk(remove)

    def _plan_remove_prefix(self, prefix: str) -> Plan[None]:
        """Each bucket's index range, a batch per script, every bucket at once."""
        upper = prefix_successor(prefix)
        low = "[k" + prefix
        high = "(l" if upper is None else "(k" + upper
        field = "p:" + prefix
        active = list(self._buckets)
        rebuilt: set[int] = set()
        while active:
            replies = yield Fan(
                [
                    Lua(
                        lua.REMOVE_RANGE,
                        [b.index, b.stamps],
                        [b.prefix, low, high, self._batch, field],
                    )
                    for b in active
                ],
                durable=True,
            )
            removed: list[str] = []
            again: list[Bucket] = []
            unmarked: list[Bucket] = []
            for bucket, reply in zip(active, replies, strict=True):
                if isinstance(reply, Exception):
                    continue
                looked, *keys = reply
                if int(looked) < 0:
                    # Not known complete: remove by SCAN (once), then drop the
                    # index members the scan did not meet. Unmarked again after
                    # the rebuild: evicted meanwhile, and the scan removed them.
                    if bucket.number not in rebuilt:
                        unmarked.append(bucket)
                    continue
                removed += [key.decode() for key in keys]
                if int(looked) >= self._batch:
                    again.append(bucket)
            if removed:
                yield Batch(removed)
            _raise_first(replies)
            if unmarked:
                yield from self._plan_rebuild(unmarked, "p", prefix, field)
                rebuilt.update(bucket.number for bucket in unmarked)
            active = again + unmarked

    def _plan_rebuild(self, buckets: list[Bucket], by: str, what: str, field: str) -> Plan[None]:
        """The indexes of ``buckets`` are not known complete: stamp ``field`` (and
        ``prefix``), then
        remove by SCAN (by prefix, ``by`` "p", or by tag, "t"), index what stays,
        and mark each index complete unless it was evicted meanwhile."""
        token = "r" + secrets.token_hex(8)
        replies = yield Fan(
            [Lua(lua.BEGIN_REBUILD, [b.index, b.stamps], [token, field]) for b in buckets],
            durable=True,
        )
        _raise_first(replies)
        yield from self._plan_rescan(buckets, by, what)
        _raise_first((yield Fan([Lua(lua.FINISH_REBUILD, [b.index], [token]) for b in buckets])))

    def _plan_rescan(self, buckets: list[Bucket], by: str, what: str) -> Plan[None]:
        """Walk the namespace removing by prefix (``by`` "p") or by tag ("t") in
        ``buckets``, and index every entry left there, with its tags."""
        wanted = {bucket.number for bucket in buckets}

        def reindex(groups: Groups) -> Plan[None]:
            mine = [(b, names) for b, names in groups if b.number in wanted]
            if not mine:
                return
            replies = yield Fan(
                [Lua(lua.REBUILD_PAGE, [b.index, *names], [b.skip, by, what]) for b, names in mine],
                durable=True,
            )
            yield Batch(_removed_keys(mine, replies))
            _raise_first(replies)

        yield from self._plan_walk(reindex)

    def _plan_remove_tags(self, tags: Sequence[str]) -> Plan[None]:
        """Each bucket's tag set, a page per script, every bucket at once."""
        for tag in tags:
            cursors: dict[int, Any] = {b.number: "0" for b in self._buckets}
            unmarked: list[Bucket] = []
            while cursors:
                active = [self._buckets[n] for n in cursors]
                replies = yield Fan(
                    [
                        Lua(
                            lua.REMOVE_TAG,
                            [b.index, b.tag_prefix + tag, b.stamps],
                            [tag, b.prefix, cursors[b.number], self._batch],
                        )
                        for b in active
                    ],
                    durable=True,
                )
                removed: list[str] = []
                for bucket, reply in zip(active, replies, strict=True):
                    if isinstance(reply, Exception):
                        del cursors[bucket.number]
                        continue
                    if int(reply[0]) < 0:
                        unmarked.append(bucket)  # not known complete
                        del cursors[bucket.number]
                        continue
                    cursor, *keys = reply
                    removed += [key.decode() for key in keys]
                    if int(cursor) == 0:
                        del cursors[bucket.number]
                    else:
                        cursors[bucket.number] = cursor
                if removed:
                    yield Batch(removed)
                _raise_first(replies)
            if unmarked:
                yield from self._plan_rebuild_tag(unmarked, tag)

    def _plan_rebuild_tag(self, buckets: list[Bucket], tag: str) -> Plan[None]:
        """The tag sets of ``buckets`` are not known complete: remove by SCAN,
        rebuilding the index and the tag set in the same pass (each marked complete
        unless evicted meanwhile)."""
        token = "r" + secrets.token_hex(8)
        replies = yield Fan(
            [Lua(lua.BEGIN_TAG, [b.tag_prefix + tag, b.stamps], [token, tag]) for b in buckets],
            durable=True,
        )
        _raise_first(replies)
        yield from self._plan_rebuild(buckets, "t", tag, "t:" + tag)
        replies = yield Fan(
            [Lua(lua.FINISH_TAG, [b.tag_prefix + tag, b.index], [token, tag]) for b in buckets]
        )
        _raise_first(replies)

    def _plan_purge(self, now: float) -> Plan[None]:
        def purge(groups: Groups) -> Plan[None]:
            doomed: list[tuple[Bucket, list[Entry]]] = []
            for bucket, names, raws in (yield from self._plan_read(groups)):
                keys = [bucket.key_of(name) for name in names]
                expired = [e for e in map(_expired_entry, keys, raws, [now] * len(keys)) if e]
                if expired:
                    doomed.append((bucket, expired))
            if not doomed:
                return
            replies = yield Fan([self._remove_expired_call(b, gone) for b, gone in doomed])
            yield Batch(
                [
                    gone[int(i) - 1]
                    for (_, gone), reply in zip(doomed, replies, strict=True)
                    if not isinstance(reply, Exception)
                    for i in reply
                ]
            )
            _raise_first(replies)

        yield from self._plan_walk(purge)

    # -- plans: the cross-process fill lock ---------------------------------------------------

    def _plan_claim(
        self, key: str, now: Callable[[], float], codec: Codec | None
    ) -> Plan[tuple[Entry | None, object]]:
        backend = self.backend
        if not backend.cross_process_lock:
            return None, None
        bucket = self._layout.bucket(key)
        token = secrets.token_hex(16)
        lock = bucket.lock_prefix + key
        px = max(1, math.ceil(backend.lock_timeout * 1000))
        deadline = time.monotonic() + backend.lock_timeout
        while True:
            try:
                mine = yield Call(("SET", lock, token, "NX", "PX", px))
                raw = yield Call(("GET", bucket.prefix + key))
            except Exception as error:
                if fault_kind(error) is None:
                    raise
                return None, None  # unreachable: compute without the lock
            try:
                found = self._decode(key, raw, codec)
            except CorruptEntry:
                found = None
            if found is not None and now() < found.expires_at:
                if mine:
                    yield Lua(lua.RELEASE, [lock], [token])
                return found, None  # another process stored it meanwhile
            if mine:
                return None, token
            if time.monotonic() >= deadline:
                return None, None
            # A server-side wait (on a list nobody fills, in the key's bucket),
            # so that one plan serves threads and event loops alike.
            yield Call(("BLPOP", bucket.lock_prefix + "#never", backend.lock_poll))

    def _plan_release(self, key: str, token: object) -> Plan[None]:
        try:
            yield Lua(lua.RELEASE, [self._layout.bucket(key).lock_prefix + key], [token])
        except Exception as error:
            if fault_kind(error) is None:
                raise  # unreachable: the lock expires by itself after lock_timeout

    # -- the Store protocol ------------------------------------------------------------------

    def lookup(self, key: str, codec: Codec | None = None) -> Entry | None:
        return self._run(self._plan_lookup(key, codec), fail_fast=True)

    async def alookup(self, key: str, codec: Codec | None = None) -> Entry | None:
        return await self._arun(self._plan_lookup(key, codec), fail_fast=True)

    def lookup_many(
        self, keys: Sequence[str], codec: Codec | None = None
    ) -> list[Entry | CorruptEntry | None]:
        return self._run(self._plan_lookup_many(keys, codec), fail_fast=True)

    async def alookup_many(
        self, keys: Sequence[str], codec: Codec | None = None
    ) -> list[Entry | CorruptEntry | None]:
        return await self._arun(self._plan_lookup_many(keys, codec), fail_fast=True)

    def lookup_for_fill(
        self, key: str, codec: Codec | None = None
    ) -> tuple[Entry | None, Stamp | None]:
        return self._run(self._plan_lookup_for_fill(key, codec), fail_fast=True)

    async def alookup_for_fill(
        self, key: str, codec: Codec | None = None
    ) -> tuple[Entry | None, Stamp | None]:
        return await self._arun(self._plan_lookup_for_fill(key, codec), fail_fast=True)

    def peek(self, key: str, codec: Codec | None = None) -> Entry | None:
        return self._run(self._plan_lookup(key, codec), fail_fast=True)

    async def apeek(self, key: str, codec: Codec | None = None) -> Entry | None:
        return await self._arun(self._plan_lookup(key, codec), fail_fast=True)

    def contains(self, key: str) -> bool:
        return self._run(self._plan_contains(key))

    async def acontains(self, key: str) -> bool:
        return await self._arun(self._plan_contains(key))

    def keys(self) -> list[str]:
        return self._run(self._plan_keys())

    async def akeys(self) -> list[str]:
        return await self._arun(self._plan_keys())

    def size(self) -> int:
        return self._run(self._plan_size())

    def expired_keys(self, after: float, until: float) -> list[str]:
        return self._run(self._plan_expired_keys(after, until))

    async def asize(self) -> int:
        return await self._arun(self._plan_size())

    def put(self, entry: Entry, now: float, codec: Codec | None = None) -> list[Displaced]:
        return self._run(self._plan_put(entry, codec), fail_fast=True)

    async def aput(self, entry: Entry, now: float, codec: Codec | None = None) -> list[Displaced]:
        return await self._arun(self._plan_put(entry, codec), fail_fast=True)

    def put_many(
        self, entries: Sequence[Entry], now: float, codec: Codec | None = None
    ) -> list[Displaced]:
        return self._run(self._plan_put_many(entries, codec), fail_fast=True)

    async def aput_many(
        self, entries: Sequence[Entry], now: float, codec: Codec | None = None
    ) -> list[Displaced]:
        return await self._arun(self._plan_put_many(entries, codec), fail_fast=True)

    def put_if_unchanged(
        self,
        entry: Entry,
        now: float,
        stamp: Stamp | None,
        unchanged: Callable[[], bool],
        codec: Codec | None = None,
    ) -> tuple[bool, list[Displaced]]:
        if not isinstance(stamp, _Stamp) or not unchanged():
            return False, NOTHING_DISPLACED  # no lookup to vouch for it, or changed here
        plan = self._plan_put_if_unchanged(entry, stamp, unchanged, codec)
        return self._run(plan, fail_fast=True)

    async def aput_if_unchanged(
        self,
        entry: Entry,
        now: float,
        stamp: Stamp | None,
        unchanged: Callable[[], bool],
        codec: Codec | None = None,
    ) -> tuple[bool, list[Displaced]]:
        if not isinstance(stamp, _Stamp) or not unchanged():
            return False, NOTHING_DISPLACED
        plan = self._plan_put_if_unchanged(entry, stamp, unchanged, codec)
        return await self._arun(plan, fail_fast=True)

    def remove(self, keys: Sequence[str]) -> list[str]:
        return self._run(self._plan_remove(keys))

    async def aremove(self, keys: Sequence[str]) -> list[str]:
        return await self._arun(self._plan_remove(keys))

    def remove_expired(self, entries: Sequence[Entry]) -> list[Entry]:
        return self._run(self._plan_remove_expired(entries))

    async def aremove_expired(self, entries: Sequence[Entry]) -> list[Entry]:
        return await self._arun(self._plan_remove_expired(entries))

    def remove_prefix(self, prefix: str, sink: Sink[str]) -> None:
        self._run(self._plan_remove_prefix(prefix), sink)

    async def aremove_prefix(self, prefix: str, sink: Sink[str]) -> None:
        await self._arun(self._plan_remove_prefix(prefix), sink)

    def remove_matching(self, matches: Callable[[str], object], sink: Sink[str]) -> None:
        self._run(self._plan_remove_matching(matches, "pattern"), sink)

    async def aremove_matching(self, matches: Callable[[str], object], sink: Sink[str]) -> None:
        await self._arun(self._plan_remove_matching(matches, "pattern"), sink)

    def remove_tags(self, tags: Sequence[str], sink: Sink[str]) -> None:
        self._run(self._plan_remove_tags(tags), sink)

    async def aremove_tags(self, tags: Sequence[str], sink: Sink[str]) -> None:
        await self._arun(self._plan_remove_tags(tags), sink)

    def remove_all(self, sink: Sink[str]) -> None:
        self._run(self._plan_remove_matching(_every_key, "clear"), sink)

    async def aremove_all(self, sink: Sink[str]) -> None:
        await self._arun(self._plan_remove_matching(_every_key, "clear"), sink)

    def purge_expired(self, now: float, sink: Sink[Entry]) -> None:
        self._run(self._plan_purge(now), sink)

    async def apurge_expired(self, now: float, sink: Sink[Entry]) -> None:
        await self._arun(self._plan_purge(now), sink)

    def wipe(self) -> None:
        self._run(self._plan_remove_matching(_every_key, "wipe"))

    def claim_fill(
        self, key: str, now: Callable[[], float], codec: Codec | None = None
    ) -> tuple[Entry | None, object]:
        return self._run(self._plan_claim(key, now, codec))

    async def aclaim_fill(
        self, key: str, now: Callable[[], float], codec: Codec | None = None
    ) -> tuple[Entry | None, object]:
        return await self._arun(self._plan_claim(key, now, codec))

    def release_fill(self, key: str, token: object) -> None:
        self._run(self._plan_release(key, token))

    async def arelease_fill(self, key: str, token: object) -> None:
        await self._arun(self._plan_release(key, token))


class _Feed:
    """A driver's bookkeeping for one plan.

    ``next()`` gives the next step (None once the plan returned: see
    ``result``), handing ``Batch`` results to the sink on the way; ``with
    feed:`` around executing it takes the outcome: the driver sets ``reply``,
    an error goes into the plan, and either way the server's outage state
    follows (a fan's reply carries its steps' errors in place: any that says
    the server is unreachable counts as a fault).
    """

    __slots__ = ("plan", "sink", "outage", "namespace", "cluster", "step", "reply", "error")

    def __init__(
        self, plan: Plan[Any], sink: Sink[Any], outage: Health, namespace: str, cluster: bool
    ) -> None:
        self.plan = plan
        self.sink = sink
        self.outage = outage
        self.namespace = namespace
        self.cluster = cluster
        self.step: Step | None = None
        self.reply: Any = None
        self.error: Exception | None = None

    def next(self) -> Step | None:
        try:
            while True:
                error, self.error = self.error, None
                step = self.plan.send(self.reply) if error is None else self.plan.throw(error)
                self.reply = None
                if not isinstance(step, Batch):
                    break
                self.sink(step.items)
        except StopIteration as done:
            self.reply = done.value
            return None
        self.step = step
        return step

    @property
    def result(self) -> Any:
        return self.reply

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> bool:
        if error is None:
            if type(self.step) is Fan:
                error = next((r for r in self.reply if is_outage(r)), None)
                if error is not None:
                    self.outage.failed(error, self.namespace)
                    return False
            if self.outage.active:
                self.outage.answered()
            return False
        if not isinstance(error, Exception):
            return False  # cancellation, KeyboardInterrupt: not the plan's business
        if is_outage(error):
            self.outage.failed(error, self.namespace)
        self.error = error if self.cluster else explain(error)
        return True


class _Untracked:
    """No outage state: a cluster's executor follows each master's instead."""

    where = "the cluster"
    active = False
    PROBE_EVERY = 0.0

    def failed(self, error: BaseException, namespace: str) -> None:
        return None

    def answered(self) -> None:
        return None

    def short_circuited(self) -> bool:
        return False


_UNTRACKED = _Untracked()


def _removed_keys(pages: list[tuple[Bucket, list[bytes]]], replies: list[Any]) -> list[str]:
    """The keys a removal script took out of each bucket's page: each reply
    lists 1-based positions in its page (a failed bucket's reply is its error)."""
    return [
        bucket.key_of(names[int(i) - 1])
        for (bucket, names), reply in zip(pages, replies, strict=True)
        if not isinstance(reply, Exception)
        for i in reply
    ]


def _raise_first(replies: Sequence[Any]) -> None:
    """Raise the first error among a fan's replies, if any."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply


def _px(ttl: float) -> str:
    px = server_px(ttl)
    return "" if px is None else str(px)


def _stamp_field(key: str) -> str:
    """The stamps field of ``key``'s stamp bucket (not its Cluster bucket: many
    more, so that a change to another key refuses few fills)."""
    return f"b{zlib.crc32(key.encode()) % lua.BUCKETS}"


def _expired_entry(key: str, raw: bytes | None, now: float) -> Entry | None:
    if raw is None:
        return None
    try:
        _, expires_at, ttl, _ = decode(raw)
    except ValueError:
        return None  # not ours: purge goes on past it
    if now < expires_at:
        return None
    return Entry(key, None, expires_at, ttl)


def _every_key(key: str) -> bool:
    return True
