"""``cached``: cache-aside around a function, its key formatted from the call's arguments.

``@cache.cached(key="user-connections:{user_token}")`` wraps a function: a
call formats the key and tag templates with the call's arguments (defaults
applied) and goes through ``get_or_set``, or ``aget_or_set`` for an
``async def``, so concurrent callers of one key share one call of the
function. ``key(...)``, ``invalidate(...)`` and ``ainvalidate(...)`` on the
wrapper take the same arguments as a call.

The hit path is generated source, as ``dataclasses`` generates ``__init__``:
a function with the wrapped function's own parameter list, whose key is an
f-string over those parameters. Python itself binds a call's arguments
(defaults, keywords, errors), so a positional and a keyword call build the
same key, and a hit costs what the same ``get_or_set`` call written by hand
in a function costs. Templates an f-string cannot express exactly (nested
fields in a format spec, attribute names that are not identifiers) go
through ``str.format`` instead.

What the wrapper is, for the type checker always ``Cached[P, R]``:

- for a function defined in a class body (a method), a ``Cached`` object, a
  descriptor: ``obj.method`` is a ``BoundCached`` whose ``key``,
  ``invalidate`` and ``ainvalidate`` have ``self`` bound, as the call has;
- for any other function, the generated function itself, with those three
  as attributes: calling an instance with ``__call__`` costs about 60 ns
  more than calling a function (no vectorcall), a quarter of what the
  decorator adds to a hit.
"""

from __future__ import annotations

import functools
import inspect
import keyword
import re
import string
import typing
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import MethodType, SimpleNamespace
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from . import _validate
from ._codecs import codec_for
from ._validate import Seconds, shown

if TYPE_CHECKING:
    from ._cache import ConnectionCache

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
S = TypeVar("S")

__all__ = ["FROM_ANNOTATION", "BoundCached", "Cached", "Decorator", "cached"]


class _FromAnnotation:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<the return annotation>"


#: ``cached(value_type=...)``'s default: the wrapped function's return annotation.
FROM_ANNOTATION: Any = _FromAnnotation()

_UNRESOLVED: Any = object()  # a value type not looked up yet (see LazyValueType)

# Format specs written into the generated f-string as they are; any other goes
# in as a constant (no quoting or brace question can arise).
_PLAIN_SPEC = re.compile(r"[\w<>=^+\- #,.%]*")

# Return annotations that say nothing about the value's type.
_UNTYPED: tuple[Any, ...] = (Any, object, type(None))


def cached(
    key: str,
    ttl: Seconds | Callable[[Any], Seconds] | None = None,
    *,
    tags: Iterable[str] = (),
    cache_if: Callable[[Any], object] | None = None,
    value_type: Any = FROM_ANNOTATION,
) -> Decorator:
    """Decorator: cache-aside on the shared ``connection_cache`` (see ``ConnectionCache.cached``).

    The singleton is looked up on every call, so whatever backend it uses then
    (``use_backend``, ``--conncache-backend``) is the one the call goes to.
    """
    return Decorator(None, key, ttl, tags, cache_if, value_type)


class Decorator:
    """What ``cached(...)`` returns: apply it to a function to get its ``Cached`` wrapper.

    The arguments are checked here, before any function is decorated; the
    templates are checked against the function's parameters when it is.
    """

    __slots__ = ("_cache", "_key", "_ttl", "_tags", "_cache_if", "_value_type")

    def __init__(
        self,
        cache: ConnectionCache[Any] | None,
        key: str,
        ttl: Seconds | Callable[[Any], Seconds] | None,
        tags: Iterable[str],
        cache_if: Callable[[Any], object] | None,
        value_type: Any,
    ) -> None:
        self._key = _key_template(key)
        if ttl is None or (callable(ttl) and not isinstance(ttl, type)):
            self._ttl: float | Callable[[Any], Seconds] | None = ttl
        else:
            self._ttl = _validate.seconds(ttl, "ttl")
        if isinstance(tags, str):
            raise TypeError(
                f"tags must be an iterable of str templates, got {shown(tags)} (str): "
                f"wrap a single tag in a list, tags=[{shown(tags)}]"
            )
        self._tags = _templates(tags)
        if cache_if is not None:
            _validate.callable_(cache_if, "cache_if")
        self._cache = cache
        self._cache_if = cache_if
        self._value_type = value_type

    def __call__(self, fn: Callable[P, R]) -> Cached[P, R]:
        return _wrap(self, fn)

    def __repr__(self) -> str:
        return f"<cached key={self._key!r}>"


