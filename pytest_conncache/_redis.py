"""RedisBackend: where a ConnectionCache keeps its entries when they must be shared.

Every entry lives at ``{namespace}:{key}``. Walks of the namespace
(``keys``, ``size``, ``invalidate_pattern``, ``clear``) use ``SCAN MATCH`` in
batches (never ``KEYS``) and delete in batches; ``invalidate_prefix`` reads
the namespace's sorted key index instead (see ``_redis_scripts``). The index
(``{namespace}#index``) and the cross-process locks
of ``get_or_set`` (``{namespace}#lock:{key}``) live outside the key space:
a namespace cannot contain ``#``.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import _redis_scripts, _validate
from ._keyindex import prefix_successor
from ._serializers import JSON, Serializer
from ._validate import Seconds

if TYPE_CHECKING:
    from ._cache import ConnectionCache
    from ._redis_cache import RedisCache

log = logging.getLogger("pytest_conncache.redis")


#: What counts as "Redis is unreachable": these fail open where configured.
FAULTS: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def glob_escape(text: str) -> str:
    """``text`` with Redis glob metacharacters (``*?[]\\``) escaped: matches only itself."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def _namespace(value: object) -> str:
    name = _validate.key(value, "namespace")
    if not name or "#" in name:
        raise ValueError(f"namespace must be a non-empty str without '#', got {name!r}")
    return name


