"""The steps a Redis store's plans yield, and what sends them: to one server or a cluster.

A plan (``_redis_store.py``) yields steps and receives their replies:

- ``Call``: a command, ``Call(("GET", name))``; on a cluster redis-py sends
  it to the master of its key's slot (following MOVED and ASK).
- ``Lua``: a script call, EVALSHA with EVAL as the fallback, routed by its
  first key; every script touches one bucket (one slot) only.
- ``Scan``: one page of ``SCAN MATCH`` on one node: a node named by a
  ``NODES`` reply, or the master serving a key's slot.
- ``Fan``: steps that do not depend on each other, sent together (a pipeline:
  on a cluster, one batch per master, written to all of them before any
  reply is read). The reply is a list in step order, each item a reply or
  the exception that step raised. A ``durable`` fan is an invalidation:
  on a cluster each master that ran one of its steps must have one replica
  acknowledge it (``WAIT 1``) before the fan's reply counts, so that a
  failover right after the call cannot bring the removed entries back (see
  ``docs/redis.md``, "Redis Cluster").
- ``NODES``: the names of the nodes a walk visits (the masters of a
  cluster; ``[None]``, the server itself, on one server).

Four executors run steps: ``ServerIO`` and ``ClusterIO`` on the synchronous
clients, ``AsyncServerIO`` and ``AsyncClusterIO`` on ``redis.asyncio``. The
cluster fan logic (where the WAITs go, what an unacknowledged or redirected
step means) is written once, as a generator of I/O requests that the sync
and the async executor each drive.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import redis
from redis.exceptions import (
    AskError,
    ClusterCrossSlotError,
    ClusterDownError,
    NoScriptError,
    SlotNotCoveredError,
    TryAgainError,
)

from ._store import FaultKind

if TYPE_CHECKING:
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.cluster

    from ._redis_scripts import Script


class Call(tuple[Any, ...]):
    """A Redis command: ``Call(("GET", name))``."""

    __slots__ = ()


class Lua:
    """A script call: EVALSHA, falling back to EVAL when the server lost the script."""

    __slots__ = ("script", "keys", "args")

    def __init__(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> None:
        self.script = script
        self.keys = keys
        self.args = args


class Scan:
    """One ``SCAN cursor MATCH glob COUNT count`` on one node.

    ``node``: a name from a ``NODES`` reply (None: the only server). ``key``:
    instead, the master serving this key's slot. The reply is
    ``(next cursor, names)``.
    """

    __slots__ = ("cursor", "glob", "count", "node", "key")

    def __init__(
        self, cursor: int, glob: str, count: int, node: str | None = None, key: str | None = None
    ) -> None:
        self.cursor = cursor
        self.glob = glob
        self.count = count
        self.node = node
        self.key = key

    def command(self) -> tuple[Any, ...]:
        return ("SCAN", self.cursor, "MATCH", self.glob, "COUNT", self.count)


class Fan:
    """Independent steps sent together; ``durable``: an invalidation (see the module doc)."""

    __slots__ = ("steps", "durable")

    def __init__(self, steps: Sequence[Call | Lua | Scan], durable: bool = False) -> None:
        self.steps = steps
        self.durable = durable


class _Nodes:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NODES"


NODES = _Nodes()

Step = Call | Lua | Scan | Fan | _Nodes


class NotReplicated(redis.exceptions.RedisError):
    """An invalidation ran on a cluster master, but no replica acknowledged it in time.

    The entries are gone from the master; a failover of that master now
    could bring them back, so the invalidation does not count as done.
    """


# -- what errors mean ---------------------------------------------------------------------------

# What a script on a cluster node says while a slot moves to another master
# (a key it reads is there already) or while the cluster is down.
_CLUSTER_IN_MOTION = ("non local key", "while the cluster is down")


def fault_kind(error: BaseException) -> FaultKind:
    """What a redis-py error means: unreachable, refusing writes, or neither.

    redis-py derives ``AuthenticationError`` from ``ConnectionError``: a wrong
    password is a configuration error, raised on every call, never an outage
    served as a miss.
    """
    if isinstance(error, redis.AuthenticationError):
        return None
    if isinstance(error, (redis.ConnectionError, redis.TimeoutError, NotReplicated)):
        return "unreachable"
    # A cluster that lost a master, before or while its replica takes over;
    # a slot on its way to another master.
    if isinstance(error, (ClusterDownError, SlotNotCoveredError, TryAgainError)):
        return "unreachable"
    if isinstance(error, redis.ResponseError) and any(
        words in str(error) for words in _CLUSTER_IN_MOTION
    ):
        return "unreachable"
    if isinstance(error, (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError)):
        return "refused"
    return None


def is_outage(error: object) -> bool:
    """An error saying a server could not be reached (a replica that did not
    acknowledge in time is no outage of its master)."""
    return (
        isinstance(error, Exception)
        and not isinstance(error, NotReplicated)
        and fault_kind(error) == "unreachable"
    )


class ShortCircuit(redis.ConnectionError):
    """Raised instead of sending a read or write during an outage (see ``Outage``)."""


class Health(Protocol):
    """A server's outage state (``_redis.Outage``)."""

    where: str
    active: bool
    PROBE_EVERY: float

    def failed(self, error: BaseException, namespace: str) -> None: ...

    def answered(self) -> None: ...

    def short_circuited(self) -> bool: ...


