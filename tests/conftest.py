"""Fixtures shared by the core's tests."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_conncache import ConnectionCache
from tests.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> ConnectionCache[Any]:
    return ConnectionCache(10.0, clock=clock)
