"""RedisBackend: where a ConnectionCache keeps its entries when they must be shared.

A backend is a namespace on a Redis server or a Redis Cluster plus the
connections to reach it: one synchronous client (``redis.Redis``, or
``redis.cluster.RedisCluster``), and one asyncio client per event loop,
created on first use in that loop and closed when the loop shuts down (its
``shutdown_asyncgens``, which ``asyncio.run`` and pytest-asyncio call) or
with the backend. ``with_namespace`` copies share the connections.
``ConnectionCache.use_backend`` opens a ``RedisStore`` (``_redis_store.py``)
on it; where the namespace's keys live is its ``Layout``
(``_redis_layout.py``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

try:
    import redis
except ModuleNotFoundError as missing:  # no redis extra: say which extra
    raise ModuleNotFoundError(
        "the Redis backend needs redis-py: pip install 'pytest-conncache[redis]'",
        name=missing.name,
    ) from None
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.cluster
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from . import _validate
from ._redis_io import scan_reply
from ._redis_layout import Bucket, Layout, glob_escape
from ._serializers import JSON, Serializer
from ._store import Store
from ._validate import Seconds

log = logging.getLogger("pytest_conncache.redis")

#: The synchronous client of a backend: one server, or a cluster.
Client = redis.Redis | redis.cluster.RedisCluster
#: Its asyncio twin, one per event loop.
AsyncClient = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster
AsyncClientFactory = Callable[[], AsyncClient]

# After a fault, reads and writes that fail open skip the server for this
# many seconds; a success this long after the last fault ends the outage.
_PROBE_EVERY = 1.0


class Outage:
    """Whether a server is unreachable: logged once per outage, and failed fast.

    The first fault starts an outage (one warning). For ``PROBE_EVERY``
    seconds after each fault, reads and writes that may fail open are not
    sent at all (``short_circuited``): they fail at once instead of each
    waiting for a timeout; then one call probes the server. The outage ends
    (one "answers again") with a success at least ``PROBE_EVERY`` seconds
    after the last fault, so a restart that flaps for some milliseconds is
    one outage, and a new outage after a recovery is always announced.
    """

    PROBE_EVERY = _PROBE_EVERY

    def __init__(self, where: str) -> None:
        self.where = where
        self.active = False
        self._lock = threading.Lock()
        self._last_fault = -math.inf

    def failed(self, error: BaseException, namespace: str) -> None:
        with self._lock:
            first = not self.active
            self.active = True
            self._last_fault = time.monotonic()
        if first:
            log.warning(
                "Redis at %s is unreachable (namespace %r, %s: %s): reads are served as "
                "misses, failing fast, while it is down",
                self.where,
                namespace,
                type(error).__name__,
                error,
            )
        else:
            log.debug("Redis at %s still unreachable (%s)", self.where, error)

    def answered(self) -> None:
        with self._lock:
            if time.monotonic() - self._last_fault < self.PROBE_EVERY:
                return  # right after a fault: a flap, still the same outage
            recovered, self.active = self.active, False
        if recovered:
            log.warning("Redis at %s answers again", self.where)

    def short_circuited(self) -> bool:
        """True while a call that may fail open should not wait for the server."""
        return self.active and time.monotonic() - self._last_fault < self.PROBE_EVERY


class RedisConnections:
    """The connections of one server or cluster, shared by every namespace (backend) on it.

    ``cluster``: the client is a ``redis.cluster.RedisCluster``. Then each
    master has an outage state of its own (``node_outage``): a fault on one
    master makes the calls that fail open skip that master (its slots) for a
    second, and the rest of the cluster serves on.
    """

    def __init__(self, client: Client, async_factory: AsyncClientFactory) -> None:
        self.client = client
        self.async_factory = async_factory
        self.cluster = isinstance(client, redis.cluster.RedisCluster)
        if isinstance(client, redis.cluster.RedisCluster):
            node: Any = client.get_default_node()  # type: ignore[no-untyped-call]
            self.outage = Outage(f"the cluster of {node.host}:{node.port}")
        else:
            kwargs = client.connection_pool.connection_kwargs
            where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
            self.outage = Outage(f"{where}/{kwargs.get('db', 0)}")
        # The near stores opened on these connections: closed with them.
        self.near_stores: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._node_outages: dict[str, Outage] = {}
        # id(loop) -> (weak loop, client, the async generator that closes it)
        self._async: dict[int, tuple[weakref.ref[Any], AsyncClient, Any]] = {}

    def node_outage(self, name: str) -> Outage:
        """The outage state of the cluster node ``name`` ("host:port")."""
        outage = self._node_outages.get(name)
        if outage is None:
            with self._lock:
                outage = self._node_outages.setdefault(
                    name, Outage(f"{name}, a node of {self.outage.where}")
                )
        return outage

    async def async_client(self) -> AsyncClient:
        """This event loop's asyncio client; made on first use, closed with the loop."""
        loop = asyncio.get_running_loop()
        held = self._async.get(id(loop))
        if held is not None and held[0]() is loop:
            return held[1]
        client = self.async_factory()
        closer = _close_with_loop(client, self, id(loop))
        # Started here, so the loop's shutdown_asyncgens finalizes it.
        await closer.__anext__()
        with self._lock:
            for key in [k for k, (ref, _, _) in self._async.items() if _gone(ref)]:
                del self._async[key]
            self._async[id(loop)] = (weakref.ref(loop), client, closer)
        return client

    def forget(self, loop_id: int, client: AsyncClient) -> None:
        with self._lock:
            held = self._async.get(loop_id)
            if held is not None and held[1] is client:
                del self._async[loop_id]

    def close(self) -> None:
        """Close the sync client and every near store's channel; asyncio clients close
        with their loops (each loop's closer stays registered until then, so that its
        shutdown closes the client)."""
        for near in list(self.near_stores):
            near.close()
        self.client.close()