def short_circuit(health: Health) -> ShortCircuit:
    return ShortCircuit(
        f"Redis at {health.where} did not answer a moment ago; "
        f"the next call tries again after {health.PROBE_EVERY:g} s"
    )


class ClusterNodeError(redis.exceptions.ResponseError):
    """A one-server client met a node of a Redis Cluster (MOVED, ASK or CROSSSLOT)."""


def explain(error: Exception) -> Exception:
    """What a one-server client's redirection error means, said plainly."""
    if isinstance(error, (AskError, ClusterCrossSlotError)) or (
        # redis-py 5's one-server client raises a plain ResponseError for these
        isinstance(error, redis.ResponseError)
        and str(error).startswith(("CROSSSLOT ", "MOVED ", "ASK "))
    ):
        return ClusterNodeError(
            f"Redis answered {type(error).__name__} ({error}): the server is a node of a "
            "Redis Cluster, but this backend talks to one server (RedisBackend.from_url with "
            "cluster=False, or a redis.Redis client); use cluster=None or cluster=True, or "
            "give RedisBackend a redis.cluster.RedisCluster"
        )
    return error


def topology_race(error: Exception) -> Exception:
    """``error``, unless it is redis-py 5's cluster client tripping over itself.

    Before redis-py 6, one thread refreshing the cluster's topology
    (``NodesManager.initialize``) while another drops a node that failed
    raises ``RuntimeError: dictionary changed size during iteration``, and a
    refresh that closes the connections of a node another thread is reading
    from raises ``ValueError: I/O operation on closed file``: for the
    caller, a node that did not answer during a failover. Returned as the
    ``redis.ConnectionError`` it stands for, so reads fail open and
    invalidations fail loud, to be retried.
    """
    if (isinstance(error, RuntimeError) and "changed size during iteration" in str(error)) or (
        isinstance(error, ValueError) and "I/O operation on closed file" in str(error)
    ):
        return redis.ConnectionError(
            f"redis-py's cluster client met a topology change in another thread ({error})"
        )
    return error


def command(step: Call | Lua | Scan, loaded: bool = True) -> tuple[Any, ...]:
    """The arguments of ``execute_command``; a script by its SHA1 unless not ``loaded``."""
    if type(step) is Call:
        return step
    if type(step) is Lua:
        if loaded:
            return ("EVALSHA", step.script.sha, len(step.keys), *step.keys, *step.args)
        return ("EVAL", step.script.source, len(step.keys), *step.keys, *step.args)
    assert type(step) is Scan
    return step.command()


def scan_reply(reply: Any) -> tuple[int, list[bytes]]:
    """``(cursor, names)`` from a SCAN reply; redis-py's cluster client answers a
    SCAN sent to a node with ``({node name: cursor}, names)``."""
    cursor, names = reply
    if isinstance(cursor, dict):
        cursor = next(iter(cursor.values()), 0)
    return int(cursor), list(names)


def _settled(step: Call | Lua | Scan, reply: Any) -> Any:
    """A one-server fan's reply to ``step``: errors explained, SCAN pages unpacked."""
    if isinstance(reply, Exception):
        return explain(reply)
    return scan_reply(reply) if type(step) is Scan else reply


