"""Whether freezegun has time in hand, found without importing freezegun.

time-machine, which ``frozen_clock`` runs on, and freezegun both replace
``time.time`` and ``datetime``; they cannot both be in charge. time-machine
refuses to start while freezegun is active, and freezegun started on top of
time-machine hides every ``frozen_clock.advance()``. This module only looks
at what is already imported: a process that never imported freezegun has no
freezegun in use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any


def freezegun_use(test_function: Any = None, fixturenames: Iterable[str] = ()) -> str | None:
    """How freezegun is in use for a test, in words for an error message, or None.

    ``test_function`` is the test (checked for a ``@freeze_time`` decorator),
    ``fixturenames`` the fixtures it requests (checked for ``freezer``).
    """
    freezegun = sys.modules.get("freezegun")
    if freezegun is None:
        return None
    api = sys.modules.get("freezegun.api")
    if api is not None and getattr(api, "freeze_factories", None):
        return "freezegun is freezing time already (freeze_time(...) or the freezer fixture)"
    if "freezer" in fixturenames:
        return "the test uses the freezer fixture (pytest-freezer), which runs freezegun"
    where = getattr(freezegun, "__file__", None)
    if where and _decorated_by(test_function, os.path.dirname(where) + os.sep):
        return "the test is decorated with freezegun's @freeze_time(...)"
    return None


def _decorated_by(function: Any, package_dir: str) -> bool:
    """Whether a wrapper defined in ``package_dir`` wraps ``function`` (functools.wraps chain)."""
    seen: set[int] = set()
    while function is not None and id(function) not in seen:
        seen.add(id(function))
        code = getattr(function, "__code__", None)
        if code is not None and code.co_filename.startswith(package_dir):
            return True
        function = getattr(function, "__wrapped__", None)
    return False


def refusal(how: str) -> str:
    """The one message for frozen_clock meeting freezegun: what was found, and what to do."""
    return (
        f"frozen_clock cannot run together with freezegun: {how}. "
        "frozen_clock runs on time-machine, and freezegun and time-machine each replace "
        "time.time() and datetime, so only one of them can be in charge (freezegun would "
        "hide frozen_clock.advance(), or time-machine refuses to start). "
        "Use frozen_clock alone in this test (frozen_clock.move_to(datetime) for a fixed "
        "date, frozen_clock.advance(seconds) to move on), or time-machine's time_machine "
        "fixture, instead of freeze_time or the freezer fixture."
    )