def _gone(ref: weakref.ref[Any]) -> bool:
    loop = ref()
    return loop is None or loop.is_closed()


async def _close_with_loop(
    client: AsyncClient, connections: RedisConnections, loop_id: int
) -> AsyncIterator[None]:
    try:
        yield
    finally:
        connections.forget(loop_id, client)
        if isinstance(client, redis.asyncio.cluster.RedisCluster):
            await client.aclose()
        else:
            await client.aclose(close_connection_pool=True)


class RedisBackend:
    """Keeps a ``ConnectionCache``'s entries in Redis, under ``{namespace}:``.

    ``client`` is a ``redis.Redis`` or a ``redis.cluster.RedisCluster`` that
    returns bytes (``decode_responses`` off); the asyncio twin of each call
    uses a ``redis.asyncio`` client (``redis.asyncio.cluster.RedisCluster``)
    per event loop from ``async_client_factory`` (default: one with the sync
    client's connection settings). Values go through ``serializer`` (JSON
    unless you pass another object with ``dumps``/``loads``; see
    ``PickleSerializer`` for the risks).

    On a cluster the namespace is spread over 16 hash-tag buckets (see
    ``_redis_layout``), and an invalidation returns once one replica of each
    master it touched acknowledged it, waiting up to
    ``replica_ack_timeout`` seconds (None: no waiting; see docs/redis.md).

    ``cross_process_lock``: ``get_or_set`` of a missing key takes a Redis lock
    (``SET NX PX``) so one process computes while the others poll for its
    value every ``lock_poll`` seconds; after ``lock_timeout`` they compute
    themselves. Off by default; single-flight within a process always holds.

    Faults (the server unreachable: ``redis.ConnectionError``,
    ``redis.TimeoutError``, but not ``AuthenticationError``): with
    ``fail_open_reads`` (default on), ``get``, ``set``, ``get_or_set`` and
    their twins treat them as misses: the factory runs and its value is
    served, the fault counts in ``stats.errors``, and one warning is logged
    per outage. With ``fail_open_invalidations`` (default off) invalidations
    raise, because a stale entry left behind silently is worse than an
    error. Peeks (``has``, ``in``, ``keys``, ``size``, ``ttl_remaining``)
    always raise.

    ``near_cache``: keep a copy of what this process reads in front of the
    server, kept coherent by Redis (see ``_near``): a hit on it costs memory
    time. ``near_max_entries`` bounds the copy (default 10,000; the oldest
    entries go first).
    """

    def __init__(
        self,
        client: Client,
        *,
        namespace: str,
        serializer: Serializer = JSON,
        cross_process_lock: bool = False,
        lock_timeout: Seconds = 10.0,
        lock_poll: Seconds = 0.01,
        fail_open_reads: bool = True,
        fail_open_invalidations: bool = False,
        scan_batch: int = 1000,
        replica_ack_timeout: Seconds | None = 0.5,
        async_client_factory: AsyncClientFactory | None = None,
        connections: RedisConnections | None = None,
        near_cache: bool = False,
        near_max_entries: int | None = None,
    ) -> None:
        if _connection_kwargs(client).get("decode_responses"):
            raise ValueError("client must return bytes: create it with decode_responses=False")
        if not (
            callable(getattr(serializer, "dumps", None))
            and callable(getattr(serializer, "loads", None))
        ):
            raise TypeError(
                f"serializer must have dumps and loads methods, got {_validate.shown(serializer)}"
            )
        if isinstance(scan_batch, bool) or not isinstance(scan_batch, int) or scan_batch < 1:
            raise ValueError(
                f"scan_batch must be a positive int, got {_validate.shown(scan_batch)}"
            )
        if not isinstance(near_cache, bool):
            raise TypeError(f"near_cache must be True or False, got {_validate.shown(near_cache)}")
        if near_max_entries is not None and (
            isinstance(near_max_entries, bool)
            or not isinstance(near_max_entries, int)
            or near_max_entries < 1
        ):
            raise ValueError(
                f"near_max_entries must be a positive int, got {_validate.shown(near_max_entries)}"
            )
        if near_max_entries is not None and not near_cache:
            raise ValueError("near_max_entries needs near_cache=True")
        self.near_cache = near_cache
        self.near_max_entries = near_max_entries
        self.connections = connections or RedisConnections(
            client, async_client_factory or (lambda: _async_twin(client))
        )
        self.namespace = _namespace(namespace, cluster=self.connections.cluster)
        self.layout = Layout(self.namespace, cluster=self.connections.cluster)
        self.replica_ack_timeout = _replica_ack_timeout(replica_ack_timeout)
        self.serializer = serializer
        self.cross_process_lock = cross_process_lock
        self.lock_timeout = _validate.seconds(lock_timeout, "lock_timeout")
        self.lock_poll = _validate.seconds(lock_poll, "lock_poll")
        self.fail_open_reads = fail_open_reads
        self.fail_open_invalidations = fail_open_invalidations
        self.scan_batch = scan_batch
        self._options: dict[str, Any] = {
            "serializer": serializer,
            "cross_process_lock": cross_process_lock,
            "lock_timeout": lock_timeout,
            "lock_poll": lock_poll,
            "fail_open_reads": fail_open_reads,
            "fail_open_invalidations": fail_open_invalidations,
            "scan_batch": scan_batch,
            "replica_ack_timeout": replica_ack_timeout,
            "near_cache": near_cache,
            "near_max_entries": near_max_entries,
        }

    @classmethod
    def from_url(
        cls, url: str, *, namespace: str, cluster: bool | None = None, **options: Any
    ) -> RedisBackend:
        """A backend on new clients for ``url`` (``redis://host:port/db``).

        ``cluster``: None (default) asks the server (``HELLO``) whether it is
        a node of a Redis Cluster, and uses redis-py's cluster clients if so;
        True uses them without asking (the URL may name any node), False
        uses the one-server clients without asking. A server that does not
        answer the question is taken for one server, with a warning.

        ``options`` are this class's keyword arguments; any other keyword goes
        to ``redis.Redis.from_url`` (and ``redis.asyncio.Redis.from_url``, or
        the ``RedisCluster`` twins). Unless given, the clients get short
        timeouts (0.5 s to connect, 1 s per command) and one immediate retry
        on a connection error (a pooled connection the server closed), none
        on a timeout: an outage costs a request one timeout at most, and
        reads fail at once after that (see ``Outage``). Unknown keywords are
        refused, naming the ones known.
        """
        if cluster is not None and not isinstance(cluster, bool):
            raise TypeError(f"cluster must be True, False or None, got {_validate.shown(cluster)}")
        url, from_query = _own_query_options(url)
        own = {name: options.pop(name) for name in _OWN_OPTIONS if name in options}
        for name, value in from_query.items():
            if name in own and own[name] != value:
                raise ValueError(
                    f"{name} is given twice, differently: {name}={own[name]!r} and "
                    f"{name}={value!r} in the URL"
                )
            own[name] = value
        if "near_max_entries" in from_query and not own.get("near_cache"):
            raise ValueError(
                "near_max_entries in the URL needs the near cache on: add near_cache=1"
            )
        options.setdefault("socket_connect_timeout", 0.5)
        options.setdefault("socket_timeout", 1.0)
        retries = options.pop("retry", None)
        options["decode_responses"] = False
        try:
            server: redis.Redis = redis.Redis.from_url(
                url, retry=retries or Retry(NoBackoff(), 1, (redis.ConnectionError,)), **options
            )
            pool = server.connection_pool
            pool.connection_class(**pool.connection_kwargs)  # checks the keywords, connects not
        except TypeError as error:
            raise TypeError(
                f"RedisBackend.from_url got an option neither it nor redis-py takes ({error}); "
                f"its own options are {', '.join(_OWN_OPTIONS)}"
            ) from None
        if cluster is None:
            cluster = _is_cluster_node(server, url)
        if not cluster:

            def async_client() -> AsyncClient:
                # Annotated as returning Any before redis-py 6.
                made: redis.asyncio.Redis = redis.asyncio.Redis.from_url(
                    url,
                    retry=redis.asyncio.retry.Retry(NoBackoff(), 1, (redis.ConnectionError,)),
                    **options,
                )
                return made

            own.setdefault("async_client_factory", async_client)
            return cls(server, namespace=namespace, **own)

        server.close()
        options = {**_CLUSTER_RETRIES, **options}
        client = _cluster_client(url, retries, options)

        def async_cluster_client() -> AsyncClient:
            return redis.asyncio.cluster.RedisCluster.from_url(
                url, retry=redis.asyncio.retry.Retry(NoBackoff(), 1), **options
            )

        own.setdefault("async_client_factory", async_cluster_client)
        try:
            return cls(client, namespace=namespace, **own)
        except BaseException:
            client.close()
            raise

    @property
    def client(self) -> Client:
        """The synchronous client: a ``redis.Redis``, or a ``RedisCluster``."""
        return self.connections.client

    @property
    def cluster(self) -> bool:
        """True on a Redis Cluster."""
        return self.connections.cluster

    # The names of the one bucket of a namespace on one server (on a cluster
    # each of its buckets has its own: ``layout.buckets``).

    @property
    def prefix(self) -> str:
        """Where entries live on one server: ``{namespace}:``."""
        return self._server_bucket().prefix

    @property
    def index_key(self) -> str:
        """The prefix index on one server: ``{namespace}#index``."""
        return self._server_bucket().index

    @property
    def stamps_key(self) -> str:
        """The change stamps on one server: ``{namespace}#stamps``."""
        return self._server_bucket().stamps

    @property
    def lock_prefix(self) -> str:
        """Where fill locks live on one server: ``{namespace}#lock:``."""
        return self._server_bucket().lock_prefix

    def _server_bucket(self) -> Bucket:
        if self.layout.cluster:
            raise AttributeError(
                f"namespace {self.namespace!r} is on a Redis Cluster, in "
                f"{len(self.layout.buckets)} buckets with names of their own: see "
                "backend.layout.buckets"
            )
        return self.layout.buckets[0]

    def with_namespace(self, namespace: str) -> RedisBackend:
        """A backend with the same connections and options on another namespace.

        Made for per-test namespaces: ``backend.with_namespace(f"test-{uuid4()}")``,
        then ``drop_namespace()`` after the test.
        """
        return RedisBackend(
            self.client, namespace=namespace, connections=self.connections, **self._options
        )

    def open_store(
        self, *, max_entries: int | None, count_near_hit: Callable[[], object] | None = None
    ) -> Store:
        """The store a ``ConnectionCache`` keeps its entries in (``use_backend`` calls it)."""
        if max_entries is not None:
            raise ValueError(
                "max_entries is not supported on Redis: bound memory with the server's "
                "maxmemory and maxmemory-policy instead (and a near cache with "
                "near_max_entries)"
            )
        from ._redis_store import RedisStore

        store = RedisStore(self).open()
        if not self.near_cache:
            return store
        from ._near import DEFAULT_MAX_ENTRIES, ClusterInvalidations, NearStore, OnDown, OnKeys

        where = self.connections.outage.where
        if not self.cluster:
            near = NearStore(
                store,
                max_entries=self.near_max_entries or DEFAULT_MAX_ENTRIES,
                count_near_hit=count_near_hit or _nothing,
                connect=self.channel_connection,
                prefix=self.prefix,
                where=where,
            )
        else:
            prefixes = [bucket.prefix for bucket in self.layout.buckets]

            def channels(on_keys: OnKeys, on_down: OnDown) -> ClusterInvalidations:
                return ClusterInvalidations(
                    self.slot_map, self.channel_connection, prefixes, on_keys, on_down, where
                )

            near = NearStore(
                store,
                max_entries=self.near_max_entries or DEFAULT_MAX_ENTRIES,
                count_near_hit=count_near_hit or _nothing,
                where=where,
                channel=channels,
                key_of=self._entry_key,
            )
        try:
            self.connections.near_stores.add(near.open())
        except BaseException:
            store.close()
            raise
        return near

    def channel_connection(self, host: str | None = None, port: int | None = None) -> Any:
        """A new, unconnected RESP2 ``redis.Connection`` outside the pools, to this
        backend's server (on a cluster: to the node ``host``:``port``): what a near
        cache's invalidation channel listens on."""
        client = self.client
        if isinstance(client, redis.cluster.RedisCluster):
            if host is None or port is None:
                raise TypeError("on a Redis Cluster, channel_connection needs a host and port")
            settings = {**_connection_kwargs(client), "host": host, "port": port}
            kind: Any = settings.pop("connection_class", redis.Connection)
        else:
            pool = client.connection_pool
            settings = dict(pool.connection_kwargs)
            kind = pool.connection_class
        settings["protocol"] = 2  # RESP2: redirect + SUBSCRIBE
        for resp3_only in ("cache", "cache_config", "maint_notifications_config"):
            settings.pop(resp3_only, None)
        return kind(**settings)

    def slot_map(self) -> tuple[tuple[int, int, str, int], ...]:
        """The cluster's slot map, as the first node that answers tells it: (first slot,
        last slot, host, port) of each master's ranges, sorted. What a near cache on a
        cluster follows; raises ``redis.ConnectionError`` when no node answers."""
        client: Any = self.client  # redis-py's cluster client is not annotated
        if not self.cluster:
            raise TypeError(f"{self!r} is not on a Redis Cluster")
        error: BaseException | None = None
        for node in client.get_nodes():
            try:
                reply = client.get_redis_connection(node).execute_command("CLUSTER", "SLOTS")
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as failed:
                error = failed
                continue
            return tuple(
                sorted(
                    (int(row[0]), int(row[1]), _text(row[2][0]) or node.host, int(row[2][1]))
                    for row in reply
                )
            )
        raise redis.ConnectionError(f"no node of {self.connections.outage.where} answers ({error})")

    def _entry_key(self, name: bytes) -> str | None:
        """The cache key of the entry named ``name`` (None: not an entry of ours)."""
        bucket = self.layout.owner(name)
        if bucket is None or not name.startswith(bucket.raw_prefix):
            return None
        return name[len(bucket.raw_prefix) :].decode("utf-8", "surrogateescape")

    def drop_namespace(self) -> int:
        """Delete every key of this namespace, its index and stamps included; how many.

        Counts nothing in any cache's stats: made for throwing away a per-test
        namespace. Raises on a Redis fault.
        """
        client = self.client
        if isinstance(client, redis.cluster.RedisCluster):
            return self._drop_on_cluster(client)
        removed = 0
        for glob in (glob_escape(self.prefix) + "*", glob_escape(self.namespace + "#") + "*"):
            for name in client.scan_iter(match=glob, count=self.scan_batch):
                unlinked: Any = client.unlink(name)  # typed as maybe-awaitable before redis-py 6
                removed += int(unlinked)
        return removed

    def _drop_on_cluster(self, cluster: redis.cluster.RedisCluster) -> int:
        """Walk every master, one UNLINK per bucket and page."""
        client: Any = cluster  # redis-py's cluster client is not annotated
        removed = 0
        layout = self.layout
        for node in client.get_primaries():
            cursor = 0
            while True:
                cursor, page = scan_reply(
                    client.execute_command(
                        "SCAN",
                        cursor,
                        "MATCH",
                        layout.scan_glob,
                        "COUNT",
                        self.scan_batch,
                        target_nodes=node,
                    )
                )
                buckets: dict[int, list[bytes]] = {}
                for name in page:
                    bucket = layout.owner(name)
                    if bucket is not None:
                        buckets.setdefault(bucket.number, []).append(name)
                for names in buckets.values():
                    removed += int(client.execute_command("UNLINK", *names))
                if cursor == 0:
                    break
        return removed

    def close(self) -> None:
        """Close the connections (shared with every ``with_namespace`` copy)."""
        self.connections.close()

    def __repr__(self) -> str:
        near = " near_cache" if self.near_cache else ""
        return (
            f"<RedisBackend namespace={self.namespace!r} at {self.connections.outage.where}{near}>"
        )