def _scripts_lost(replies: list[Any]) -> list[int]:
    return [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]


# -- one server ------------------------------------------------------------------------------


class ServerIO:
    """Runs steps on one server with a ``redis.Redis`` (or a client that looks like one)."""

    __slots__ = ("client", "execute")

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.execute: Callable[..., Any] = client.execute_command

    def run(self, step: Step) -> Any:
        if type(step) is Call:
            return self.execute(*step)
        if type(step) is Lua:
            try:
                return self.execute(*command(step))
            except NoScriptError:  # the server restarted or flushed its scripts
                return self.execute(*command(step, loaded=False))
        if type(step) is Scan:
            return scan_reply(self.execute(*command(step)))
        if type(step) is Fan:
            return self._fan(step)
        return [None]  # NODES: the server is the only node

    # The server's outage state is the driver's (``_Feed``): one server, one state.
    run_fast = run

    def _fan(self, fan: Fan) -> list[Any]:
        if len(fan.steps) == 1:
            try:
                return [self.run(fan.steps[0])]
            except Exception as error:
                return [explain(error)]
        replies = self._pipeline(fan.steps, loaded=True)
        lost = _scripts_lost(replies)
        if lost:
            again = self._pipeline([fan.steps[i] for i in lost], loaded=False)
            for i, reply in zip(lost, again, strict=True):
                replies[i] = reply
        return [_settled(step, reply) for step, reply in zip(fan.steps, replies, strict=True)]

    def _pipeline(self, steps: Sequence[Call | Lua | Scan], loaded: bool) -> list[Any]:
        pipe: Any = self.client.pipeline(transaction=False)
        for step in steps:
            pipe.execute_command(*command(step, loaded))
        try:
            return list(pipe.execute(raise_on_error=False))
        except Exception as error:  # the connection itself failed
            return [error] * len(steps)


class AsyncServerIO:
    """``ServerIO`` on a ``redis.asyncio.Redis``."""

    __slots__ = ("client", "execute")

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self.execute: Callable[..., Awaitable[Any]] = client.execute_command

    async def run(self, step: Step) -> Any:
        if type(step) is Call:
            return await self.execute(*step)
        if type(step) is Lua:
            try:
                return await self.execute(*command(step))
            except NoScriptError:
                return await self.execute(*command(step, loaded=False))
        if type(step) is Scan:
            return scan_reply(await self.execute(*command(step)))
        if type(step) is Fan:
            return await self._fan(step)
        return [None]

    run_fast = run

    async def _fan(self, fan: Fan) -> list[Any]:
        if len(fan.steps) == 1:
            try:
                return [await self.run(fan.steps[0])]
            except Exception as error:
                return [explain(error)]
        replies = await self._pipeline(fan.steps, loaded=True)
        lost = _scripts_lost(replies)
        if lost:
            again = await self._pipeline([fan.steps[i] for i in lost], loaded=False)
            for i, reply in zip(lost, again, strict=True):
                replies[i] = reply
        return [_settled(step, reply) for step, reply in zip(fan.steps, replies, strict=True)]

    async def _pipeline(self, steps: Sequence[Call | Lua | Scan], loaded: bool) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for step in steps:
            pipe.execute_command(*command(step, loaded))
        try:
            return list(await pipe.execute(raise_on_error=False))
        except Exception as error:
            return [error] * len(steps)


# -- a cluster -------------------------------------------------------------------------------

# What the cluster fan logic asks its executor for: a pipeline of
# (arguments, target node or None) commands, or a refresh of the topology.
_Pipeline = list[tuple[tuple[Any, ...], Any]]
_REFRESH = "refresh"
_FanIO = Generator["_Pipeline | str", Any, list[Any]]

# How many times a durable fan re-sends steps that the cluster moved to
# another master while they ran (their WAIT went to the old one).
_MOVES = 2


def _primary(client: Any, key: Any) -> tuple[Any, int] | None:
    """(the master serving ``key``'s slot, how many replicas it has), from the
    client's topology; None when the client knows no master for the slot."""
    served = client.nodes_manager.slots_cache.get(client.keyslot(key))
    if not served:
        return None
    return served[0], len(served) - 1


