"""The pytest plugin: fixtures, per-test cache isolation and ``--conncache-report``.

Registered through the ``pytest11`` entry point ``conncache``; disable it
with ``-p no:conncache``. Everything pytest-specific in the package is here.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from ._cache import ConnectionCache
from ._freezegun import freezegun_use, refusal
from ._frozen import FrozenClock, TravelControl
from ._hooks import observers
from ._registry import live_caches
from ._report import Row, TestCounter, table, touched, write_json
from ._singleton import connection_cache as _singleton

_STATS_ATTR = "conncache_stats"
_MARKER = "conncache"
# The ini's conncache_isolate, read once at configure time.
_ISOLATE_BY_DEFAULT = pytest.StashKey[bool]()


class ReportHookSpecs:
    @pytest.hookspec
    def pytest_conncache_report(self, config: pytest.Config, rows: list[dict[str, Any]]) -> None:
        """Called once on the controller after the run with one dict per test that
        touched a cache: ``nodeid`` and the counters ``hits``, ``misses``, ``sets``,
        ``invalidations``, ``expirations``, ``evictions``."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(ReportHookSpecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conncache", "cache statistics and isolation (pytest-conncache)")
    group.addoption(
        "--conncache-report",
        action="store_true",
        default=None,
        help="print a table of cache hits, misses and invalidations per test",
    )
    group.addoption(
        "--conncache-report-json",
        metavar="PATH",
        default=None,
        help="write the per-test cache counts as JSON to PATH",
    )
    group.addoption(
        "--conncache-backend",
        metavar="URL",
        default=None,
        help="run connection_cache and the singleton on Redis at URL "
        "(redis://127.0.0.1:6379/0), in a fresh namespace per test",
    )
    parser.addini(
        "conncache_backend",
        default="",
        help="like --conncache-backend: a redis:// URL for the singleton during tests",
    )
    parser.addini(
        "conncache_isolate",
        type="bool",
        default=True,
        help="empty every ConnectionCache before each test (default: true)",
    )
    parser.addini(
        "conncache_report",
        type="bool",
        default=False,
        help="print the conncache report as if --conncache-report were given",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(isolate=True): per-test settings of pytest-conncache; "
        "isolate=False keeps every cache's data from the previous test",
    )
    config.stash[_ISOLATE_BY_DEFAULT] = bool(config.getini("conncache_isolate"))
    url = config.getoption("conncache_backend") or config.getini("conncache_backend")
    namespaces = RedisNamespaces(str(url)) if url else None
    option = config.getoption("conncache_report")
    show_table = bool(config.getini("conncache_report") if option is None else option)
    json_path = config.getoption("conncache_report_json")
    # Each part registers only when wanted, so a run without the report or
    # Redis pays for no hook it does not use.
    config.pluginmanager.register(Isolation(namespaces), "conncache-isolation")
    if namespaces is not None:
        config.pluginmanager.register(namespaces, "conncache-redis")
    if show_table or json_path:
        report = ReportCollector(config, show_table, Path(json_path) if json_path else None)
        config.pluginmanager.register(report, "conncache-report")


class Isolation:
    """Empties every in-memory cache and zeroes every cache's stats before each test."""

    def __init__(self, namespaces: RedisNamespaces | None) -> None:
        self.namespaces = namespaces

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        # Before any fixture of this test runs: what setup does counts, what
        # the previous test left behind does not.
        isolate = _isolation_wanted(item)
        for cache in live_caches():
            # Only memory is emptied: the plugin never deletes data on a Redis
            # server it was not pointed at (--conncache-backend isolates the
            # singleton by giving each test a namespace of its own).
            cache.reset(empty=isolate and not cache.shared)
        if self.namespaces is not None:
            self.namespaces.enter(_singleton)


class ReportCollector:
    """--conncache-report and --conncache-report-json: per-test counts, then the table."""

    def __init__(self, config: pytest.Config, show_table: bool, json_path: Path | None) -> None:
        self.config = config
        self.show_table = show_table
        self.json_path = json_path
        self.is_worker = hasattr(config, "workerinput")
        self.rows: dict[str, Row] = {}
        self.counter = TestCounter()
        observers.register(self.counter)

    def pytest_unconfigure(self) -> None:
        if observers.is_registered(self.counter):
            observers.unregister(self.counter)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self) -> None:
        # Before any fixture of the test runs, so that setup counts.
        self.counter.restart()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        counts = getattr(report, _STATS_ATTR, None)
        if counts is None:
            # This process ran the test. Attach the counts before anything
            # else sees the report: pytest-xdist's worker serialises it next,
            # and plain ints reach the controller exactly as counted here.
            counts = self.counter.snapshot()
            setattr(report, _STATS_ATTR, counts)
        if isinstance(counts, dict) and touched(counts):
            self.rows[report.nodeid] = {"nodeid": report.nodeid, **counts}

    def sorted_rows(self) -> list[Row]:
        # Sorted by node id, so serial and xdist runs print the same table.
        return [self.rows[nodeid] for nodeid in sorted(self.rows)]

    def pytest_sessionfinish(self) -> None:
        if self.is_worker:
            return
        rows = self.sorted_rows()
        self.config.hook.pytest_conncache_report(config=self.config, rows=rows)
        if self.json_path is not None:
            write_json(self.json_path, rows)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.show_table or self.is_worker:
            return
        terminalreporter.write_sep("=", "conncache report")
        rows = self.sorted_rows()
        if not rows:
            terminalreporter.write_line("no test touched a ConnectionCache")
            return
        for text in table(rows, self.config.get_terminal_writer().fullwidth):
            terminalreporter.write_line(text)
        if self.json_path is not None:
            terminalreporter.write_line(f"conncache report written to {self.json_path}")


