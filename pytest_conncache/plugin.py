"""The pytest plugin: fixtures, per-test isolation, the report, events, strict checks, guards.

Registered through the ``pytest11`` entry point ``conncache``; disable it
with ``-p no:conncache``. Everything pytest-specific in the package is here;
what it shows and checks is built in pytest-free modules (``_report``,
``_events``, ``_strict``, ``_registry``).

Per test: before any fixture, every cache is emptied (or not: isolation)
and zeroed, the registry starts counting (``_registry.restart``: the report
reads the caches' own counters, no hook per operation) and every cache's
events go to a bounded ring (``observers.record``), which a failed test's
report shows. After the test (its fixtures torn down), guards put back what
the test moved: the shared cache's backend, the default clock.

It imports no cache itself (the registry knows the caches that exist, and
the shared one only once something imported it): a run whose tests never
touch a cache pays for the hooks and nothing else.
"""

from __future__ import annotations

import warnings
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

from . import _registry
from ._clock import DefaultClock, default_clock, default_wall_clock
from ._events import SHOWN
from ._hooks import observers
from ._report import (
    FIELDS,
    FamilyCounter,
    Row,
    add_expired,
    add_up,
    family_rows,
    table,
    touched,
    write_json,
)

if TYPE_CHECKING:
    from ._cache import ConnectionCache
    from ._frozen import FrozenClock, TravelControl

_STATS_ATTR = "conncache_stats"
_FAMILIES_ATTR = "conncache_families"
_EVENTS_SECTION = "conncache events"
_MARKER = "conncache"
_SETTINGS = pytest.StashKey["Settings"]()
_STRICT = pytest.StashKey[Any]()  # the test's StrictChecks, while it runs


class Moved(NamedTuple):
    """What a guard put back: where the test moved it (file, line) and the warning."""

    where: tuple[str, int] | None
    message: str


class ConncacheWarning(pytest.PytestWarning):
    """Something a test did to the caches that would go wrong in production, or leak."""


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
        action="store_const",
        const="tests",
        default=None,
        help="after the run, a table of cache hits, misses, sets, invalidations, expirations "
        "and evictions per test",
    )
    # A literal option string of its own, so that the bare flag above never
    # swallows the next argument (a test path) as its value.
    group.addoption(
        "--conncache-report=families",
        action="store_const",
        const="families",
        dest="conncache_report",
        help="the same table, grouped by key family (the key's text before its first ':')",
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
    group.addoption(
        "--conncache-strict",
        action="store_true",
        default=None,
        help="fail a test that stores a value Redis would give back changed, or mutates "
        "a value it got from an in-memory cache (production parity)",
    )
    group.addoption(
        "--no-conncache-strict",
        action="store_false",
        dest="conncache_strict",
        help="turn the strict checks off even where the ini file turns them on",
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
        default="",
        help="print the conncache report as if --conncache-report were given: "
        "true, tests or families",
    )
    parser.addini(
        "conncache_strict",
        type="bool",
        default=False,
        help="as --conncache-strict for every test (default: false)",
    )


class Settings:
    """What the options and the ini file ask for, read once at configure time."""

    def __init__(self, config: pytest.Config) -> None:
        self.isolate = bool(config.getini("conncache_isolate"))
        option = config.getoption("conncache_strict")
        self.strict = bool(config.getini("conncache_strict") if option is None else option)
        mode = config.getoption("conncache_report")
        if mode is None:
            ini = str(config.getini("conncache_report")).strip().lower()
            mode = {"true": "tests", "1": "tests", "yes": "tests"}.get(ini, ini) or None
            if mode not in (None, "false", "0", "no", "tests", "families"):
                raise pytest.UsageError(
                    f"conncache_report must be true, false, tests or families, got {ini!r}"
                )
            mode = None if mode in ("false", "0", "no") else mode
        self.report: str | None = mode
        json_path = config.getoption("conncache_report_json")
        self.json_path = Path(json_path) if json_path else None
        self.url = str(config.getoption("conncache_backend") or config.getini("conncache_backend"))
        # Whether a test may carry the conncache marker: until collection says
        # that none does, each test's marker is looked up.
        self.marked = True

    def wanted(self, item: pytest.Item) -> tuple[bool, bool]:
        """(isolate, strict) for ``item``: its ``conncache`` marker, else the run's."""
        if self.marked:
            marker = item.get_closest_marker(_MARKER)
            if marker is not None:
                _check_marker(marker, item.nodeid)
                return (
                    marker.kwargs.get("isolate", self.isolate),
                    marker.kwargs.get("strict", self.strict),
                )
        return self.isolate, self.strict


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(isolate=True, strict=None): per-test settings of pytest-conncache; "
        "isolate=False keeps every cache's data from the previous test, strict=True/False "
        "turns the production-parity checks on or off for the test",
    )
    settings = config.stash[_SETTINGS] = Settings(config)
    observers.record(SHOWN)  # every cache's events, in a ring emptied before each test
    namespaces = RedisNamespaces(settings.url) if settings.url else None
    report = ReportCollector(config, settings) if settings.report or settings.json_path else None
    config.pluginmanager.register(Tests(settings, namespaces, report), "conncache-tests")
    if namespaces is not None:
        config.pluginmanager.register(namespaces, "conncache-redis")
    if report is not None:
        config.pluginmanager.register(report, "conncache-report")


