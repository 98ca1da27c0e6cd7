"""Typed values: bytes that come back as the type that went in.

A ``Codec`` turns values into bytes and back, like a serializer, for one
declared type. ``codec_for(value_type)`` builds it on Pydantic's
``TypeAdapter`` (the optional ``typed`` extra), which validates JSON
straight into dataclasses, ``datetime``, tuples, typed containers and
Pydantic models. Codecs are made once per type and shared.

Stores that keep objects (memory) ignore codecs; stores that keep bytes
(Redis) use the codec a call brings instead of their plain serializer.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol, get_origin

from ._validate import shown


class Codec(Protocol):
    """``dumps(value) -> bytes`` and ``loads(bytes) -> value`` (a serializer)."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class TypedCodec:
    """JSON validated into ``value_type`` on the way back (Pydantic's ``TypeAdapter``)."""

    def __init__(self, value_type: Any) -> None:
        try:
            from pydantic import TypeAdapter
        except ImportError as error:
            raise ImportError(
                f"value_type={shown(value_type)} needs Pydantic, which decodes values into "
                "their type: pip install 'pytest-conncache[typed]'"
            ) from error
        self.value_type = value_type
        try:
            self._adapter: Any = TypeAdapter(value_type)
        except Exception as error:
            raise TypeError(
                f"value_type must be a type Pydantic can validate, got {shown(value_type)}: "
                f"{str(error).splitlines()[0]}"
            ) from None

    def dumps(self, value: Any) -> bytes:
        # warnings="error": a value that is not of the declared type fails here,
        # at set, not later as something else on the way back.
        data: bytes = self._adapter.dump_json(value, warnings="error")
        return data

    def loads(self, data: bytes) -> Any:
        return self._adapter.validate_json(data)

    def __repr__(self) -> str:
        return f"TypedCodec({type_expression(self.value_type)})"


def type_expression(value_type: Any) -> str:
    """``value_type`` as written in code: ``int``, ``list[int]``, ``Optional[str]``."""
    # On Python 3.10 a parametrised builtin (list[int]) passes isinstance(..., type).
    if isinstance(value_type, type) and get_origin(value_type) is None:
        return value_type.__qualname__
    return repr(value_type)


@lru_cache(maxsize=256)
def _codec(value_type: Any) -> TypedCodec:
    return TypedCodec(value_type)


def codec_for(value_type: Any) -> Codec | None:
    """The shared codec of ``value_type``; None for None (the store's own serializer)."""
    if value_type is None:
        return None
    try:
        return _codec(value_type)
    except TypeError:  # unhashable (an instance passed by mistake, a list)
        return TypedCodec(value_type)
