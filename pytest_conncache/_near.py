"""The near cache: an in-process copy of a Redis store's entries, kept coherent by Redis.

``RedisBackend(..., near_cache=True)`` opens a ``NearStore``: the namespace's
``RedisStore`` with a copy in front of it of the entries this process read.
A lookup the copy answers costs a dict lookup; everything else goes to the
server, and every write or removal of this process drops the keys it
touched from the copy when it returns (so a process reads its own writes).

Coherence across processes comes from Redis's server-assisted client-side
caching in broadcasting mode: one connection per store (``Invalidations``,
on a thread of its own) runs ``CLIENT TRACKING ON REDIRECT <its own id>
BCAST PREFIX <namespace>:`` and subscribes to ``__redis__:invalidate``
(RESP2, which every redis-py version speaks). From then on the server sends
it the name of every key of the namespace that anybody changes: a set, an
invalidation, a removal by a script, an expiry or eviction on the server, a
FLUSHDB (``None``: everything). Each message drops those keys from the copy.

Safety before speed:

- The copy is filled only while the channel is up, and emptied whenever it
  goes down (the connection fails, a PING gets no answer within
  ``HEALTH_TIMEOUT``, the server restarts or kills the connection) and
  again once it is back, so no message lost meanwhile can leave a stale
  entry. While down, every lookup goes to the server.
- A read in flight loses to an invalidation: a lookup that misses registers
  a token for its key before asking the server, and keeps what the server
  answered only if no invalidation of that key (and no reconnection) came
  in between. Both steps hold the copy's lock, so an invalidation is either
  applied after the value was kept (and drops it) or seen by the check.

On a Redis Cluster (``ClusterInvalidations``) there is one such channel per
master, each tracking every bucket prefix of the namespace (a bucket's
slot may move to any master), and a watcher that reads the slot map every
``TOPOLOGY_EVERY`` seconds. The copy is served only while every master's
channel is up; it is emptied when any of them goes down and whenever the
slot map changes (a failover, a slot moved), and the channels follow the
new masters.

What it does not promise: between another process's write and the moment
the message reaches this process (the propagation delay, measured by
``python -m benchmarks near``), the copy may still serve the old value. The
copy hands out the same object to every reader, as an in-memory cache does:
treat values as read-only.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ._store import Displaced, Entry, FaultKind, Sink, Stamp, Store, TaggedEntry

if TYPE_CHECKING:
    from ._codecs import Codec

log = logging.getLogger("pytest_conncache.redis")

CHANNEL = b"__redis__:invalidate"
#: Without any message for this long, the channel sends a PING.
HEALTH_EVERY = 1.0
#: A PING unanswered for this long means the connection is dead.
HEALTH_TIMEOUT = 2.0
#: How long to wait between attempts to reconnect (doubling up to the maximum).
RETRY_FIRST, RETRY_MAX = 0.05, 1.0
#: How many entries a near copy holds by default.
DEFAULT_MAX_ENTRIES = 10_000
#: How often a cluster's near cache reads the slot map (a failover, a slot moved).
TOPOLOGY_EVERY = 0.25

#: The callbacks of a channel: key names of a message (None: all), and "went down".
OnKeys = Callable[[list[bytes] | None], None]
OnDown = Callable[[], None]
#: A cluster's slot map as the channels see it: (first slot, last slot, host, port)
#: of each master's ranges, sorted.
SlotMap = tuple[tuple[int, int, str, int], ...]


class Connection(Protocol):
    """What the channel uses of a ``redis.Connection`` (RESP2)."""

    def connect(self) -> None: ...
    def send_command(self, *args: Any) -> None: ...
    def read_response(self) -> Any: ...
    def can_read(self, timeout: float | None = 0) -> bool: ...
    def disconnect(self) -> None: ...


class Channel(Protocol):
    """What a ``NearStore`` asks of its invalidation channel (see ``Invalidations``)."""

    @property
    def up(self) -> bool: ...
    @property
    def epoch(self) -> int: ...
    @property
    def first_error(self) -> BaseException | None: ...
    def start(self, wait: float) -> None: ...
    def close(self) -> None: ...


class Invalidations:
    """The invalidation channel of one namespace: a thread reading one connection.

    ``up``: the channel delivers messages (tracking on, subscribed).
    ``epoch``: bumped on every change of ``up``, so that a read that began
    before a reconnection keeps nothing. ``on_keys(names)`` is called with
    the key names of each message (None: everything) and ``on_down()``
    whenever the channel goes down; both run on the channel's thread, and
    are held weakly: the thread ends when the store they belong to is gone.
    ``first_error``: why the first attempt failed, if it did. ``prefix``:
    the key prefix tracked, or several (a cluster's buckets).
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        prefix: str | Sequence[str],
        on_keys: OnKeys,
        on_down: OnDown,
        where: str,
    ) -> None:
        self.up = False
        self.epoch = 0
        self.first_error: BaseException | None = None
        self._connect = connect
        self._prefixes = (prefix,) if isinstance(prefix, str) else tuple(prefix)
        # What the log calls it: the prefix, or the namespace's common start.
        self._prefix = prefix if isinstance(prefix, str) else _common_start(self._prefixes)
        self._on_keys = weakref.WeakMethod(on_keys)
        self._on_down = weakref.WeakMethod(on_down)
        self._where = where
        self._warned = False  # a "down" warning waits for its "back"
        self._closed = threading.Event()
        self._ready = threading.Event()
        self._connection: Connection | None = None
        self._thread = threading.Thread(
            target=self._serve, name=f"conncache-near-{prefix[:40]}", daemon=True
        )

    def start(self, wait: float) -> None:
        """Start the thread; wait up to ``wait`` seconds for its first attempt to end."""
        self._thread.start()
        self._ready.wait(wait)

    def close(self) -> None:
        self._closed.set()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):  # closing anyway
                connection.disconnect()  # wakes the thread from its read
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * HEALTH_TIMEOUT)

    def _serve(self) -> None:
        delay = RETRY_FIRST
        first = True
        while not self._closed.is_set() and self._on_keys() is not None:
            try:
                self._listen()
            except Exception as error:
                if self._closed.is_set():
                    break
                if first:
                    self.first_error = error
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "near cache of %r at %s: invalidation channel down (%s: %s); the "
                        "near copy is bypassed until it is back",
                        self._prefix,
                        self._where,
                        type(error).__name__,
                        error,
                    )
            finally:
                was_up = self.up
                self._went_down()
            first = False
            self._ready.set()  # a start() waiting for a server that is down gives up
            if was_up:
                delay = RETRY_FIRST  # it had been up: a new outage
            self._closed.wait(delay)
            delay = min(delay * 2, RETRY_MAX)

    def _tell_keys(self, names: list[bytes] | None) -> None:
        handler = self._on_keys()
        if handler is not None:
            handler(names)

    def _listen(self) -> None:
        connection: Connection = self._connect()
        self._connection = connection
        connection.connect()
        connection.send_command("CLIENT", "ID")
        own_id = connection.read_response()
        prefixes = [word for prefix in self._prefixes for word in ("PREFIX", prefix)]
        connection.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", own_id, "BCAST", *prefixes)
        connection.read_response()
        connection.send_command("SUBSCRIBE", CHANNEL)
        connection.read_response()
        # Anything kept before now was kept while no message could arrive.
        self._tell_keys(None)
        self.epoch += 1
        self.up = True
        self._ready.set()
        if self._warned:
            self._warned = False
            log.warning(
                "near cache of %r at %s: invalidation channel back", self._prefix, self._where
            )
        heard = time.monotonic()
        pinged: float | None = None
        while not self._closed.is_set():
            if connection.can_read(timeout=HEALTH_EVERY / 4):
                message = connection.read_response()
                heard = time.monotonic()
                pinged = None
                if isinstance(message, list) and len(message) == 3 and message[1] == CHANNEL:
                    names = message[2]
                    self._tell_keys(names if isinstance(names, list) else None)
                continue
            if self._on_keys() is None:
                return  # the store is gone
            now = time.monotonic()
            if pinged is not None and now - pinged > HEALTH_TIMEOUT:
                raise TimeoutError(f"no answer to PING within {HEALTH_TIMEOUT:g} s")
            if pinged is None and now - heard > HEALTH_EVERY:
                connection.send_command("PING")
                pinged = now

    def _went_down(self) -> None:
        self.up = False
        self.epoch += 1
        handler = self._on_down()
        if handler is not None:
            handler()
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # it is gone either way
                connection.disconnect()


