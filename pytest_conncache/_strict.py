"""StrictChecks: production-parity checks for one test (the plugin's ``--conncache-strict``).

An in-memory cache keeps the very objects it is given; on Redis every value
goes through a serializer and every read decodes a fresh copy. Code that
passes its tests in memory can therefore break in production in two ways,
and a ``StrictChecks`` registered on ``observers`` while a test runs catches
both:

- a value that would not come back equal, and of the same types all the way
  down, through the serializer it would meet on Redis (a tuple becomes a
  list, ``{1: ...}`` becomes ``{"1": ...}``, a ``datetime`` cannot be stored
  at all): checked at each ``set``, on every cache (on a Redis-backed one
  through its backend's serializer, whether or not the test reads it back);
- a value handed out by ``get``/``get_or_set`` (or stored by ``set``), then
  changed in place while an in-memory cache still holds it, or handed out by
  a Redis backend's near cache (which gives every reader in the process the
  same object): checked at ``problems()``, against a fingerprint taken when
  it was handed out.

The serializer is the codec of the ``value_type`` in force (the call's, a
``@cached`` function's return annotation, else the cache's), else compact
JSON, the Redis store's default. A hook never raises: what it finds, and
anything that keeps it from checking, is recorded for ``problems()``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from types import CodeType, FrameType
from typing import Any, NamedTuple, cast

from ._cache import ConnectionCache
from ._codecs import Codec, codec_for, type_expression
from ._hooks import hookimpl
from ._validate import shown

__all__ = ["StrictChecks"]

# How many hand-outs of one object name where they happened (the rest are counted).
_SITES = 3
# How many hand-outs of one object are looked up at all (a frame walk each).
_TRACED = 8
# How many aget_or_set fills waiting for their task to store are remembered.
_LAUNCHES = 256
# How many watched values are kept before those the caches no longer hold are let go.
_WATCHES = 10_000
# How deep the checks look into nested values.
_DEPTH = 64

_IMMUTABLE = (str, int, float, bool, bytes, complex, type(None))
_SCALARS = frozenset((str, int, bool, type(None)))  # compared by ==, with nothing inside

_JSON_ADVICE = (
    "store JSON types (dict with str keys, list, str, int, float, bool, None), or give "
    "value_type= (to the cache, the call or as the @cached function's return annotation) "
    "so that values are decoded into their type"
)


class _Origin(NamedTuple):
    """Where a cache call came from: ``site`` ((file, line), None if unknown), the
    public ``method`` that was called, through a ``@cached`` function ``via`` (its
    name), the ``codec`` that call used (None: the cache's own serializer or codec),
    and whether the event came from an ``aget_or_set`` fill's own task."""

    site: tuple[str, int] | None
    method: str | None
    via: str | None
    codec: Codec | None
    in_task: bool


class _Watch:
    """A value handed out (or stored), with its fingerprint when that happened."""

    __slots__ = ("cache", "key", "value", "fingerprint", "sites", "times")

    def __init__(
        self, cache: ConnectionCache[Any], key: str, value: Any, fingerprint: tuple[str, Any]
    ) -> None:
        self.cache = cache
        self.key = key
        self.value = value
        self.fingerprint = fingerprint
        self.sites: list[tuple[str, tuple[str, int] | None, str | None]] = []
        self.times = 0


class StrictChecks:
    """Production-parity checks for one test: register on ``observers``, run the
    test, unregister, then ``problems()``.

    ``problems()`` is a list of messages, one per key and kind of problem, in
    the order they were found: first those the checks at ``set`` found, then
    the values changed in place (computed when called). Empty: nothing to fix.
    Thread-safe; the hooks count nothing, change nothing in any cache, and
    never raise.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: dict[tuple[int, str, str], str] = {}  # (cache, key, kind) -> message
        self._watches: dict[int, _Watch] = {}  # id(value) -> watch (holding the value)
        self._launches: dict[tuple[int, str], _Origin] = {}  # aget_or_set fills in flight
        self._sweep_at = _WATCHES

    # -- hooks (called under the reporting cache's lock) ------------------------------------

    @hookimpl
    def conncache_set(self, cache: ConnectionCache[Any], key: str, value: Any) -> None:
        try:
            origin = _origin(sys._getframe(1))
            if origin.in_task:
                with self._lock:
                    launched = self._launches.pop((id(cache), key), None)
                if launched is not None:
                    origin = launched._replace(codec=origin.codec or launched.codec)
            self._check_round_trip(cache, key, value, origin)
            if not cache.shared:  # the cache holds this very object
                self._watch(cache, key, value, origin, stored=True)
        except Exception as error:
            self._failed(cache, key, error)

    @hookimpl
    def conncache_hit(self, cache: ConnectionCache[Any], key: str, value: Any) -> None:
        # In memory, and from a near cache's copy, every reader gets the same
        # object; a plain Redis read decodes a fresh one, which no change harms.
        try:
            if not cache.shared or _near_cache(cache):
                self._watch(cache, key, value, None, stored=False)
        except Exception as error:
            self._failed(cache, key, error)

    @hookimpl
    def conncache_miss(self, cache: ConnectionCache[Any], key: str) -> None:
        # An aget_or_set leader counts its miss in its caller's stack, then stores
        # from a task of its own: remember where it was called from for the set.
        try:
            origin = _origin(sys._getframe(1), launch=True)
            if origin.in_task:
                with self._lock:
                    launches = self._launches
                    launches[(id(cache), key)] = origin
                    if len(launches) > _LAUNCHES:
                        del launches[next(iter(launches))]
        except Exception as error:
            self._failed(cache, key, error)

    # -- the result ------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """What the checks found (see the class docstring); may be called more than once."""
        with self._lock:
            watches = list(self._watches.values())
        for watch in watches:
            cache, key = watch.cache, watch.key
            if (id(cache), key, "mutation") in self._found:
                continue
            try:
                if not cache.shared:
                    entry = cache.peek_entry(key)
                    if entry is None or entry.value is not watch.value:
                        continue  # no longer held: nobody else gets the change
                # (A near cache's copy cannot be peeked: a change counts whether or not
                # the copy still holds the value; other readers may have got it.)
                if _changed(watch.value, watch.fingerprint):
                    self._record(cache, key, "mutation", _mutation_message(watch))
            except Exception as error:
                self._failed(cache, key, error)
        with self._lock:
            return list(self._found.values())

    # -- the checks --------------------------------------------------------------------------

    def _check_round_trip(
        self, cache: ConnectionCache[Any], key: str, value: Any, origin: _Origin
    ) -> None:
        if (id(cache), key, "round trip") in self._found:
            return  # each key once
        codec = origin.codec
        if codec is None and cache.value_type is not None:
            codec = codec_for(cache.value_type)
        if codec is None and cache.shared:
            codec = _serializer_of(cache)  # None: JSON, checked as for memory
        wrong = _round_trip(value, codec)
        if wrong is None:
            return
        what, how = wrong
        named = _serializer_name(codec)
        where = _how(origin.method or "set", origin.site, origin.via)
        advice = _JSON_ADVICE if codec is None else _typed_advice(codec)
        if how == "encode":
            story = f"cannot be stored on Redis through {named}: {what}"
        else:
            story = f"would not come back the same from Redis through {named}: {what}"
        self._record(
            cache,
            key,
            "round trip",
            f"key {shown(key)} ({_type_name(value)}, {where}): {story}\n  {advice}",
        )

    def _watch(
        self,
        cache: ConnectionCache[Any],
        key: str,
        value: Any,
        origin: _Origin | None,
        stored: bool,
    ) -> None:
        """Fingerprint ``value`` the first time it is handed out (again when it is stored
        again: a set of a changed value is how a change is meant to be made)."""
        if type(value) in _IMMUTABLE:
            return
        with self._lock:
            watch = self._watches.get(id(value))
            if watch is not None and watch.value is value and not stored:
                watch.times += 1
                if watch.times > _TRACED or len(watch.sites) >= _SITES:
                    return
        if origin is None:
            origin = _origin(sys._getframe(1))
        site = (origin.method or "get", origin.site, origin.via)
        if watch is not None and not stored:
            with self._lock:
                if site not in watch.sites and len(watch.sites) < _SITES:
                    watch.sites.append(site)
            return
        fingerprint = _fingerprint(value)
        if fingerprint is None:
            return  # neither JSON, pickle nor a deep copy can tell a change: not checked
        fresh = _Watch(cache, key, value, fingerprint)
        fresh.sites.append(site)
        fresh.times = 1
        with self._lock:
            self._watches[id(value)] = fresh
            sweep = len(self._watches) > self._sweep_at
        if sweep:
            self._sweep()

    def _sweep(self) -> None:
        """Let go of the values no cache holds under their key any more (replaced,
        removed): only values still held are checked, and memory stays bounded under
        churn. The next sweep waits until the watches have doubled."""
        with self._lock:
            watches = list(self._watches.items())
            self._sweep_at = 2**62  # one sweep at a time
        gone = []
        try:
            for ident, watch in watches:
                entry = None if watch.cache.shared else watch.cache.peek_entry(watch.key)
                if entry is None or entry.value is not watch.value:
                    gone.append((ident, watch))
        finally:
            with self._lock:
                for ident, watch in gone:
                    if self._watches.get(ident) is watch:
                        del self._watches[ident]
                self._sweep_at = max(_WATCHES, 2 * len(self._watches))

    def _record(self, cache: ConnectionCache[Any], key: str, kind: str, message: str) -> None:
        with self._lock:
            self._found.setdefault((id(cache), key, kind), message)

    def _failed(self, cache: ConnectionCache[Any], key: str, error: Exception) -> None:
        with contextlib.suppress(Exception):  # an error that cannot even be shown
            self._record(
                cache,
                key,
                "failed",
                f"key {shown(key)}: the strict checks could not check its value "
                f"({type(error).__name__}: {error})",
            )


def _near_cache(cache: ConnectionCache[Any]) -> bool:
    return bool(getattr(cache.backend, "near_cache", False))


def _serializer_of(cache: ConnectionCache[Any]) -> Codec | None:
    """The serializer of a Redis-backed cache's backend; None for the default JSON one."""
    from ._serializers import JsonSerializer

    serializer = getattr(cache.backend, "serializer", None)
    if serializer is None or isinstance(serializer, JsonSerializer):
        return None
    return cast(Codec, serializer)


# -- where a call came from ---------------------------------------------------------------------

# What a frame's code is to the walk: the caller's, this package's (_METHODS: the
# files defining the public methods), skipped (pluggy, functools, contextlib),
# or a @cached function's generated wrapper.
_OUTSIDE, _PACKAGE, _METHODS, _SKIPPED, _GENERATED = range(5)

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_METHOD_FILES = {_PACKAGE_DIR + "_cache.py", _PACKAGE_DIR + "_cacheaside.py"}
_PUBLIC = {
    "get": "get",
    "aget": "aget",
    "get_many": "get_many",
    "aget_many": "aget_many",
    "get_or_set": "get_or_set",
    "aget_or_set": "aget_or_set",
    "set": "set",
    "aset": "aset",
    "set_many": "set_many",
    "aset_many": "aset_many",
}
# Methods whose ``value_type`` argument chooses the codec of what they store.
_TYPED_METHODS = {"set", "aset", "set_many", "aset_many", "get_or_set", "aget_or_set"}
# Steps of get_or_set and aget_or_set holding the ``Fill`` (its codec) of a miss.
_FILL_STEPS = {"_fill", "_launch", "_afill", "_astore_fill"}

_kinds: dict[CodeType, int] = {}


def _skipped_files() -> tuple[tuple[str, ...], frozenset[str]]:
    import pluggy

    directories = (_PACKAGE_DIR, os.path.dirname(os.path.abspath(pluggy.__file__)) + os.sep)
    files = frozenset(
        os.path.abspath(module.__file__)
        for module in (contextlib, functools)
        if module.__file__ is not None
    )
    return directories, files


_SKIPPED_DIRS, _SKIPPED_FILES = _skipped_files()


def _kind(code: CodeType) -> int:
    kind = _kinds.get(code)
    if kind is None:
        filename = code.co_filename
        if filename.startswith("<cached "):
            kind = _GENERATED
        else:
            path = os.path.abspath(filename) if filename[:1] not in ("<", "") else filename
            if path in _METHOD_FILES:
                kind = _METHODS
            elif path.startswith(_PACKAGE_DIR):
                kind = _PACKAGE
            elif path.startswith(_SKIPPED_DIRS) or path in _SKIPPED_FILES:
                kind = _SKIPPED
            else:
                kind = _OUTSIDE
        _kinds[code] = kind
    return kind


def _origin(frame: FrameType | None, launch: bool = False) -> _Origin:
    """Walk out from a hook's caller to the first frame outside this package, pluggy,
    functools and contextlib: the call site, the public method called, and the codec
    of the ``value_type`` in force for what it stores.

    ``launch``: only an ``aget_or_set`` leader launching its fill (a miss) matters:
    ``in_task`` says whether this is one. Otherwise ``in_task`` says that the event
    came from such a fill's own task, whose stack does not reach the caller.
    """
    method: str | None = None
    via: str | None = None
    codec: Codec | None = None
    launching = False
    while frame is not None:
        code = frame.f_code
        kind = _kind(code)
        if kind == _OUTSIDE:
            if launch and not launching:
                return _Origin(None, None, None, None, False)
            return _Origin((code.co_filename, frame.f_lineno), method, via, codec, launching)
        if kind == _METHODS:
            name = code.co_name
            if name in _FILL_STEPS:
                fill = frame.f_locals.get("fill")
                if codec is None:
                    codec = getattr(fill, "codec", None)
                if name == "_launch":
                    launching = True
                elif name == "_afill" and not launch:
                    return _Origin(None, "aget_or_set", None, codec, True)
            elif name in _PUBLIC:
                method = _PUBLIC[name]
                if codec is None and name in _TYPED_METHODS:
                    value_type = frame.f_locals.get("value_type")
                    if value_type is not None:
                        codec = codec_for(value_type)
        elif kind == _GENERATED:
            via = code.co_filename[len("<cached ") : -1]
            if codec is None:
                codec = _lazy_codec(frame)
        frame = frame.f_back
    return _Origin(None, method, via, codec, launching)


def _lazy_codec(frame: FrameType) -> Codec | None:
    """The codec of a ``@cached`` function's return annotation resolved on first use
    (a forward reference), which it passes to ``get_or_set`` on Redis only."""
    from ._decorator import LazyValueType

    for value in frame.f_globals.values():
        if isinstance(value, LazyValueType):
            try:
                value_type = value()
            except Exception:  # unresolvable: the cache's own serializer, as on Redis
                return None
            return None if value_type is None else codec_for(value_type)
    return None


_shown_paths: dict[str, str] = {}


def _site(site: tuple[str, int]) -> str:
    """``file:line``, the file relative to the working directory when under it."""
    filename, line = site
    shown_path = _shown_paths.get(filename)
    if shown_path is None:
        try:
            relative = os.path.relpath(filename)
        except ValueError:  # another drive
            relative = filename
        shown_path = filename if relative.startswith("..") else relative
        _shown_paths[filename] = shown_path
    return f"{shown_path}:{line}"


def _how(method: str, site: tuple[str, int] | None, via: str | None) -> str:
    """``stored by set at tests/test_x.py:12``, ``handed out by get_or_set through
    @cached f at ...``."""
    verb = "stored by" if method in ("set", "aset", "set_many", "aset_many") else "handed out by"
    through = f" through @cached {via}" if via else ""
    where = f"at {_site(site)}" if site else "(call site not on the stack)"
    return f"{verb} {method}{through} {where}"


# -- the round trip -------------------------------------------------------------------------


def _round_trip(value: Any, codec: Codec | None) -> tuple[str, str] | None:
    """None if ``value`` comes back equal and of the same types through ``codec`` (None:
    compact JSON, as the Redis store's ``JsonSerializer`` writes it); else (what goes
    wrong, "encode" or "decode")."""
    if codec is None:
        import json

        try:
            data: Any = _encoders()[0].encode(value).encode()
        except Exception as error:
            return (_not_json(value, "", 0) or _first_line(error)), "encode"
        loads: Any = json.loads
    else:
        try:
            data = codec.dumps(value)
        except Exception as error:
            return _first_line(error), "encode"
        loads = codec.loads
    try:
        back = loads(data)
    except Exception as error:
        return f"it cannot be decoded again ({_first_line(error)})", "encode"
    difference = _difference(value, back, "", 0)
    return None if difference is None else (difference, "decode")


@functools.lru_cache(maxsize=1)
def _encoders() -> tuple[Any, Any]:
    """JSON encoders, made once (``json.dumps`` with options makes one per call): the
    Redis store's (compact, UTF-8 as is), and the fingerprints' (sorted keys too)."""
    import json

    return (
        json.JSONEncoder(separators=(",", ":"), ensure_ascii=False),
        json.JSONEncoder(separators=(",", ":"), sort_keys=True),
    )


def _not_json(value: Any, path: str, depth: int) -> str | None:
    """Where the first value JSON cannot hold is: ``at ['when']: datetime is not JSON``."""
    if depth > _DEPTH:
        return None
    if isinstance(value, (str, int, float, bool, type(None))):
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool, type(None))):
                return f"{_at(path)}a {_type_name(key)} dict key is not JSON"
            found = _not_json(item, f"{path}[{key!r}]", depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _not_json(item, f"{path}[{index}]", depth + 1)
            if found is not None:
                return found
        return None
    return f"{_at(path)}{_type_name(value)} is not JSON"


def _difference(a: Any, b: Any, path: str, depth: int) -> str | None:
    """The first way ``b`` (what came back) differs from ``a`` (what went in), by type
    or by value, with where: ``at [0]: tuple comes back as list``; None if none."""
    kind = type(a)
    if kind is not type(b):
        return f"{_at(path)}{_type_name(a)} comes back as {_type_name(b)}"
    if kind in _SCALARS:
        return None if a == b else f"{_at(path)}{shown(a)} comes back as {shown(b)}"
    if depth > _DEPTH:
        return None if a == b else f"{_at(path)}{shown(a)} comes back as {shown(b)}"
    if isinstance(a, dict):
        if len(a) != len(b):
            return f"{_at(path)}{len(a)} keys come back as {len(b)}"
        for (key, item), (other_key, _) in zip(a.items(), b.items(), strict=True):
            if type(key) is not type(other_key) or key != other_key:
                # Not in the same place (rare): look it up, so that order alone is no
                # difference.
                if key in b and type(key) is type(_same_key(b, key)):
                    other_key = key
                else:
                    return (
                        f"{_at(path)}key {shown(key)} ({_type_name(key)}) comes back as "
                        f"{shown(other_key)} ({_type_name(other_key)})"
                    )
            found = _difference(item, b[key], f"{path}[{key!r}]", depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return f"{_at(path)}{len(a)} items come back as {len(b)}"
        for index, (item, other) in enumerate(zip(a, b, strict=True)):
            found = _difference(item, other, f"{path}[{index}]", depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(a, float) and a != a and b != b:
        return None  # NaN comes back as NaN
    fields = getattr(type(a), "__dataclass_fields__", None)
    if fields is None:
        fields = getattr(type(a), "model_fields", None)  # a Pydantic model
    if isinstance(fields, dict):
        for name in fields:
            found = _difference(
                getattr(a, name, None), getattr(b, name, None), f"{path}.{name}", depth + 1
            )
            if found is not None:
                return found
    if a != b:
        return f"{_at(path)}{shown(a)} comes back as {shown(b)}"
    return None


def _same_key(mapping: dict[Any, Any], key: Any) -> Any:
    """The key object of ``mapping`` equal to ``key`` (``1`` and ``True`` are equal)."""
    for candidate in mapping:
        if candidate == key:
            return candidate
    return None


def _at(path: str) -> str:
    return f"at {path}: " if path else ""


def _serializer_name(codec: Codec | None) -> str:
    if codec is None:
        return "JSON (the Redis store's default serializer)"
    value_type = getattr(codec, "value_type", None)
    if value_type is None:
        return repr(codec)
    return f"the codec of value_type={type_expression(value_type)}"


def _typed_advice(codec: Codec) -> str:
    value_type = getattr(codec, "value_type", None)
    expression = type_expression(value_type) if value_type is not None else "..."
    return (
        f"store values of value_type={expression}, or declare the type they really have "
        "(e.g. tuple[int, ...] rather than list[int], dict[int, str] for int keys)"
    )


def _type_name(value: Any) -> str:
    return type(value).__name__


def _first_line(error: Exception) -> str:
    """The error's first line that says something (Pydantic's first is a header)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return lines[1][:300]
    text = lines[0][:300] if lines else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# -- changes in place ------------------------------------------------------------------------


def _fingerprint(value: Any) -> tuple[str, Any] | None:
    """What ``value`` looks like now: its JSON text, else its pickle, else a deep copy
    (only if the copy compares equal); None if none of these works."""
    try:
        return "json", _encoders()[1].encode(value)
    except Exception:
        pass
    import pickle

    try:
        return "pickle", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        pass
    import copy

    try:
        copied = copy.deepcopy(value)
        if bool(copied == value):
            return "copy", copied
    except Exception:
        pass
    return None


def _changed(value: Any, fingerprint: tuple[str, Any]) -> bool:
    kind, then = fingerprint
    if kind == "copy":
        try:
            return not bool(value == then)
        except Exception:
            return True
    return bool(_fingerprint_as(value, kind) != then)


def _fingerprint_as(value: Any, kind: str) -> Any:
    try:
        if kind == "json":
            return _encoders()[1].encode(value)
        import pickle

        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return None  # it could be fingerprinted so before: it changed


def _mutation_message(watch: _Watch) -> str:
    sites = ", ".join(_how(*site) for site in watch.sites)
    more = watch.times - len(watch.sites)
    again = f" (and {more} more time{'s' if more > 1 else ''})" if more > 0 else ""
    if watch.cache.shared:
        why = (
            "was changed in place. A near cache hands that same object to every reader in "
            "this process, which sees the change; other processes read what Redis holds, "
            "so the processes now disagree"
        )
    else:
        why = (
            "was changed in place while the cache held it. In memory every later reader "
            "sees the change; on Redis each read decodes a fresh copy and the change is lost"
        )
    return (
        f"key {shown(watch.key)} ({_type_name(watch.value)}): the value {sites}{again} "
        f"{why}\n"
        "  copy the value before changing it (copy.deepcopy), or store the changed value "
        "with set()"
    )
