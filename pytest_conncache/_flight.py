"""Single-flight bookkeeping: one factory call per missing key, shared by its waiters."""

from __future__ import annotations

import threading
from typing import Any


class Flight:
    """One running factory call that other threads of the same key wait on.

    ``stale`` is set when the key is written or invalidated while the factory
    runs: its result still answers the callers already waiting, but is not
    stored, because it may predate the change that made it stale.
    """

    __slots__ = ("done", "value", "error", "stale")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.stale = False

    def resolve(self, value: Any) -> None:
        self.value = value
        self.done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()

    def result(self) -> Any:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value
