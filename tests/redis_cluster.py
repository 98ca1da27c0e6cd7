"""A throwaway Redis Cluster on loopback: masters with replicas, for tests and benchmarks.

Plain functions and one class, no pytest (``benchmarks/bench_cluster.py``
uses it too), built on ``RedisServer``: every node is a ``redis-server`` in
cluster mode on free 127.0.0.1 ports (its cluster bus on a second free port,
``cluster-port``), persistence off, its ``nodes.conf`` in a temporary
directory. ``redis-cli --cluster create`` assigns the slots and the replicas;
``start`` returns once every node reports ``cluster_state:ok``, agrees on
the masters, and every replica's link to its master is up.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from tests.redis_server import RedisServer, free_port


def _command(client: redis.Redis, *args: Any) -> Any:
    """``execute_command``, which redis-py leaves unannotated."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def redis_cli_binary() -> str | None:
    """The path of ``redis-cli``, or None when it is not installed."""
    return shutil.which("redis-cli") or (
        "/usr/bin/redis-cli" if shutil.which("/usr/bin/redis-cli") else None
    )


class LocalCluster:
    """``masters`` masters with ``replicas`` replicas each, on loopback.

    ``node_timeout`` (ms) is the cluster's ``cluster-node-timeout``: how long
    a silent master is given before its replica takes over. ``kill(port)``
    stops a node with SIGKILL (no goodbye to its peers), ``restart(port)``
    brings it back with its ``nodes.conf`` (it rejoins as what the cluster
    now says it is).
    """

    def __init__(
        self,
        server_binary: str,
        cli_binary: str,
        *,
        masters: int = 3,
        replicas: int = 1,
        node_timeout: int = 1000,
    ) -> None:
        self.server_binary = server_binary
        self.cli_binary = cli_binary
        self.masters = masters
        self.replicas = replicas
        self.node_timeout = node_timeout
        self.directory = Path(tempfile.mkdtemp(prefix="conncache-cluster-"))
        self.nodes: list[RedisServer] = [self._new_node() for _ in range(masters * (1 + replicas))]

    def _new_node(self) -> RedisServer:
        """A node on two free ports (its clients', its cluster bus's), not started."""
        port = free_port()
        return RedisServer(
            self.server_binary,
            port,
            [
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                str(free_port()),
                "--cluster-config-file",
                str(self.directory / f"nodes-{port}.conf"),
                "--cluster-node-timeout",
                str(self.node_timeout),
                "--dir",
                str(self.directory),
                # A replica's first sync starts at once (the default
                # waits 5 s for more replicas to share it), and a master
                # pings its replicas every second, so that their offset
                # moves and the cluster lists them (CLUSTER SLOTS leaves
                # out a replica at offset 0) in a second, not in ten.
                "--repl-diskless-sync-delay",
                "0",
                "--repl-ping-replica-period",
                "1",
            ],
        )

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def url(self) -> str:
        """The URL of the first node (any node will do for a cluster client)."""
        return self.nodes[0].url

    def start(self, timeout: float = 60.0) -> None:
        """Start every node, create the cluster, and wait until it is whole."""
        try:
            for position in range(len(self.nodes)):
                self._start_node(position)
            subprocess.run(
                [
                    self.cli_binary,
                    "--cluster",
                    "create",
                    *[f"127.0.0.1:{port}" for port in self.ports],
                    "--cluster-replicas",
                    str(self.replicas),
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=timeout,
            )
            self.wait_until_whole(timeout)
        except BaseException:
            self.stop()
            raise

    def _start_node(self, position: int, attempts: int = 3) -> None:
        """Start the node at ``position``; if it exits at once (a port that was free
        when picked was taken meanwhile, by another test process's server or an
        outgoing connection), try again on new ports."""
        for attempt in range(attempts):
            try:
                self.nodes[position].start()
                return
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                self.nodes[position] = self._new_node()

    def wait_until_whole(self, timeout: float = 60.0) -> None:
        """Until every running node says ``cluster_state:ok``, they agree on
        ``masters`` masters covering every slot, and every replica is in sync."""
        self._wait(timeout, replicas=self.replicas)

    def wait_until_serving(self, timeout: float = 60.0) -> None:
        """Until every running node says ``cluster_state:ok`` and they agree on
        ``masters`` masters covering every slot (after a failover, a master may
        have no replica left)."""
        self._wait(timeout, replicas=0)

    def _wait(self, timeout: float, replicas: int) -> None:
        deadline = time.monotonic() + timeout
        last = "not asked yet"
        while True:
            try:
                state = self._state(replicas)
                if state is None:
                    return
                last = state
            except redis.RedisError as error:
                last = f"{type(error).__name__}: {error}"
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster on {self.ports} is not whole: {last}")
            time.sleep(0.05)

    def _state(self, replicas: int) -> str | None:
        """None when the cluster is whole, else what is missing."""
        views = set()
        for node in self.running():
            client = self.client(node.port)
            try:
                info = client.cluster("info")
                if info.get("cluster_state") != "ok":
                    return f"127.0.0.1:{node.port} is {info.get('cluster_state')}"
                slots: list[list[Any]] = _command(client, "CLUSTER SLOTS")
                covered = sum(int(end) - int(start) + 1 for start, end, *_ in slots)
                if covered != 16384:
                    return f"127.0.0.1:{node.port} knows {covered} slots"
                if any(len(served) - 3 < replicas for served in slots):
                    return f"127.0.0.1:{node.port} does not list every replica yet"
                views.add(tuple(sorted((int(s[0]), int(s[2][1])) for s in slots)))
                role = client.info("replication")
                if replicas and role["role"] == "slave" and role.get("master_link_status") != "up":
                    return f"replica 127.0.0.1:{node.port} is not in sync"
            finally:
                client.close()
        if len(views) != 1:
            return "the nodes disagree on who serves which slots"
        masters = {port for _, port in next(iter(views))}
        if len(masters) != self.masters:
            return "not every master serves slots yet"
        if masters - {node.port for node in self.running()}:
            return "a master that is gone still serves slots"
        return None

    def running(self) -> list[RedisServer]:
        return [node for node in self.nodes if node.process is not None]

    def client(self, port: int) -> redis.Redis:
        """A plain client of one node (no cluster routing), without retries."""
        return redis.Redis(
            host="127.0.0.1", port=port, socket_timeout=5, single_connection_client=True
        )

    def primaries(self) -> list[int]:
        """The ports of the nodes that are masters now."""
        found = []
        for node in self.running():
            client = self.client(node.port)
            try:
                if client.info("replication")["role"] == "master":
                    found.append(node.port)
            finally:
                client.close()
        return found

    def replica_of(self, port: int) -> int:
        """The port of a replica of the master on ``port``."""
        client = self.client(port)
        try:
            info = client.info("replication")
        finally:
            client.close()
        return int(info["slave0"]["port"])

    def master_of(self, key: str) -> int:
        """The port of the master that serves ``key``'s slot now."""
        client = self.client(self.running()[0].port)
        try:
            slot = int(_command(client, "CLUSTER KEYSLOT", key))
            for start, end, master, *_ in _command(client, "CLUSTER SLOTS"):
                if int(start) <= slot <= int(end):
                    return int(master[1])
        finally:
            client.close()
        raise RuntimeError(f"no master serves the slot of {key!r}")

    def move_slot(self, slot: int, source: int, target: int, batch: int = 10) -> None:
        """Reshard ``slot`` from the master on ``source`` to the one on ``target``, keys
        and all, a ``batch`` of keys per MIGRATE (as ``redis-cli --cluster reshard``
        does): clients meet ASK and TRYAGAIN meanwhile, MOVED after."""
        source_client, target_client = self.client(source), self.client(target)
        try:
            source_id = _command(source_client, "CLUSTER MYID")
            target_id = _command(target_client, "CLUSTER MYID")
            _command(target_client, "CLUSTER SETSLOT", slot, "IMPORTING", source_id)
            _command(source_client, "CLUSTER SETSLOT", slot, "MIGRATING", target_id)
            while names := _command(source_client, "CLUSTER GETKEYSINSLOT", slot, batch):
                _command(source_client, "MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *names)
                time.sleep(0.01)  # let clients meet the slot half moved
            # The new owner first, then the old one, then the others.
            others = [port for port in self.primaries() if port not in (source, target)]
            for port in [target, source, *others]:
                client = self.client(port)
                try:
                    _command(client, "CLUSTER SETSLOT", slot, "NODE", target_id)
                finally:
                    client.close()
        finally:
            source_client.close()
            target_client.close()

    def node(self, port: int) -> RedisServer:
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(port)

    def kill(self, port: int) -> None:
        """SIGKILL the node on ``port``: gone at once, nothing saved, nothing said."""
        node = self.node(port)
        process, node.process = node.process, None
        if process is not None:
            process.kill()
            process.wait()
            if process.stderr is not None:
                process.stderr.close()

    def restart(self, port: int) -> None:
        self.node(port).start()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