def _key_template(key: object) -> str:
    if not isinstance(key, str):
        hint = " (write @cached(key=...), not a bare @cached)" if callable(key) else ""
        raise TypeError(
            "key must be a str template such as 'user-connections:{user_token}', "
            f"got {shown(key)} ({type(key).__name__}){hint}"
        )
    return key


def _templates(tags: object) -> tuple[str, ...]:
    if isinstance(tags, bytes) or not isinstance(tags, Iterable):
        raise TypeError(
            f"tags must be an iterable of str templates, got {shown(tags)} ({type(tags).__name__})"
        )
    result = tuple(tags)
    for i, tag in enumerate(result):
        if not isinstance(tag, str):
            raise TypeError(
                f"tags[{i}] must be a str template, got {shown(tag)} ({type(tag).__name__})"
            )
        if not tag:
            raise ValueError(f"tags[{i}] must be a non-empty template, got ''")
    return result


class Cached(Generic[P, R]):
    """A function wrapped by ``cached``: called like it, answered from the cache.

    ``key(...)`` is the key a call with those arguments uses, ``invalidate(...)``
    removes that call's entry (True if one was stored), ``ainvalidate(...)`` is
    its awaitable twin. ``__wrapped__`` is the function itself.

    The type of every wrapper; at run time the wrapper of a method (a function
    defined in a class body), which binds like one. Other functions' wrappers are
    functions with the same three attributes.
    """

    # Set per decorated function (see _wrap); __call__ is overridden there by the
    # generated hit path, the one here is its generic equivalent.
    _call: Callable[..., Any]
    _key_of: Callable[..., str]
    _cache_of: Callable[[], ConnectionCache[Any]]
    _bound: type[BoundCached[..., Any]]
    _template: str
    __wrapped__: Callable[P, R]
    __name__: str
    __qualname__: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._call(*args, **kwargs)  # type: ignore[no-any-return]

    def key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The cache key a call with these arguments reads and fills."""
        return self._key_of(*args, **kwargs)

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Remove the entry a call with these arguments would read; True if one was stored."""
        return self._cache_of().invalidate(self._key_of(*args, **kwargs))

    async def ainvalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """``invalidate``, awaitable."""
        return await self._cache_of().ainvalidate(self._key_of(*args, **kwargs))

    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> Cached[P, R]: ...
    @overload
    def __get__(
        self: Cached[Concatenate[S, P2], R], obj: S, owner: type[Any] | None = None
    ) -> BoundCached[P2, R]: ...

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        bound = _new(self._bound)  # every method call comes here: no __init__ frame
        bound.__func__ = self
        bound.__self__ = obj
        return bound

    def __repr__(self) -> str:
        return f"<cached function {self.__qualname__} key={self._template!r}>"

    def __reduce__(self) -> str:
        return self.__qualname__  # pickled by reference, as functions are


class BoundCached(Generic[P, R]):
    """A ``Cached`` method bound to an instance, as a bound method is to its function."""

    __slots__ = ("__func__", "__self__")

    def __init__(self, func: Cached[..., Any], obj: object) -> None:
        self.__func__ = func
        self.__self__ = obj

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.__func__(self.__self__, *args, **kwargs)  # type: ignore[no-any-return]

    def key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The cache key a call with these arguments reads and fills."""
        return self.__func__.key(self.__self__, *args, **kwargs)

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Remove the entry a call with these arguments would read; True if one was stored."""
        return self.__func__.invalidate(self.__self__, *args, **kwargs)

    async def ainvalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """``invalidate``, awaitable."""
        return await self.__func__.ainvalidate(self.__self__, *args, **kwargs)

    @property
    def __wrapped__(self) -> Callable[P, R]:
        # inspect.signature follows this: the signature without self.
        return MethodType(self.__func__.__wrapped__, self.__self__)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__func__, name)  # __name__, __doc__, ... as bound methods do

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BoundCached):
            return NotImplemented
        return self.__func__ is other.__func__ and self.__self__ is other.__self__

    def __hash__(self) -> int:
        return hash((id(self.__func__), id(self.__self__)))

    def __repr__(self) -> str:
        return f"<bound cached method {self.__func__.__qualname__} of {self.__self__!r}>"