class Tests:
    """Per test: isolation and counting before it, events when it fails, guards after.

    It also drives the report's steps for each test (``ReportCollector``):
    one hook implementation per step instead of two, on every test of the run.
    """

    def __init__(
        self,
        settings: Settings,
        namespaces: RedisNamespaces | None,
        report: ReportCollector | None,
    ) -> None:
        self.settings = settings
        self.namespaces = namespaces
        self.report = report
        self.starts = (0.0, 0.0)  # default_clock's and default_wall_clock's, at the start
        self.frozen = False
        self.backend: Any = None  # the shared cache's backend, as the test got it

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        # Before any fixture of this test runs: what setup does counts, what
        # the previous test left behind does not.
        isolate, strict = self.settings.wanted(item)
        if _registry.tracking():  # else no cache exists: nothing to empty or re-base
            self._isolate(item, isolate)
        ring = observers.ring
        if ring:  # the previous test's events (the ring is made at configure time)
            ring.clear()
        # Events' times count from here (clocks_started, inlined: every test runs it).
        self.starts = (default_clock.read(), default_wall_clock.read())
        self.frozen = False
        if self.report is not None:
            self.report.test_started()
        if strict:
            from ._strict import StrictChecks

            manager = item.config.pluginmanager
            if not manager.has_plugin("conncache-strict"):
                # Registered by the first strict test, so that no other run pays
                # for a wrapper around each test's call; it wraps this one's.
                manager.register(StrictCalls(), "conncache-strict")
            checks = item.stash[_STRICT] = StrictChecks()
            observers.register(checks)

    def _isolate(self, item: pytest.Item, isolate: bool) -> None:
        for cache in _registry.live_caches():
            # Only memory is emptied: the plugin never deletes data on a Redis
            # server it was not pointed at (--conncache-backend isolates the
            # singleton by giving each test a namespace of its own).
            cache.reset(empty=isolate and not cache.shared)
        shared = _registry.shared_cache()
        if shared is not None:
            if shared.backend is not self.backend:
                # Moved between tests: at import, collection, or by a wider fixture.
                moved = self._guard_singleton(shared, item, when="before")
                if moved is not None:
                    _warn_at(*moved)
            if self.namespaces is not None:
                self.namespaces.enter(shared)
            self.backend = shared.backend
        _registry.restart(just_reset=True)

    def clocks_started(self, frozen: bool = False) -> None:
        """Events times count from here: the test's start, or where frozen_clock froze."""
        self.starts = (default_clock.read(), default_wall_clock.read())
        self.frozen = frozen

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        # A bad marker is a usage error before any test runs; with no marker at
        # all, a test's settings are the run's, without a lookup per test.
        self.settings.marked = _find_markers(items)

    def _guard_singleton(
        self, shared: ConnectionCache[Any] | None, item: pytest.Item, when: str = "during"
    ) -> Moved | None:
        """Put the shared cache back where the plugin had it; what to warn about."""
        if shared is None or shared.backend is self.backend:
            return None
        expected = self.backend
        if self.namespaces is not None and expected is not self.namespaces.current:
            # That namespace was dropped (never reopened: it would leave keys
            # behind); the next test enters a fresh one.
            expected = None
        self.backend = expected
        moved = "to memory" if shared.backend is None else f"to {shared.backend!r}"
        where = shared.backend_set_at
        shared.use_backend(expected)
        if self.namespaces is None:
            advice = (
                "The plugin put it back in memory. Move it in a fixture that calls "
                "connection_cache.use_backend(None) after the test, or run the whole suite "
                "on Redis with --conncache-backend=URL, which gives each test a namespace."
            )
        else:
            advice = (
                "The plugin put it back on the test's own namespace. Under "
                "--conncache-backend leave the shared cache where the plugin puts it: skip "
                "the app's use_backend() call in tests (a setting, or a fixture that moves "
                "it back)."
            )
        return Moved(
            where,
            f"connection_cache.use_backend() moved the shared cache {moved} {when} "
            f"{item.nodeid}, and it stayed there: every later test would share what it "
            f"stores (the plugin isolates tests by emptying in-memory caches and by giving "
            f"each test a Redis namespace of its own). {advice}",
        )

    @staticmethod
    def _guard_clocks() -> list[Moved]:
        moved = []
        for name, holder in (
            ("default_clock", default_clock),
            ("default_wall_clock", default_wall_clock),
        ):
            if holder.redirected:
                redirected_to, where = holder.source, holder.redirected_at
                holder.restore()
                moved.append(
                    Moved(
                        where,
                        f"pytest_conncache.{name} was still redirected to "
                        f"{redirected_to!r:.80} after the test: every cache on it would have "
                        f"kept that time in later tests. The plugin restored it; call "
                        f"{name}.restore() when done, or use the frozen_clock fixture, "
                        "which does.",
                    )
                )
        return moved

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        if self.report is not None:
            self.report.test_ending()  # before the fixtures go (frozen_clock among them)
        try:
            return (yield)
        finally:
            # After every fixture finalizer, failing or not: put back everything
            # the test moved first, then warn (a warning may be an error, -W error).
            moved = []
            shared = _registry.shared_cache()
            if shared is not None and shared.backend is not self.backend:
                moved.append(self._guard_singleton(shared, item))
            if _redirected(default_clock) or _redirected(default_wall_clock):
                moved += self._guard_clocks()
            for each in moved:
                if each is not None:
                    _warn_at(*each)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # First: pytest-xdist's worker sends the report on next, with what is added here.
        if report.outcome == "failed":
            self._add_events(report)
        if self.report is not None and report.when == "teardown":
            self.report.test_ended(report)

    def _add_events(self, report: pytest.TestReport) -> None:
        if not any(title == _EVENTS_SECTION for title, _ in report.sections):
            ring = observers.ring
            if ring is not None and hasattr(report, "location"):
                from ._events import section

                counted = _registry.counts()
                total = sum(counted[field] for field in FIELDS)
                monotonic, wall = self.starts
                starts = {id(default_clock): monotonic, id(default_wall_clock): wall}
                text = section(list(ring), starts, total, self.frozen)
                if text is not None:
                    report.sections.append((_EVENTS_SECTION, text))


