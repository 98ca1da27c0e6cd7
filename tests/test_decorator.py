"""cached: cache-aside around a function, keyed by its arguments, typed like the function."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import inspect
import pickle
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pytest_conncache
from pytest_conncache import ConnectionCache, assert_cached, assert_not_cached, cached
from tests.fakes import FakeClock
from tests.threadutil import WAIT_LIMIT, Worker, wait_until_waiting_on_flight

Cache = ConnectionCache[Any]


@dataclasses.dataclass(frozen=True)
class Connection:
    id: int
    opened: dt.datetime
    hosts: tuple[str, ...]


CONNECTION = Connection(7, dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.timezone.utc), ("a", "b"))


class Handle:
    """A value no serializer can store: only an in-memory cache holds it."""


class Calls:
    """Counts the calls of the functions under test."""

    def __init__(self) -> None:
        self.made: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.made.append(args)

    @property
    def count(self) -> int:
        return len(self.made)


@pytest.fixture
def calls() -> Calls:
    return Calls()


# -- calls and keys ------------------------------------------------------------------


def test_first_call_runs_the_function_and_stores_its_result(cache: Cache, calls: Calls) -> None:
    @cache.cached(key="user-connections:{user_token}")
    def connections(user_token: str) -> list[int]:
        calls(user_token)
        return [1, 2]

    assert connections("abc") == [1, 2]
    assert_cached("user-connections:abc", [1, 2], cache=cache)


def test_second_call_is_answered_from_the_cache(cache: Cache, calls: Calls) -> None:
    @cache.cached(key="user-connections:{user_token}")
    def connections(user_token: str) -> list[int]:
        calls(user_token)
        return [1, 2]

    connections("abc")
    assert connections("abc") == [1, 2]
    assert calls.count == 1


def test_other_arguments_are_another_entry(cache: Cache, calls: Calls) -> None:
    @cache.cached(key="user-connections:{user_token}")
    def connections(user_token: str) -> list[str]:
        calls(user_token)
        return [user_token]

    assert connections("abc") == ["abc"]
    assert connections("xyz") == ["xyz"]
    assert calls.made == [("abc",), ("xyz",)]


def test_positional_and_keyword_calls_share_one_entry(cache: Cache, calls: Calls) -> None:
    @cache.cached(key="user-record:{user_token}:{connection_id}")
    def record(user_token: str, connection_id: int) -> str:
        calls(user_token, connection_id)
        return "row"

    record("abc", 1)
    record("abc", connection_id=1)
    record(connection_id=1, user_token="abc")
    assert calls.count == 1


def test_defaults_are_part_of_the_key(cache: Cache) -> None:
    @cache.cached(key="user-connections:{user_token}:{limit}")
    def connections(user_token: str, limit: int = 10) -> list[int]:
        return list(range(limit))

    connections("abc")
    assert cache.keys() == ["user-connections:abc:10"]


def test_a_call_with_the_default_spelled_out_shares_the_entry(cache: Cache, calls: Calls) -> None:
    @cache.cached(key="user-connections:{user_token}:{limit}")
    def connections(user_token: str, limit: int = 10) -> int:
        calls(user_token, limit)
        return limit

    connections("abc")
    connections("abc", 10)
    assert calls.count == 1


def test_keyword_only_and_variadic_parameters_reach_the_function(cache: Cache) -> None:
    @cache.cached(key="report:{name}:{args}:{flag}:{options}")
    def report(name: str, *args: int, flag: bool = False, **options: str) -> list[Any]:
        return [name, list(args), flag, options]

    assert report("r", 1, 2, flag=True, style="x") == ["r", [1, 2], True, {"style": "x"}]
    assert cache.keys() == ["report:r:(1, 2):True:{'style': 'x'}"]


def test_positional_only_parameters_are_bound_like_the_function(cache: Cache) -> None:
    @cache.cached(key="pair:{a}:{b}")
    def pair(a: int, /, b: int) -> int:
        return a + b

    assert pair(1, b=2) == 3
    with pytest.raises(TypeError, match="positional-only"):
        pair(a=1, b=2)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "template",
    [
        "plain",
        "{token}",
        "a{{b}}c:{token}",
        "{n:03d}",
        "{n:=^9}",
        "{n:#x}",
        "{ratio:,.2f}",
        "{token!r}",
        "{token!a:>8}",
        "{user.id}:{user.name}",
        "{table[k]}:{table[0]}:{table[-1]}",
        "{token:>{n}}",
        "{token:{fill}<9}",
        'quote\'s "and" \\backslash\n:{token}',
    ],
)
def test_key_is_the_template_formatted_as_str_format_would(
    memory_cache: Cache, template: str
) -> None:
    @dataclasses.dataclass
    class User:
        id: int
        name: str

    arguments: dict[str, Any] = {
        "token": "tök",
        "n": 42,
        "ratio": 1234.5,
        "user": User(3, "ann"),
        "table": {"k": "v", 0: "zero", "-1": "minus"},
        "fill": "*",
    }

    @memory_cache.cached(key=template)
    def load(
        token: str, n: int, ratio: float, user: User, table: dict[Any, str], fill: str
    ) -> None:
        pass

    assert load.key(**arguments) == template.format(**arguments)


def test_key_method_returns_the_key_a_call_uses(cache: Cache) -> None:
    @cache.cached(key="user-connections:{user_token}:{limit}")
    def connections(user_token: str, limit: int = 10) -> list[int]:
        return []

    connections("abc")
    assert connections.key("abc") == "user-connections:abc:10"
    assert_cached(connections.key(user_token="abc"), [], cache=cache)


def test_function_that_raises_stores_nothing(cache: Cache, calls: Calls) -> None:
    @cache.cached(key="user-connections:{user_token}")
    def connections(user_token: str) -> list[int]:
        calls(user_token)
        if calls.count == 1:
            raise ConnectionError("api down")
        return [1]

    with pytest.raises(ConnectionError):
        connections("abc")
    assert connections("abc") == [1]
    assert calls.count == 2


def test_wrong_call_arguments_fail_like_the_function_and_store_nothing(
    cache: Cache, calls: Calls
) -> None:
    @cache.cached(key="user-connections:{user_token}")
    def connections(user_token: str) -> list[int]:
        calls(user_token)
        return [1]

    with pytest.raises(TypeError, match="missing 1 required positional argument: 'user_token'"):
        connections()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'token'"):
        connections("abc", token="x")  # type: ignore[call-arg]
    assert calls.count == 0
    assert cache.size() == 0


# -- what the wrapper looks like -------------------------------------------------------


def test_wrapper_keeps_the_name_docstring_and_signature(memory_cache: Cache) -> None:
    def connections(user_token: str, limit: int = 10) -> list[int]:
        """The user's connections."""
        return []

    wrapper = memory_cache.cached(key="user-connections:{user_token}")(connections)
    assert wrapper.__name__ == "connections"
    assert wrapper.__doc__ == "The user's connections."
    assert wrapper.__wrapped__ is connections
    assert inspect.signature(wrapper) == inspect.signature(connections)


