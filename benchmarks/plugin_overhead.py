"""The pytest plugin's overhead on a large suite of trivial tests.

Generates a suite of 2,000 trivial tests in a temporary directory and times,
interleaved within each round, three runs of it in fresh subprocesses::

    pytest -q -p no:cacheprovider -p no:conncache          # plugin disabled
    pytest -q -p no:cacheprovider                          # plugin enabled
    pytest -q -p no:cacheprovider --conncache-report       # enabled, with the report

The figure is the best wall time with the report over the best with the
plugin disabled (target: at most 1.05). Run it alone from the repository root
with ``python -m benchmarks overhead`` (``--quick`` for one round).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

BASE_ARGS = ("-q", "-p", "no:cacheprovider")
CONFIGURATIONS = {
    "disabled (-p no:conncache)": ("-p", "no:conncache"),
    "enabled": (),
    "enabled, --conncache-report": ("--conncache-report",),
}
DISABLED, ENABLED, REPORT = CONFIGURATIONS
TARGET = 1.05


@dataclass(frozen=True)
class Settings:
    tests: int = 2_000
    tests_per_file: int = 100
    repeats: int = 3

    @classmethod
    def quick(cls) -> Settings:
        return cls(repeats=1)

    def scaled(self, factor: float) -> Settings:
        tests = max(10, round(self.tests * factor))
        return replace(self, tests=tests, tests_per_file=min(self.tests_per_file, tests))


def write_suite(directory: Path, settings: Settings) -> None:
    """Write ``settings.tests`` trivial tests, plus an ini file so no outer config applies."""
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
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


def _environment() -> dict[str, str]:
    # An outer pytest (the smoke test, xdist workers) must not leak its
    # settings, e.g. PYTEST_ADDOPTS or PYTEST_DISABLE_PLUGIN_AUTOLOAD, into
    # the runs being compared.
    return {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}


def pytest_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", *BASE_ARGS, *extra]


def report_option_available() -> bool:
    """Whether the installed plugin provides ``--conncache-report``."""
    shown = subprocess.run(
        pytest_command("--help"),
        capture_output=True,
        text=True,
        env=_environment(),
        check=False,
    )
    return "--conncache-report" in shown.stdout


def _timed_run(directory: Path, extra: tuple[str, ...], tests: int) -> float:
    """Seconds for one pytest run of the suite; fails loudly unless every test passed."""
    start = time.perf_counter_ns()
    completed = subprocess.run(
        pytest_command(*extra),
        cwd=directory,
        capture_output=True,
        text=True,
        env=_environment(),
        check=False,
    )
    elapsed = (time.perf_counter_ns() - start) / 1e9
    if completed.returncode != 0 or f"{tests} passed" not in completed.stdout:
        raise RuntimeError(
            f"pytest {' '.join(extra)} failed (exit {completed.returncode}):\n"
            f"{completed.stdout[-2000:]}\n{completed.stderr[-2000:]}"
        )
    return elapsed


def run(settings: Settings, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Time the suite under every configuration; returns seconds and the figures."""
    if not report_option_available():
        raise RuntimeError(
            "pytest has no --conncache-report option: is pytest-conncache installed "
            "with its plugin (entry point 'conncache')?"
        )
    with tempfile.TemporaryDirectory(prefix="conncache-overhead-") as tmp:
        directory = Path(tmp)
        write_suite(directory, settings)
        progress(f"plugin overhead: {settings.tests:,} tests, warm-up run per configuration")
        # The first runs write bytecode for the generated modules; don't time them.
        for extra in CONFIGURATIONS.values():
            _timed_run(directory, extra, settings.tests)
        best = dict.fromkeys(CONFIGURATIONS, float("inf"))
        names = list(CONFIGURATIONS)
        for round_ in range(settings.repeats):
            progress(f"plugin overhead: round {round_ + 1} of {settings.repeats}")
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                elapsed = _timed_run(directory, CONFIGURATIONS[name], settings.tests)
                best[name] = min(best[name], elapsed)

    ratio = best[REPORT] / best[DISABLED]
    figures = [
        {
            "name": "plugin_overhead_report",
            "label": f"{REPORT} / {DISABLED}",
            "ours": best[REPORT],
            "reference": best[DISABLED],
            "unit": "s",
            "ratio": ratio,
            "target": f"<= {TARGET:g}",
            "passed": ratio <= TARGET,
        }
    ]
    # Context, no target: what merely having the plugin installed costs.
    enabled_ratio = best[ENABLED] / best[DISABLED]
    return {
        "settings": asdict(settings),
        "seconds": best,
        "enabled_ratio": enabled_ratio,
        "figures": figures,
    }


def format_report(result: dict[str, Any]) -> str:
    settings = result["settings"]
    lines = [
        f"pytest on {settings['tests']:,} trivial tests, "
        f"{' '.join(BASE_ARGS)}, best of {settings['repeats']} (wall seconds)"
    ]
    width = max(len(name) for name in result["seconds"])
    for name, seconds in result["seconds"].items():
        lines.append(f"  {name:<{width}}  {seconds:8.3f} s")
    lines.append(f"  {ENABLED} / {DISABLED}: ratio {result['enabled_ratio']:.3f}")
    for figure in result["figures"]:
        verdict = "PASS" if figure["passed"] else "FAIL"
        ratio = f"ratio {figure['ratio']:.3f}"
        lines.append(f"  {figure['label']}: {ratio}  target {figure['target']}  {verdict}")
    return "\n".join(lines)


def main() -> int:
    from benchmarks.run import main as run_main

    return run_main(["overhead", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