def _namespace(value: object, *, cluster: bool) -> str:
    name = _validate.key(value, "namespace")
    if not name or "#" in name:
        raise ValueError(
            f"namespace must be a non-empty str without '#', got {_validate.shown(name)}"
        )
    if cluster and ("{" in name or "}" in name):
        raise ValueError(
            "namespace must not contain '{' or '}' on a Redis Cluster (they delimit the "
            f"hash tags that place its buckets), got {_validate.shown(name)}"
        )
    return name


def _replica_ack_timeout(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            "replica_ack_timeout must be a positive number of seconds or None, got "
            f"{_validate.shown(value)}"
        )
    if not 0 < value < math.inf:
        raise ValueError(
            "replica_ack_timeout must be a positive number of seconds or None, got "
            f"{_validate.shown(value)}"
        )
    return float(value)


def _connection_kwargs(client: Any) -> dict[str, Any]:
    if isinstance(client, redis.cluster.RedisCluster):
        kwargs: dict[str, Any] = client.get_connection_kwargs()  # type: ignore[no-untyped-call]
        return kwargs
    return dict(client.connection_pool.connection_kwargs)


def _is_cluster_node(server: redis.Redis, url: str) -> bool:
    """Whether ``url`` is a node of a Redis Cluster (HELLO's ``mode``)."""
    try:
        hello: Any = server.execute_command("HELLO")  # type: ignore[no-untyped-call]
    except redis.AuthenticationError:
        server.close()
        raise
    except (redis.ConnectionError, redis.TimeoutError) as error:
        log.warning(
            "Redis at %s does not answer (%s: %s), so it cannot tell whether it is a node of a "
            "Redis Cluster: it is taken for one server. Pass cluster=True or cluster=False to "
            "RedisBackend.from_url to say which.",
            url,
            type(error).__name__,
            error,
        )
        return False
    except redis.ResponseError as error:
        server.close()
        raise type(error)(
            f"RedisBackend.from_url could not ask {url} whether it is a node of a Redis "
            f"Cluster ({error}); pass cluster=True or cluster=False to say which"
        ) from None
    if isinstance(hello, list):
        hello = dict(zip(hello[::2], hello[1::2], strict=True))
    mode = hello.get(b"mode", hello.get("mode", b""))
    return (mode.decode() if isinstance(mode, bytes) else str(mode)) == "cluster"