class StrictCalls:
    """The strict checks' end: right after a test's call, before its fixtures go."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        try:
            result = yield
        finally:
            checks = item.stash.get(_STRICT, None)
            if checks is not None:
                del item.stash[_STRICT]
                observers.unregister(checks)
        if checks is not None:
            problems = checks.problems()
            if problems:
                pytest.fail("\n\n".join(problems), pytrace=False)
        return result


class ReportCollector:
    """--conncache-report and --conncache-report-json: per-test counts, then the table.

    ``Tests`` calls its per-test steps (``test_started``, ``test_ending``,
    ``test_ended``); its own hooks are the session's.
    """

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.is_worker = hasattr(config, "workerinput")
        self.rows: dict[str, Row] = {}
        self.families: dict[str, dict[str, int]] = {}
        self.family_counter: FamilyCounter | None = None
        self.unremoved: list[str] = []  # the current test's, from test_ending
        self.starts: list[tuple[ConnectionCache[Any], float]] = []
        if settings.report == "families":
            self.family_counter = FamilyCounter()
            observers.register(self.family_counter)

    def pytest_unconfigure(self) -> None:
        if self.family_counter is not None and observers.is_registered(self.family_counter):
            observers.unregister(self.family_counter)

    def test_started(self) -> None:
        """After the isolation: each cache's clock at the test's start."""
        self.starts = [(cache, cache.now()) for cache in _registry.live_caches()]
        if self.family_counter is not None:
            self.family_counter.take()

    def test_ending(self) -> None:
        """Before the test's fixtures go: the entries whose ttl ended during the
        test that nobody removed (or counted) yet."""
        started = {id(cache): at for cache, at in self.starts}
        self.starts = []
        keys: list[str] = []
        shared = _registry.shared_cache()
        for cache in _registry.live_caches():
            if cache.shared and cache is not shared:
                continue  # a namespace the plugin does not own: not walked
            keys += cache.expired_since(started.get(id(cache), float("-inf")))
        self.unremoved = keys

    def test_ended(self, report: pytest.TestReport) -> None:
        """The test's teardown report: its counts, attached to it, and its row."""
        counts = getattr(report, _STATS_ATTR, None)
        if counts is None:
            # This process ran the test. Attach the counts before anything
            # else sees the report: pytest-xdist's worker serialises it next,
            # and plain ints reach the controller exactly as counted here.
            counted = _registry.counts()
            counts = {field: counted[field] for field in FIELDS}
            # Expirations: those removed (counted by the caches) and those still
            # stored; the report counts every ttl that ended in the test.
            unremoved, self.unremoved = self.unremoved, []
            counts["expirations"] += len(unremoved)
            setattr(report, _STATS_ATTR, counts)
            if self.family_counter is not None:
                by_family = self.family_counter.take()
                add_expired(by_family, unremoved)
                setattr(report, _FAMILIES_ATTR, by_family)
        if isinstance(counts, dict) and touched(counts):
            self.rows[report.nodeid] = {"nodeid": report.nodeid, **counts}
        families = getattr(report, _FAMILIES_ATTR, None)
        if isinstance(families, dict):
            add_up(self.families, families)

    def sorted_rows(self) -> list[Row]:
        # Sorted by node id, so serial and xdist runs print the same table.
        return [self.rows[nodeid] for nodeid in sorted(self.rows)]

    def pytest_sessionfinish(self) -> None:
        if self.is_worker:
            return
        rows = self.sorted_rows()
        self.config.hook.pytest_conncache_report(config=self.config, rows=rows)
        if self.settings.json_path is not None:
            write_json(self.settings.json_path, rows)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.settings.report or self.is_worker:
            return
        terminalreporter.write_sep("=", "conncache report")
        width = self.config.get_terminal_writer().fullwidth
        if self.settings.report == "families":
            rows = family_rows(self.families)
            lines = table(rows, width, first="family") if rows else []
        else:
            rows = self.sorted_rows()
            lines = table(rows, width) if rows else []
        if not rows:
            terminalreporter.write_line("no test touched a ConnectionCache")
            return
        for text in lines:
            terminalreporter.write_line(text)
        if self.settings.json_path is not None:
            terminalreporter.write_line(f"conncache report written to {self.settings.json_path}")


