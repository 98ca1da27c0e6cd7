"""Where a namespace's keys live: one bucket on a Redis server, 16 on a Redis Cluster.

A *bucket* is a set of entries together with the bookkeeping that describes
them: the prefix index, the tag sets, the change stamps and the fill locks
(``_redis_scripts.py`` says what each holds). Every Lua script of the store
touches the keys of one bucket only, so on a cluster a bucket must sit in
one hash slot: its names share a hash tag.

- On one server a namespace is one bucket, named as it always was:
  entries ``ns:{key}``, ``ns#index``, ``ns#stamps``, ``ns#tag:<tag>``,
  ``ns#lock:{key}``.
- On a cluster it is ``CLUSTER_BUCKETS`` buckets; bucket ``b``'s names start
  with the hash tag ``{ns#b}`` (``{ns#b.n}`` when that is what lands in the
  bucket's share of the slots, see ``Layout``): entries ``{ns#b}:{key}``,
  ``{ns#b}#index`` and so on. A key's bucket is ``crc32(key) mod 16``.

Both are the same code: the store's plans ask the layout for a key's bucket
and fan work that spans buckets out, one script per bucket.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

# Buckets of a namespace on a cluster. Enough that every namespace spreads
# over every master of a cluster of up to 16 masters (bucket b's hash tag is
# chosen to land in the b-th sixteenth of the slots); few enough that work
# spanning the namespace (a prefix or tag invalidation: one script per
# bucket) stays a handful of pipelined round trips, one per master.
CLUSTER_BUCKETS = 16

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def glob_escape(text: str) -> str:
    """``text`` with Redis glob metacharacters (``*?[]\\``) escaped: matches only itself."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


class Bucket:
    """The names of one bucket: entries under ``prefix``, bookkeeping beside them.

    ``skip`` is the length of ``prefix`` in bytes (what the Lua scripts cut
    off an entry's name to get its key), as a string ready to send.
    """

    __slots__ = (
        "number",
        "base",
        "prefix",
        "raw_prefix",
        "skip",
        "index",
        "stamps",
        "tag_prefix",
        "lock_prefix",
        "glob",
    )

    def __init__(self, number: int, base: str) -> None:
        self.number = number
        self.base = base
        self.prefix = base + ":"
        self.raw_prefix = self.prefix.encode()
        self.skip = str(len(self.raw_prefix))
        self.index = base + "#index"
        self.stamps = base + "#stamps"
        self.tag_prefix = base + "#tag:"
        self.lock_prefix = base + "#lock:"
        self.glob = glob_escape(self.prefix) + "*"

    def key_of(self, name: bytes) -> str:
        """The key of this bucket's entry ``name``."""
        return name[len(self.raw_prefix) :].decode()

    def __repr__(self) -> str:
        return f"Bucket({self.number}, {self.base!r})"


class Layout:
    """A namespace's buckets: one on a server, ``CLUSTER_BUCKETS`` on a cluster.

    On a cluster, bucket ``b``'s hash tag is the first of ``ns#b``,
    ``ns#b.1``, ``ns#b.2``, ... whose slot falls in the ``b``-th of 16 equal
    ranges of the 16,384 slots: a cluster whose masters share the slots in
    even ranges (what ``redis-cli --cluster create`` and a rebalance make)
    then holds an even share of every namespace on every master. The search
    is deterministic, so every process finds the same names.
    """

    __slots__ = ("namespace", "cluster", "buckets", "scan_glob", "_by_base")

    def __init__(self, namespace: str, *, cluster: bool) -> None:
        self.namespace = namespace
        self.cluster = cluster
        if cluster:
            self.buckets = tuple(
                Bucket(b, "{" + _tag(namespace, b) + "}") for b in range(CLUSTER_BUCKETS)
            )
            # Every name of the namespace, bookkeeping included: a namespace
            # has no '#', so "{ns#" is no other namespace's start.
            self.scan_glob = glob_escape("{" + namespace + "#") + "*"
        else:
            self.buckets = (Bucket(0, namespace),)
            self.scan_glob = self.buckets[0].glob
        self._by_base = {bucket.base.encode(): bucket for bucket in self.buckets}

    def bucket(self, key: str) -> Bucket:
        """The bucket that holds ``key``."""
        buckets = self.buckets
        if len(buckets) == 1:
            return buckets[0]
        return buckets[zlib.crc32(key.encode()) % CLUSTER_BUCKETS]

    def by_bucket(self, keys: Sequence[str]) -> list[tuple[Bucket, list[int]]]:
        """The positions of ``keys`` grouped by bucket, buckets in order of first use."""
        if len(self.buckets) == 1:
            return [(self.buckets[0], list(range(len(keys))))]
        groups: dict[int, tuple[Bucket, list[int]]] = {}
        for position, key in enumerate(keys):
            bucket = self.bucket(key)
            group = groups.get(bucket.number)
            if group is None:
                groups[bucket.number] = (bucket, [position])
            else:
                group[1].append(position)
        return list(groups.values())

    def entries(self, names: Iterable[bytes]) -> list[tuple[Bucket, list[bytes]]]:
        """The entry names among scanned ``names``, grouped by bucket.

        On a server every name ``SCAN MATCH ns:*`` returns is an entry; on a
        cluster the namespace's scan also meets its bookkeeping, which is
        left out here.
        """
        if not self.cluster:
            page = list(names)
            return [(self.buckets[0], page)] if page else []
        groups: dict[int, tuple[Bucket, list[bytes]]] = {}
        for name in names:
            bucket = self.owner(name)
            if bucket is None or not name.startswith(bucket.raw_prefix):
                continue
            group = groups.get(bucket.number)
            if group is None:
                groups[bucket.number] = (bucket, [name])
            else:
                group[1].append(name)
        return list(groups.values())

    def owner(self, name: bytes) -> Bucket | None:
        """The bucket a Redis key name of this namespace belongs to (None: not ours)."""
        if self.cluster:
            end = name.find(b"}") + 1
            bucket = self._by_base.get(name[:end]) if end > 0 else None
        else:
            bucket = self.buckets[0]
            end = len(bucket.base.encode())
            if not name.startswith(bucket.base.encode()):
                return None
        if bucket is None or name[end : end + 1] not in (b":", b"#"):
            return None
        return bucket


def _tag(namespace: str, number: int) -> str:
    """The hash tag of bucket ``number``: its slot in the bucket's share of the slots."""
    low = number * REDIS_CLUSTER_HASH_SLOTS // CLUSTER_BUCKETS
    high = (number + 1) * REDIS_CLUSTER_HASH_SLOTS // CLUSTER_BUCKETS
    attempt = 0
    while True:
        tag = f"{namespace}#{number}" + (f".{attempt}" if attempt else "")
        if low <= key_slot(tag.encode()) < high:
            return tag
        attempt += 1