class RedisNamespaces:
    """--conncache-backend: the singleton on Redis, in a namespace of its own per test."""

    def __init__(self, url: str) -> None:
        try:
            from ._redis import RedisBackend
        except ImportError as error:
            raise pytest.UsageError(
                f"--conncache-backend={url} needs redis-py: pip install 'pytest-conncache[redis]'"
                f" ({error})"
            ) from None
        self.url = url
        # Unique per process, so pytest-xdist workers never share a namespace.
        self.run_id = f"conncache-test-{uuid.uuid4().hex[:12]}"
        try:
            self.base = RedisBackend.from_url(url, namespace=self.run_id)
        except ValueError as error:
            raise pytest.UsageError(f"--conncache-backend: bad URL {url!r}: {error}") from None
        self.count = 0
        self.current: Any = None

    def pytest_report_header(self) -> str:
        return f"conncache: connection_cache on {self.url}, one namespace per test"

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, nextitem: pytest.Item | None) -> Generator[None, None, None]:
        yield
        # After every fixture finalizer: the namespace goes unless the next
        # test wants this one's data (isolation off).
        if nextitem is None or _isolation_wanted(nextitem):
            self.leave()

    def pytest_unconfigure(self) -> None:
        self.close()

    def enter(self, cache: ConnectionCache[Any]) -> None:
        if self.current is None:
            self.count += 1
            self.current = self.base.with_namespace(f"{self.run_id}-{self.count}")
            cache.use_backend(self.current)

    def leave(self) -> None:
        if self.current is not None:
            self.current.drop_namespace()
            self.current = None

    def close(self) -> None:
        self.leave()
        _singleton.use_backend(None)
        self.base.client.close()


def _isolation_wanted(item: pytest.Item) -> bool:
    marker = item.get_closest_marker(_MARKER)
    if marker is not None:
        unknown = set(marker.kwargs) - {"isolate"}
        if marker.args or unknown:
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.conncache takes only isolate=True/False, "
                f"got args={marker.args!r} kwargs={marker.kwargs!r}"
            )
        if "isolate" in marker.kwargs:
            return bool(marker.kwargs["isolate"])
    return item.config.stash[_ISOLATE_BY_DEFAULT]


@pytest.fixture(name="frozen_clock")
def frozen_clock_fixture(request: pytest.FixtureRequest) -> Generator[FrozenClock, None, None]:
    """Frozen time for time.time(), datetime.now() and default-clock caches; see .advance()."""
    _refuse_freezegun(request)
    control: TravelControl
    try:
        # Share time-machine's own fixture, so time_machine.shift() in the
        # same test moves the same time.
        control = request.getfixturevalue("time_machine")
        owned = False
    except pytest.FixtureLookupError:
        control = _OwnTravel()
        owned = True
    clock = FrozenClock(control)
    try:
        yield clock
    finally:
        clock.close()
        if owned:
            assert isinstance(control, _OwnTravel)
            control.stop()


def _refuse_freezegun(request: pytest.FixtureRequest) -> None:
    """Fail the test at setup, before time-machine starts, if freezegun has time in hand."""
    how = freezegun_use(getattr(request.node, "obj", None), request.fixturenames)
    if how is not None:
        pytest.fail(refusal(how), pytrace=False)


class _OwnTravel:
    """Travel control when time-machine's pytest plugin is disabled (-p no:time_machine)."""

    def __init__(self) -> None:
        import time_machine

        self._travel: Any = None
        self._traveller: Any = None
        self._module = time_machine

    def move_to(self, destination: Any, tick: bool | None = None) -> None:
        if self._travel is None:
            self._travel = self._module.travel(destination, tick=bool(tick))
            self._traveller = self._travel.start()
        else:
            self._traveller.move_to(destination, tick=tick)

    def shift(self, delta: Any) -> None:
        self._traveller.shift(delta)

    def stop(self) -> None:
        if self._travel is not None:
            self._travel.stop()


@pytest.fixture(name="connection_cache")
def connection_cache_fixture(
    request: pytest.FixtureRequest,
) -> Generator[ConnectionCache[Any], None, None]:
    """The shared pytest_conncache.connection_cache, empty with zeroed stats, emptied after."""
    isolate = _isolation_wanted(request.node)
    # On Redis (--conncache-backend) each test has a fresh namespace already.
    in_memory = not _singleton.shared
    _singleton.reset(empty=isolate and in_memory)
    yield _singleton
    if isolate and in_memory:
        _singleton.reset()
