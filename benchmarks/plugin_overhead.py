"""The pytest plugin's overhead, judged on CPU time.

Four generated suites, each run in fresh pytest subprocesses under several
configurations, in interleaved rounds (every configuration once per round,
in a rotating order), so that a slow moment of the shared machine falls on
all of them alike:

* **trivial**: 2,000 trivial tests that never touch a cache. Plugin enabled
  (no option) and enabled with ``--conncache-report``, each against
  ``-p no:conncache``: the cost every user pays (targets 1.03 and 1.05).
* **trivial, cache imported**: the same 2,000 tests, with a ``conftest.py``
  that imports the package and fills the shared ``connection_cache``, as a
  service's suite does: what the plugin costs per test when a cache is alive
  (emptied and zeroed before each test). Reported against the same targets.
* **hits**: one test that times 200,000 ``get`` hits on a cache (and as
  many ``get_or_set`` hits) with ``time.process_time`` inside the test: with
  ``--conncache-report`` (which also records the test's events for the
  failure section) against ``-p no:conncache`` (target 1.5).
* **cache tests**: 500 tests that each set and read a few entries; enabled
  with ``--conncache-strict`` against ``-p no:conncache``: reported, no
  target (strict checks round-trip every stored value through JSON).

The verdict of each pair is the median, over the rounds, of the round's
ratio (this configuration's CPU time, user + system, over the disabled
run's in the same round), with the spread (lowest to highest ratio)
printed. CPU time counts what users pay, memory traffic and imports
included. A single round's ratio swings by up to 10 % either way on a shared
2-core machine, so the default is 41 rounds (about seven minutes): with 9,
the median of an overhead near 2 % lands anywhere from 1.00 to 1.04.
``--overhead-by instructions`` (with valgrind) adds instruction counts of
the trivial suite as a second figure; they never decide.

Run it alone from the repository root with ``python -m benchmarks overhead``.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

BASE_ARGS = ("-q", "-p", "no:cacheprovider")
DISABLED = "disabled (-p no:conncache)"
ENABLED = "enabled"
REPORT = "enabled, --conncache-report"
STRICT = "enabled, --conncache-strict"
OPTIONS = {
    DISABLED: ("-p", "no:conncache"),
    ENABLED: (),
    REPORT: ("--conncache-report",),
    STRICT: ("--conncache-strict",),
}
TRIVIAL = (DISABLED, ENABLED, REPORT)
HITS = (DISABLED, REPORT)
CACHE_TESTS = (DISABLED, ENABLED, STRICT)
TARGETS = {ENABLED: 1.03, REPORT: 1.05}
HIT_TARGET = 1.5


@dataclass(frozen=True)
class Settings:
    tests: int = 2_000
    tests_per_file: int = 100
    cache_tests: int = 500
    hits: int = 200_000
    rounds: int = 41

    @classmethod
    def quick(cls) -> Settings:
        return cls(rounds=3)

    def scaled(self, factor: float) -> Settings:
        tests = max(10, round(self.tests * factor))
        return replace(
            self,
            tests=tests,
            tests_per_file=min(self.tests_per_file, tests),
            cache_tests=max(10, round(self.cache_tests * factor)),
            hits=max(1_000, round(self.hits * factor)),
        )


# -- the generated suites -------------------------------------------------------------


IMPORTING_CONFTEST = """\
from pytest_conncache import connection_cache

connection_cache.set("settings:feature-flags", {"beta": True})
"""


def write_trivial_suite(directory: Path, settings: Settings, conftest: str = "") -> None:
    """``settings.tests`` trivial tests, plus an ini file so no outer config applies."""
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    if conftest:
        (directory / "conftest.py").write_text(conftest, encoding="utf-8")
    written = 0
    module = 0
    while written < settings.tests:
        count = min(settings.tests_per_file, settings.tests - written)
        body = "".join(
            f"def test_{written + i}():\n    assert {written + i} + 1 > {written + i}\n\n\n"
            for i in range(count)
        )
        (directory / f"test_generated_{module:03}.py").write_text(body, encoding="utf-8")
        written += count
        module += 1


HIT_TEST = """\
import json
import os
import time

from pytest_conncache import ConnectionCache

HITS = {hits}


