"""Two processes on one namespace: what one invalidates, the other no longer sees."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from pytest_conncache import ConnectionCache, RedisBackend
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]


def _run_other_process(url: str, namespace: str, code: str) -> str:
    script = textwrap.dedent(
        f"""
        from pytest_conncache import ConnectionCache
        cache = ConnectionCache.from_url({url!r}, namespace={namespace!r})
        """
    ) + textwrap.dedent(code)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_invalidation_in_another_process_is_seen_here(
    redis_server: RedisServer, backend: RedisBackend
) -> None:
    cache: ConnectionCache[Any] = ConnectionCache()  # wall clock, as in production
    cache.use_backend(backend)
    cache.set("user-record:t1:1", {"name": "old"})
    cache.set("user-record:t1:2", {"name": "old"})
    cache.set("user-record:t2:1", {"name": "kept"})
    assert cache.get("user-record:t1:1") == {"name": "old"}

    out = _run_other_process(
        redis_server.url,
        backend.namespace,
        """
        print(cache.get("user-record:t2:1")["name"])
        print(cache.invalidate_prefix("user-record:t1:"))
        cache.set("connection:9", [1, 2])
        """,
    )

    assert out.split() == ["kept", "2"]
    assert cache.get("user-record:t1:1") is None
    assert cache.get("user-record:t1:2") is None
    assert cache.get("user-record:t2:1") == {"name": "kept"}
    assert cache.get("connection:9") == [1, 2]