def _cluster_client(url: str, retries: Any, options: dict[str, Any]) -> redis.cluster.RedisCluster:
    """A ``RedisCluster`` for ``url``; a clear error when it is no cluster or none answers."""
    try:
        return redis.cluster.RedisCluster.from_url(
            url, retry=retries or Retry(NoBackoff(), 1), **options
        )
    except (redis.ConnectionError, redis.TimeoutError) as error:
        raise redis.ConnectionError(
            f"RedisBackend.from_url: no node of a Redis Cluster answers at {url} "
            f"({type(error).__name__}: {error})"
        ) from None
    except (RedisClusterException, redis.ResponseError) as error:
        if "Cluster mode is not enabled" in str(error):
            raise ValueError(
                f"cluster=True, but {url} is not a node of a Redis Cluster (cluster_enabled:0); "
                "pass cluster=None to let RedisBackend.from_url find out"
            ) from None
        if "db" in str(error):
            raise ValueError(
                f"a Redis Cluster has database 0 only, got url={url!r} ({error})"
            ) from None
        raise redis.ConnectionError(
            f"RedisBackend.from_url: the Redis Cluster at {url} cannot be used "
            f"({type(error).__name__}: {error})"
        ) from None


def _async_twin(client: Client) -> AsyncClient:
    """An asyncio client with a sync client's connection settings."""
    if isinstance(client, redis.cluster.RedisCluster):
        return _async_cluster_twin(client)
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    retry = kwargs.pop("retry", None)
    # redis-py 5 has no public way to read a Retry's count: its async twin
    # then retries once, what from_url gives both clients by default.
    count = getattr(retry, "get_retries", None)
    retries = count() if callable(count) else 1
    kwargs["retry"] = redis.asyncio.retry.Retry(NoBackoff(), retries)
    for sync_only in ("socket_type", "cache", "cache_config", "maint_notifications_config"):
        kwargs.pop(sync_only, None)
    kind = {
        "SSLConnection": redis.asyncio.SSLConnection,
        "UnixDomainSocketConnection": redis.asyncio.UnixDomainSocketConnection,
    }.get(pool.connection_class.__name__, redis.asyncio.Connection)
    return redis.asyncio.Redis(
        connection_pool=redis.asyncio.ConnectionPool(connection_class=kind, **kwargs)
    )