def _first_key(step: object) -> Any:
    """The key a command or script is routed by (None: it has none)."""
    if type(step) is Lua:
        return step.keys[0] if step.keys else None
    if type(step) is Call:
        return step[1] if len(step) > 1 else None
    return None


def _scan_target(client: Any, step: Scan) -> Any:
    if step.key is not None:
        return client.get_node_from_key(step.key)
    node = client.get_node(node_name=step.node)
    if node is None:
        raise redis.ConnectionError(f"the Redis Cluster node {step.node} left the cluster")
    return node


class _Watch:
    """Each master's health, for the executor of one call: ``fail_fast`` calls skip a
    master that failed a moment ago (``ShortCircuit``); every reply or fault from a
    master updates its state (see ``Health``)."""

    __slots__ = ("health", "namespace", "fail_fast")

    def __init__(self, health: Callable[[str], Health], namespace: str, fail_fast: bool) -> None:
        self.health = health
        self.namespace = namespace
        self.fail_fast = fail_fast

    def skipped(self, node: str | None) -> ShortCircuit | None:
        """The error to answer instead of sending to ``node``, if it is to be skipped."""
        if node is None or not self.fail_fast:
            return None
        health = self.health(node)
        return short_circuit(health) if health.short_circuited() else None

    def saw(self, node: str | None, reply: Any) -> None:
        if node is None:
            return
        health = self.health(node)
        if isinstance(reply, Exception):
            if is_outage(reply):
                health.failed(reply, self.namespace)
        elif health.active:
            health.answered()


def _cluster_fan(
    client: Any,
    steps: Sequence[Call | Lua | Scan],
    durable: bool,
    wait_ms: int | None,
    watch: _Watch,
) -> _FanIO:
    """Send ``steps`` as one cluster pipeline; for a ``durable`` fan with ``wait_ms``,
    end each master's batch with ``WAIT 1 wait_ms`` on the same connection.

    A step whose master has replicas counts as done once one replica
    acknowledged it. When none did in time, the topology is refreshed: a
    master that now has no replica (the replica failed) is fine; one that
    still has one makes the step a ``NotReplicated``. A step that ran on
    another master than its WAIT went to (the slot moved meanwhile) is sent
    again with a WAIT of its own (invalidations are idempotent; the first
    reply stands).
    """
    replies = yield from _cluster_round(client, steps, True, durable, wait_ms, 0, watch)
    return [
        scan_reply(reply) if type(step) is Scan and not isinstance(reply, Exception) else reply
        for step, reply in zip(steps, replies, strict=True)
    ]


def _cluster_round(
    client: Any,
    steps: Sequence[Call | Lua | Scan],
    loaded: bool,
    durable: bool,
    wait_ms: int | None,
    moves: int,
    watch: _Watch,
) -> _FanIO:
    # Every command goes to the master its first key's slot has in the client's
    # topology, named here: redis-py would otherwise ask the server for an
    # EVALSHA's keys (COMMAND GETKEYS) before it could route it in a pipeline.
    # A command that meets MOVED or ASK is sent again by redis-py, routed anew.
    commands: _Pipeline = []
    nodes: list[str | None] = []  # where each step goes (None: redis-py decides)
    sent: list[int] = []  # the steps sent, in the order of ``commands``
    results: list[Any] = [None] * len(steps)
    sent_to: list[str | None] = [None] * len(steps)  # the master each durable step's WAIT asks
    waits: dict[str, tuple[Any, list[int]]] = {}
    waiting = durable and wait_ms is not None
    for i, step in enumerate(steps):
        if type(step) is Scan:
            target = _scan_target(client, step)
            found = None
        else:
            key = _first_key(step)
            found = None if key is None else _primary(client, key)
            target = None if found is None else found[0]
        nodes.append(None if target is None else target.name)
        skipped = watch.skipped(nodes[i])
        if skipped is not None:
            results[i] = skipped
            continue
        sent.append(i)
        commands.append((command(step, loaded), target))
        if waiting and found is not None and type(step) is Lua:
            node, replicas = found
            sent_to[i] = node.name
            if replicas:
                waits.setdefault(node.name, (node, []))[1].append(i)
    for node, _ in waits.values():
        commands.append((("WAIT", 1, wait_ms), node))

    replies: list[Any] = (yield commands) if commands else []
    for i, reply in zip(sent, replies, strict=False):
        results[i] = reply
        watch.saw(nodes[i], reply)

    lost = [i for i in sent if isinstance(results[i], NoScriptError)]
    if lost:
        again = yield from _cluster_round(
            client, [steps[i] for i in lost], False, durable, wait_ms, moves, watch
        )
        for i, reply in zip(lost, again, strict=True):
            results[i] = reply
    if not waits and not any(sent_to):
        return results

    unacknowledged: list[int] = []
    for (_, positions), ack in zip(waits.values(), replies[len(sent) :], strict=True):
        for i in positions:
            if i in lost or isinstance(results[i], Exception):
                continue
            if isinstance(ack, Exception):
                results[i] = ack  # the master went away before it could vouch for it
            elif int(ack) < 1:
                unacknowledged.append(i)
    if unacknowledged:
        yield _REFRESH  # did the replica fail, or the master?
    moved: list[int] = []
    for i, name in enumerate(sent_to):
        if name is None or i in lost or isinstance(results[i], Exception):
            continue
        found = _primary(client, _first_key(steps[i]))
        if found is not None and found[0].name != name:
            moved.append(i)
        elif i in unacknowledged and (found is None or found[1] > 0):
            results[i] = NotReplicated(
                f"no replica of the Redis Cluster master {name} acknowledged an "
                f"invalidation within {wait_ms} ms; a failover of that master could undo it"
            )
    if moved:
        if moves >= _MOVES:
            for i in moved:
                results[i] = NotReplicated(
                    "the cluster kept moving the slot of an invalidation while it ran; "
                    "it could not be confirmed by a replica"
                )
        else:
            again = yield from _cluster_round(
                client, [steps[i] for i in moved], True, durable, wait_ms, moves + 1, watch
            )
            for i, reply in zip(moved, again, strict=True):
                if isinstance(reply, Exception):
                    results[i] = reply
    return results


