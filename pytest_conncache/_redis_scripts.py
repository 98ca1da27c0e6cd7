"""Lua scripts that keep a namespace's entries and its key index in step.

Besides its entries at ``{ns}:{key}``, a namespace keeps ``{ns}#index``: a
sorted set of every key with score 0, so in lexicographic order, where the
keys of one prefix form one ``ZRANGEBYLEX`` range. ``invalidate_prefix``
therefore costs the keys it removes, not the size of the namespace.

A store is not a script: SET and ZADD go out pipelined, in one round trip,
which costs about what one SET costs (a Lua call costs a third more).

Redis's own expiry removes entries but not their index members. Every
``PRUNE_EVERY``-th store of a backend also sends ``PRUNE``, which checks the
next ``PRUNE_BATCH`` members after a cursor and drops those whose entry is
gone. Each store adds at most one member and the cursor checks four per
store, so the index holds at most about 4/3 of the live entries.

Scripts take KEYS[1] = the index and build entry keys from ARGV, so they
need a single Redis node (no Cluster).
"""

from __future__ import annotations

PRUNE_EVERY = 32
PRUNE_BATCH = 128

# ARGV[1] '{ns}:', ARGV[2] the ZRANGEBYLEX start ('-' or '(' .. last member),
# ARGV[3] batch size. Returns the next start, or '' after the last member.
PRUNE = """
local members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], '+', 'LIMIT', 0, ARGV[3])
local gone = {}
for _, member in ipairs(members) do
    if redis.call('EXISTS', ARGV[1] .. member) == 0 then
        gone[#gone + 1] = member
    end
end
if #gone > 0 then
    redis.call('ZREM', KEYS[1], unpack(gone))
end
if #members < tonumber(ARGV[3]) then
    return ''
end
return '(' .. members[#members]
"""

# KEYS[2..] entries; ARGV[1] length of '{ns}:'. Returns the 1-based
# positions (among the entries) of those that existed and are now gone.
REMOVE = """
local removed = {}
local skip = tonumber(ARGV[1]) + 1
for i = 2, #KEYS do
    if redis.call('UNLINK', KEYS[i]) == 1 then
        removed[#removed + 1] = i - 1
    end
    redis.call('ZREM', KEYS[1], string.sub(KEYS[i], skip))
end
return removed
"""

# REMOVE, but only entries still holding ARGV[i] (expired entries that no
# other writer replaced meanwhile).
REMOVE_IF_EQUAL = """
local removed = {}
local skip = tonumber(ARGV[1]) + 1
for i = 2, #KEYS do
    if redis.call('GET', KEYS[i]) == ARGV[i] then
        redis.call('UNLINK', KEYS[i])
        redis.call('ZREM', KEYS[1], string.sub(KEYS[i], skip))
        removed[#removed + 1] = i - 1
    end
end
return removed
"""

# ARGV[1] '{ns}:', ARGV[2] / ARGV[3] ZRANGEBYLEX bounds, ARGV[4] batch size.
# Removes up to one batch of the range; returns {members looked at,
# removed member, ...}. The caller repeats until fewer than a batch came.
REMOVE_RANGE = """
local members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], ARGV[3], 'LIMIT', 0, ARGV[4])
local result = {#members}
for _, member in ipairs(members) do
    if redis.call('UNLINK', ARGV[1] .. member) == 1 then
        result[#result + 1] = member
    end
end
if #members > 0 then
    redis.call('ZREM', KEYS[1], unpack(members))
end
return result
"""

# Free a lock only for its owner: KEYS[1] lock, ARGV[1] token.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