# -- building the wrapper ------------------------------------------------------------


def _wrap(spec: Decorator, fn: Callable[..., Any]) -> Cached[Any, Any]:
    """The wrapper of ``fn`` (see the module docstring for which kind)."""
    if isinstance(fn, staticmethod):
        raise TypeError("cached cannot wrap a staticmethod object: put @staticmethod above it")
    if isinstance(fn, classmethod):
        raise TypeError(
            "cached does not wrap classmethods (type checkers cannot follow the binding): "
            "cache a staticmethod or a module-level function and call it from the classmethod"
        )
    if not callable(fn):
        raise TypeError(f"cached needs a function, got {shown(fn)} ({type(fn).__name__})")
    name = f"{getattr(fn, '__module__', None)}.{getattr(fn, '__qualname__', repr(fn))}"
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(
            f"cached cannot wrap the generator function {name}: a generator is "
            "consumed once, so a cached one would come back empty"
        )
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as error:
        raise TypeError(f"cached needs a function whose signature it can read: {error}") from None
    source = _Source(fn, name, signature, spec)
    call = source.function(bound=False)
    key_of = source.key_function()
    if not _in_class_body(fn):
        functools.update_wrapper(call, fn)
        function: Any = call
        function.key, function.invalidate, function.ainvalidate = _helpers(key_of, source.cache_of)
        return function  # type: ignore[no-any-return]
    if source.bindable:
        bound_call: Callable[..., Any] = source.function(bound=True)
    else:  # no positional first parameter to bind: Python's own error on a call
        bound_call = BoundCached.__call__
    bound_type = type(
        "BoundCached",
        (BoundCached,),
        {
            "__slots__": (),
            "__call__": bound_call,
            "__doc__": fn.__doc__,
            "__module__": fn.__module__,
        },
    )
    wrapper: Cached[Any, Any] = type("Cached", (Cached,), {"__call__": staticmethod(call)})()
    functools.update_wrapper(wrapper, fn)
    for attribute in ("__code__", "__defaults__", "__kwdefaults__"):
        # Function-like to inspect: iscoroutinefunction(wrapper) is True for async.
        if hasattr(fn, attribute):
            setattr(wrapper, attribute, getattr(fn, attribute))
    wrapper._call = call
    wrapper._key_of = key_of
    wrapper._cache_of = source.cache_of
    wrapper._bound = bound_type
    wrapper._template = spec._key
    return wrapper


def _in_class_body(fn: Callable[..., Any]) -> bool:
    """True for a function defined in a class body ("C.f", "g.<locals>.C.f")."""
    outer = getattr(fn, "__qualname__", "").rpartition(".")[0]
    return bool(outer) and not outer.endswith("<locals>")


def _helpers(
    key_of: Callable[..., str], cache_of: Callable[[], ConnectionCache[Any]]
) -> tuple[Callable[..., str], Callable[..., bool], Callable[..., Awaitable[bool]]]:
    """``key``, ``invalidate`` and ``ainvalidate`` of a function wrapper."""

    def key(*args: Any, **kwargs: Any) -> str:
        """The cache key a call with these arguments reads and fills."""
        return key_of(*args, **kwargs)

    def invalidate(*args: Any, **kwargs: Any) -> bool:
        """Remove the entry a call with these arguments would read; True if one was stored."""
        return cache_of().invalidate(key_of(*args, **kwargs))

    async def ainvalidate(*args: Any, **kwargs: Any) -> bool:
        """``invalidate``, awaitable."""
        return await cache_of().ainvalidate(key_of(*args, **kwargs))

    return key, invalidate, ainvalidate


