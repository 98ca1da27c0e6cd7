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
- ``ns#tag:<tag>``, one set per tag of the keys (``"k" + key``) whose entry
  carries it; the entry's own header lists its tags, and removals check it,
  so a member whose entry expired or was replaced without the tag is only
  garbage, pruned as stores and the index pruning meet it. As for the
  index, eviction must not lose entries silently: a tag set holds ``"m"``
  while it is known complete, and the index lists every tag of the
  namespace (``"t" + tag``), so that a store recreating a missing tag set
  can tell a new tag (complete from the start, if the index is complete)
  from an evicted one (unmarked: ``REMOVE_TAG`` then falls back to a SCAN).
  A tag set left with nothing but its marker is deleted, with its index
  listing.
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

All of this is per bucket (``_redis_layout``): one bucket per namespace on
a server (the names above), 16 on a cluster, each with its own index, tag
sets and stamps beside its entries, under one hash tag. Entry names are
built from ARGV (the bucket's prefix and a key), which a cluster allows
because they hash to the slot of the declared keys.
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

# GET that reads a key of another type (not ours) as bytes no entry has. Any
# other error stops the script: on a cluster, a key of a slot on its way to
# another master may be there already ("non local key"), and taking it for
# "no entry" could drop its index or tag set member while it lives on.
_READ = """
local function read(name)
    local raw = redis.pcall('GET', name)
    if type(raw) == 'table' and raw.err then
        if string.find(raw.err, 'WRONGTYPE', 1, true) then
            return 'not a string'
        end
        error(raw)
    end
    return raw
end
"""

_TAGS = """
local function tags_of(raw)
    local head = string.match(raw, '^([^\\n]*)\\n')
    local listed = head and string.match(head, '^[^ ]* [^ ]* (.*)$')
    if not listed then
        return {}
    end
    local ok, tags = pcall(cjson.decode, listed)
    if ok and type(tags) == 'table' then
        return tags
    end
    return {}
end

local function carries(raw, tag)
    if not raw then
        return false
    end
    for _, t in ipairs(tags_of(raw)) do
        if t == tag then
            return true
        end
    end
    return false
end

-- Drop up to ``count`` members of a tag set whose entry no longer carries the
-- tag; a set left with its marker alone goes, with its listing in the index.
local function prune_tag(index, tagset, prefix, tag, count)
    local members = redis.call('SRANDMEMBER', tagset, count)
    for _, member in ipairs(members) do
        if string.sub(member, 1, 1) == 'k'
                and not carries(read(prefix .. string.sub(member, 2)), tag) then
            redis.call('SREM', tagset, member)
        end
    end
    if redis.call('SCARD', tagset) == 1 and redis.call('SISMEMBER', tagset, 'm') == 1 then
        redis.call('DEL', tagset)
        redis.call('ZREM', index, 't' .. tag)
    end
end

-- ``member`` now carries ``tag``: a missing tag set is complete from the start
-- only if the index is complete and never listed the tag (else it was evicted).
local function tag_member(index, tagset, prefix, tag, member)
    if redis.call('EXISTS', tagset) == 0 then
        if redis.call('ZSCORE', index, 'm') and not redis.call('ZSCORE', index, 't' .. tag) then
            redis.call('SADD', tagset, 'm')
        end
        redis.call('ZADD', index, 0, 't' .. tag)
    end
    redis.call('SADD', tagset, member)
    prune_tag(index, tagset, prefix, tag, 4)
end
"""

_PRUNE = f"""
local function prune(index, prefix, start)
    local members = redis.call('ZRANGEBYLEX', index, start, '+', 'LIMIT', 0, {PRUNE_BATCH})
    local gone = {{}}
    for _, member in ipairs(members) do
        local kind = string.sub(member, 1, 1)
        if kind == 'k' and redis.call('EXISTS', prefix .. string.sub(member, 2)) == 0 then
            gone[#gone + 1] = member
        elseif kind == 't' then
            local tag = string.sub(member, 2)
            local tagset = string.sub(prefix, 1, -2) .. '#tag:' .. tag
            if redis.call('EXISTS', tagset) == 0 then
                gone[#gone + 1] = member
            else
                prune_tag(index, tagset, prefix, tag, 8)
            end
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

_WRITE = """
local function write(name, blob, px)
    if px == '' then
        redis.call('SET', name, blob)
    else
        redis.call('SET', name, blob, 'PX', px)
    end
end
"""

# KEYS[1] entry, KEYS[2] index, KEYS[3..] the entry's tag sets. ARGV[1]
# blob, ARGV[2] px or '', ARGV[3] length of 'ns:', ARGV[4] where to go on
# pruning the index ('' not this time), ARGV[5..] the tags (as KEYS[3..]).
# Returns the next prune start ('' at the end, or when not pruning).
STORE = Script(
    "store",
    _READ
    + _TAGS
    + _PRUNE
    + _WRITE
    + """
local prefix = string.sub(KEYS[1], 1, ARGV[3])
local member = 'k' .. string.sub(KEYS[1], ARGV[3] + 1)
write(KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, member)
for i = 3, #KEYS do
    tag_member(KEYS[2], KEYS[i], prefix, ARGV[i + 2], member)
end
if ARGV[4] ~= '' then
    return prune(KEYS[2], prefix, ARGV[4])
end
return ''
""",
)

# KEYS[1] index, KEYS[2..n+1] entries, KEYS[n+2..] their tag sets. ARGV[1]
# px or '', ARGV[2] length of 'ns:', ARGV[3] n, ARGV[4..n+3] one blob per
# entry, ARGV[n+4..] the tags (as KEYS[n+2..]).
STORE_MANY = Script(
    "store_many",
    _READ
    + _TAGS
    + _WRITE
    + """
local skip = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local prefix = string.sub(KEYS[2], 1, skip)
for i = 2, n + 1 do
    local member = 'k' .. string.sub(KEYS[i], skip + 1)
    write(KEYS[i], ARGV[i + 2], ARGV[1])
    redis.call('ZADD', KEYS[1], 0, member)
    for t = n + 2, #KEYS do
        tag_member(KEYS[1], KEYS[t], prefix, ARGV[t + 2], member)
    end
end
return n
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

# KEYS[1] entry, KEYS[2] index, KEYS[3] stamps, KEYS[4..] the entry's tag
# sets. ARGV[1] blob, ARGV[2] px or '', ARGV[3] length of 'ns:', ARGV[4] the
# lookup's gen ('' when there were no stamps: then any stamps now mean an
# invalidation since), ARGV[5] the SHA1 of the entry the lookup saw ('' for
# none), ARGV[6] the number f of stamp fields, ARGV[7..f+6] the fields
# covering the key (its bucket, 'all', its prefixes, its tags), ARGV[f+7..]
# the tags (as KEYS[4..]). Returns 1 if stored, 0 if refused. A fill follows
# a miss: what the lookup saw was absent, expired or unreadable, so its
# absence now is no change (the stamps tell an invalidation), but any other
# bytes than those seen are a newer set.
STORE_IF_UNCHANGED = Script(
    "store_if_unchanged",
    _BUMP
    + _READ
    + _TAGS
    + _WRITE
    + """
local now = read(KEYS[1])
if now and redis.sha1hex(now) ~= ARGV[5] then return 0 end
local nfields = tonumber(ARGV[6])
local born = redis.call('HGET', KEYS[3], 'born')
if ARGV[4] == '' then
    if born then return 0 end
    bump(KEYS[3], {})  -- stamps again, for the fills to come
else
    local seen = tonumber(ARGV[4])
    if not born or tonumber(born) > seen then return 0 end
    local fields = {}
    for i = 7, nfields + 6 do fields[#fields + 1] = ARGV[i] end
    local stamps = redis.call('HMGET', KEYS[3], unpack(fields))
    for i = 1, #fields do
        if stamps[i] and tonumber(stamps[i]) > seen then return 0 end
    end
end
local prefix = string.sub(KEYS[1], 1, ARGV[3])
local member = 'k' .. string.sub(KEYS[1], ARGV[3] + 1)
write(KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, member)
for i = 4, #KEYS do
    tag_member(KEYS[2], KEYS[i], prefix, ARGV[nfields + i + 3], member)
end
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
# 'ns:', ARGV[2] what to remove: 'p' (keys under the prefix ARGV[3]) or 't'
# (entries carrying the tag ARGV[3]). Removes those; indexes the others and
# lists their tags. Returns the 1-based positions removed.
REBUILD_PAGE = Script(
    "rebuild_page",
    _READ
    + _TAGS
    + """
local skip = tonumber(ARGV[1]) + 1
local by_prefix = ARGV[2] == 'p'
local what = ARGV[3]
local removed = {}
for i = 2, #KEYS do
    local key = string.sub(KEYS[i], skip)
    local raw = read(KEYS[i])
    local doomed
    if by_prefix then
        doomed = string.sub(key, 1, #what) == what
    else
        doomed = carries(raw, what)
    end
    if doomed then
        if redis.call('UNLINK', KEYS[i]) == 1 then
            removed[#removed + 1] = i - 1
        end
        redis.call('ZREM', KEYS[1], 'k' .. key)
    elseif raw then
        redis.call('ZADD', KEYS[1], 0, 'k' .. key)
        for _, tag in ipairs(tags_of(raw)) do
            redis.call('ZADD', KEYS[1], 0, 't' .. tag)
        end
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

# KEYS[1] index, KEYS[2] the tag set, KEYS[3] stamps. ARGV[1] the tag,
# ARGV[2] 'ns:', ARGV[3] the SSCAN cursor, ARGV[4] batch size. Returns {-1}
# when the tag set is not known complete (no 'm'), else {next cursor,
# removed key, ...}; the caller repeats until the cursor is 0. Members whose
# entry no longer carries the tag are dropped without removing anything.
REMOVE_TAG = Script(
    "remove_tag",
    _BUMP
    + _READ
    + _TAGS
    + """
if redis.call('SISMEMBER', KEYS[2], 'm') == 0 then
    return {-1}
end
if ARGV[3] == '0' then
    bump(KEYS[3], {'t:' .. ARGV[1]})
end
local page = redis.call('SSCAN', KEYS[2], ARGV[3], 'COUNT', ARGV[4])
local result = {page[1]}
for _, member in ipairs(page[2]) do
    if string.sub(member, 1, 1) == 'k' then
        local key = string.sub(member, 2)
        local name = ARGV[2] .. key
        if carries(read(name), ARGV[1]) then
            redis.call('UNLINK', name)
            redis.call('ZREM', KEYS[1], member)
            result[#result + 1] = key
        end
        redis.call('SREM', KEYS[2], member)
    end
end
if page[1] == '0' and redis.call('SCARD', KEYS[2]) == 1 then
    redis.call('DEL', KEYS[2])
    redis.call('ZREM', KEYS[1], 't' .. ARGV[1])
end
return result
""",
)

# KEYS[1] the tag set, KEYS[2] stamps. ARGV[1] rebuild token, ARGV[2] the tag.
# Starts removing a tag by SCAN: the set restarts holding only the token, so
# that stores meanwhile join it and ``FINISH_TAG`` can tell an eviction.
BEGIN_TAG = Script(
    "begin_tag",
    _BUMP
    + """
bump(KEYS[2], {'t:' .. ARGV[2]})
redis.call('DEL', KEYS[1])
redis.call('SADD', KEYS[1], ARGV[1])
return 1
""",
)

# KEYS[1] the tag set, KEYS[2] index. ARGV[1] the token, ARGV[2] the tag.
# Marks the set complete if it still holds the token, and lists the tag.
FINISH_TAG = Script(
    "finish_tag",
    """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
    redis.call('SREM', KEYS[1], ARGV[1])
    redis.call('SADD', KEYS[1], 'm')
    redis.call('ZADD', KEYS[2], 0, 't' .. ARGV[2])
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