def _async_cluster_twin(client: redis.cluster.RedisCluster) -> AsyncClient:
    """A ``redis.asyncio.cluster.RedisCluster`` on the same startup node, with the
    connection settings both clients take."""
    node: Any = client.get_default_node()  # type: ignore[no-untyped-call]
    takes = inspect.signature(redis.asyncio.cluster.RedisCluster).parameters
    kwargs = {
        name: value
        for name, value in _connection_kwargs(client).items()
        if name in takes and name not in ("host", "port", "retry", "startup_nodes")
    }
    if _CLUSTER_RETRIES:
        kwargs["cluster_error_retry_attempts"] = getattr(
            client, "cluster_error_retry_attempts", _CLUSTER_RETRIES["cluster_error_retry_attempts"]
        )
    return redis.asyncio.cluster.RedisCluster(
        host=node.host,
        port=node.port,
        retry=redis.asyncio.retry.Retry(NoBackoff(), 1),
        **kwargs,
    )


# redis-py 5 retries a cluster command cluster_error_retry_attempts times (3)
# besides what its retry object says: one retry, as on 6 and later, where the
# retry object alone counts (and the keyword is deprecated).
_CLUSTER_RETRIES: dict[str, Any] = (
    {"cluster_error_retry_attempts": 1} if int(redis.__version__.split(".")[0]) < 6 else {}
)


def _nothing() -> None:
    return None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _own_query_options(url: str) -> tuple[str, dict[str, Any]]:
    """``url`` without the query options redis-py does not know (``near_cache=1``,
    ``near_max_entries=N``), and those options, parsed."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.query:
        return url, {}
    kept: list[tuple[str, str]] = []
    own: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in own:
            raise ValueError(f"{name} appears twice in the URL")
        if name == "near_cache":
            flag = value.strip().lower()
            if flag not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError(f"near_cache in the URL must be 1 or 0, got {value!r:.40}")
            own[name] = flag in ("1", "true", "yes", "on")
        elif name == "near_max_entries":
            try:
                own[name] = int(value)
            except ValueError:
                raise ValueError(
                    f"near_max_entries in the URL must be an int, got {value!r:.40}"
                ) from None
        else:
            kept.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), own


_OWN_OPTIONS = (
    "serializer",
    "cross_process_lock",
    "lock_timeout",
    "lock_poll",
    "fail_open_reads",
    "fail_open_invalidations",
    "scan_batch",
    "replica_ack_timeout",
    "async_client_factory",
    "near_cache",
    "near_max_entries",
)