class RedisNamespaces:
    """--conncache-backend: the singleton on Redis, in a namespace of its own per test."""

    def __init__(self, url: str) -> None:
        shown = _without_password(url)
        try:
            import uuid

            import redis

            from ._redis import RedisBackend
        except ImportError as error:
            raise pytest.UsageError(
                f"--conncache-backend={shown} needs redis-py: "
                f"pip install 'pytest-conncache[redis]' ({error})"
            ) from None
        self.url = shown
        # Unique per process, so pytest-xdist workers never share a namespace.
        self.run_id = f"conncache-test-{uuid.uuid4().hex[:12]}"
        try:
            # from_url asks the server whether it is a cluster node: a refused
            # password can come from there already.
            self.base = RedisBackend.from_url(url, namespace=self.run_id)
            try:
                self.base.client.ping()
            except BaseException:
                self.base.close()
                raise
        except (ValueError, TypeError) as error:
            raise pytest.UsageError(
                f"--conncache-backend: bad URL {shown!r}: {str(error).replace(url, shown)}"
            ) from None
        except redis.AuthenticationError as error:
            raise pytest.UsageError(
                f"--conncache-backend={shown}: Redis refused the credentials "
                f"({type(error).__name__}: {error})"
            ) from None
        except Exception as error:
            raise pytest.UsageError(
                f"--conncache-backend={shown}: Redis does not answer ({type(error).__name__}: "
                f"{error}); start it, or run without --conncache-backend"
            ) from None
        from ._singleton import connection_cache

        self.shared = connection_cache  # imported here: the next test's setup moves it
        self.count = 0
        self.current: Any = None
        self.leftovers: list[str] = []

    def pytest_report_header(self) -> str:
        return f"conncache: connection_cache on {self.url}, one namespace per test"

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_teardown(self, nextitem: pytest.Item | None) -> Generator[None, None, None]:
        try:
            return (yield)
        finally:
            # After every fixture finalizer: the namespace goes unless the next
            # test wants this one's data (isolation off).
            if nextitem is None or _wanted(nextitem)[0]:
                self.leave()

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.leftovers:
            terminalreporter.write_line(
                f"conncache: {len(self.leftovers)} test namespace(s) could not be dropped and "
                f"stay on {self.url}: {', '.join(self.leftovers[:5])}"
                + (" ..." if len(self.leftovers) > 5 else ""),
                yellow=True,
            )

    def pytest_unconfigure(self) -> None:
        self.close()

    def enter(self, cache: ConnectionCache[Any]) -> None:
        if self.current is None:
            self.count += 1
            self.current = self.base.with_namespace(f"{self.run_id}-{self.count}")
        if cache.backend is not self.current:
            cache.use_backend(self.current)

    def leave(self) -> None:
        # Forgotten first: a drop that fails never leads to the namespace's reuse.
        current, self.current = self.current, None
        if current is not None:
            try:
                current.drop_namespace()
            except Exception:
                self.leftovers.append(current.namespace)

    def close(self) -> None:
        self.leave()
        self.shared.use_backend(None)
        self.base.close()