def test_wrapper_of_an_async_function_is_a_coroutine_function(memory_cache: Cache) -> None:
    @memory_cache.cached(key="user-connections:{user_token}")
    async def connections(user_token: str) -> list[int]:
        return []

    class Service:
        @memory_cache.cached(key="record:{record_id}")
        async def record(self, record_id: int) -> str:
            return ""

    assert inspect.iscoroutinefunction(connections)
    assert inspect.iscoroutinefunction(Service().record)


MODULE_CACHE: Cache = ConnectionCache()


@MODULE_CACHE.cached(key="user-connections:{user_token}")
def module_connections(user_token: str) -> list[int]:
    return []


class Directory:
    @MODULE_CACHE.cached(key="entry:{name}")
    def entry(self, name: str) -> str:
        return name


def test_wrapper_pickles_by_reference() -> None:
    assert pickle.loads(pickle.dumps(module_connections)) is module_connections
    assert pickle.loads(pickle.dumps(Directory.entry)) is Directory.entry


# -- async ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_function_is_awaited_once_and_then_answered_from_the_cache(
    cache: Cache, calls: Calls
) -> None:
    @cache.cached(key="user-connections:{user_token}")
    async def connections(user_token: str) -> list[int]:
        calls(user_token)
        await asyncio.sleep(0)
        return [1, 2]

    assert await connections("abc") == [1, 2]
    assert await connections(user_token="abc") == [1, 2]
    assert calls.count == 1
    assert_cached("user-connections:abc", [1, 2], cache=cache)


