"""The frozen_clock fixture, end to end."""

from __future__ import annotations

import pytest


def test_time_and_datetime_stand_still_until_advanced(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time
        from datetime import datetime, timedelta, timezone

        def test_frozen(frozen_clock):
            before, before_dt = time.time(), datetime.now(timezone.utc)
            time.sleep(0.01)
            assert time.time() == before
            assert datetime.now(timezone.utc) == before_dt

            frozen_clock.advance(90)
            assert time.time() == before + 90
            frozen_clock.advance(timedelta(minutes=1))
            assert datetime.now(timezone.utc) == before_dt + timedelta(seconds=150)
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_default_clock_caches_expire_when_advanced(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_conncache import ConnectionCache

        created_at_import = ConnectionCache(default_ttl=60)

        def test_module_level_cache(frozen_clock):
            created_at_import.set("k", "v")
            frozen_clock.advance(59.999)
            assert "k" in created_at_import
            frozen_clock.advance(0.001)
            assert "k" not in created_at_import
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_entry_expires_exactly_at_its_ttl(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_conncache import ConnectionCache

        def test_boundary(frozen_clock):
            cache = ConnectionCache()
            frozen_clock.advance(10)
            cache.set("k", 1, ttl=5)
            frozen_clock.advance(4.9)
            assert cache.ttl_remaining("k") is not None
            frozen_clock.advance(0.1)
            assert cache.get("k") is None
            assert cache.stats.expirations == 1
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_an_injected_clock_keeps_its_own_time(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_conncache import ConnectionCache

        def test_injected(frozen_clock):
            now = [0.0]
            cache = ConnectionCache(clock=lambda: now[0])
            cache.set("k", 1, ttl=10)
            frozen_clock.advance(3600)
            assert "k" in cache
            now[0] = 10.0
            assert "k" not in cache
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_entering_the_freeze_keeps_remaining_ttl(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_conncache import ConnectionCache

        cache = ConnectionCache()

        @pytest.fixture
        def warmed():
            cache.set("k", 1, ttl=100)

        def test_freeze_after_set(warmed, frozen_clock):
            assert cache.ttl_remaining("k") == pytest.approx(100, abs=0.5)
            frozen_clock.advance(99)
            assert cache.ttl_remaining("k") == pytest.approx(1, abs=0.5)
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_now_time_and_move_to(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time
        from datetime import datetime, timezone
        from pytest_conncache import ConnectionCache

        def test_api(frozen_clock):
            cache = ConnectionCache(default_ttl=3600)
            assert frozen_clock.now().tzinfo is not None
            assert frozen_clock.now().utcoffset().total_seconds() == 0
            assert frozen_clock.time() == time.time()

            cache.set("k", 1)
            start = frozen_clock.now()
            frozen_clock.move_to(start.replace(year=start.year + 1))
            assert frozen_clock.now().year == start.year + 1
            assert "k" not in cache

            frozen_clock.move_to(datetime(2030, 1, 1, 12, 0))
            assert frozen_clock.now() == datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_advance_rejects_bad_values(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import math
        import pytest

        @pytest.mark.parametrize("bad, error, words", [
            (-1, ValueError, "got -1"),
            (math.nan, ValueError, "got nan"),
            (True, TypeError, "got True"),
            ("5", TypeError, "got '5'"),
        ])
        def test_bad(frozen_clock, bad, error, words):
            before = frozen_clock.time()
            with pytest.raises(error, match="seconds must be") as info:
                frozen_clock.advance(bad)
            assert words in str(info.value)
            assert frozen_clock.time() == before

        def test_move_to_needs_a_datetime(frozen_clock):
            with pytest.raises(TypeError, match="destination must be a datetime"):
                frozen_clock.move_to("2030-01-01")
        """
    )

    pytester.runpytest().assert_outcomes(passed=5)


def test_everything_is_restored_after_a_failing_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time
        from pytest_conncache import default_clock

        def test_fails(frozen_clock):
            frozen_clock.advance(10_000)
            assert default_clock.redirected
            assert False, "boom"

        REAL_TIME_AT_IMPORT = time.time()

        def test_after():
            assert not default_clock.redirected
            assert default_clock.read is time.monotonic
            assert abs(time.time() - REAL_TIME_AT_IMPORT) < 60
        """
    )

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*boom*"])


def test_cooperates_with_time_machine_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time
        from pytest_conncache import ConnectionCache

        def test_both(frozen_clock, time_machine):
            cache = ConnectionCache()
            cache.set("k", 1, ttl=60)
            before = time.time()
            time_machine.shift(60)
            assert time.time() == before + 60
            assert "k" not in cache
            cache.set("j", 1, ttl=60)
            frozen_clock.advance(30)
            time_machine.shift(29)
            assert "j" in cache
            time_machine.shift(1)
            assert "j" not in cache
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_freezes_where_a_time_machine_marker_travelled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from datetime import datetime, timezone
        import pytest

        @pytest.mark.time_machine(datetime(2031, 5, 6, tzinfo=timezone.utc))
        def test_marked(frozen_clock):
            assert frozen_clock.now() == datetime(2031, 5, 6, tzinfo=timezone.utc)
            frozen_clock.advance(1)
            assert frozen_clock.now().second == 1
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_works_without_time_machines_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time
        from pytest_conncache import ConnectionCache

        def test_own_travel(frozen_clock):
            cache = ConnectionCache()
            cache.set("k", 1, ttl=5)
            before = time.time()
            frozen_clock.advance(5)
            assert time.time() == before + 5
            assert "k" not in cache

        def test_restored():
            from pytest_conncache import default_clock
            assert not default_clock.redirected
        """
    )

    pytester.runpytest_subprocess("-p", "no:time_machine").assert_outcomes(passed=2)


def test_async_service_test_on_the_frozen_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from pytest_conncache import assert_cached, assert_not_cached

        calls = []

        async def fetch(token):
            calls.append(token)
            await asyncio.sleep(0)
            return [token]

        @pytest.mark.asyncio
        async def test_async(connection_cache, frozen_clock):
            key = "user-connections:abc"
            results = await asyncio.gather(
                *(connection_cache.aget_or_set(key, lambda: fetch("abc")) for _ in range(5))
            )
            assert results == [["abc"]] * 5
            assert calls == ["abc"]
            assert_cached(key, ["abc"])
            frozen_clock.advance(300)
            assert_not_cached(key)
        """
    )

    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_awaited_timers_fire_on_the_frozen_clock(pytester: pytest.Pytester) -> None:
    # The event loop runs on time.monotonic, which frozen_clock leaves alone
    # (time-machine 2.x froze it, and every awaited timer hung).
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from pytest_conncache import assert_not_cached

        @pytest.mark.asyncio
        async def test_sleep_and_timeout(connection_cache, frozen_clock):
            connection_cache.set("k", 1, ttl=60)
            await asyncio.sleep(0.01)
            await asyncio.wait_for(asyncio.sleep(0.01), timeout=5)
            frozen_clock.advance(60)
            assert_not_cached("k")
        """
    )

    pytester.runpytest_subprocess(timeout=60).assert_outcomes(passed=1)
