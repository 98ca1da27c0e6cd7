"""Lua scripts: every multi-key step of the Redis store, atomic on the server.

A namespace ``ns`` keeps, besides its entries at ``ns:{key}``:

- ``ns#index``, a sorted set of ``"k" + key`` for every stored key (score 0,
  so in lexicographic order, where one prefix's keys form one
  ``ZRANGEBYLEX`` range): ``invalidate_prefix`` costs the keys it removes,
  not the namespace. Under an ``allkeys-*`` maxmemory policy Redis may evict
  the index like any key, and a later store would recreate it incomplete.
  So the index holds the member ``"m"`` only while it is known complete:
  ``REMOVE_RANGE`` refuses to trust an index without it, and the client
  then removes by ``SCAN`` and rebuilds the index in the same pass
  (``BEGIN_REBUILD``, ``REBUILD_PAGE``, ``FINISH_REBUILD``). Eviction removes
  whole keys, never members, so a marked index is always complete.
- ``ns#stamps``, a hash of invalidation stamps for the stale-write rule
  across processes: ``gen`` (a counter, started at the server's time in
  microseconds whenever the hash is created, so it only grows), ``born``
  (its value when the hash was created), one field per key bucket (``b<n>``,
  n = crc32(key) mod ``BUCKETS``), per invalidated prefix (``p:<prefix>``),
  ``prefix`` (any prefix) and ``all`` (clear, pattern invalidation), each
  holding the stamp of the last invalidation it covers. ``get_or_set``
  reads ``gen`` with its lookup and stores with ``STORE_IF_UNCHANGED``,
  which refuses when the entry is no longer what the lookup saw (a ``set``
  meanwhile), when a field covering the key is newer (an invalidation
  meanwhile, of a stored key or not), or when the hash was created after
  the lookup (a lost hash cannot vouch for anything). A hash past
  ``MAX_FIELDS`` fields is recreated, which refuses the fills then running:
  a rare lost store, never a stale one. ``set`` touches no stamp: it
  changes the entry, which is what the fill compares.

Entry names are built from ARGV (the namespace prefix and a key), so the
scripts need every key of a namespace on one node (no Cluster).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

# Key buckets of the change stamps: more buckets, fewer fills refused
# because another key of their bucket changed meanwhile.
BUCKETS = 4096
MAX_FIELDS = BUCKETS + 1024 + 3

# Every PRUNE_EVERY-th store of a store object also checks the next
# PRUNE_BATCH index members and drops those whose entry Redis expired, so
# the index holds at most about 4/3 of the live entries.
PRUNE_EVERY = 32
PRUNE_BATCH = 128


@dataclass(frozen=True)
class Script:
    """A Lua script, called by EVALSHA with EVAL as the fallback."""

    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


_BUMP = f"""
local function bump(stamps, fields)
    if redis.call('HLEN', stamps) > {MAX_FIELDS} then
        redis.call('DEL', stamps)
    end
    local gen = redis.call('HINCRBY', stamps, 'gen', 1)
    if gen == 1 then
        local t = redis.call('TIME')
        gen = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
        redis.call('HSET', stamps, 'gen', gen, 'born', gen)
    end
    gen = string.format('%.0f', gen)
    local args = {{}}
    for _, f in ipairs(fields) do
        args[#args + 1] = f
        args[#args + 1] = gen
        if #args >= 1000 then
            redis.call('HSET', stamps, unpack(args))
            args = {{}}
        end
    end
    if #args > 0 then
        redis.call('HSET', stamps, unpack(args))
    end
end
"""

_PRUNE = f"""
local function prune(index, prefix, start)
    local members = redis.call('ZRANGEBYLEX', index, start, '+', 'LIMIT', 0, {PRUNE_BATCH})
    local gone = {{}}
    for _, member in ipairs(members) do
        if string.sub(member, 1, 1) == 'k'
                and redis.call('EXISTS', prefix .. string.sub(member, 2)) == 0 then
            gone[#gone + 1] = member
        end
    end
    if #gone > 0 then
        redis.call('ZREM', index, unpack(gone))
    end
    if #members < {PRUNE_BATCH} then
        return ''
    end
    return '(' .. members[#members]
end
"""

# GET that reads a key of another type (not ours) as bytes no entry has.
_READ = """
local function read(name)
    local raw = redis.pcall('GET', name)
    if type(raw) == 'table' and raw.err then
        return 'not a string'
    end
    return raw
end
"""

_WRITE = """
local function write(name, blob, px)
    if px == '' then
        redis.call('SET', name, blob)
    else
        redis.call('SET', name, blob, 'PX', px)
    end
end
"""

# KEYS[1] entry, KEYS[2] index. ARGV[1] blob, ARGV[2] px or '', ARGV[3]
# length of 'ns:', ARGV[4] (optional) where to go on pruning the index.
# Returns the next prune start ('' at the end, or when not pruning).
STORE = Script(
    "store",
    _PRUNE
    + _WRITE
    + """
write(KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, 'k' .. string.sub(KEYS[1], ARGV[3] + 1))
if ARGV[4] then
    return prune(KEYS[2], string.sub(KEYS[1], 1, ARGV[3]), ARGV[4])
end
return ''
""",
)

# KEYS[1] index, KEYS[2..] entries. ARGV[1] px or '', ARGV[2] length of
# 'ns:', ARGV[3..] one blob per entry.
STORE_MANY = Script(
    "store_many",
    _WRITE
    + """
local skip = tonumber(ARGV[2]) + 1
for i = 2, #KEYS do
    write(KEYS[i], ARGV[i + 1], ARGV[1])
    redis.call('ZADD', KEYS[1], 0, 'k' .. string.sub(KEYS[i], skip))
end
return #KEYS - 1
""",
)

# KEYS[1] entry, KEYS[2] stamps. Returns {raw entry or nil, gen or nil}.
# Read-only (the flag needs Redis 7), so that it runs on replicas and while
# the server holds writes (CLIENT PAUSE WRITE), like a plain GET.
LOOKUP_FOR_FILL = Script(
    "lookup_for_fill",
    "#!lua flags=no-writes\n"
    + _READ
    + """
return {read(KEYS[1]), redis.call('HGET', KEYS[2], 'gen')}
""",
)

# KEYS[1] entry, KEYS[2] index, KEYS[3] stamps. ARGV[1] blob, ARGV[2] px
# or '', ARGV[3] length of 'ns:', ARGV[4] the lookup's gen ('' when there
# were no stamps: then any stamps now mean an invalidation since), ARGV[5] the
# SHA1 of the entry the lookup saw ('' for none), ARGV[6..] the stamp fields
# covering the key (its bucket, 'all', its prefixes). Returns 1 if stored,
# 0 if refused. A fill follows a miss: what the lookup saw was absent,
# expired or unreadable, so its absence now is no change (the stamps tell
# an invalidation), but any other bytes than those seen are a newer set.
STORE_IF_UNCHANGED = Script(
    "store_if_unchanged",
    _BUMP
    + _READ
    + _WRITE
    + """
local now = read(KEYS[1])
if now and redis.sha1hex(now) ~= ARGV[5] then return 0 end
local born = redis.call('HGET', KEYS[3], 'born')
if ARGV[4] == '' then
    if born then return 0 end
    bump(KEYS[3], {})  -- stamps again, for the fills to come
    write(KEYS[1], ARGV[1], ARGV[2])
    redis.call('ZADD', KEYS[2], 0, 'k' .. string.sub(KEYS[1], ARGV[3] + 1))
    return 1
end
local seen = tonumber(ARGV[4])
if not born or tonumber(born) > seen then return 0 end
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
local stamps = redis.call('HMGET', KEYS[3], unpack(fields))
for i = 1, #fields do
    if stamps[i] and tonumber(stamps[i]) > seen then return 0 end
end
write(KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, 'k' .. string.sub(KEYS[1], ARGV[3] + 1))
return 1
""",
)

# KEYS[1] index, KEYS[2] stamps, KEYS[3..] entries.
# ARGV[1] length of 'ns:', ARGV[2..] stamp fields to bump (none: a silent
# wipe). Returns the 1-based positions (among the entries) that existed.
REMOVE = Script(
    "remove",
    _BUMP
    + """
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
if #fields > 0 then bump(KEYS[2], fields) end
local removed = {}
local skip = tonumber(ARGV[1]) + 1
for i = 3, #KEYS do
    if redis.call('UNLINK', KEYS[i]) == 1 then
        removed[#removed + 1] = i - 2
    end
    redis.call('ZREM', KEYS[1], 'k' .. string.sub(KEYS[i], skip))
end
return removed
""",
)

# KEYS[1] index, KEYS[2..] entries; ARGV[1] length of 'ns:', ARGV[2..] the
# expiry each entry was read with, as written in its first field. Removes
# each entry still holding that expiry (expired entries nobody replaced
# meanwhile); returns the 1-based positions removed.
REMOVE_IF_EXPIRES = Script(
    "remove_if_expires",
    _READ
    + """
local removed = {}
local skip = tonumber(ARGV[1]) + 1
for i = 2, #KEYS do
    local raw = read(KEYS[i])
    if raw and string.match(raw, '^[^ ]*') == ARGV[i] then
        redis.call('UNLINK', KEYS[i])
        redis.call('ZREM', KEYS[1], 'k' .. string.sub(KEYS[i], skip))
        removed[#removed + 1] = i - 1
    end
end
return removed
""",
)

# KEYS[1] index, KEYS[2] stamps. ARGV[1] 'ns:', ARGV[2] / ARGV[3]
# ZRANGEBYLEX bounds, ARGV[4] batch size, ARGV[5] the prefix's stamp field
# (bumped with 'prefix', which keys too long for a field per prefix check).
# Returns {-1} when the index is not known complete (no 'm'), else
# {members looked at, removed key, ...}; the caller repeats until fewer
# than a batch were looked at.
REMOVE_RANGE = Script(
    "remove_range",
    _BUMP
    + """
if not redis.call('ZSCORE', KEYS[1], 'm') then
    return {-1}
end
bump(KEYS[2], {ARGV[5], 'prefix'})
local members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], ARGV[3], 'LIMIT', 0, ARGV[4])
local result = {#members}
for _, member in ipairs(members) do
    local key = string.sub(member, 2)
    if redis.call('UNLINK', ARGV[1] .. key) == 1 then
        result[#result + 1] = key
    end
end
if #members > 0 then
    redis.call('ZREM', KEYS[1], unpack(members))
end
return result
""",
)

# KEYS[1] index, KEYS[2] stamps. ARGV[1] rebuild token member, ARGV[2] the
# prefix's stamp field (bumped with 'prefix'). Starts a rebuild: the token
# marks the index it began on.
BEGIN_REBUILD = Script(
    "begin_rebuild",
    _BUMP
    + """
bump(KEYS[2], {ARGV[2], 'prefix'})
redis.call('ZADD', KEYS[1], 0, ARGV[1])
return 1
""",
)

# KEYS[1] index, KEYS[2..] entries of one SCAN page. ARGV[1] length of
# 'ns:', ARGV[2] the key prefix being removed. Indexes each entry, removing
# those under the prefix; returns the 1-based positions removed.
REBUILD_PAGE = Script(
    "rebuild_page",
    """
local skip = tonumber(ARGV[1]) + 1
local prefix = ARGV[2]
local removed = {}
for i = 2, #KEYS do
    local key = string.sub(KEYS[i], skip)
    if string.sub(key, 1, #prefix) == prefix then
        if redis.call('UNLINK', KEYS[i]) == 1 then
            removed[#removed + 1] = i - 1
        end
        redis.call('ZREM', KEYS[1], 'k' .. key)
    elseif redis.call('EXISTS', KEYS[i]) == 1 then
        redis.call('ZADD', KEYS[1], 0, 'k' .. key)
    end
end
return removed
""",
)

# KEYS[1] index; ARGV[1] the rebuild token. Marks the index complete if it
# still holds the token (was not evicted while the rebuild ran).
FINISH_REBUILD = Script(
    "finish_rebuild",
    """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
    redis.call('ZREM', KEYS[1], ARGV[1])
    redis.call('ZADD', KEYS[1], 0, 'm')
    return 1
end
return 0
""",
)

# KEYS[1] stamps; ARGV the fields to stamp now (before a walk that may
# remove nothing, so that a fill running meanwhile is refused anyway).
BUMP = Script(
    "bump",
    _BUMP
    + """
bump(KEYS[1], ARGV)
return 1
""",
)

# Free a fill lock only for its owner: KEYS[1] lock, ARGV[1] token.
RELEASE = Script(
    "release",
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
""",
)