@pytest.mark.asyncio
async def test_concurrent_coroutines_share_one_await(cache: Cache, calls: Calls) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    @cache.cached(key="user-connections:{user_token}")
    async def connections(user_token: str) -> list[int]:
        calls(user_token)
        started.set()
        await release.wait()
        return [1, 2]

    tasks = [asyncio.ensure_future(connections("abc")) for _ in range(5)]
    await asyncio.wait_for(started.wait(), WAIT_LIMIT)
    release.set()
    assert await asyncio.wait_for(asyncio.gather(*tasks), WAIT_LIMIT) == [[1, 2]] * 5
    assert calls.count == 1


# -- threads -------------------------------------------------------------------------


def test_concurrent_threads_share_one_call(cache: Cache, calls: Calls) -> None:
    started, release = threading.Event(), threading.Event()

    @cache.cached(key="user-connections:{user_token}")
    def connections(user_token: str) -> list[int]:
        calls(user_token)
        started.set()
        assert release.wait(WAIT_LIMIT)
        return [1, 2]

    leader = Worker(lambda: connections("abc"))
    leader.start()
    assert started.wait(WAIT_LIMIT)
    waiters = [Worker(lambda: connections(user_token="abc")) for _ in range(4)]
    for waiter in waiters:
        waiter.start()
    wait_until_waiting_on_flight(waiters)
    release.set()
    assert [worker.finish() for worker in [leader, *waiters]] == [[1, 2]] * 5
    assert calls.count == 1


# -- methods -------------------------------------------------------------------------


def make_service(cache: Cache) -> type[Any]:
    """A service class whose methods are cached in ``cache``; its templates read ``self``."""

    class CachedService:
        def __init__(self, tenant: str, calls: Calls | None = None) -> None:
            self.tenant = tenant
            self.calls = calls or Calls()

        @cache.cached(key="connection:{self.tenant}:{connection_id}")
        def connection(self, connection_id: int) -> str:
            self.calls(connection_id)
            return f"{self.tenant}-{connection_id}"

        @cache.cached(key="record:{self.tenant}:{record_id}")
        async def record(self, record_id: int) -> str:
            self.calls(record_id)
            return f"{self.tenant}-record-{record_id}"

        @staticmethod
        @cache.cached(key="double:{x}")
        def double(x: int) -> int:
            return 2 * x

    return CachedService


def test_method_key_reads_self(cache: Cache, calls: Calls) -> None:
    service = make_service(cache)("acme", calls)
    assert service.connection(3) == "acme-3"
    assert service.connection(connection_id=3) == "acme-3"
    assert calls.count == 1
    assert_cached("connection:acme:3", "acme-3", cache=cache)


def test_method_of_another_instance_is_another_entry(cache: Cache) -> None:
    service_type = make_service(cache)
    service_type("acme").connection(3)
    service_type("globex").connection(3)
    assert sorted(cache.keys()) == ["connection:acme:3", "connection:globex:3"]


def test_method_called_on_the_class_takes_self_explicitly(cache: Cache) -> None:
    service_type = make_service(cache)
    service = service_type("acme")
    assert service_type.connection(service, 3) == "acme-3"
    assert service_type.connection.key(service, 3) == "connection:acme:3"


def test_bound_method_key_and_invalidate_bind_self(cache: Cache) -> None:
    service = make_service(cache)("acme")
    service.connection(3)
    assert service.connection.key(3) == "connection:acme:3"
    assert service.connection.invalidate(3) is True
    assert_not_cached("connection:acme:3", cache=cache)


def test_bound_method_keeps_the_signature_without_self(memory_cache: Cache) -> None:
    service = make_service(memory_cache)("acme")
    assert list(inspect.signature(service.connection).parameters) == ["connection_id"]
    assert service.connection.__name__ == "connection"


@pytest.mark.asyncio
async def test_async_method_is_cached(cache: Cache, calls: Calls) -> None:
    service = make_service(cache)("acme", calls)
    assert await service.record(5) == "acme-record-5"
    assert await service.record(5) == "acme-record-5"
    assert calls.count == 1
    assert await service.record.ainvalidate(5) is True


def test_staticmethod_above_cached_works(cache: Cache) -> None:
    service_type = make_service(cache)
    assert service_type.double(4) == 8
    assert service_type("acme").double(4) == 8
    assert cache.keys() == ["double:4"]


def test_classmethod_is_refused_with_advice(memory_cache: Cache) -> None:
    with pytest.raises(TypeError, match="does not wrap classmethods"):

        class Service:
            @memory_cache.cached(key="k:{x}")
            @classmethod
            def load(cls, x: int) -> int:
                return x