class ClusterInvalidations:
    """The invalidation channels of one namespace on a Redis Cluster: one per master.

    ``slot_map()`` reads the cluster's slot map (raising when no node
    answers); ``connect_to(host, port)`` makes an unconnected RESP2
    connection to a node. Each master gets an ``Invalidations`` tracking
    every one of ``prefixes``. A watcher thread reads the slot map every
    ``TOPOLOGY_EVERY`` seconds; on any change (a failover, a slot moved) it
    empties the copy, closes the channels of nodes that are no longer
    masters and opens channels to the new ones.

    ``up`` holds while the slot map is known and every master's channel is
    up; ``epoch`` changes whenever any channel goes down or comes up and
    whenever the slot map changes, so a read in flight across any of these
    keeps nothing.
    """

    def __init__(
        self,
        slot_map: Callable[[], SlotMap],
        connect_to: Callable[[str, int], Any],
        prefixes: Sequence[str],
        on_keys: OnKeys,
        on_down: OnDown,
        where: str,
    ) -> None:
        self.first_error: BaseException | None = None
        self._slot_map = slot_map
        self._connect_to = connect_to
        self._prefixes = tuple(prefixes)
        self._on_keys = weakref.WeakMethod(on_keys)
        self._on_down = weakref.WeakMethod(on_down)
        self._where = where
        self._epoch = 0
        self._map: SlotMap | None = None
        # (host, port) -> its channel; replaced whole, never changed in place
        self._channels: dict[tuple[str, int], Invalidations] = {}
        self._closed = threading.Event()
        self._thread = threading.Thread(
            target=self._watch,
            name=f"conncache-near-{_common_start(self._prefixes)[:40]}-slots",
            daemon=True,
        )

    @property
    def up(self) -> bool:
        channels = self._channels
        return (
            self._map is not None
            and bool(channels)
            and all(channel.up for channel in channels.values())
        )

    @property
    def epoch(self) -> int:
        return self._epoch

    def start(self, wait: float) -> None:
        """Read the slot map and open a channel per master, waiting up to ``wait`` seconds
        for each first attempt; then start the watcher."""
        try:
            self._follow(self._slot_map(), wait)
        except Exception as error:
            self.first_error = error  # no node answers: the watcher tries again
        for channel in self._channels.values():
            if channel.first_error is not None and self.first_error is None:
                self.first_error = channel.first_error
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            channel.close()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * HEALTH_TIMEOUT)

    # -- the channels' callbacks (their threads) ----------------------------------------

    def _keys(self, names: list[bytes] | None) -> None:
        if names is None:
            self._epoch += 1  # a channel came up: reads begun before keep nothing
        handler = self._on_keys()
        if handler is not None:
            handler(names)

    def _down(self) -> None:
        self._epoch += 1
        handler = self._on_down()
        if handler is not None:
            handler()

    # -- following the slot map ------------------------------------------------------------

    def _watch(self) -> None:
        warned = False
        while not self._closed.wait(TOPOLOGY_EVERY):
            if self._on_keys() is None:
                break  # the store is gone
            try:
                found = self._slot_map()
            except Exception as error:
                if self._map is not None:
                    self._map = None  # unknown: bypass the copy until it is read again
                    self._down()
                if not warned:
                    warned = True
                    log.warning(
                        "near cache at %s: cannot read the cluster's slot map (%s: %s); the "
                        "near copy is bypassed until it can",
                        self._where,
                        type(error).__name__,
                        error,
                    )
                continue
            warned = False
            if found != self._map:
                self._follow(found, 0.0)
        self.close()

    def _follow(self, found: SlotMap, wait: float) -> None:
        """Take the slot map ``found``: empty the copy, keep the channels of masters that
        stay, open channels to new masters, close the others."""
        self._map = None  # down while the channels change
        self._down()
        masters = {(host, port) for _, _, host, port in found}
        old = self._channels
        channels = {node: channel for node, channel in old.items() if node in masters}
        for host, port in sorted(masters - channels.keys()):
            channel = Invalidations(
                functools.partial(self._connect_to, host, port),
                self._prefixes,
                self._keys,
                self._down,
                f"{host}:{port}, a master of {self._where}",
            )
            channels[(host, port)] = channel
            channel.start(wait)
        self._channels = channels
        for node, channel in old.items():
            if node not in masters:
                channel.close()
        if self._closed.is_set():
            for channel in channels.values():
                channel.close()
            return
        self._map = found
        self._epoch += 1