class ClusterIO:
    """Runs steps on a cluster with a ``redis.cluster.RedisCluster``.

    ``wait_ms``: how long a durable fan waits for a replica's acknowledgement
    per master (None: it does not wait). ``health(node name)``: that master's
    outage state; ``run_fast`` (reads and writes that fail open) skips a
    master that failed a moment ago, ``run`` always sends.
    """

    __slots__ = ("client", "execute", "wait_ms", "_watch", "_fast")

    def __init__(
        self,
        client: redis.cluster.RedisCluster,
        wait_ms: int | None,
        health: Callable[[str], Health],
        namespace: str,
    ) -> None:
        self.client: Any = client  # redis-py's cluster clients are not annotated
        self.execute: Callable[..., Any] = self.client.execute_command
        self.wait_ms = wait_ms
        self._watch = _Watch(health, namespace, fail_fast=False)
        self._fast = _Watch(health, namespace, fail_fast=True)

    def run(self, step: Step) -> Any:
        return self._run(step, self._watch)

    def run_fast(self, step: Step) -> Any:
        return self._run(step, self._fast)

    def _run(self, step: Step, watch: _Watch) -> Any:
        if type(step) is Fan:
            return self._fan(step, watch)
        if type(step) is _Nodes:
            return [node.name for node in self.client.get_primaries()]
        target, name = _aim(self.client, step, watch)
        try:
            if target is not None:
                reply = scan_reply(self.execute(*command(step), target_nodes=target))  # type: ignore[arg-type]
            elif type(step) is Lua:
                try:
                    reply = self.execute(*command(step))
                except NoScriptError:  # the master restarted or flushed its scripts
                    reply = self.execute(*command(step, loaded=False))
            else:
                reply = self.execute(*step)  # type: ignore[misc]
        except Exception as error:
            raised = _seen_failure(error, name, watch)
            if raised is error:
                raise
            raise raised from error
        watch.saw(name, reply)
        return reply

    def _fan(self, fan: Fan, watch: _Watch) -> list[Any]:
        if len(fan.steps) == 1 and not (fan.durable and self.wait_ms is not None):
            try:
                return [self._run(fan.steps[0], watch)]
            except Exception as error:
                return [error]
        io = _cluster_fan(self.client, fan.steps, fan.durable, self.wait_ms, watch)
        reply: Any = None
        try:
            while True:
                request = io.send(reply)
                if isinstance(request, str):  # _REFRESH
                    self.client.nodes_manager.initialize()
                    reply = None
                    continue
                pipe = _pipeline(self.client, request)
                try:
                    reply = list(pipe.execute(raise_on_error=False))
                except Exception as error:  # no connection to any node
                    reply = [topology_race(error)] * len(request)
        except StopIteration as done:
            result: list[Any] = done.value
            return result
        except Exception as error:  # a topology refresh that found no node
            return [topology_race(error)] * len(fan.steps)


