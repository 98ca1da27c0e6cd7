"""--conncache-report, --conncache-report-json and the pytest_conncache_report hook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SERVICE_TESTS = """
import pytest
from pytest_conncache import ConnectionCache

other = ConnectionCache(max_entries=1)

@pytest.fixture
def warmed(connection_cache):
    connection_cache.set("warm", 1)          # setup: 1 set
    yield
    connection_cache.get("warm")             # teardown: 1 hit

def test_hits_and_misses(connection_cache):
    connection_cache.set("a", 1)
    connection_cache.get("a")
    connection_cache.get("a")
    connection_cache.get("missing")

def test_setup_and_teardown_count(warmed, connection_cache):
    connection_cache.get("warm")

def test_untouched():
    pass

def test_invalidations_expirations_evictions(connection_cache, frozen_clock):
    connection_cache.set("x:1", 1)
    connection_cache.set("x:2", 1)
    connection_cache.invalidate_prefix("x:")
    connection_cache.set("short", 1, ttl=1)
    frozen_clock.advance(1)
    connection_cache.get("short")
    other.set("first", 1)
    other.set("second", 1)

@pytest.mark.parametrize("n", range(3))
def test_param(connection_cache, n):
    connection_cache.get_or_set("p", lambda: n)
"""

EXPECTED = {
    "test_service.py::test_hits_and_misses": (2, 1, 1, 0, 0, 0),
    "test_service.py::test_invalidations_expirations_evictions": (0, 1, 5, 2, 1, 1),
    "test_service.py::test_param[0]": (0, 1, 1, 0, 0, 0),
    "test_service.py::test_param[1]": (0, 1, 1, 0, 0, 0),
    "test_service.py::test_param[2]": (0, 1, 1, 0, 0, 0),
    "test_service.py::test_setup_and_teardown_count": (2, 0, 1, 0, 0, 0),
}
FIELDS = ("hits", "misses", "sets", "invalidations", "expirations", "evictions")


def _expected_json() -> dict[str, object]:
    tests = [
        {"nodeid": nodeid, **dict(zip(FIELDS, row, strict=True))}
        for nodeid, row in EXPECTED.items()
    ]
    totals = {field: sum(row[i] for row in EXPECTED.values()) for i, field in enumerate(FIELDS)}
    return {"tests": tests, "totals": totals}


def test_report_has_a_row_per_touched_test_and_a_total(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_service=SERVICE_TESTS)
    monkeypatch.setenv("COLUMNS", "200")

    result = pytester.runpytest_subprocess("--conncache-report")

    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(
        [
            "*= conncache report =*",
            "test * hits misses * hit% sets inval expired evicted",
            "test_service.py::test_hits_and_misses * 2 * 1 * 66.7% * 1 * 0 * 0 * 0",
            "test_service.py::test_invalidations_expirations_evictions"
            " * 0 * 1 * 0.0% * 5 * 2 * 1 * 1",
            "test_service.py::test_param[[]0[]] * 0 * 1 * 0.0% * 1 * 0 * 0 * 0",
            "test_service.py::test_param[[]1[]] *",
            "test_service.py::test_param[[]2[]] *",
            "test_service.py::test_setup_and_teardown_count * 2 * 0 *100.0% * 1 * 0 * 0 * 0",
            "-----*",
            "TOTAL * 4 * 5 * 44.4% * 10 * 2 * 1 * 1",
        ]
    )
    result.stdout.no_fnmatch_line("*test_untouched*")


def test_no_report_without_the_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_service=SERVICE_TESTS)

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(passed=7)
    result.stdout.no_fnmatch_line("*conncache report*")


def test_ini_option_turns_the_report_on(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        asyncio_default_fixture_loop_scope = function
        conncache_report = true
        """
    )
    pytester.makepyfile(test_service=SERVICE_TESTS)

    result = pytester.runpytest_subprocess()

    result.stdout.fnmatch_lines(["*= conncache report =*", "TOTAL * 4 * 5 *"])


def test_report_says_so_when_no_test_touched_a_cache(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")

    result = pytester.runpytest_subprocess("--conncache-report")

    result.stdout.fnmatch_lines(["*= conncache report =*", "no test touched a ConnectionCache"])


def test_json_report_has_the_same_numbers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_service=SERVICE_TESTS)

    pytester.runpytest_subprocess("--conncache-report-json=out/report.json")

    data = json.loads((pytester.path / "out" / "report.json").read_text())
    assert data == _expected_json()