def test_staticmethod_object_below_cached_is_refused_with_advice(memory_cache: Cache) -> None:
    with pytest.raises(TypeError, match="put @staticmethod above it"):

        class Service:
            @memory_cache.cached(key="k:{x}")
            @staticmethod
            def load(x: int) -> int:
                return x


# -- ttl -----------------------------------------------------------------------------


def test_ttl_in_seconds(cache: Cache, clock: FakeClock) -> None:
    @cache.cached(key="user-connections:{user_token}", ttl=120)
    def connections(user_token: str) -> list[int]:
        return [1]

    connections("abc")
    clock.advance(119)
    assert_cached("user-connections:abc", cache=cache)
    clock.advance(1)
    assert_not_cached("user-connections:abc", cache=cache)


def test_ttl_as_timedelta(cache: Cache, clock: FakeClock) -> None:
    @cache.cached(key="user-connections:{user_token}", ttl=dt.timedelta(minutes=5))
    def connections(user_token: str) -> list[int]:
        return [1]

    connections("abc")
    clock.advance(299)
    assert_cached("user-connections:abc", cache=cache)
    clock.advance(1)
    assert_not_cached("user-connections:abc", cache=cache)


def test_ttl_callable_gets_the_result(cache: Cache, clock: FakeClock) -> None:
    @cache.cached(key="user-connections:{user_token}", ttl=lambda ids: 60 if ids else 5)
    def connections(user_token: str) -> list[int]:
        return [1] if user_token == "abc" else []

    connections("abc")
    connections("nobody")
    clock.advance(5)
    assert_cached("user-connections:abc", cache=cache)
    assert_not_cached("user-connections:nobody", cache=cache)


def test_default_ttl_is_the_caches(cache: Cache, clock: FakeClock) -> None:
    @cache.cached(key="user-connections:{user_token}")
    def connections(user_token: str) -> list[int]:
        return [1]

    connections("abc")
    assert cache.ttl_remaining("user-connections:abc") == cache.default_ttl


# -- cache_if and tags ---------------------------------------------------------------


def test_cache_if_false_returns_the_result_without_storing_it(cache: Cache, calls: Calls) -> None:
    @cache.cached(key="user-record:{user_token}", cache_if=lambda row: row is not None)
    def record(user_token: str) -> dict[str, int] | None:
        calls(user_token)
        return None

    assert record("abc") is None
    assert record("abc") is None
    assert calls.count == 2
    assert cache.size() == 0


def test_tags_are_templates_and_invalidate_tag_removes_the_entries(cache: Cache) -> None:
    @cache.cached(key="user-connections:{user_token}", tags=["user:{user_token}"])
    def connections(user_token: str) -> list[int]:
        return [1]

    @cache.cached(
        key="user-record:{user_token}:{connection_id}",
        tags=("user:{user_token}", "connection:{connection_id}"),
    )
    def record(user_token: str, connection_id: int) -> str:
        return "row"

    connections("abc")
    record("abc", 1)
    record("xyz", 1)
    assert cache.invalidate_tag("user:abc") == 2
    assert cache.keys() == ["user-record:xyz:1"]
    assert cache.invalidate_tag("connection:1") == 1


# -- invalidation --------------------------------------------------------------------


def test_invalidate_removes_that_calls_entry_only(cache: Cache) -> None:
    @cache.cached(key="user-connections:{user_token}")
    def connections(user_token: str) -> list[int]:
        return [1]

    connections("abc")
    connections("xyz")
    assert connections.invalidate(user_token="abc") is True
    assert cache.keys() == ["user-connections:xyz"]
    assert connections.invalidate("abc") is False


def test_after_invalidate_the_next_call_runs_the_function(cache: Cache, calls: Calls) -> None:
    @cache.cached(key="user-connections:{user_token}")
    def connections(user_token: str) -> list[int]:
        calls(user_token)
        return [calls.count]

    connections("abc")
    connections.invalidate("abc")
    assert connections("abc") == [2]


@pytest.mark.asyncio
async def test_ainvalidate_removes_that_calls_entry(cache: Cache) -> None:
    @cache.cached(key="user-connections:{user_token}")
    async def connections(user_token: str) -> list[int]:
        return [1]

    await connections("abc")
    assert await connections.ainvalidate("abc") is True
    assert_not_cached("user-connections:abc", cache=cache)