class RedisBackend:
    """Keeps a ``ConnectionCache``'s entries in Redis, under ``{namespace}:``.

    ``client`` is a ``redis.Redis`` that returns bytes (``decode_responses``
    off). Values go through ``serializer`` (JSON unless you pass another
    object with ``dumps``/``loads``; see ``PickleSerializer`` for the risks).

    ``cross_process_lock``: ``get_or_set`` of a missing key takes a Redis lock
    (``SET NX PX``) so one process computes while the others poll for its
    value every ``lock_poll`` seconds; after ``lock_timeout`` they compute
    themselves. Off by default; single-flight within a process always holds.

    Faults (``redis.ConnectionError``, ``redis.TimeoutError``):
    with ``fail_open_reads`` (default on), ``get``, ``set``, ``get_or_set``
    and ``aget_or_set`` treat an unreachable server as a miss: the factory
    runs and its value is served, the fault counts in ``stats.errors``, and
    one warning is logged per outage. With ``fail_open_invalidations``
    (default off) ``invalidate``, ``invalidate_pattern``,
    ``invalidate_prefix`` and ``clear`` raise, because a stale entry left
    behind silently is worse than an error; turn it on to log and count
    instead. Peeks (``has``, ``in``, ``keys``, ``size``, ``ttl_remaining``)
    always raise.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str,
        serializer: Serializer = JSON,
        cross_process_lock: bool = False,
        lock_timeout: Seconds = 10.0,
        lock_poll: Seconds = 0.01,
        fail_open_reads: bool = True,
        fail_open_invalidations: bool = False,
        scan_batch: int = 1000,
    ) -> None:
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("client must return bytes: create it with decode_responses=False")
        if not (
            callable(getattr(serializer, "dumps", None))
            and callable(getattr(serializer, "loads", None))
        ):
            raise TypeError(f"serializer must have dumps and loads methods, got {serializer!r}")
        if isinstance(scan_batch, bool) or not isinstance(scan_batch, int) or scan_batch < 1:
            raise ValueError(f"scan_batch must be a positive int, got {scan_batch!r}")
        self.client = client
        self.namespace = _namespace(namespace)
        self.serializer = serializer
        self.cross_process_lock = cross_process_lock
        self.lock_timeout = _validate.seconds(lock_timeout, "lock_timeout")
        self.lock_poll = _validate.seconds(lock_poll, "lock_poll")
        self.fail_open_reads = fail_open_reads
        self.fail_open_invalidations = fail_open_invalidations
        self.scan_batch = scan_batch
        self.prefix = self.namespace + ":"
        self.lock_prefix = self.namespace + "#lock:"
        self.index_key = self.namespace + "#index"
        self._options: dict[str, Any] = {
            "serializer": serializer,
            "cross_process_lock": cross_process_lock,
            "lock_timeout": lock_timeout,
            "lock_poll": lock_poll,
            "fail_open_reads": fail_open_reads,
            "fail_open_invalidations": fail_open_invalidations,
            "scan_batch": scan_batch,
        }
        self._stores = itertools.count(1)
        self._prune_from = "-"
        self._remove = client.register_script(_redis_scripts.REMOVE)
        self._remove_if_equal = client.register_script(_redis_scripts.REMOVE_IF_EQUAL)
        self._remove_range = client.register_script(_redis_scripts.REMOVE_RANGE)
        self._release = client.register_script(_redis_scripts.RELEASE)
        self._outage_lock = threading.Lock()
        self.in_outage = False

    @classmethod
    def from_url(cls, url: str, *, namespace: str, **options: Any) -> RedisBackend:
        """A backend on a new client for ``url`` (``redis://host:port/db``).

        ``options`` are this class's keyword arguments; any other keyword goes
        to ``redis.Redis.from_url``. Unless given, the client gets short
        timeouts (0.5 s to connect, 1 s per command) and one immediate retry,
        so that an outage costs a request about a second, not redis-py's
        default ten retries with backoff.
        """
        own = {name: options.pop(name) for name in _OWN_OPTIONS if name in options}
        options.setdefault("socket_connect_timeout", 0.5)
        options.setdefault("socket_timeout", 1.0)
        options.setdefault("retry", Retry(NoBackoff(), 1))
        options["decode_responses"] = False
        client: redis.Redis = redis.Redis.from_url(url, **options)
        return cls(client, namespace=namespace, **own)

    def with_namespace(self, namespace: str) -> RedisBackend:
        """A backend with the same client and options on another namespace.

        Made for per-test namespaces: ``backend.with_namespace(f"test-{uuid4()}")``,
        then ``drop_namespace()`` after the test.
        """
        return RedisBackend(self.client, namespace=namespace, **self._options)

    def bind(self, cache: ConnectionCache[Any]) -> RedisCache:
        """The cache's view of this backend (``ConnectionCache.use_backend`` calls it)."""
        from ._redis_cache import RedisCache

        return RedisCache(cache, self)

    def __repr__(self) -> str:
        return f"<RedisBackend namespace={self.namespace!r} client={self.client!r}>"

    # -- namespace walking -------------------------------------------------

    def data_key(self, key: str) -> str:
        return self.prefix + key

    def scan(self, glob: str) -> Iterator[list[bytes]]:
        """Pages of the Redis keys matching ``glob``, one SCAN round trip each.

        SCAN may return a key twice; callers that count must deduplicate.
        """
        cursor = 0
        while True:
            cursor, page = self.client.scan(cursor, match=glob, count=self.scan_batch)
            if page:
                yield cast("list[bytes]", page)  # decode_responses is off
            if cursor == 0:
                return

    def scan_entries(self, key_prefix: str = "") -> Iterator[list[tuple[bytes, str]]]:
        """Pages of (redis key, cache key) for cache keys starting with ``key_prefix``."""
        glob = glob_escape(self.prefix + key_prefix) + "*"
        skip = len(self.prefix)
        for page in self.scan(glob):
            yield [(name, name.decode()[skip:]) for name in page]

    def drop_namespace(self) -> int:
        """Delete every key of this namespace, its index and locks included; how many.

        Counts nothing in any cache's stats: made for throwing away a per-test
        namespace. Raises on a Redis fault.
        """
        removed = 0
        for glob in (glob_escape(self.prefix) + "*", glob_escape(self.namespace + "#") + "*"):
            for page in self.scan(glob):
                removed += int(self.client.unlink(*page))
        return removed

    # -- writes and removals (Lua: entries and index change together) -------

    def store(self, key: str, blob: bytes, px: int | None) -> None:
        """Write one entry and index it: one pipelined round trip (see ``_redis_scripts``)."""
        commands = self.store_commands(key, blob, px)
        if next(self._stores) % _redis_scripts.PRUNE_EVERY:
            self._pipelined(commands)
            return
        commands.append(
            (
                "EVAL",
                _redis_scripts.PRUNE,
                1,
                self.index_key,
                self.prefix,
                self._prune_from,
                _redis_scripts.PRUNE_BATCH,
            )
        )
        next_from = self._pipelined(commands)[-1]
        self._prune_from = next_from.decode() if next_from else "-"

    def store_commands(self, key: str, blob: bytes, px: int | None) -> list[tuple[Any, ...]]:
        """The commands that write one entry and index it."""
        name = self.prefix + key
        write = ("SET", name, blob) if px is None else ("SET", name, blob, "PX", px)
        return [write, ("ZADD", self.index_key, 0, key)]

    def _pipelined(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` in one round trip on one pooled connection.

        Lighter than ``redis.Pipeline`` (this runs on every ``set``). A pooled
        connection can be dead after a server restart: a connection fault is
        retried once on a fresh connection, then raised.
        """
        pool = self.client.connection_pool
        for attempt in (1, 2):
            conn: Any = pool.get_connection()  # redis-py leaves its methods untyped
            try:
                conn.send_packed_command(conn.pack_commands(commands))
                return [conn.read_response() for _ in commands]
            except FAULTS:
                conn.disconnect()
                if attempt == 2:
                    raise
            except BaseException:
                conn.disconnect()
                raise
            finally:
                pool.release(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    def remove(self, names: list[bytes]) -> list[int]:
        """Delete these entries in one round trip; the 0-based positions that existed."""
        if not names:
            return []
        removed = self._remove(keys=[self.index_key, *names], args=[len(self.prefix)])
        return [int(i) - 1 for i in removed]

    def remove_if_equal(self, names: list[bytes], values: list[bytes]) -> list[int]:
        """Delete each entry still holding its value; the 0-based positions deleted."""
        if not names:
            return []
        removed = self._remove_if_equal(
            keys=[self.index_key, *names], args=[len(self.prefix), *values]
        )
        return [int(i) - 1 for i in removed]

    def remove_prefix(self, key_prefix: str) -> Iterator[list[str]]:
        """Delete the entries whose key starts with ``key_prefix``, a batch per round trip.

        Yields the keys each batch removed. The range comes from the index, so
        the cost follows the keys removed, not the size of the namespace.
        """
        upper = prefix_successor(key_prefix)
        low = "[" + key_prefix if key_prefix else "-"
        high = "+" if upper is None else "(" + upper
        while True:
            looked, *removed = self._remove_range(
                keys=[self.index_key], args=[self.prefix, low, high, self.scan_batch]
            )
            yield [member.decode() for member in removed]
            if int(looked) < self.scan_batch:
                return

    def release_lock(self, key: str, token: bytes) -> bool:
        return bool(self._release(keys=[self.lock_prefix + key], args=[token]))

    # -- outages -----------------------------------------------------------

    def report_fault(self, error: Exception, operation: str) -> None:
        """Log the first fault of an outage as a warning, the rest at debug level."""
        with self._outage_lock:
            first = not self.in_outage
            self.in_outage = True
        if first:
            log.warning(
                "Redis unreachable for cache namespace %r (%s: %s): serving misses until it "
                "answers again",
                self.namespace,
                operation,
                error,
            )
        else:
            log.debug("Redis still unreachable (%s: %s)", operation, error)

    def report_recovery(self) -> None:
        with self._outage_lock:
            was = self.in_outage
            self.in_outage = False
        if was:
            log.warning("Redis answers again for cache namespace %r", self.namespace)


_OWN_OPTIONS = (
    "serializer",
    "cross_process_lock",
    "lock_timeout",
    "lock_poll",
    "fail_open_reads",
    "fail_open_invalidations",
    "scan_batch",
)