def test_xdist_run_reports_exactly_what_a_serial_run_does(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_service=SERVICE_TESTS)

    serial = pytester.runpytest_subprocess("--conncache-report-json=serial.json")
    parallel = pytester.runpytest_subprocess(
        "-n", "2", "--conncache-report", "--conncache-report-json=parallel.json"
    )

    serial.assert_outcomes(passed=7)
    parallel.assert_outcomes(passed=7)
    parallel.stdout.fnmatch_lines(
        ["*= conncache report =*", "TOTAL * 4 * 5 * 44.4% * 10 * 2 * 1 * 1"]
    )
    serial_data = json.loads(Path(pytester.path, "serial.json").read_text())
    assert json.loads(Path(pytester.path, "parallel.json").read_text()) == serial_data
    assert serial_data == _expected_json()


def test_report_hook_receives_the_rows(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import json

        def pytest_conncache_report(config, rows):
            with open("hook.json", "w") as f:
                json.dump(rows, f)
        """
    )
    pytester.makepyfile(test_service=SERVICE_TESTS)

    pytester.runpytest_subprocess("-n", "2", "--conncache-report")

    rows = json.loads((pytester.path / "hook.json").read_text())
    assert rows == _expected_json()["tests"]


def test_long_node_ids_are_shortened_to_the_terminal_width(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_name = "test_" + "very_long_name_" * 8
    pytester.makepyfile(
        test_a=f"def {long_name}(connection_cache): connection_cache.get('k')",
        test_b=f"def {long_name}(connection_cache): connection_cache.get('k')",
    )
    monkeypatch.setenv("COLUMNS", "80")

    result = pytester.runpytest_subprocess("--conncache-report")

    section = result.stdout.str().split("conncache report")[1].splitlines()[1:]
    table = [line for line in section if line and not line.startswith("=")]
    assert table, result.stdout.str()
    assert all(len(line) <= 80 for line in table), table
    result.stdout.fnmatch_lines(["test_a.py::test_v*…*very_long_name_ * 0 * 1 *"])


def test_common_prefix_is_said_once_when_ids_do_not_fit(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "test_" + "x" * 60
    pytester.makepyfile(
        test_mod=f"""
        import pytest

        @pytest.mark.parametrize("n", [1, 2])
        def {name}(connection_cache, n):
            connection_cache.get('k')
        """
    )
    monkeypatch.setenv("COLUMNS", "80")

    result = pytester.runpytest_subprocess("--conncache-report")

    result.stdout.fnmatch_lines(
        ["node ids below start with test_mod.py::", f"{name[:10]}*[[]1[]] * 0 * 1 *"]
    )


def test_node_ids_cut_to_80_columns_never_print_the_same(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_shop="""
        def test_concurrent_readers_share_one_call(connection_cache):
            connection_cache.get("k")

        def test_concurrent_writers_share_one_call(connection_cache):
            connection_cache.get("k")
        """,
        test_cart="def test_x(connection_cache): connection_cache.get('k')",
    )
    monkeypatch.setenv("COLUMNS", "80")

    result = pytester.runpytest_subprocess("--conncache-report", "test_shop.py", "test_cart.py")

    result.assert_outcomes(passed=3)
    lines = result.stdout.str().split("= conncache report =")[1].splitlines()[1:]
    table = lines[: lines.index(next(line for line in lines if line.startswith("TOTAL"))) + 1]
    labels = [line.rsplit(maxsplit=7)[0] for line in table[1:-2]]
    assert len(labels) == 3, table
    assert len(set(labels)) == 3, table
    assert all(len(line) <= 80 for line in table), table


EXPIRING_TESTS = """
from pytest_conncache import ConnectionCache

bounded = ConnectionCache(default_ttl=5, max_entries=10)

def test_three_expire_unread(connection_cache, frozen_clock):
    for n in range(3):
        connection_cache.set(f"session:{n}", n, ttl=10)
    connection_cache.set("session:long", 1, ttl=100)
    frozen_clock.advance(11)

def test_one_read_one_unread(connection_cache, frozen_clock):
    bounded.set("a", 1)
    bounded.set("b", 1)
    frozen_clock.advance(6)
    assert bounded.get("a") is None
    assert connection_cache.stats.expirations == 0
    assert bounded.stats.expirations == 1

def test_nothing_expires(connection_cache, frozen_clock):
    connection_cache.set("k", 1, ttl=10)
    frozen_clock.advance(9)

def test_expired_then_refilled(connection_cache, frozen_clock):
    connection_cache.set("user:1", 1, ttl=10)
    frozen_clock.advance(11)
    connection_cache.get_or_set("user:1", lambda: 2)

def test_expired_then_set_again_unread(connection_cache, frozen_clock):
    connection_cache.set("user:2", 1, ttl=10)
    frozen_clock.advance(11)
    connection_cache.set("user:2", 2)
"""


def test_expirations_count_every_ttl_that_ended_during_the_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_expiring=EXPIRING_TESTS)

    result = pytester.runpytest_subprocess("--conncache-report-json=out.json", "-n", "2")

    result.assert_outcomes(passed=5)
    rows = {
        row["nodeid"].split("::")[1]: row
        for row in json.loads((pytester.path / "out.json").read_text())["tests"]
    }
    assert rows["test_three_expire_unread"]["expirations"] == 3
    assert rows["test_one_read_one_unread"]["expirations"] == 2
    assert rows["test_nothing_expires"]["expirations"] == 0
    assert rows["test_expired_then_refilled"]["expirations"] == 1
    assert rows["test_expired_then_set_again_unread"]["expirations"] == 1

    families = pytester.runpytest_subprocess("--conncache-report=families")
    families.stdout.re_match_lines([r"user\s+0\s+1\s+0.0%\s+4\s+0\s+2\s+0$"])


FAMILY_TESTS = """
def test_users(connection_cache):
    connection_cache.get_or_set("user-connections:abc", list)
    connection_cache.get_or_set("user-connections:abc", list)
    connection_cache.set("user-record:abc:1", 1)

def test_more_users(connection_cache):
    connection_cache.get("user-connections:xyz")
    connection_cache.set("user-record:xyz:1", 1)
    connection_cache.invalidate("user-record:xyz:1")
    connection_cache.set("plain", 1)
"""


def test_families_mode_groups_the_table_by_key_family(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_families=FAMILY_TESTS)
    monkeypatch.setenv("COLUMNS", "120")

    result = pytester.runpytest_subprocess("--conncache-report=families", "-n", "2")

    result.assert_outcomes(passed=2)
    result.stdout.re_match_lines(
        [
            r"=+ conncache report =+",
            r"family\s+hits\s+misses\s+hit%\s+sets\s+inval\s+expired\s+evicted$",
            r"plain\s+0\s+0\s+-\s+1\s+0\s+0\s+0$",
            r"user-connections\s+1\s+2\s+33.3%\s+1\s+0\s+0\s+0$",
            r"user-record\s+0\s+0\s+-\s+2\s+1\s+0\s+0$",
            r"-+$",
            r"TOTAL\s+1\s+2\s+33.3%\s+4\s+1\s+0\s+0$",
        ]
    )
    result.stdout.no_fnmatch_line("*test_families.py::test_users*")


def test_the_bare_report_flag_does_not_swallow_a_test_path(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_families=FAMILY_TESTS, test_other="def test_other(): pass")

    result = pytester.runpytest_subprocess("--conncache-report", "test_families.py")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["test_families.py::test_users *"])


def test_ini_report_families(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        asyncio_default_fixture_loop_scope = function
        conncache_report = families
        """
    )
    pytester.makepyfile(test_families=FAMILY_TESTS)

    result = pytester.runpytest_subprocess()

    result.stdout.fnmatch_lines(["family *", "user-connections *"])


def test_a_bad_ini_report_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        conncache_report = by-family
        """
    )
    pytester.makepyfile("def test_nothing(): pass")

    result = pytester.runpytest_subprocess()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*conncache_report must be true, false, tests or families, got 'by-family'*"]
    )


def test_a_cache_made_and_dropped_inside_a_test_counts_for_that_test(
    pytester: pytest.Pytester,
) -> None:
    # In a fresh process no cache exists before the test: its own one is the
    # only one, and it is gone before the counts are read.
    pytester.makepyfile(
        test_local="""
        import gc
        from pytest_conncache import ConnectionCache

        def test_local_cache():
            cache = ConnectionCache()
            cache.set("a", 1)
            cache.get("a")
            del cache
            gc.collect()

        def test_after():
            pass
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:randomly", "--conncache-report")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*= conncache report =*", "test_local.py::test_local_cache * 1 * 0 *100.0% * 1 * 0 *"]
    )
    result.stdout.no_fnmatch_line("test_local.py::test_after *")
