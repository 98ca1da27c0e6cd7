"""The Redis backend's own tests that hold on any Redis, run here on a Redis Cluster.

They are written once, in ``tests/redis``, against the fixtures ``backend``,
``cache``, ``clock``, ``namespace`` and ``redis_server``; this package's
conftest gives those names a cluster (see there). Importing a test function
into this module is what makes pytest collect it here too. The contract
tests shared with memory run on the cluster through the ``on_cluster``
marker (``tests/conftest.py``); the tests of what only one server or only a
cluster does are in the other modules.
"""

from __future__ import annotations

from tests.redis.test_redis_cache import (  # noqa: F401 - collected here, on the cluster
    test_bad_arguments_raise_before_touching_redis,
    test_invalidate_pattern_walks_the_namespace_in_batches,
    test_invalidate_prefix_treats_glob_characters_literally,
    test_max_entries_is_refused_on_redis,
    test_two_namespaces_do_not_see_each_other,
)
from tests.redis.test_redis_get_or_set import (  # noqa: F401
    locked_backend,
    test_the_async_lock_waits_for_another_process_value,
)
from tests.redis.test_redis_index import (  # noqa: F401
    test_invalidate_prefix_works_through_many_batches,
    test_prefixes_beyond_ascii_select_exactly_their_keys,
)
from tests.redis.test_redis_serializers import (  # noqa: F401
    test_a_value_json_cannot_hold_raises_and_stores_nothing,
    test_any_object_with_dumps_and_loads_is_a_serializer,
    test_get_or_set_with_an_unstorable_value_raises,
    test_pickle_is_an_explicit_opt_in,
)
from tests.redis.test_redis_stale_writes import (  # noqa: F401
    test_a_change_in_another_process_keeps_the_older_result_out,
    test_a_change_in_the_same_process_keeps_the_older_result_out,
    test_a_change_to_another_key_does_not_keep_the_result_out,
    test_a_pattern_or_clear_keeps_every_running_result_out,
    test_replacing_an_expired_entry_stores_the_result,
    test_two_real_processes_never_store_a_stale_result,
)
from tests.redis.test_redis_threads import (  # noqa: F401
    test_threads_mixing_every_call_keep_counters_consistent,
)
from tests.redis.test_redis_two_processes import (  # noqa: F401
    test_an_invalidation_in_another_process_is_seen_here,
)
