"""RedisStore: a cache's entries in one namespace of a Redis server.

Each operation is written once, as a *plan*: a generator that yields Redis
commands (``Call``, or a ``Lua`` script call), receives their replies (or
has their errors thrown in), and returns the operation's result; a long
removal also yields ``Batch`` results, which go to the caller's sink as
they come. ``_run`` executes a plan with the synchronous client, ``_arun``
with this event loop's ``redis.asyncio`` client, so the sync and the
awaitable half of the ``Store`` protocol share every line but the driver's
one call. ``_Feed`` does the rest of a driver's work: advancing the plan,
EVALSHA's fallback to EVAL, and the server's outage state.

The layout (entries, index, change stamps) and every multi-key step are in
``_redis_scripts.py``.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
import zlib
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, TypeVar, cast

from redis.exceptions import NoScriptError, ResponseError

from . import _redis_scripts as lua
from ._codecs import Codec
from ._envelope import decode, encode, server_px
from ._keyindex import prefix_successor
from ._redis import Outage, RedisBackend, ShortCircuit, fault_kind, glob_escape
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

R = TypeVar("R")
T = TypeVar("T")


class Call(tuple[Any, ...]):
    """A Redis command: ``Call(("GET", name))``."""

    __slots__ = ()


class Lua:
    """A script call: EVALSHA, falling back to EVAL when the server lost the script."""

    __slots__ = ("script", "keys", "args")

    def __init__(self, script: lua.Script, keys: Sequence[Any], args: Sequence[Any]) -> None:
        self.script = script
        self.keys = keys
        self.args = args


class Batch:
    """Not a command: a batch of results handed to the caller of a walking plan."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items


Step = Call | Lua
Plan = Generator[Step | Batch, Any, R]


def _ignore(batch: list[Any]) -> None:
    return None


# Keys longer than this check the stamp of every prefix invalidation
# (``prefix``) instead of one field per prefix of theirs.
_LONG_KEY = 256