def _return_annotation(fn: Callable[..., Any]) -> Any:
    """The return annotation, resolved; None when it says nothing of the type."""
    target = inspect.unwrap(fn)
    if isinstance(target, functools.partial):
        target = target.func
    written = getattr(target, "__annotations__", {}).get("return")
    if written is None:
        return None
    # The return annotation alone: one naming a type not defined yet must not
    # stop the others, nor the other way round.
    only = SimpleNamespace(__annotations__={"return": written})
    annotation = typing.get_type_hints(only, getattr(target, "__globals__", None))["return"]
    if annotation in _UNTYPED or isinstance(annotation, TypeVar):
        return None
    return annotation


def _decodable(annotation: Any) -> Any:
    """``annotation`` if a codec can be built on it, else None (the cache's serializer)."""
    if annotation is None:
        return None
    try:
        codec_for(annotation)
    except (ImportError, TypeError):  # no Pydantic, or a type it cannot decode into
        return None
    return annotation


class LazyValueType:
    """The return annotation's value type, looked up on the first call that needs it:
    by then the forward references it names are defined."""

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.fn = fn
        self.name = name
        self.value_type: Any = _UNRESOLVED

    def __call__(self) -> Any:
        if self.value_type is not _UNRESOLVED:
            return self.value_type
        try:
            annotation = _return_annotation(self.fn)
        except Exception as error:
            warnings.warn(
                f"cached could not resolve the return annotation of {self.name} "
                f"({type(error).__name__}: {error}); its values are stored with the "
                "cache's own serializer: pass value_type= to choose",
                RuntimeWarning,
                stacklevel=3,
            )
            annotation = None
        self.value_type = _decodable(annotation)
        return self.value_type


