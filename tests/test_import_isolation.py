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


# What an in-memory cache never needs: asyncio (about 50 ms to import), the
# Redis client and its helpers, the JSON and pickle serializers.
NOT_FOR_MEMORY = ("asyncio", "json", "uuid", "concurrent.futures", "pickle", "redis")


def modules_of_a_clean_import(statement: str) -> set[str]:
    """``sys.modules`` after ``statement`` in a fresh interpreter that imports nothing else."""
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


def lazy_ones(loaded: set[str]) -> set[str]:
    return {
        module
        for module in loaded
        if any(module == name or module.startswith(name + ".") for name in NOT_FOR_MEMORY)
    }


def test_importing_the_package_imports_nothing_an_in_memory_cache_does_not_need() -> None:
    assert lazy_ones(modules_of_a_clean_import("import pytest_conncache")) == set()


def test_using_an_in_memory_cache_imports_none_of_them_either() -> None:
    loaded = modules_of_a_clean_import(
        "from pytest_conncache import ConnectionCache, cached, expect_cache, assert_cached\n"
        "cache = ConnectionCache(max_entries=10)\n"
        "@cache.cached(key='user:{user_id}')\n"
        "def user(user_id: int) -> dict: return {'id': user_id}\n"
        "with expect_cache(misses=1, sets=1, hits=1):\n"
        "    user(1); user(1)\n"
        "cache.get_or_set('k', list)\n"
        "assert_cached('k', [], cache=cache)\n"
        "cache.invalidate_pattern('^user:')\n"
    )
    assert lazy_ones(loaded) == set()


@pytest.mark.parametrize("module", ["asyncio", "json", "concurrent.futures"])
def test_the_laziness_check_would_see_them(module: str) -> None:
    # Guard: the clean-import check does notice these modules when imported.
    assert module in lazy_ones(modules_of_a_clean_import(f"import pytest_conncache, {module}"))


def test_the_redis_backend_without_redis_py_names_the_extra() -> None:
    # sys.modules["redis"] = None makes `import redis` fail as if not installed.
    code = (
        "import sys\n"
        "sys.modules['redis'] = None\n"
        "import pytest_conncache\n"
        "pytest_conncache.connection_cache.set('k', 1)\n"
        "from pytest_conncache import RedisBackend\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "ModuleNotFoundError: the Redis backend needs redis-py: pip install " in done.stderr
    assert "'pytest-conncache[redis]'" in done.stderr
