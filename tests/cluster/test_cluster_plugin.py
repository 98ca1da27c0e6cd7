"""--conncache-backend=<a cluster node's URL>: the service tests and the examples, on a cluster.

The plugin's own Redis tests run here unchanged (``redis_server`` is the
session's cluster, see conftest): the examples with the same report as in
memory, isolation off, the ini option with xdist, async tests on
function-scoped loops with warnings as errors (no asyncio cluster client
left unclosed). The rest checks what a namespace per test means on a
cluster: nothing of it is left on any master.
"""

from __future__ import annotations

import pytest

from tests.redis import test_redis_plugin
from tests.redis.test_redis_plugin import (  # noqa: F401 - collected here, on the cluster
    test_async_tests_on_function_scoped_loops_share_the_backend,
    test_ini_option_and_xdist,
    test_isolation_off_keeps_the_namespace_for_the_next_test,
    test_the_examples_pass_on_redis_with_the_same_report,
)
from tests.redis_cluster import LocalCluster

pytester = test_redis_plugin.pytester  # the same pytester fixture (its ini) as there


def test_each_test_gets_a_fresh_namespace_on_the_cluster_deleted_after_it(
    pytester: pytest.Pytester, redis_cluster: LocalCluster
) -> None:
    pytester.makepyfile(
        """
        import pytest_conncache

        def test_first(connection_cache):
            backend = connection_cache.backend
            assert backend.cluster
            connection_cache.set_many({f"user:{i}": i for i in range(100)}, tags=("t",))
            connection_cache.invalidate_prefix("user:1")
            assert connection_cache.size() == 89

        def test_second(connection_cache):
            assert connection_cache.keys() == []
            assert connection_cache.get("user:2") is None
        """
    )

    result = pytester.runpytest_subprocess(f"--conncache-backend={redis_cluster.url}")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"conncache: connection_cache on {redis_cluster.url}*"])
    for port in redis_cluster.primaries():
        client = redis_cluster.client(port)
        try:
            assert list(client.scan_iter(match="*conncache-test-*")) == []
        finally:
            client.close()