class _Source:
    """Writes the generated functions of one decorated function: the call, its twin
    for a method bound to an instance, and the key function.

    Everything but the parameters is a constant of the functions' namespace,
    named with a prefix no parameter starts with.
    """

    def __init__(
        self, fn: Callable[..., Any], name: str, signature: inspect.Signature, spec: Decorator
    ) -> None:
        self.fn = fn
        self.name = name
        self.parameters = list(signature.parameters.values())
        for parameter in self.parameters:
            if not parameter.name.isidentifier() or keyword.iskeyword(parameter.name):
                raise TypeError(f"cached cannot wrap {name}: parameter {parameter.name!r}")
        self.prefix = "__cc_"
        while any(p.name.startswith(self.prefix) for p in self.parameters):
            self.prefix += "_"
        self.namespace: dict[str, Any] = {}
        self.lazy: str | None = None  # how a call on a shared store gets its value type
        self.is_async = inspect.iscoroutinefunction(fn)
        first = self.parameters[0].kind if self.parameters else None
        self.bindable = first in (_POSITIONAL_ONLY, _POSITIONAL_OR_KEYWORD)

        self.key = self.template(spec._key, "key")
        tags = [self.template(tag, f"tags[{i}]") for i, tag in enumerate(spec._tags)]
        self.cache_of: Callable[[], ConnectionCache[Any]]
        if spec._cache is None:
            from . import _singleton

            # The singleton as it is at call time.
            self.cache = self.constant(_singleton) + ".connection_cache"
            self.cache_of = functools.partial(getattr, _singleton, "connection_cache")
        else:
            self.cache = self.constant(spec._cache)
            self.cache_of = functools.partial(_identity, spec._cache)
        self.target = self.constant(fn)
        self.options = ""  # get_or_set's arguments after key and factory
        if spec._ttl is not None:
            self.options += f", {self.constant(spec._ttl)}"
        if tags:
            self.options += f", tags=({', '.join(tags)},)"
        value_type = self.value_type(spec._value_type)
        if value_type is not None:
            self.options += f", value_type={value_type}"
        if spec._cache_if is not None:
            self.options += f", cache_if={self.constant(spec._cache_if)}"

    def constant(self, value: Any) -> str:
        name = f"{self.prefix}{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def value_type(self, value_type: Any) -> str | None:
        """Source of the ``value_type`` a call passes; None to pass none."""
        if value_type is not FROM_ANNOTATION:
            return None if value_type is None else self.constant(value_type)
        try:
            annotation = _return_annotation(self.fn)
        except NameError:
            pass  # a forward reference: look again on the first call
        except Exception:
            return None  # nothing typing can read: nothing to decode into
        else:
            if annotation is None:
                return None
        # Looked up (and checked for Pydantic) on the first call on a shared store:
        # no import at import time, and an in-memory store, which keeps the objects
        # themselves and ignores value types, spares its hits the codec lookup.
        self.lazy = f"{self.constant(LazyValueType(self.fn, self.name))}()"
        return None

    # -- templates -------------------------------------------------------------------

    def template(self, template: str, what: str) -> str:
        """Source of an expression that gives ``template.format(**arguments)``."""
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as error:
            raise ValueError(
                f"{what} template {shown(template)} of {self.name} is not a valid "
                f"str.format template: {error}"
            ) from None
        pieces: list[str] = []
        roots: dict[str, None] = {}
        exact = True  # an f-string gives exactly what str.format would
        for literal, field, spec, conversion in parsed:
            if literal:
                pieces.append(repr(literal))
            if field is None:
                continue
            path = self.field(field, template, what, roots)
            if conversion not in (None, "r", "s", "a"):
                raise ValueError(
                    f"{what} template {shown(template)} of {self.name}: field {{{field}}} "
                    f"has the unknown conversion !{conversion} (use !r, !s or !a)"
                )
            if spec and "{" in spec:
                exact = False
                for _, nested, _, _ in string.Formatter().parse(spec):
                    if nested is not None:
                        self.field(nested, template, what, roots)
            if path is None or not exact:
                exact = False
                continue
            text = path + (f"!{conversion}" if conversion else "")
            if spec:
                plain = _PLAIN_SPEC.fullmatch(spec)
                text += ":" + (spec if plain else f"{{{self.constant(spec)}}}")
            pieces.append(f"f'{{{text}}}'")
        if not exact:
            arguments = ", ".join(f"{root}={root}" for root in roots)
            return f"{self.constant(template)}.format({arguments})"
        return "(" + (" ".join(pieces) or "''") + ")"

    def field(self, field: str, template: str, what: str, roots: dict[str, None]) -> str | None:
        """Check that ``field``'s root names a parameter. The f-string expression that
        reads the field, or None where only ``str.format`` reads it exactly."""
        names = [p.name for p in self.parameters]
        try:
            root, steps = _split_field(field)
        except ValueError as error:
            raise ValueError(
                f"{what} template {shown(template)} of {self.name}: field {{{field}}} "
                f"is malformed: {error}"
            ) from None
        if not isinstance(root, str) or not root:
            raise ValueError(
                f"{what} template {shown(template)} of {self.name} has the positional "
                f"field {{{field}}}: name a parameter instead ({', '.join(names)})"
            )
        if root not in names:
            raise ValueError(
                f"{what} template {shown(template)} names {{{root}}}, which is not a "
                f"parameter of {self.name}({', '.join(names)})"
            )
        roots[root] = None
        expression = root
        for is_attribute, step in steps:
            if not is_attribute:
                expression += f"[{self.constant(step)}]"  # str.format's key: int or str
            elif _plain_name(step):
                expression += f".{step}"
            else:
                return None
        return expression

    # -- the generated functions -----------------------------------------------------

    def function(self, *, bound: bool) -> Callable[..., Any]:
        """The hit path: the key, then ``get_or_set`` (``aget_or_set``) with a factory
        that calls the function with the same arguments.

        ``bound``: the ``__call__`` of a ``BoundCached``, its first parameter the
        instance's ``__self__``.
        """
        parameters = self.parameters
        listed: list[str] = []
        prelude = ""
        if bound:
            listed.append(f"{self.prefix}bound")
            prelude = f"    {parameters[0].name} = {self.prefix}bound.__self__\n" + prelude
            parameters = parameters[1:]
        listed += self.parameter_list(parameters)
        head = f"{'async def' if self.is_async else 'def'} __call__({', '.join(listed)}):\n"
        cache = self.cache
        if self.lazy is not None:
            cache = f"{self.prefix}c"
            prelude += f"    {cache} = {self.cache}\n"
            typed = self.call(cache, f", value_type={self.lazy}")
            prelude += f"    if {cache}.shared:\n        return {typed}\n"
        return self.define(f"{head}{prelude}    return {self.call(cache, '')}\n")

    def call(self, cache: str, extra: str) -> str:
        factory = f"lambda: {self.target}({self.arguments()})"
        method = "await {}.aget_or_set" if self.is_async else "{}.get_or_set"
        return f"{method.format(cache)}({self.key}, {factory}{self.options}{extra})"

    def key_function(self) -> Callable[..., str]:
        parameters = ", ".join(self.parameter_list(self.parameters))
        return self.define(f"def __call__({parameters}):\n    return {self.key}\n")

    def parameter_list(self, parameters: list[inspect.Parameter]) -> list[str]:
        """The ``def``'s parameters, defaults as constants: Python binds a call the way
        it binds a call of the function."""
        listed: list[str] = []
        last_positional_only = max(
            (i for i, p in enumerate(parameters) if p.kind is _POSITIONAL_ONLY), default=-1
        )
        starred = False
        for i, parameter in enumerate(parameters):
            name = parameter.name
            if parameter.default is not inspect.Parameter.empty:
                name += f"={self.constant(parameter.default)}"
            if parameter.kind is _VAR_POSITIONAL:
                name, starred = f"*{name}", True
            elif parameter.kind is _VAR_KEYWORD:
                name = f"**{name}"
            elif parameter.kind is _KEYWORD_ONLY and not starred:
                listed.append("*")
                starred = True
            listed.append(name)
            if i == last_positional_only:
                listed.append("/")
        return listed

    def arguments(self) -> str:
        """The factory's call of the function: every parameter passed on as bound."""
        passed: list[str] = []
        for parameter in self.parameters:
            name = parameter.name
            if parameter.kind is _VAR_POSITIONAL:
                passed.append(f"*{name}")
            elif parameter.kind is _VAR_KEYWORD:
                passed.append(f"**{name}")
            elif parameter.kind is _KEYWORD_ONLY:
                passed.append(f"{name}={name}")
            else:
                passed.append(name)
        return ", ".join(passed)

    def define(self, source: str) -> Callable[..., Any]:
        namespace = dict(self.namespace)
        exec(compile(source, f"<cached {self.name}>", "exec"), namespace)
        function: Callable[..., Any] = namespace["__call__"]
        function.__name__ = getattr(self.fn, "__name__", "__call__")
        function.__qualname__ = getattr(self.fn, "__qualname__", "__call__")
        return function


