"""Values are JSON by default; pickle only when asked for."""

from __future__ import annotations

import pickle
from datetime import date
from typing import Any

import pytest

from pytest_conncache import ConnectionCache, JsonSerializer, PickleSerializer, RedisBackend
from tests.redis.fakes import FakeClock

Cache = ConnectionCache[Any]


def test_values_are_stored_as_json_by_default(cache: Cache, backend: RedisBackend) -> None:
    cache.set("k", {"ids": [1, 2], "name": "é"})
    raw = backend.client.get(f"{backend.namespace}:k")
    assert isinstance(raw, bytes)
    assert raw.endswith('\n{"ids":[1,2],"name":"é"}'.encode())
    assert isinstance(backend.serializer, JsonSerializer)


def test_a_value_json_cannot_hold_raises_and_stores_nothing(cache: Cache) -> None:
    with pytest.raises(TypeError, match=r"value for key 'k' cannot be stored .*date"):
        cache.set("k", date(2024, 1, 1))
    assert not cache.has("k")
    assert cache.stats.sets == 0


def test_get_or_set_with_an_unstorable_value_raises(cache: Cache) -> None:
    with pytest.raises(TypeError, match="cannot be stored"):
        cache.get_or_set("k", lambda: {1, 2})
    assert not cache.has("k")


def test_the_default_never_unpickles(
    cache: Cache, backend: RedisBackend, caplog: pytest.LogCaptureFixture
) -> None:
    backend.client.set(f"{backend.namespace}:k", b"inf inf\n" + pickle.dumps(date(2024, 1, 1)))
    assert cache.get("k", "default") == "default"
    assert "cache entry 'k' cannot be read" in caplog.text


def test_pickle_is_an_explicit_opt_in(backend: RedisBackend, clock: FakeClock) -> None:
    pickled = RedisBackend(
        backend.client, namespace=backend.namespace, serializer=PickleSerializer()
    )
    cache: Cache = ConnectionCache(clock=clock)
    cache.use_backend(pickled)
    cache.set("k", {date(2024, 1, 1): (1, 2)})
    assert cache.get("k") == {date(2024, 1, 1): (1, 2)}


def test_any_object_with_dumps_and_loads_is_a_serializer(
    backend: RedisBackend, clock: FakeClock
) -> None:
    class Upper:
        def dumps(self, value: Any) -> bytes:
            return str(value).upper().encode()

        def loads(self, data: bytes) -> Any:
            return data.decode()

    cache: Cache = ConnectionCache(clock=clock)
    cache.use_backend(RedisBackend(backend.client, namespace=backend.namespace, serializer=Upper()))
    cache.set("k", "abc")
    assert cache.get("k") == "ABC"


def test_a_serializer_without_dumps_and_loads_is_refused(backend: RedisBackend) -> None:
    with pytest.raises(TypeError, match="serializer"):
        RedisBackend(backend.client, namespace="x", serializer=object())  # type: ignore[arg-type]
