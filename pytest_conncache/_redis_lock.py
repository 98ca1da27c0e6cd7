"""The opt-in cross-process lock of a Redis-backed ``get_or_set``.

``SET {namespace}#lock:{key} <token> NX PX <lock_timeout>``: the process
that gets the lock computes and stores, then frees it with a
compare-and-delete script; the others poll for the value every
``lock_poll`` seconds and compute themselves after ``lock_timeout``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._redis_cache import RedisCache


class _Nothing:
    def __repr__(self) -> str:
        return "<nothing>"


NOTHING: Any = _Nothing()


class CrossProcessLock:
    """``with`` block around a leader's factory call.

    Enters with NOTHING when this process should compute (it holds the lock,
    the lock is off, Redis is unreachable, or waiting timed out), or with the
    value another process stored while this one waited.
    """

    def __init__(self, owner: RedisCache, key: str) -> None:
        self.owner = owner
        self.key = key
        self.token: bytes | None = None

    def __enter__(self) -> Any:
        owner = self.owner
        if not owner._backend.cross_process_lock:
            return NOTHING
        token = secrets.token_bytes(16)
        for state, found in _attempts(owner, self.key, token):
            if state is False:
                time.sleep(owner._backend.lock_poll)
                continue
            if state:
                self.token = token
            return found
        return NOTHING  # pragma: no cover - _attempts always ends with a decision

    def __exit__(self, *exc_info: object) -> None:
        if self.token is not None:
            self.owner._release(self.key, self.token)


class AsyncCrossProcessLock:
    """``async with`` twin of CrossProcessLock: waits with ``asyncio.sleep``,
    and makes its round trips in the default executor."""

    def __init__(self, owner: RedisCache, key: str) -> None:
        self.owner = owner
        self.key = key
        self.token: bytes | None = None

    async def __aenter__(self) -> Any:
        owner = self.owner
        if not owner._backend.cross_process_lock:
            return NOTHING
        token = secrets.token_bytes(16)
        attempts = _attempts(owner, self.key, token)
        while True:
            # Each attempt is a round trip: in the executor, off the event loop.
            state, found = await asyncio.to_thread(next, attempts)
            if state is False:
                await asyncio.sleep(owner._backend.lock_poll)
                continue
            if state:
                self.token = token
            return found

    async def __aexit__(self, *exc_info: object) -> None:
        if self.token is not None:
            await asyncio.to_thread(self.owner._release, self.key, self.token)


def _attempts(owner: RedisCache, key: str, token: bytes) -> Iterator[tuple[bool | None, Any]]:
    """Lock attempts until ours, unreachable, another's value, or the timeout.

    Yields (True, NOTHING) once the lock is ours, (None, value or NOTHING)
    when this process should stop waiting, (False, NOTHING) to sleep and retry.
    """
    name = owner._backend.lock_prefix + key
    deadline = time.monotonic() + owner._backend.lock_timeout
    while True:
        state = owner._try_lock(name, token)
        if state:
            # The previous holder may have stored its value and released the
            # lock since this process missed: look once more before computing.
            found = owner._peek_live(key)
            if found is not NOTHING:
                owner._release(key, token)
                yield None, found
            else:
                yield True, NOTHING
            return
        if state is None:
            yield None, NOTHING
            return
        found = owner._peek_live(key)
        if found is not NOTHING or time.monotonic() >= deadline:
            yield None, found
            return
        yield False, NOTHING
