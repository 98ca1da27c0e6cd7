"""Helpers that make thread interleavings deterministic without sleeping on guesses."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

WAIT_LIMIT = 10.0  # seconds before a helper gives up: a hang, not a timing check


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Poll ``predicate`` until it holds; fail (never pass) if it does not within the limit."""
    deadline = time.monotonic() + WAIT_LIMIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        time.sleep(0.001)


def blocked_in(thread: threading.Thread, function: str, file_suffix: str) -> bool:
    """True while ``thread`` has a frame of ``function`` from a file ending in ``file_suffix``."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == function and code.co_filename.endswith(file_suffix):
            return True
        frame = frame.f_back
    return False


def wait_until_waiting_on_flight(threads: Iterable[threading.Thread]) -> None:
    """Block until every thread waits on another thread's factory call."""
    pending = list(threads)
    wait_until(
        lambda: all(blocked_in(t, "result", "_flight.py") for t in pending),
        f"{len(pending)} threads to wait on a running factory",
    )


class Worker(threading.Thread):
    """A thread that keeps its target's return value or exception for the test to check."""

    def __init__(self, target: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._call = target
        self.value: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = self._call()
        except BaseException as error:  # handed to the test
            self.error = error

    def finish(self) -> Any:
        self.join(WAIT_LIMIT)
        if self.is_alive():
            raise AssertionError("worker thread did not finish")
        return self.value