def test_hits():
    cache = ConnectionCache(default_ttl=600)
    cache.set("user-connections:abc", {{"connections": 3}})
    get, get_or_set = cache.get, cache.get_or_set
    factory = dict
    timings = {{}}
    for name, call in (
        ("get", lambda: get("user-connections:abc")),
        ("get_or_set", lambda: get_or_set("user-connections:abc", factory)),
    ):
        best = float("inf")
        for _ in range(5):
            start = time.process_time()
            for _ in range(HITS // 5):
                call()
            best = min(best, time.process_time() - start)
        timings[name] = best / (HITS // 5)
    assert cache.stats.hits >= HITS
    with open(os.environ["CONNCACHE_BENCH_OUT"], "w", encoding="utf-8") as out:
        json.dump(timings, out)
"""

CACHE_TEST = """\
from pytest_conncache import ConnectionCache

cache = ConnectionCache(default_ttl=600)


"""


def write_hit_suite(directory: Path, settings: Settings) -> None:
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (directory / "test_hits.py").write_text(HIT_TEST.format(hits=settings.hits), encoding="utf-8")


def write_cache_suite(directory: Path, settings: Settings) -> None:
    """Tests that each store a few JSON-friendly values and read them back."""
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    body = CACHE_TEST + "".join(
        f"def test_{i}():\n"
        f"    cache.set('user:{i}', {{'id': {i}, 'roles': ['admin'], 'active': True}})\n"
        f"    cache.set('count:{i}', {i})\n"
        f"    assert cache.get('user:{i}')['id'] == {i}\n"
        f"    assert cache.get_or_set('count:{i}', int) == {i}\n\n\n"
        for i in range(settings.cache_tests)
    )
    (directory / "test_cache.py").write_text(body, encoding="utf-8")


# -- running pytest -------------------------------------------------------------------


def _environment(**extra: str) -> dict[str, str]:
    # An outer pytest (the smoke test, xdist workers) must not leak its
    # settings, e.g. PYTEST_ADDOPTS or PYTEST_DISABLE_PLUGIN_AUTOLOAD, into
    # the runs being compared.
    # PYTHONDONTWRITEBYTECODE would make every run compile the plugin and the
    # generated tests from source again: measure the steady state users see.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PYTEST_") and name != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(extra)
    return env


def pytest_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", *BASE_ARGS, *extra]


def options_available() -> bool:
    """Whether the installed plugin provides the options measured here."""
    shown = subprocess.run(
        pytest_command("--help"),
        capture_output=True,
        text=True,
        env=_environment(),
        check=False,
    )
    return "--conncache-report" in shown.stdout and "--conncache-strict" in shown.stdout


class Timing(NamedTuple):
    wall: float  # seconds
    cpu: float  # user + system seconds of the pytest process


def _timed_run(directory: Path, extra: tuple[str, ...], tests: int, **env: str) -> Timing:
    """One pytest run of a suite; fails loudly unless every test passed."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter_ns()
    completed = subprocess.run(
        pytest_command(*extra),
        cwd=directory,
        capture_output=True,
        text=True,
        env=_environment(**env),
        check=False,
    )
    wall = (time.perf_counter_ns() - start) / 1e9
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if completed.returncode != 0 or f"{tests} passed" not in completed.stdout:
        raise RuntimeError(
            f"pytest {' '.join(extra)} failed (exit {completed.returncode}):\n"
            f"{completed.stdout[-2000:]}\n{completed.stderr[-2000:]}"
        )
    return Timing(wall, cpu)


class Spread(NamedTuple):
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, ratios: list[float]) -> Spread:
        return cls(statistics.median(ratios), min(ratios), max(ratios))


def _rounds(
    names: tuple[str, ...],
    rounds: int,
    measure: Callable[[str], float],
    progress: Callable[[str], None],
    what: str,
) -> dict[str, list[float]]:
    """``rounds`` rounds of every configuration, in a rotating order; each reading."""
    readings: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        progress(f"plugin overhead, {what}: round {round_ + 1} of {rounds}")
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            readings[name].append(measure(name))
    return readings


def _ratios(readings: dict[str, list[float]]) -> dict[str, Spread]:
    """Each configuration over the disabled one, round by round."""
    base = readings[DISABLED]
    return {
        name: Spread.of([value / ref for value, ref in zip(values, base, strict=True)])
        for name, values in readings.items()
        if name != DISABLED
    }


def run(settings: Settings, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Every suite under its configurations; the ratios, their spreads, the figures."""
    if not options_available():
        raise RuntimeError(
            "pytest has no --conncache-report/--conncache-strict option: is pytest-conncache "
            "installed with its plugin (entry point 'conncache')?"
        )
    with tempfile.TemporaryDirectory(prefix="conncache-overhead-") as tmp:
        root = Path(tmp)
        trivial, hits, cache_suite = root / "trivial", root / "hits", root / "cache"
        imported = root / "imported"
        for directory in (trivial, imported, hits, cache_suite):
            directory.mkdir()
        write_trivial_suite(trivial, settings)
        write_trivial_suite(imported, settings, IMPORTING_CONFTEST)
        write_hit_suite(hits, settings)
        write_cache_suite(cache_suite, settings)
        out = root / "hits.json"

        progress("plugin overhead: a warm-up run per suite and configuration (bytecode)")
        for name in TRIVIAL:
            _timed_run(trivial, OPTIONS[name], settings.tests)
            _timed_run(imported, OPTIONS[name], settings.tests)
        for name in CACHE_TESTS:
            _timed_run(cache_suite, OPTIONS[name], settings.cache_tests)

        def cpu_rounds(
            directory: Path, names: tuple[str, ...], tests: int, what: str
        ) -> dict[str, list[float]]:
            def measure(name: str) -> float:
                return _timed_run(directory, OPTIONS[name], tests).cpu

            return _rounds(names, settings.rounds, measure, progress, what)

        trivial_cpu = cpu_rounds(
            trivial, TRIVIAL, settings.tests, f"{settings.tests:,} trivial tests"
        )
        imported_cpu = cpu_rounds(
            imported, TRIVIAL, settings.tests, f"{settings.tests:,} trivial tests, cache imported"
        )
        cache_cpu = cpu_rounds(
            cache_suite, CACHE_TESTS, settings.cache_tests, f"{settings.cache_tests:,} cache tests"
        )

        hit_times: dict[str, list[dict[str, float]]] = {name: [] for name in HITS}

        def hit_run(name: str) -> float:
            _timed_run(hits, OPTIONS[name], 1, CONNCACHE_BENCH_OUT=str(out))
            timings: dict[str, float] = json.loads(out.read_text(encoding="utf-8"))
            hit_times[name].append(timings)
            return timings["get"]

        hit_get = _rounds(HITS, settings.rounds, hit_run, progress, "cache hits in a test")
    hit_get_or_set = {
        name: [timings["get_or_set"] for timings in runs] for name, runs in hit_times.items()
    }

    trivial_ratios = _ratios(trivial_cpu)
    imported_ratios = _ratios(imported_cpu)
    cache_ratios = _ratios(cache_cpu)
    get_ratio = _ratios(hit_get)[REPORT]
    get_or_set_ratio = _ratios(hit_get_or_set)[REPORT]
    figures = [
        _figure(
            "plugin_overhead_enabled",
            f"CPU time, {settings.tests:,} trivial tests, {ENABLED} / {DISABLED}",
            trivial_cpu,
            ENABLED,
            trivial_ratios[ENABLED],
            TARGETS[ENABLED],
        ),
        _figure(
            "plugin_overhead_report",
            f"CPU time, {settings.tests:,} trivial tests, {REPORT} / {DISABLED}",
            trivial_cpu,
            REPORT,
            trivial_ratios[REPORT],
            TARGETS[REPORT],
        ),
        _figure(
            "plugin_overhead_enabled_cache_imported",
            f"CPU time, {settings.tests:,} trivial tests with the cache imported, "
            f"{ENABLED} / {DISABLED}",
            imported_cpu,
            ENABLED,
            imported_ratios[ENABLED],
            TARGETS[ENABLED],
        ),
        _figure(
            "plugin_overhead_report_cache_imported",
            f"CPU time, {settings.tests:,} trivial tests with the cache imported, "
            f"{REPORT} / {DISABLED}",
            imported_cpu,
            REPORT,
            imported_ratios[REPORT],
            TARGETS[REPORT],
        ),
        _figure(
            "plugin_hit_get_report",
            f"CPU per get hit inside a test, {REPORT} / {DISABLED}",
            hit_get,
            REPORT,
            get_ratio,
            HIT_TARGET,
        ),
        _figure(
            "plugin_hit_get_or_set_report",
            f"CPU per get_or_set hit inside a test, {REPORT} / {DISABLED}",
            hit_get_or_set,
            REPORT,
            get_or_set_ratio,
            HIT_TARGET,
        ),
    ]
    return {
        "settings": asdict(settings),
        "cpu_seconds": {
            "trivial": trivial_cpu,
            "trivial, cache imported": imported_cpu,
            "cache tests": cache_cpu,
        },
        "hit_seconds": {"get": hit_get, "get_or_set": hit_get_or_set},
        "ratios": {
            "trivial": {name: spread._asdict() for name, spread in trivial_ratios.items()},
            "trivial, cache imported": {
                name: spread._asdict() for name, spread in imported_ratios.items()
            },
            "cache tests": {name: spread._asdict() for name, spread in cache_ratios.items()},
            "get hit": get_ratio._asdict(),
            "get_or_set hit": get_or_set_ratio._asdict(),
        },
        "figures": figures,
        "reported": {
            "strict": cache_ratios[STRICT]._asdict(),
            "enabled on cache tests": cache_ratios[ENABLED]._asdict(),
        },
    }


def _figure(
    name: str,
    label: str,
    readings: dict[str, list[float]],
    ours: str,
    spread: Spread,
    target: float,
) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "ours": statistics.median(readings[ours]),
        "reference": statistics.median(readings[DISABLED]),
        "unit": "s",
        "ratio": spread.median,
        "spread": [spread.low, spread.high],
        "target": f"<= {target:g}",
        "passed": spread.median <= target,
    }


def format_report(result: dict[str, Any]) -> str:
    settings = result["settings"]
    rounds = settings["rounds"]
    lines = [
        f"pytest {' '.join(BASE_ARGS)}, CPU time (user + sys) of each run; ratios against "
        f"{DISABLED} in the same round, median of {rounds} interleaved rounds [lowest - highest]",
    ]
    for suite, configurations in result["ratios"].items():
        if suite not in ("trivial", "trivial, cache imported", "cache tests"):
            continue
        size = settings["cache_tests"] if suite == "cache tests" else settings["tests"]
        cpu = result["cpu_seconds"][suite]
        lines.append(
            f"  {size:,} {suite}: {DISABLED} {statistics.median(cpu[DISABLED]):.3f} s (median)"
        )
        for name, spread in configurations.items():
            lines.append(
                f"    {name:<30} {statistics.median(cpu[name]):7.3f} s  ratio "
                f"{spread['median']:.3f}  [{spread['low']:.3f} - {spread['high']:.3f}]"
            )
    for call in ("get", "get_or_set"):
        seconds = result["hit_seconds"][call]
        spread = result["ratios"][f"{call} hit"]
        lines.append(
            f"  one {call} hit inside a test: {DISABLED} "
            f"{statistics.median(seconds[DISABLED]) * 1e9:.0f} ns, {REPORT} "
            f"{statistics.median(seconds[REPORT]) * 1e9:.0f} ns: ratio {spread['median']:.3f}  "
            f"[{spread['low']:.3f} - {spread['high']:.3f}]"
        )
    for figure in result["figures"]:
        verdict = "PASS" if figure["passed"] else "FAIL"
        low, high = figure["spread"]
        lines.append(
            f"  {figure['label']}: ratio {figure['ratio']:.3f} [{low:.3f} - {high:.3f}]  "
            f"target {figure['target']}  {verdict}"
        )
    strict = result["reported"]["strict"]
    lines.append(
        f"  reported, no target: CPU time, {settings['cache_tests']:,} cache tests, {STRICT} / "
        f"{DISABLED}: ratio {strict['median']:.3f} [{strict['low']:.3f} - {strict['high']:.3f}]"
    )
    if "instructions" in result:
        counts = result["instructions"]
        lines.append(
            f"  second figure: instructions counted by callgrind, {settings['tests']:,} "
            "trivial tests"
        )
        for name in TRIVIAL:
            lines.append(
                f"    {name:<30} {counts[name]:16,}  ratio {counts[name] / counts[DISABLED]:.4f}"
            )
    return "\n".join(lines)


# -- instruction counts: a second figure, never the verdict -----------------------------


def count_instructions(
    settings: Settings, progress: Callable[[str], None] = lambda _: None
) -> dict[str, int]:
    """Instructions each configuration executes on the trivial suite, under callgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise RuntimeError("--overhead-by instructions needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="conncache-overhead-") as tmp:
        directory = Path(tmp)
        write_trivial_suite(directory, settings)
        for name in TRIVIAL:  # bytecode for the generated modules
            _timed_run(directory, OPTIONS[name], settings.tests)
        progress(f"plugin overhead: {settings.tests:,} trivial tests under callgrind")
        running = {
            name: subprocess.Popen(
                [
                    valgrind,
                    "--tool=callgrind",
                    "--callgrind-out-file=/dev/null",
                    *pytest_command(*OPTIONS[name]),
                ],
                cwd=directory,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=_environment(),
            )
            for name in TRIVIAL
        }
        counts = {}
        for name, process in running.items():
            stdout, stderr = process.communicate()
            found = re.search(r"Collected : (\d+)", stderr)
            if process.returncode != 0 or f"{settings.tests} passed" not in stdout or not found:
                raise RuntimeError(
                    f"callgrind run failed (exit {process.returncode}):\n"
                    f"{stdout[-2000:]}\n{stderr[-2000:]}"
                )
            counts[name] = int(found.group(1))
    return counts


def main() -> int:
    from benchmarks.run import main as run_main

    return run_main(["overhead", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