def _identity(value: Any) -> Any:
    return value


def _plain_name(name: object) -> bool:
    """An attribute name source code reads as it is (non-ASCII ones are NFKC-normalised)."""
    return (
        isinstance(name, str)
        and name.isascii()
        and name.isidentifier()
        and not keyword.iskeyword(name)
    )


def _split_field(field: str) -> tuple[int | str, Sequence[tuple[bool, int | str]]]:
    """``field``'s root name, then its steps: (True, attribute) or (False, index), exactly
    as ``str.format`` reads them (it parses, a recorder stands in for the argument)."""
    reader = _FieldReader()
    path, root = reader.get_field(field, (), {})
    steps: list[tuple[bool, int | str]] = object.__getattribute__(path, "steps")
    return root, steps


class _FieldReader(string.Formatter):
    def get_value(self, key: int | str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        return _Recorder()


class _Recorder:
    """Records every attribute and item ``str.format`` reads from it."""

    __slots__ = ("steps",)

    def __init__(self) -> None:
        self.steps: list[tuple[bool, int | str]] = []

    def __getattribute__(self, name: str) -> Any:
        object.__getattribute__(self, "steps").append((True, name))
        return self

    def __getitem__(self, key: int | str) -> _Recorder:
        object.__getattribute__(self, "steps").append((False, key))
        return self


_new = object.__new__
_POSITIONAL_ONLY = inspect.Parameter.POSITIONAL_ONLY
_POSITIONAL_OR_KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD
_VAR_POSITIONAL = inspect.Parameter.VAR_POSITIONAL
_KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY
_VAR_KEYWORD = inspect.Parameter.VAR_KEYWORD