# -- value types ---------------------------------------------------------------------


def test_return_annotation_types_the_value_read_back(cache: Cache, calls: Calls) -> None:
    @cache.cached(key="connection:{connection_id}")
    def connection(connection_id: int) -> Connection:
        calls(connection_id)
        return CONNECTION

    connection(7)
    again = connection(7)
    assert calls.count == 1
    assert again == CONNECTION
    assert type(again) is Connection
    assert type(again.opened) is dt.datetime
    assert type(again.hosts) is tuple


@pytest.mark.asyncio
async def test_async_return_annotation_types_the_value_read_back(cache: Cache) -> None:
    @cache.cached(key="connection:{connection_id}")
    async def connection(connection_id: int) -> Connection:
        return CONNECTION

    await connection(7)
    again = await connection(7)
    assert again == CONNECTION
    assert type(again) is Connection


def test_explicit_value_type_overrides_the_annotation(cache: Cache) -> None:
    @cache.cached(key="connection:{connection_id}", value_type=Connection)
    def connection(connection_id: int) -> Any:
        return CONNECTION

    connection(7)
    assert type(connection(7)) is Connection


def test_annotation_no_codec_can_decode_still_caches_in_memory(memory_cache: Cache) -> None:
    handle = Handle()

    @memory_cache.cached(key="handle:{name}")
    def open_handle(name: str) -> Handle:
        return handle

    open_handle("h")
    assert open_handle("h") is handle


# -- the shared connection_cache -----------------------------------------------------


def test_module_level_cached_uses_the_shared_connection_cache(
    connection_cache: Cache, calls: Calls
) -> None:
    @cached(key="user-connections:{user_token}")
    def connections(user_token: str) -> list[int]:
        calls(user_token)
        return [1, 2]

    connections("abc")
    assert connections("abc") == [1, 2]
    assert calls.count == 1
    assert_cached("user-connections:abc", [1, 2])
    assert connections.invalidate("abc") is True
    assert_not_cached("user-connections:abc")


def test_module_level_cached_looks_the_singleton_up_at_call_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @cached(key="user-connections:{user_token}")
    def connections(user_token: str) -> list[int]:
        return [1]

    replacement: Cache = ConnectionCache()
    monkeypatch.setattr(pytest_conncache._singleton, "connection_cache", replacement)
    connections("abc")
    assert replacement.keys() == ["user-connections:abc"]


# -- bad decorations -----------------------------------------------------------------


def test_template_field_naming_no_parameter_fails_at_decoration(memory_cache: Cache) -> None:
    def connections(user_token: str) -> list[int]:
        return []

    with pytest.raises(
        ValueError, match=r"names \{usr_token\}.*test_decorator\.test_template_field"
    ):
        memory_cache.cached(key="user-connections:{usr_token}")(connections)


def test_tag_template_naming_no_parameter_fails_at_decoration(memory_cache: Cache) -> None:
    def connections(user_token: str) -> list[int]:
        return []

    with pytest.raises(ValueError, match=r"tags\[1\] template 'team:\{team\}' names \{team\}"):
        memory_cache.cached(key="k:{user_token}", tags=["user:{user_token}", "team:{team}"])(
            connections
        )


def test_attribute_field_is_checked_by_its_root_name(memory_cache: Cache) -> None:
    def connections(user_token: str) -> list[int]:
        return []

    with pytest.raises(ValueError, match=r"names \{user\}, which is not a parameter"):
        memory_cache.cached(key="user-connections:{user.id}")(connections)


@pytest.mark.parametrize("template", ["user:{}", "user:{0}"])
def test_positional_template_field_is_refused(memory_cache: Cache, template: str) -> None:
    def connections(user_token: str) -> list[int]:
        return []

    with pytest.raises(ValueError, match="positional field.*name a parameter instead"):
        memory_cache.cached(key=template)(connections)


@pytest.mark.parametrize("template", ["user:{user_token", "user:{user_token!x}"])
def test_malformed_template_is_refused(memory_cache: Cache, template: str) -> None:
    def connections(user_token: str) -> list[int]:
        return []

    with pytest.raises(ValueError, match="key template"):
        memory_cache.cached(key=template)(connections)


@pytest.mark.parametrize("key", [None, 5, b"user:{x}"])
def test_key_that_is_not_a_str_is_refused(memory_cache: Cache, key: Any) -> None:
    with pytest.raises(TypeError, match="key must be a str template"):
        memory_cache.cached(key=key)