def _redirected(holder: DefaultClock) -> bool:
    # DefaultClock.redirected without the property call: every test asks.
    return holder.source is not holder.fallback


def _warn_at(where: tuple[str, int] | None, message: str) -> None:
    """A ConncacheWarning shown at ``where`` (the call that caused it), when known."""
    warning = ConncacheWarning(message)
    if where is None:
        warnings.warn(warning, stacklevel=2)
    else:
        warnings.warn_explicit(warning, ConncacheWarning, filename=where[0], lineno=where[1])


def _without_password(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, for printing."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "<a URL that cannot be parsed>"


def _wanted(item: pytest.Item) -> tuple[bool, bool]:
    """(isolate, strict) for ``item``: its ``conncache`` marker, else the run's settings."""
    return item.config.stash[_SETTINGS].wanted(item)


def _check_marker(marker: pytest.Mark, nodeid: str) -> None:
    unknown = set(marker.kwargs) - {"isolate", "strict"}
    if marker.args or unknown:
        raise pytest.UsageError(
            f"{nodeid}: @pytest.mark.conncache takes only isolate=True/False and "
            f"strict=True/False, got args={marker.args!r} kwargs={marker.kwargs!r}"
        )
    for name, value in marker.kwargs.items():
        if not isinstance(value, bool):
            raise pytest.UsageError(
                f"{nodeid}: @pytest.mark.conncache({name}=...) must be True or False, "
                f"got {value!r:.40} ({type(value).__name__})"
            )


def _find_markers(items: list[pytest.Item]) -> bool:
    """Check every ``conncache`` marker on ``items`` and their parents; whether there is one.

    Each node is looked at once (a module's marker is not checked again for
    each of its tests), in its own markers only: cheaper than a marker
    lookup per test, which walks up to the session every time.
    """
    seen: set[int] = set()  # ids of nodes looked at; all are alive during collection
    found = False
    for item in items:
        node: pytest.Item | pytest.Collector | None = item
        while node is not None and id(node) not in seen:
            seen.add(id(node))
            for mark in node.own_markers:
                if mark.name == _MARKER:
                    _check_marker(mark, node.nodeid)
                    found = True
            node = node.parent
    return found


@pytest.fixture(name="frozen_clock")
def frozen_clock_fixture(request: pytest.FixtureRequest) -> Generator[FrozenClock, None, None]:
    """Frozen time for time.time(), datetime.now() and default-clock caches; see .advance()."""
    _refuse_freezegun(request)
    from ._frozen import FrozenClock

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
    tests = request.config.pluginmanager.get_plugin("conncache-tests")
    if isinstance(tests, Tests):
        tests.clocks_started(frozen=True)
    try:
        yield clock
    finally:
        clock.close()
        if owned:
            assert isinstance(control, _OwnTravel)
            control.stop()


def _refuse_freezegun(request: pytest.FixtureRequest) -> None:
    """Fail the test at setup, before time-machine starts, if freezegun has time in hand."""
    from ._freezegun import freezegun_use, refusal

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
    isolate = _wanted(request.node)[0]
    # On Redis (--conncache-backend) each test has a fresh namespace already.
    from ._singleton import connection_cache as shared

    in_memory = not shared.shared
    shared.reset(empty=isolate and in_memory)
    yield shared
    if isolate and in_memory:
        shared.reset()