def _common_start(texts: Sequence[str]) -> str:
    """The longest start all of ``texts`` share."""
    first, last = min(texts), max(texts)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


class NearStore:
    """A ``Store``: a ``RedisStore`` (``inner``) with a coherent in-process copy in front.

    ``count_near_hit`` is called once per lookup the copy answers (the
    cache's ``stats.near_hits``). The channel is an ``Invalidations`` on
    ``connect()`` tracking ``prefix``, unless ``channel`` makes another (a
    cluster's: ``ClusterInvalidations``) from the store's two callbacks;
    ``key_of`` turns a key name of a message into the cache's key (None:
    not an entry of this namespace; default: the name less ``prefix``).
    """

    shared = True

    def __init__(
        self,
        inner: Store,
        *,
        max_entries: int,
        count_near_hit: Callable[[], object],
        connect: Callable[[], Any] | None = None,
        prefix: str = "",
        where: str,
        channel: Callable[[OnKeys, OnDown], Channel] | None = None,
        key_of: Callable[[bytes], str | None] | None = None,
    ) -> None:
        self.inner = inner
        self.fail_open_reads = inner.fail_open_reads
        self.fail_open_invalidations = inner.fail_open_invalidations
        self.max_entries = max_entries
        self._count = count_near_hit
        self._prefix = prefix
        self._skip = len(prefix)
        # key -> (entry, the codec it was decoded with). Insertion order is
        # the eviction order: the copy forgets what it stored first.
        self._copy: dict[str, tuple[Entry, Codec | None]] = {}
        # key -> the token of the newest read in flight for it
        self._pending: dict[str, object] = {}
        self._lock = threading.Lock()
        self._key_of = key_of
        self.channel: Channel
        if channel is not None:
            self.channel = channel(self._invalidated, self._emptied)
        elif connect is not None:
            self.channel = Invalidations(connect, prefix, self._invalidated, self._emptied, where)
        else:
            raise TypeError("NearStore needs connect (and prefix) or channel")

    def open(self, wait: float = 1.0) -> NearStore:
        """Start the channel. A first attempt that fails for any reason but an outage (no
        permission for CLIENT TRACKING or SUBSCRIBE, a wrong password) raises: a near
        cache that could never come up must not look like one that is on."""
        self.channel.start(wait)
        error = self.channel.first_error
        if error is not None and self.inner.fault_kind(error) != "unreachable":
            self.close()
            message = (
                f"near cache: the invalidation channel cannot start ({error}); it needs "
                "CLIENT ID, CLIENT TRACKING and SUBSCRIBE on __redis__:invalidate"
            )
            try:
                refusal = type(error)(message)
            except Exception:
                refusal = RuntimeError(message)
            raise refusal from error
        # Closed when the store is collected (a cache dropped without use_backend(None)).
        weakref.finalize(self, self.channel.close)
        return self

    # -- the channel's callbacks (its thread) ------------------------------------------

    def _invalidated(self, names: list[bytes] | None) -> None:
        if names is None:
            self._emptied()
            return
        skip = self._skip
        key_of = self._key_of
        with self._lock:
            for name in names:
                if key_of is None:
                    key = name[skip:].decode("utf-8", "surrogateescape")
                else:
                    found = key_of(name)
                    if found is None:
                        continue
                    key = found
                self._copy.pop(key, None)
                self._pending.pop(key, None)

    def _emptied(self) -> None:
        with self._lock:
            self._copy.clear()
            self._pending.clear()

    # -- keeping what a read found -------------------------------------------------------

    def _begin(self, keys: Sequence[str]) -> tuple[object, int] | None:
        """Before asking the server: a token for each key, or None while the channel is down."""
        channel = self.channel
        if not channel.up:
            return None
        token = object()
        with self._lock:
            for key in keys:
                self._pending[key] = token
        return token, channel.epoch

    def _keep(
        self, began: tuple[object, int] | None, key: str, entry: Entry | None, codec: Codec | None
    ) -> None:
        if began is None:
            return
        token, epoch = began
        with self._lock:
            if self._pending.get(key) is not token:
                return  # invalidated meanwhile, or a newer read will keep its own
            del self._pending[key]
            channel = self.channel
            if entry is None or not channel.up or channel.epoch != epoch:
                return
            copy = self._copy
            if key not in copy and len(copy) >= self.max_entries:
                del copy[next(iter(copy))]
            copy[key] = (entry, codec)

    def _drop(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self._copy.pop(key, None)
                self._pending.pop(key, None)

    def _drop_where(self, matches: Callable[[str], object]) -> None:
        with self._lock:
            for key in [key for key in self._copy if matches(key)]:
                del self._copy[key]
            for key in [key for key in self._pending if matches(key)]:
                del self._pending[key]

    def _dropping(self, sink: Sink[str]) -> Sink[str]:
        def drop_then_tell(keys: list[str]) -> None:
            self._drop(keys)
            sink(keys)

        return drop_then_tell

    # -- the Store protocol: reads ---------------------------------------------------------

    def fault_kind(self, error: BaseException) -> FaultKind:
        return self.inner.fault_kind(error)

    def describe(self) -> str:
        return f"{self.inner.describe()} near_cache={len(self._copy)}/{self.max_entries}"

    def lookup(self, key: str, codec: Codec | None = None) -> Entry | None:
        held = self._copy.get(key)
        if held is not None and held[1] is codec:
            self._count()
            return held[0]
        began = self._begin((key,))
        entry = self.inner.lookup(key, codec)
        self._keep(began, key, entry, codec)
        return entry

    async def alookup(self, key: str, codec: Codec | None = None) -> Entry | None:
        held = self._copy.get(key)
        if held is not None and held[1] is codec:
            self._count()
            return held[0]
        began = self._begin((key,))
        entry = await self.inner.alookup(key, codec)
        self._keep(began, key, entry, codec)
        return entry

    def _split(
        self, keys: Sequence[str], codec: Codec | None
    ) -> tuple[dict[str, Entry], list[str]]:
        near: dict[str, Entry] = {}
        far: list[str] = []
        copy = self._copy
        for key in keys:
            held = copy.get(key)
            if held is not None and held[1] is codec:
                near[key] = held[0]
            else:
                far.append(key)
        for _ in near:
            self._count()
        return near, far

    def _merge(
        self,
        keys: Sequence[str],
        near: dict[str, Entry],
        far: list[str],
        found: list[Any],
        began: tuple[object, int] | None,
        codec: Codec | None,
    ) -> list[Any]:
        fetched = dict(zip(far, found, strict=True))
        for key, entry in fetched.items():
            if entry is None or isinstance(entry, Entry):
                self._keep(began, key, entry, codec)
        return [near[key] if key in near else fetched[key] for key in keys]

    def lookup_many(self, keys: Sequence[str], codec: Codec | None = None) -> list[Any]:
        near, far = self._split(keys, codec)
        if not far:
            return [near[key] for key in keys]
        began = self._begin(far)
        found = self.inner.lookup_many(far, codec)
        return self._merge(keys, near, far, found, began, codec)

    async def alookup_many(self, keys: Sequence[str], codec: Codec | None = None) -> list[Any]:
        near, far = self._split(keys, codec)
        if not far:
            return [near[key] for key in keys]
        began = self._begin(far)
        found = await self.inner.alookup_many(far, codec)
        return self._merge(keys, near, far, found, began, codec)

    # The stamped read of get_or_set's miss path, and the peeks, go to the
    # server: they must see what is there, not a copy.
    def lookup_for_fill(
        self, key: str, codec: Codec | None = None
    ) -> tuple[Entry | None, Stamp | None]:
        return self.inner.lookup_for_fill(key, codec)

    async def alookup_for_fill(
        self, key: str, codec: Codec | None = None
    ) -> tuple[Entry | None, Stamp | None]:
        return await self.inner.alookup_for_fill(key, codec)

    def peek(self, key: str, codec: Codec | None = None) -> Entry | None:
        return self.inner.peek(key, codec)

    async def apeek(self, key: str, codec: Codec | None = None) -> Entry | None:
        return await self.inner.apeek(key, codec)

    def contains(self, key: str) -> bool:
        return self.inner.contains(key)

    async def acontains(self, key: str) -> bool:
        return await self.inner.acontains(key)

    def keys(self) -> list[str]:
        return self.inner.keys()

    async def akeys(self) -> list[str]:
        return await self.inner.akeys()

    def size(self) -> int:
        return self.inner.size()

    async def asize(self) -> int:
        return await self.inner.asize()

    def expired_keys(self, after: float, until: float) -> list[str]:
        return self.inner.expired_keys(after, until)

    # -- writes and removals: the server first, then the copy forgets the keys ----------------

    def put(self, entry: Entry, now: float, codec: Codec | None = None) -> list[Displaced]:
        try:
            return self.inner.put(entry, now, codec)
        finally:
            self._drop((entry.key,))

    async def aput(self, entry: Entry, now: float, codec: Codec | None = None) -> list[Displaced]:
        try:
            return await self.inner.aput(entry, now, codec)
        finally:
            self._drop((entry.key,))

    def put_many(
        self, entries: Sequence[Entry], now: float, codec: Codec | None = None
    ) -> list[Displaced]:
        try:
            return self.inner.put_many(entries, now, codec)
        finally:
            self._drop([entry.key for entry in entries])

    async def aput_many(
        self, entries: Sequence[Entry], now: float, codec: Codec | None = None
    ) -> list[Displaced]:
        try:
            return await self.inner.aput_many(entries, now, codec)
        finally:
            self._drop([entry.key for entry in entries])

    def put_if_unchanged(
        self,
        entry: Entry,
        now: float,
        stamp: Stamp | None,
        unchanged: Callable[[], bool],
        codec: Codec | None = None,
    ) -> tuple[bool, list[Displaced]]:
        try:
            return self.inner.put_if_unchanged(entry, now, stamp, unchanged, codec)
        finally:
            self._drop((entry.key,))

    async def aput_if_unchanged(
        self,
        entry: Entry,
        now: float,
        stamp: Stamp | None,
        unchanged: Callable[[], bool],
        codec: Codec | None = None,
    ) -> tuple[bool, list[Displaced]]:
        try:
            return await self.inner.aput_if_unchanged(entry, now, stamp, unchanged, codec)
        finally:
            self._drop((entry.key,))

    def remove(self, keys: Sequence[str]) -> list[str]:
        try:
            return self.inner.remove(keys)
        finally:
            self._drop(keys)

    async def aremove(self, keys: Sequence[str]) -> list[str]:
        try:
            return await self.inner.aremove(keys)
        finally:
            self._drop(keys)

    def remove_expired(self, entries: Sequence[Entry]) -> list[Entry]:
        try:
            return self.inner.remove_expired(entries)
        finally:
            self._drop([entry.key for entry in entries])

    async def aremove_expired(self, entries: Sequence[Entry]) -> list[Entry]:
        try:
            return await self.inner.aremove_expired(entries)
        finally:
            self._drop([entry.key for entry in entries])

    def remove_prefix(self, prefix: str, sink: Sink[str]) -> None:
        try:
            self.inner.remove_prefix(prefix, self._dropping(sink))
        finally:
            self._drop_where(lambda key: key.startswith(prefix))

    async def aremove_prefix(self, prefix: str, sink: Sink[str]) -> None:
        try:
            await self.inner.aremove_prefix(prefix, self._dropping(sink))
        finally:
            self._drop_where(lambda key: key.startswith(prefix))

    def remove_matching(self, matches: Callable[[str], object], sink: Sink[str]) -> None:
        try:
            self.inner.remove_matching(matches, self._dropping(sink))
        finally:
            self._drop_where(matches)

    async def aremove_matching(self, matches: Callable[[str], object], sink: Sink[str]) -> None:
        try:
            await self.inner.aremove_matching(matches, self._dropping(sink))
        finally:
            self._drop_where(matches)

    def remove_all(self, sink: Sink[str]) -> None:
        try:
            self.inner.remove_all(self._dropping(sink))
        finally:
            self._emptied()

    async def aremove_all(self, sink: Sink[str]) -> None:
        try:
            await self.inner.aremove_all(self._dropping(sink))
        finally:
            self._emptied()

    def _tagged(self, tags: Sequence[str]) -> Callable[[str], bool]:
        wanted = set(tags)
        copy = self._copy

        def carries(key: str) -> bool:
            held = copy.get(key)
            return (
                held is not None
                and type(held[0]) is TaggedEntry
                and not wanted.isdisjoint(held[0].tags)
            )

        return carries

    def remove_tags(self, tags: Sequence[str], sink: Sink[str]) -> None:
        try:
            self.inner.remove_tags(tags, self._dropping(sink))
        finally:
            self._drop_where(self._tagged(tags))

    async def aremove_tags(self, tags: Sequence[str], sink: Sink[str]) -> None:
        try:
            await self.inner.aremove_tags(tags, self._dropping(sink))
        finally:
            self._drop_where(self._tagged(tags))

    def _purging(self, sink: Sink[Entry]) -> Sink[Entry]:
        def drop_then_tell(entries: list[Entry]) -> None:
            self._drop([entry.key for entry in entries])
            sink(entries)

        return drop_then_tell

    def purge_expired(self, now: float, sink: Sink[Entry]) -> None:
        self.inner.purge_expired(now, self._purging(sink))

    async def apurge_expired(self, now: float, sink: Sink[Entry]) -> None:
        await self.inner.apurge_expired(now, self._purging(sink))

    def wipe(self) -> None:
        try:
            self.inner.wipe()
        finally:
            self._emptied()

    # -- the cross-process fill lock: the server's ----------------------------------------

    def claim_fill(
        self, key: str, now: Callable[[], float], codec: Codec | None = None
    ) -> tuple[Entry | None, object]:
        return self.inner.claim_fill(key, now, codec)

    async def aclaim_fill(
        self, key: str, now: Callable[[], float], codec: Codec | None = None
    ) -> tuple[Entry | None, object]:
        return await self.inner.aclaim_fill(key, now, codec)

    def release_fill(self, key: str, token: object) -> None:
        self.inner.release_fill(key, token)

    async def arelease_fill(self, key: str, token: object) -> None:
        await self.inner.arelease_fill(key, token)

    def close(self) -> None:
        try:
            self.channel.close()
        finally:
            self._emptied()
            self.inner.close()