class _Stamp:
    """What ``lookup_for_fill`` saw: the newest invalidation stamp (empty when the
    namespace had none) and the entry's bytes (None when there was none)."""

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
        self._connections = backend.connections
        self._outage = backend.connections.outage
        self._prefix = backend.prefix
        self._skip = str(len(backend.prefix))
        self._index = backend.index_key
        self._stamps = backend.stamps_key
        self._tag_prefix = backend.namespace + "#tag:"
        self._serializer = backend.serializer
        self._batch = backend.scan_batch
        self._stores = 0
        self._prune_from = "-"

    def open(self) -> RedisStore:
        """Make sure the namespace has its stamps (without them, a fill running during
        the namespace's first invalidation is refused to be safe); an unreachable
        server is no reason to fail here."""
        try:
            self._run(_single(Lua(lua.BUMP, [self._stamps], [])))
        except Exception as error:
            if fault_kind(error) is None:
                raise
        return self

    def fault_kind(self, error: BaseException) -> FaultKind:
        return fault_kind(error)

    def describe(self) -> str:
        return f"backend=redis namespace={self.backend.namespace!r}"

    def close(self) -> None:
        return None  # the connections belong to the backend

    # -- drivers -----------------------------------------------------------------------

    def _run(self, plan: Plan[R], sink: Sink[Any] = _ignore, fail_fast: bool = False) -> R:
        if fail_fast and self._outage.short_circuited():
            plan.close()
            raise self._short_circuit()
        execute: Callable[..., Any] = self._connections.client.execute_command
        feed = _Feed(plan, sink, self._outage, self.backend.namespace)
        while (command := feed.next()) is not None:
            with feed:
                feed.reply = execute(*command)
        return cast(R, feed.result)

    async def _arun(self, plan: Plan[R], sink: Sink[Any] = _ignore, fail_fast: bool = False) -> R:
        if fail_fast and self._outage.short_circuited():
            plan.close()
            raise self._short_circuit()
        client = await self._connections.async_client()
        execute: Callable[..., Awaitable[Any]] = client.execute_command
        feed = _Feed(plan, sink, self._outage, self.backend.namespace)
        while (command := feed.next()) is not None:
            with feed:
                feed.reply = await execute(*command)
        return cast(R, feed.result)

    def _short_circuit(self) -> ShortCircuit:
        return ShortCircuit(
            f"Redis at {self._outage.where} did not answer a moment ago; "
            f"the next call tries again after {self._outage.PROBE_EVERY:g} s"
        )

    # -- plans: reads --------------------------------------------------------------------

    def _name(self, key: str) -> str:
        return self._prefix + key

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
            raw = yield Call(("GET", self._prefix + key))
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
        raws = yield Call(("MGET", *[self._prefix + key for key in keys]))
        return self._decode_each(keys, raws, codec)

    def _plan_lookup_for_fill(
        self, key: str, codec: Codec | None
    ) -> Plan[tuple[Entry | None, Stamp | None]]:
        raw, gen = yield Lua(lua.LOOKUP_FOR_FILL, [self._prefix + key, self._stamps], [])
        stamp = _Stamp(b"" if gen is None else gen, raw)
        try:
            return self._decode(key, raw, codec), stamp
        except CorruptEntry:
            return None, stamp  # a miss: the fill replaces it

    def _plan_contains(self, key: str) -> Plan[bool]:
        return bool((yield Call(("EXISTS", self._prefix + key))))

    def _plan_each_page(self, handle: Callable[[list[bytes]], Plan[None]]) -> Plan[None]:
        """SCAN the namespace in batches; ``handle`` the names of each page not seen
        before (SCAN may return a key twice)."""
        glob = glob_escape(self._prefix) + "*"
        seen: set[bytes] = set()
        cursor: Any = 0
        while True:
            cursor, page = yield Call(("SCAN", cursor, "MATCH", glob, "COUNT", self._batch))
            fresh = [name for name in page if name not in seen]
            if fresh:
                seen.update(fresh)
                yield from handle(fresh)
            if int(cursor) == 0:
                return

    def _plan_names(self) -> Plan[list[bytes]]:
        names: list[bytes] = []

        def collect(page: list[bytes]) -> Plan[None]:
            names.extend(page)
            yield from ()

        yield from self._plan_each_page(collect)
        return names

    def _plan_keys(self) -> Plan[list[str]]:
        names = yield from self._plan_names()
        skip = len(self._prefix)
        return sorted(name.decode()[skip:] for name in names)

    def _plan_expired_keys(self, after: float, until: float) -> Plan[list[str]]:
        found: list[str] = []
        skip = len(self._prefix)

        def collect(page: list[bytes]) -> Plan[None]:
            for name, raw in zip(page, (yield Call(("MGET", *page))), strict=True):
                try:
                    expires_at = decode(raw)[1] if raw is not None else math.nan
                except ValueError:
                    continue  # not ours
                if after < expires_at <= until:
                    found.append(name.decode()[skip:])

        yield from self._plan_each_page(collect)
        return found

    def _plan_size(self) -> Plan[int]:
        return len((yield from self._plan_names()))

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

    def _tag_sets(self, entry: Entry) -> list[str]:
        return [self._tag_prefix + tag for tag in tags_of(entry)]

    def _plan_put(self, entry: Entry, codec: Codec | None) -> Plan[list[Displaced]]:
        blob = self._blob(entry, codec)
        self._stores += 1
        prune = "" if self._stores % lua.PRUNE_EVERY else self._prune_from
        next_from = yield Lua(
            lua.STORE,
            [self._prefix + entry.key, self._index, *self._tag_sets(entry)],
            [blob, _px(entry.ttl), self._skip, prune, *tags_of(entry)],
        )
        if prune:
            self._prune_from = next_from.decode() if next_from else "-"
        return NOTHING_DISPLACED

    def _plan_put_many(
        self, entries: Sequence[Entry], codec: Codec | None
    ) -> Plan[list[Displaced]]:
        if entries:
            blobs = [self._blob(entry, codec) for entry in entries]
            names = [self._prefix + entry.key for entry in entries]
            first = entries[0]  # set_many: one ttl and one set of tags for all
            yield Lua(
                lua.STORE_MANY,
                [self._index, *names, *self._tag_sets(first)],
                [_px(first.ttl), self._skip, len(entries), *blobs, *tags_of(first)],
            )
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
        tags = tags_of(entry)
        fields = [_bucket(key), "all", *["t:" + tag for tag in tags]]
        if len(key) > _LONG_KEY:
            fields.append("prefix")
        else:
            fields += ["p:" + key[:i] for i in range(len(key) + 1)]
        stored = yield Lua(
            lua.STORE_IF_UNCHANGED,
            [self._prefix + key, self._index, self._stamps, *self._tag_sets(entry)],
            [blob, _px(entry.ttl), self._skip, stamp.gen, stamp.seen, len(fields), *fields, *tags],
        )
        return bool(stored), NOTHING_DISPLACED

    # -- plans: removals -------------------------------------------------------------------

    def _remove_call(self, names: Sequence[Any], fields: Sequence[str]) -> Lua:
        return Lua(lua.REMOVE, [self._index, self._stamps, *names], [self._skip, *fields])

    def _plan_remove(self, keys: Sequence[str]) -> Plan[list[str]]:
        if not keys:
            return []
        names = [self._prefix + key for key in keys]
        positions = yield self._remove_call(names, [_bucket(key) for key in keys])
        return [keys[int(i) - 1] for i in positions]

    def _plan_remove_expired(self, entries: Sequence[Entry]) -> Plan[list[Entry]]:
        """Remove entries still holding the expiry they were read with."""
        positions = yield self._remove_expired_call(entries)
        return [entries[int(i) - 1] for i in positions]

    def _remove_expired_call(self, entries: Sequence[Entry]) -> Lua:
        return Lua(
            lua.REMOVE_IF_EXPIRES,
            [self._index, *[self._prefix + e.key for e in entries]],
            [self._skip, *[repr(e.expires_at) for e in entries]],
        )

    def _plan_remove_matching(self, matches: Callable[[str], object], how: str) -> Plan[None]:
        """Remove the keys ``matches`` accepts, walking the namespace a page at a time."""
        skip = len(self._prefix)
        fields = [] if how == "wipe" else ["all"]
        if fields:
            yield Lua(lua.BUMP, [self._stamps], fields)

        def remove(page: list[bytes]) -> Plan[None]:
            doomed = [name for name in page if matches(name.decode()[skip:])]
            if doomed:
                positions = yield self._remove_call(doomed, fields)
                yield Batch([doomed[int(i) - 1].decode()[skip:] for i in positions])

        yield from self._plan_each_page(remove)

    def _plan_remove_prefix(self, prefix: str) -> Plan[None]:
        upper = prefix_successor(prefix)
        low = "[k" + prefix
        high = "(l" if upper is None else "(k" + upper
        field = "p:" + prefix
        rebuilt = False
        while True:
            looked, *removed = yield Lua(
                lua.REMOVE_RANGE,
                [self._index, self._stamps],
                [self._prefix, low, high, self._batch, field],
            )
            if int(looked) < 0:
                if rebuilt:
                    return  # evicted again meanwhile: the scan removed the entries
                yield from self._plan_rebuild(prefix, field)
                rebuilt = True  # then drop the index members the scan did not meet
                continue
            yield Batch([member.decode() for member in removed])
            if int(looked) < self._batch:
                return

    def _plan_rebuild(self, prefix: str, field: str) -> Plan[None]:
        """The index is not known complete: remove by SCAN, and index what stays."""
        token = "r" + secrets.token_hex(8)
        yield Lua(lua.BEGIN_REBUILD, [self._index, self._stamps], [token, field])
        yield from self._plan_rescan("p", prefix)
        yield Lua(lua.FINISH_REBUILD, [self._index], [token])

    def _plan_rescan(self, by: str, what: str) -> Plan[None]:
        """Walk the namespace removing by prefix (``by`` "p") or by tag ("t"), and
        index every entry left, with its tags."""
        skip = len(self._prefix)

        def reindex(page: list[bytes]) -> Plan[None]:
            positions = yield Lua(lua.REBUILD_PAGE, [self._index, *page], [self._skip, by, what])
            yield Batch([page[int(i) - 1].decode()[skip:] for i in positions])

        yield from self._plan_each_page(reindex)

    def _plan_remove_tags(self, tags: Sequence[str]) -> Plan[None]:
        for tag in tags:
            tagset = self._tag_prefix + tag
            cursor: Any = "0"
            while True:
                reply = yield Lua(
                    lua.REMOVE_TAG,
                    [self._index, tagset, self._stamps],
                    [tag, self._prefix, cursor, self._batch],
                )
                if int(reply[0]) < 0:
                    yield from self._plan_rebuild_tag(tag, tagset)
                    break
                cursor, *removed = reply
                yield Batch([key.decode() for key in removed])
                if int(cursor) == 0:
                    break

    def _plan_rebuild_tag(self, tag: str, tagset: str) -> Plan[None]:
        """The tag set is not known complete: remove by SCAN, rebuilding the index and
        the tag set in the same pass (each marked complete unless evicted meanwhile)."""
        token = "r" + secrets.token_hex(8)
        yield Lua(lua.BEGIN_TAG, [tagset, self._stamps], [token, tag])
        yield Lua(lua.BEGIN_REBUILD, [self._index, self._stamps], [token, "t:" + tag])
        yield from self._plan_rescan("t", tag)
        yield Lua(lua.FINISH_REBUILD, [self._index], [token])
        yield Lua(lua.FINISH_TAG, [tagset, self._index], [token, tag])

    def _plan_purge(self, now: float) -> Plan[None]:
        skip = len(self._prefix)

        def purge(page: list[bytes]) -> Plan[None]:
            raws = yield Call(("MGET", *page))
            keys = [name.decode()[skip:] for name in page]
            expired = [e for e in map(_expired_entry, keys, raws, [now] * len(keys)) if e]
            if expired:
                positions = yield self._remove_expired_call(expired)
                yield Batch([expired[int(i) - 1] for i in positions])

        yield from self._plan_each_page(purge)

    # -- plans: the cross-process fill lock ---------------------------------------------------

    def _plan_claim(
        self, key: str, now: Callable[[], float], codec: Codec | None
    ) -> Plan[tuple[Entry | None, object]]:
        backend = self.backend
        if not backend.cross_process_lock:
            return None, None
        token = secrets.token_hex(16)
        lock = backend.lock_prefix + key
        px = max(1, math.ceil(backend.lock_timeout * 1000))
        deadline = time.monotonic() + backend.lock_timeout
        while True:
            try:
                mine = yield Call(("SET", lock, token, "NX", "PX", px))
                raw = yield Call(("GET", self._prefix + key))
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
            # A server-side wait (on a list nobody fills), so that one plan
            # serves threads and event loops alike.
            yield Call(("BLPOP", backend.lock_prefix + "#never", backend.lock_poll))

    def _plan_release(self, key: str, token: object) -> Plan[None]:
        try:
            yield Lua(lua.RELEASE, [self.backend.lock_prefix + key], [token])
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

    ``next()`` gives the arguments of the next command (None once the plan
    returned: see ``result``), handing ``Batch`` results to the sink on the
    way; ``with feed:`` around executing them takes the outcome: the driver
    sets ``reply``, an error goes into the plan (after one retry with the
    script's source when the server did not know a script), and either way
    the server's outage state follows.
    """

    __slots__ = ("plan", "sink", "outage", "namespace", "step", "reply", "error", "resend")

    def __init__(self, plan: Plan[Any], sink: Sink[Any], outage: Outage, namespace: str) -> None:
        self.plan = plan
        self.sink = sink
        self.outage = outage
        self.namespace = namespace
        self.step: Step | None = None
        self.reply: Any = None
        self.error: Exception | None = None
        self.resend = False

    def next(self) -> tuple[Any, ...] | None:
        if self.resend and isinstance(self.step, Lua):
            self.resend = False
            return _command(self.step, loaded=False)
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
        return _command(step)

    @property
    def result(self) -> Any:
        return self.reply

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> bool:
        if error is None:
            if self.outage.active:
                self.outage.answered()
            return False
        if not isinstance(error, Exception):
            return False  # cancellation, KeyboardInterrupt: not the plan's business
        if isinstance(error, NoScriptError) and not self.resend:
            self.resend = True  # the server restarted or flushed its scripts
            return True
        if fault_kind(error) == "unreachable":
            self.outage.failed(error, self.namespace)
        self.error = error
        return True


def _command(step: Call | Lua, loaded: bool = True) -> tuple[Any, ...]:
    """The arguments of ``execute_command``; a script by its SHA1 unless not ``loaded``."""
    if isinstance(step, Call):
        return step
    if loaded:
        return ("EVALSHA", step.script.sha, len(step.keys), *step.keys, *step.args)
    return ("EVAL", step.script.source, len(step.keys), *step.keys, *step.args)


def _px(ttl: float) -> str:
    px = server_px(ttl)
    return "" if px is None else str(px)


def _bucket(key: str) -> str:
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


def _single(step: Step) -> Plan[Any]:
    return (yield step)


def _every_key(key: str) -> bool:
    return True
