"""How a Redis-backed cache turns values into bytes: JSON by default, pickle only on request."""

from __future__ import annotations

import json
import pickle
from typing import Any, Protocol


class Serializer(Protocol):
    """Anything with ``dumps(value) -> bytes`` and ``loads(bytes) -> value``."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class JsonSerializer:
    """Compact UTF-8 JSON: the default, safe to read from a shared server.

    Values must be JSON types (dict with str keys, list, str, int, float,
    bool, None); anything else raises ``TypeError`` on store. JSON has no
    tuple: a stored tuple comes back as a list.
    """

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)

    def __repr__(self) -> str:
        return "JsonSerializer()"


class PickleSerializer:
    """Pickle, for values JSON cannot hold. An explicit opt-in, never a default.

    Warning: unpickling runs code chosen by whoever wrote the bytes. Anyone
    who can write to the Redis server (or to this namespace) can then run
    code in every process that reads from it. Use it only on a server that
    nothing untrusted can write to.
    """

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        self.protocol = protocol

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=self.protocol)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)  # noqa: S301 - the documented, explicit opt-in

    def __repr__(self) -> str:
        return f"PickleSerializer(protocol={self.protocol})"


JSON = JsonSerializer()
