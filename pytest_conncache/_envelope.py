"""The bytes stored per entry in Redis: the logical expiry, ttl and tags, then the payload.

``b"<expires_at> <ttl>[ <tags>]\\n<payload>"``: both numbers as Python float
reprs (``inf`` for entries that never expire), the tags (only when there are
any) as a JSON array. The expiry is read from the cache's clock, so a fake
or frozen clock expires Redis entries exactly as it expires in-memory ones;
the server's own PEXPIRE only frees memory. The Lua scripts read the same
header (``_redis_scripts``).
"""

from __future__ import annotations

import json
import math

# Beyond this many milliseconds Redis's expire arithmetic could overflow;
# such entries get no server-side expiry, like math.inf.
_MAX_PX = 10**15


def encode(payload: bytes, expires_at: float, ttl: float, tags: tuple[str, ...] = ()) -> bytes:
    if tags:
        listed = json.dumps(tags, separators=(",", ":"), ensure_ascii=True).encode()
        return b"%r %r %s\n" % (expires_at, ttl, listed) + payload
    return b"%r %r\n" % (expires_at, ttl) + payload


def decode(raw: bytes) -> tuple[bytes, float, float, tuple[str, ...]]:
    """(payload, expires_at, ttl, tags); ``ValueError`` for bytes this package did not write."""
    head, newline, payload = raw.partition(b"\n")
    expires, _, rest = head.partition(b" ")
    ttl, _, listed = rest.partition(b" ")
    try:
        if not newline:
            raise ValueError
        tags = tuple(json.loads(listed)) if listed else ()
        return payload, float(expires), float(ttl), tags
    except ValueError:
        raise ValueError(f"not a pytest-conncache entry: {raw[:60]!r}") from None


def server_px(ttl: float) -> int | None:
    """Milliseconds for Redis's PX (rounded up), or None for no server-side expiry."""
    if ttl == math.inf:
        return None
    px = math.ceil(ttl * 1000)
    return px if px <= _MAX_PX else None
