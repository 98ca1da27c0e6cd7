"""A throwaway redis-server on a free loopback port, for tests and benchmarks.

Plain functions and one small class, no pytest: ``benchmarks/bench_redis.py``
uses them too. Persistence is off and the server binds 127.0.0.1 only.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def redis_server_binary() -> str | None:
    """The path of ``redis-server``, or None when it is not installed."""
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if shutil.which("/usr/bin/redis-server") else None
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server subprocess; ``stop()`` and ``start()`` again keep the port.

    ``extra_args`` go at the end of the command line, on every start
    (``["--maxmemory", "4mb"]``, ``["--requirepass", "secret"]``).
    """

    def __init__(
        self, binary: str, port: int | None = None, extra_args: Sequence[str] = ()
    ) -> None:
        self.binary = binary
        self.port = port if port is not None else free_port()
        self.extra_args = tuple(extra_args)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and return once it answers PING (or asks for a password)."""
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # No retries of its own (this loop polls): redis-py's default retries
        # an AuthenticationError, a ConnectionError, with seconds of backoff.
        client = redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_connect_timeout=0.2,
            retry=Retry(NoBackoff(), 0),
        )
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.process.poll() is not None:
                    _, err = self.process.communicate()
                    self.process = None
                    raise RuntimeError(f"redis-server exited at start: {err.decode()}")
                try:
                    if client.ping():
                        return
                except redis.AuthenticationError:
                    return  # it answers, and wants a password (--requirepass)
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not answer PING on port {self.port}")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """Terminate the server (its data is lost: persistence is off) and wait for it."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def command(client: redis.Redis, *args: Any) -> Any:
    """``client.execute_command(*args)``, typed (redis-py leaves it untyped)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]
