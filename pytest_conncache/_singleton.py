"""The process-wide shared cache."""

from __future__ import annotations

from typing import Any

from ._cache import ConnectionCache

connection_cache: ConnectionCache[Any] = ConnectionCache()
