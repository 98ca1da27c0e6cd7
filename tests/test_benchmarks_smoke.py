"""The benchmark command runs end to end and reports every figure (timings are not checked)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.redis_cluster import redis_cli_binary
from tests.redis_server import redis_server_binary

ROOT = Path(__file__).resolve().parent.parent

CORE_FIGURES = {
    "get_hit_vs_cachetools",
    "get_hit_vs_cacheout",
    "get_miss_vs_cacheout",
    "set_existing_vs_cacheout",
    "new_key_set_growth",
    "regex_scan_vs_prefix",
    "bytes_per_entry_unbounded",
    "bytes_per_entry_bounded",
}
OVERHEAD_FIGURES = {
    "plugin_overhead_enabled",
    "plugin_overhead_report",
    "plugin_overhead_enabled_cache_imported",
    "plugin_overhead_report_cache_imported",
    "plugin_hit_get_report",
    "plugin_hit_get_or_set_report",
}
REDIS_FIGURES = {"redis_get_hit", "redis_set", "redis_prefix_drop_vs_unlink"}
NEAR_FIGURES = {
    "near_hit_vs_memory_hit",
    "plain_redis_hit_vs_near_hit",
    "near_propagation_p99",
    "near_staleness_vs_bound",
    "near_stale_writes",
}
CLUSTER_FIGURES = {"cluster_get_hit", "cluster_get_many", "cluster_prefix_drop_vs_unlink"}


def run_benchmarks(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks *arguments`` from the repository root, free of this pytest's env."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def test_quick_benchmark_run_reports_every_figure(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    completed = run_benchmarks(
        "--quick",
        "--scale",
        "0.01",
        "--json",
        str(output),
    )
    assert completed.returncode == 0, completed.stderr

    results = json.loads(output.read_text(encoding="utf-8"))
    parts = ["core", "overhead"]
    expected = CORE_FIGURES | OVERHEAD_FIGURES
    if redis_server_binary() is not None:  # always so in CI: .ci/run installs it
        parts += ["redis", "near"]
        expected |= REDIS_FIGURES | NEAR_FIGURES
    else:
        assert "no redis-server installed" in completed.stdout
    if redis_server_binary() is not None and redis_cli_binary() is not None:
        parts.append("cluster")
        expected |= CLUSTER_FIGURES
        assert set(results["cluster"]["costs_us"]) >= {"set", "invalidate (WAIT 1)"}
    else:
        assert "the cluster figures were not measured" in completed.stdout
    figures = {figure["name"]: figure for part in parts for figure in results[part]["figures"]}
    assert set(figures) == expected
    for figure in figures.values():
        may_be_zero = figure["name"] in {"near_stale_writes", "near_staleness_vs_bound"}
        assert figure["ours"] > 0 or (may_be_zero and figure["ours"] == 0)
        assert figure["reference"] > 0
        assert math.isfinite(figure["ratio"])
        assert isinstance(figure["passed"], bool)
        assert figure["label"] in completed.stdout
    assert "PASS" in completed.stdout or "FAIL" in completed.stdout


def test_overhead_by_instructions_counts_every_configuration(tmp_path: Path) -> None:
    # valgrind is on the CI machine (.ci/run installs it); without it the
    # command must say so instead of falling back silently.
    output = tmp_path / "results.json"
    completed = run_benchmarks(
        "overhead",
        "--quick",
        "--scale",
        "0.005",  # 10 tests: about half a minute under callgrind
        "--overhead-by",
        "instructions",
        "--json",
        str(output),
    )
    if shutil.which("valgrind") is None:
        assert completed.returncode != 0
        assert "needs valgrind" in completed.stderr
        return
    assert completed.returncode == 0, completed.stderr

    overhead = json.loads(output.read_text(encoding="utf-8"))["overhead"]
    counts = overhead["instructions"]
    assert len(counts) == 3
    assert all(count > 1_000_000 for count in counts.values())
    # A second figure only: the verdicts stay on CPU time.
    assert {figure["name"] for figure in overhead["figures"]} == OVERHEAD_FIGURES
    assert all(figure["unit"] == "s" for figure in overhead["figures"])
    assert "instructions counted by callgrind" in completed.stdout
