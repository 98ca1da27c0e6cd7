"""The bytes stored per entry in Redis: the logical expiry and ttl, then the payload.

``b"<expires_at> <ttl>\\n<payload>"``, both numbers as Python float reprs
(``inf`` for entries that never expire). The expiry is read from the cache's
clock, so a fake or frozen clock expires Redis entries exactly as it expires
in-memory ones; the server's own PEXPIRE only frees memory.
"""

from __future__ import annotations

import math

# Beyond this many milliseconds Redis's expire arithmetic could overflow;
# such entries get no server-side expiry, like math.inf.
_MAX_PX = 10**15


def encode(payload: bytes, expires_at: float, ttl: float) -> bytes:
    return b"%r %r\n" % (expires_at, ttl) + payload


def decode(raw: bytes) -> tuple[bytes, float, float]:
    """(payload, expires_at, ttl); ``ValueError`` for bytes this package did not write."""
    head, newline, payload = raw.partition(b"\n")
    expires, _, ttl = head.partition(b" ")
    try:
        if not newline:
            raise ValueError
        return payload, float(expires), float(ttl)
    except ValueError:
        raise ValueError(f"not a pytest-conncache entry: {raw[:60]!r}") from None


def server_px(ttl: float) -> int | None:
    """Milliseconds for Redis's PX (rounded up), or None for no server-side expiry."""
    if ttl == math.inf:
        return None
    px = math.ceil(ttl * 1000)
    return px if px <= _MAX_PX else None
