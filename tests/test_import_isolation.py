"""`import pytest_conncache` is for production code: no pytest, no time-machine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("pytest", "_pytest", "time_machine")


def modules_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_package_imports_no_test_tooling() -> None:
    loaded = modules_after("import pytest_conncache")
    assert "pytest_conncache" in loaded
    leaked = {m for m in loaded if m.split(".")[0] in FORBIDDEN}
    assert leaked == set()


def test_using_the_cache_imports_no_test_tooling() -> None:
    loaded = modules_after(
        "from pytest_conncache import connection_cache, assert_cached\n"
        "connection_cache.set('k', 1)\n"
        "assert_cached('k', 1)\n"
        "connection_cache.invalidate_pattern('^k')"
    )
    leaked = {m for m in loaded if m.split(".")[0] in FORBIDDEN}
    assert leaked == set()


@pytest.mark.parametrize("module", FORBIDDEN)
def test_the_check_would_see_a_forbidden_import(module: str) -> None:
    # Guard: the subprocess check does notice these modules when they are imported.
    assert module in modules_after(f"import pytest_conncache, {module}")