def test_bare_decorator_says_how_to_call_it(memory_cache: Cache) -> None:
    def connections(user_token: str) -> list[int]:
        return []

    with pytest.raises(TypeError, match=r"write @cached\(key=...\), not a bare @cached"):
        memory_cache.cached(connections)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ttl", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (float("nan"), ValueError),
        ("5", TypeError),
        (True, TypeError),
    ],
)
def test_bad_ttl_is_refused_at_decoration(
    memory_cache: Cache, ttl: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="ttl"):
        memory_cache.cached(key="k", ttl=ttl)


def test_lone_str_tags_are_refused_with_advice(memory_cache: Cache) -> None:
    with pytest.raises(TypeError, match=r"wrap a single tag in a list, tags=\['user:\{x\}'\]"):
        memory_cache.cached(key="k:{x}", tags="user:{x}")


@pytest.mark.parametrize(("tags", "error"), [([1], TypeError), ([""], ValueError), (5, TypeError)])
def test_bad_tags_are_refused(memory_cache: Cache, tags: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="tags"):
        memory_cache.cached(key="k", tags=tags)


def test_cache_if_that_is_not_callable_is_refused(memory_cache: Cache) -> None:
    with pytest.raises(TypeError, match="cache_if must be callable"):
        memory_cache.cached(key="k", cache_if=True)  # type: ignore[arg-type]


def test_generator_function_is_refused(memory_cache: Cache) -> None:
    def connections(user_token: str) -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="generator function"):
        memory_cache.cached(key="k:{user_token}")(connections)


# -- type checking -------------------------------------------------------------------

TYPED_PRELUDE = """
    from __future__ import annotations

    from pytest_conncache import ConnectionCache, cached

    cache: ConnectionCache[object] = ConnectionCache()


    @cache.cached(key="user-connections:{user_token}")
    def connections(user_token: str, limit: int = 10) -> list[int]:
        return [limit]


    @cached(key="user-record:{user_token}:{connection_id}", ttl=120)
    async def record(user_token: str, connection_id: int) -> dict[str, int]:
        return {user_token: connection_id}


    class Service:
        @cache.cached(key="connection:{connection_id}")
        def connection(self, connection_id: int) -> str:
            return str(connection_id)

        @staticmethod
        @cached(key="double:{x}")
        def double(x: int) -> int:
            return 2 * x

"""


def run_mypy(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    module = tmp_path / "snippet.py"
    module.write_text(textwrap.dedent(TYPED_PRELUDE) + textwrap.dedent(body))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            str(module),
        ],
        # Outside the checkout: the package is checked as a user's mypy sees it,
        # installed, not as our own source against whatever redis-py
        # annotations this venv has (the floor job's redis-py 5 has others).
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_mypy_accepts_calls_with_the_functions_argument_types(tmp_path: Path) -> None:
    result = run_mypy(
        tmp_path,
        """
        async def main() -> None:
            ids: list[int] = connections("abc")
            ids = connections(user_token="abc", limit=5)
            row: dict[str, int] = await record("abc", 1)
            name: str = Service().connection(3)
            name = Service.connection(Service(), connection_id=3)
            doubled: int = Service.double(1)
            key: str = connections.key("abc")
            removed: bool = connections.invalidate("abc")
            removed = Service().connection.invalidate(3)
            removed = await record.ainvalidate("abc", connection_id=1)
            print(ids, row, name, doubled, key, removed)
        """,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_rejects_calls_with_wrong_argument_types(tmp_path: Path) -> None:
    body = """
        async def main() -> None:
            connections(1)  # wrong
            connections("abc", limit="5")  # wrong
            await record("abc", "1")  # wrong
            Service().connection("3")  # wrong
            Service.double("2")  # wrong
            connections.invalidate(1)  # wrong
            Service().connection.key("3")  # wrong
    """
    result = run_mypy(tmp_path, body)
    source = (tmp_path / "snippet.py").read_text().splitlines()
    wrong = {n for n, line in enumerate(source, start=1) if line.endswith("# wrong")}
    flagged = {
        int(line.split(":")[1])
        for line in result.stdout.splitlines()
        if line.endswith("[arg-type]")
    }
    assert result.returncode == 1, result.stdout + result.stderr
    assert flagged == wrong, result.stdout
    assert f"Found {len(wrong)} errors" in result.stdout
