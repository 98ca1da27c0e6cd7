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

    __slots__ = ("key", "owner", "done", "value", "error", "stale")

    def __init__(self, key: str) -> None:
        self.key = key
        self.owner = threading.get_ident()  # the thread that runs the factory
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
        if self.owner == threading.get_ident() and not self.done.is_set():
            # The factory asked for its own key: waiting would never end.
            raise RecursionError(
                f"get_or_set({self.key!r}) was called from its own factory; "
                "the thread would wait for itself forever"
            )
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value