class AsyncClusterIO:
    """``ClusterIO`` on a ``redis.asyncio.cluster.RedisCluster``."""

    __slots__ = ("client", "execute", "wait_ms", "_watch", "_fast")

    def __init__(
        self,
        client: redis.asyncio.cluster.RedisCluster,
        wait_ms: int | None,
        health: Callable[[str], Health],
        namespace: str,
    ) -> None:
        self.client: Any = client
        self.execute: Callable[..., Awaitable[Any]] = self.client.execute_command
        self.wait_ms = wait_ms
        self._watch = _Watch(health, namespace, fail_fast=False)
        self._fast = _Watch(health, namespace, fail_fast=True)

    async def run(self, step: Step) -> Any:
        return await self._run(step, self._watch)

    async def run_fast(self, step: Step) -> Any:
        return await self._run(step, self._fast)

    async def _run(self, step: Step, watch: _Watch) -> Any:
        if type(step) is Fan:
            return await self._fan(step, watch)
        if type(step) is _Nodes:
            return [node.name for node in self.client.get_primaries()]
        target, name = _aim(self.client, step, watch)
        try:
            if target is not None:
                reply = scan_reply(await self.execute(*command(step), target_nodes=target))  # type: ignore[arg-type]
            elif type(step) is Lua:
                try:
                    reply = await self.execute(*command(step))
                except NoScriptError:
                    reply = await self.execute(*command(step, loaded=False))
            else:
                reply = await self.execute(*step)  # type: ignore[misc]
        except Exception as error:
            raised = _seen_failure(error, name, watch)
            if raised is error:
                raise
            raise raised from error
        watch.saw(name, reply)
        return reply

    async def _fan(self, fan: Fan, watch: _Watch) -> list[Any]:
        if len(fan.steps) == 1 and not (fan.durable and self.wait_ms is not None):
            try:
                return [await self._run(fan.steps[0], watch)]
            except Exception as error:
                return [error]
        io = _cluster_fan(self.client, fan.steps, fan.durable, self.wait_ms, watch)
        reply: Any = None
        try:
            while True:
                request = io.send(reply)
                if isinstance(request, str):  # _REFRESH
                    await self.client.nodes_manager.initialize()
                    reply = None
                    continue
                pipe = _pipeline(self.client, request)
                try:
                    reply = list(await pipe.execute(raise_on_error=False))
                except Exception as error:
                    reply = [topology_race(error)] * len(request)
        except StopIteration as done:
            result: list[Any] = done.value
            return result
        except Exception as error:
            return [topology_race(error)] * len(fan.steps)


def _aim(client: Any, step: Step, watch: _Watch) -> tuple[Any, str | None]:
    """Where a cluster step goes: a node to target (a SCAN page) or None (the
    client routes it by key), and the master's name; raises the outage's
    short circuit when that master is being skipped."""
    if type(step) is Scan:
        target = _scan_target(client, step)
        name: str | None = target.name
    else:
        key = _first_key(step)
        found = None if key is None else _primary(client, key)
        target, name = None, None if found is None else found[0].name
    skipped = watch.skipped(name)
    if skipped is not None:
        raise skipped
    return target, name


def _seen_failure(error: Exception, name: str | None, watch: _Watch) -> BaseException:
    """What a failed cluster step raises (redis-py's topology races as the
    connection errors they stand for), told to the master's outage watch."""
    raised = topology_race(error)
    watch.saw(name, raised)
    return raised


def _pipeline(client: Any, request: list[tuple[Any, Any]]) -> Any:
    """A non-transactional pipeline (sync or asyncio cluster client) holding
    ``request``'s commands, each sent to its target node or routed by key."""
    pipe = client.pipeline(transaction=False)
    for args, target in request:
        if target is None:
            pipe.execute_command(*args)
        else:
            pipe.execute_command(*args, target_nodes=target)
    return pipe
