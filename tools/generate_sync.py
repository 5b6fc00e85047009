"""Generate lucidlink's blocking API from the async core, by introspection.

The blocking classes are a facade, not a source transform: for each ``AsyncX`` class of
the async module this writes a class ``X`` holding an ``AsyncX`` instance in ``_async``,
with the same public methods, properties, signatures and docstrings, where each call
runs on the shared background event loop (:func:`lucidlink._loop.run`) and returned
async objects are wrapped in their blocking twins, as decided by return annotations.

Usage::

    python tools/generate_sync.py                 # rewrite lucidlink/_generated.py
    python tools/generate_sync.py --check         # exit 1 with a diff if it is stale

Rules (see :func:`generate`):

* ``async def m`` -> ``def m`` returning ``<wrap>(_loop.run(self._async.m(...)))``;
  plain methods, properties and class attributes delegate directly; ``async def`` that
  ``yield`` (and ``AsyncIterator`` returns) become blocking iterators.
* ``__aenter__``/``__aexit__`` -> ``__enter__``/``__exit__`` (see :data:`SPECIAL_METHODS`).
* Return annotations pick the wrapping: ``AsyncX`` -> ``X(r)``; ``list``/``Sequence``/
  ``tuple``/``dict`` values/``Optional``/unions of those -> element-wise; the awaitable
  wrappers (:data:`AWAITABLE_NAMES`, ``Awaitable``, ``Coroutine``) are awaited on the loop
  first; anything else is returned unchanged. Parameters annotated with a mirrored class
  are unwrapped back to the async object.
* Methods named in :data:`FILE_OPENERS` that return the async file type
  (:data:`FILE_TYPE_NAMES`) become builtin-``open``-like through
  :func:`lucidlink._fileio.open_blocking`.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import collections.abc
import dataclasses
import difflib
import enum
import importlib
import inspect
import keyword
import re
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODULE = "lucidlink.aio"
DEFAULT_CLASSES = (
    "AsyncDaemon",
    "AsyncWorkspace",
    "AsyncFilespace",
    "AsyncFilesystem",
    "AsyncConnect",
    "AsyncClient",
)
DEFAULT_FUNCTIONS = ("create_daemon",)
DEFAULT_OUTPUT = REPO_ROOT / "lucidlink" / "_generated.py"
ASYNC_PREFIX = "Async"
LINE_LENGTH = 88


@dataclasses.dataclass(frozen=True)
class FileOpener:
    """How an async file-opening method maps onto a builtin-``open``-like blocking one.

    The async method receives one of the binary modes in its ``mode_param`` and none of
    ``text_params``; the blocking twin takes ``mode`` (default ``mode_default``) and the
    text parameters of the builtin :func:`open`, adding those the async method lacks.
    """

    mode_param: str = "mode"
    mode_default: str = "rb"  # the documented API: fs.open(path, mode="rb", ...)
    text_params: tuple[str, ...] = ("buffering", "encoding", "errors", "newline")


#: Method names turned into builtin-``open``-like methods when they return a file.
FILE_OPENERS: Mapping[str, FileOpener] = {"open": FileOpener()}
#: Names of the async file type in return annotations (bare or inside an awaitable).
FILE_TYPE_NAMES = frozenset({"AsyncFile"})
#: Classes whose blocking twin the user constructs: its ``__init__`` takes the async
#: ``__init__``'s parameters and builds the async object (nothing returns one to wrap).
CONSTRUCTIBLE = frozenset({"AsyncClient"})
#: Names of generic "awaitable (and async context manager) of T" helper types.
AWAITABLE_NAMES = frozenset({"AwaitableContext"})
#: Async special methods and the blocking special method generated for each.
SPECIAL_METHODS: Mapping[str, str] = {
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
}
#: Modules whose classes' members are never mirrored (typing/ABC plumbing in the MRO).
_PLUMBING_MODULES = frozenset(
    {"builtins", "typing", "typing_extensions", "abc", "collections.abc", "contextlib"}
)
_TEXT_PARAM_DEFAULTS = {
    "buffering": ("int", "-1"),
    "encoding": ("str | None", "None"),
    "errors": ("str | None", "None"),
    "newline": ("str | None", "None"),
}
_LIST_ORIGINS = (
    list,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Iterable,
    collections.abc.Collection,
)
_DICT_ORIGINS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)
_ASYNC_ITER_ORIGINS = (
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
)
_NONE_TYPE = type(None)
_SELF_TYPES: tuple[Any, ...] = tuple(
    t for t in (getattr(typing, "Self", None),) if t is not None
)
try:  # typing_extensions is optional; its Self is a distinct object on Python 3.10.
    import typing_extensions

    _SELF_TYPES += (typing_extensions.Self,)
except ImportError:  # pragma: no cover
    pass


class GenerationError(Exception):
    """The async module cannot be mirrored as it is (the message says what to change)."""


# The runtime support emitted into every generated module, verbatim.
_PRELUDE = '''
def _unwrap(value: Any) -> Any:
    """Replace blocking wrappers by their async objects, also inside lists, tuples, dicts."""
    if isinstance(value, _Facade):
        return value._async
    if type(value) is list:
        return [_unwrap(item) for item in value]
    if type(value) is tuple:
        return tuple(_unwrap(item) for item in value)
    if type(value) is dict:
        return {key: _unwrap(item) for key, item in value.items()}
    return value


def _default(function: Any, name: str) -> Any:
    """Return the default of parameter ``name`` of ``function`` (non-literal defaults)."""
    return _inspect.signature(function).parameters[name].default


def _optional_of(convert: Any) -> Any:
    return lambda value: None if value is None else convert(value)


def _list_of(convert: Any) -> Any:
    return lambda value: [convert(item) for item in value]


def _tuple_of(convert: Any) -> Any:
    return lambda value: tuple(convert(item) for item in value)


def _fixed_tuple_of(*converts: Any) -> Any:
    return lambda value: tuple(
        item if convert is None else convert(item) for convert, item in zip(converts, value)
    )


def _dict_of(convert: Any) -> Any:
    return lambda value: {key: convert(item) for key, item in value.items()}


def _union_of(*cases: Any) -> Any:
    def convert(value: Any) -> Any:
        for cls, case in cases:
            if isinstance(value, cls):
                return case(value)
        return value

    return convert


def _awaited(convert: Any) -> Any:
    def convert_awaited(value: Any) -> Any:
        result = _loop.run(value)
        return result if convert is None else convert(result)

    return convert_awaited


def _iterator_of(convert: Any) -> Any:
    return lambda value: _iterate(value, convert)


def _iterate(aiterable: Any, convert: Any) -> Iterator[Any]:
    """Iterate an async iterable from blocking code, one ``__anext__`` per step."""
    iterator = aiterable if hasattr(aiterable, "__anext__") else aiterable.__aiter__()
    exhausted = False
    try:
        while True:
            try:
                item = _loop.run(iterator.__anext__)
            except StopAsyncIteration:
                exhausted = True
                return
            yield item if convert is None else convert(item)
    finally:
        aclose = getattr(iterator, "aclose", None)
        if not exhausted and aclose is not None:
            _loop.run(aclose)


class _Facade:
    """Base of the blocking wrappers: holds the wrapped async object in ``_async``."""

    __slots__ = ("_async", "__weakref__")
    _async_class: type = object

    def __init__(self, async_obj: Any) -> None:
        """Wrap ``async_obj``, an instance of the matching ``Async`` class."""
        if not isinstance(async_obj, self._async_class):
            raise TypeError(
                f"{type(self).__name__} wraps an existing {self._async_class.__name__}, "
                f"not {type(async_obj).__name__}"
            )
        self._async = async_obj

    def __repr__(self) -> str:
        """The async object's repr without the ``Async`` prefixes."""
        return _ASYNC_NAMES.sub("", repr(self._async))

    def __eq__(self, other: object) -> bool:
        """Wrappers are equal when their async objects are."""
        if isinstance(other, _Facade):
            return bool(self._async == other._async)
        return NotImplemented

    def __hash__(self) -> int:
        """Hash of the async object."""
        return hash(self._async)
'''

# Imports every generated module has for its own use.
_MACHINERY_IMPORTS = frozenset({("collections.abc", "Iterator"), ("typing", "Any")})

# Names the generated module defines or imports for itself; annotations may not use them.
_RUNTIME_NAMES = frozenset(
    {
        "Any",
        "Iterator",
        "_aio",
        "_loop",
        "_open_blocking",
        "_inspect",
        "_re",
        "_ASYNC_NAMES",
        "_Facade",
        "_unwrap",
        "_default",
        "_optional_of",
        "_list_of",
        "_tuple_of",
        "_fixed_tuple_of",
        "_dict_of",
        "_union_of",
        "_awaited",
        "_iterator_of",
        "_iterate",
        "binary_mode",
        "self",
        "cls",
    }
)


@dataclasses.dataclass
class _Param:
    name: str
    kind: inspect._ParameterKind
    annotation: str | None
    default: str | None
    unwrap: bool = False


@dataclasses.dataclass
class _Member:
    """One public member of an async class, resolved for generation."""

    name: str
    kind: str  # "method", "classmethod", "staticmethod", "property", "attribute"
    obj: Any
    owner: type


def _public(name: str) -> bool:
    return not name.startswith("_")


def _is_coroutine_function(func: Any) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(inspect.unwrap(func))


def _is_asyncgen_function(func: Any) -> bool:
    return inspect.isasyncgenfunction(func) or inspect.isasyncgenfunction(inspect.unwrap(func))


def _str_literal(value: str) -> str:
    if value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return repr(value)


def _docstring_literal(doc: str, indent: str) -> str:
    if '"""' in doc or doc.endswith('"') or any(
        not ch.isprintable() and ch != "\n" for ch in doc
    ):
        return repr(doc)
    lines = doc.replace("\\", "\\\\").split("\n")
    if len(lines) == 1:
        return f'"""{lines[0]}"""'
    body = "\n".join(indent + line if line else "" for line in lines[1:])
    return f'"""{lines[0]}\n{body}\n{indent}"""'


class _Generator:
    """Holds the state of one generation run (imports, names, emitted text)."""

    def __init__(
        self,
        module_name: str,
        class_names: Sequence[str],
        function_names: Sequence[str],
        file_openers: Mapping[str, FileOpener],
        loop_module: str,
        fileio_module: str,
    ) -> None:
        self.module_name = module_name
        self.module = importlib.import_module(module_name)
        self.file_openers = file_openers
        self.loop_module = loop_module
        self.fileio_module = fileio_module
        self.classes: list[type] = []
        self.sync_names: dict[type, str] = {}
        for name in class_names:
            cls = getattr(self.module, name, None)
            if not isinstance(cls, type):
                raise GenerationError(f"{module_name}.{name} is not a class")
            if not name.startswith(ASYNC_PREFIX) or len(name) == len(ASYNC_PREFIX):
                raise GenerationError(f"class {name} must be named {ASYNC_PREFIX}<Name>")
            self.classes.append(cls)
            self.sync_names[cls] = name[len(ASYNC_PREFIX) :]
        self.functions: list[tuple[str, Any]] = []
        for name in function_names:
            func = getattr(self.module, name, None)
            if not callable(func):
                raise GenerationError(f"{module_name}.{name} is not a function")
            self.functions.append((name, func))
        self.reserved = set(_RUNTIME_NAMES) | set(self.sync_names.values())
        self.reserved |= {name for name, _ in self.functions}
        # local name -> (module, qualified attribute path)
        self.imports: dict[str, tuple[str, str]] = {}
        suffixes = sorted(name[len(ASYNC_PREFIX) :] for name in class_names)
        alternatives = "|".join(map(re.escape, suffixes))
        self.async_names_re = re.compile(rf"\b{ASYNC_PREFIX}(?=(?:{alternatives})\b)")
        consonant_start = "|".join(re.escape(s) for s in suffixes if s[0].lower() not in "aeiou")
        self.article_re = re.compile(
            rf"\b([Aa])n(?= {ASYNC_PREFIX}(?:{consonant_start or '(?!)'})\b)"
        )

    def mirrored(self, tp: Any) -> str | None:
        """The blocking name of ``tp`` if it is a mirrored async class."""
        try:
            return self.sync_names.get(tp)
        except TypeError:  # unhashable, e.g. the argument list of Callable[[...], R]
            return None

    # -- names and imports -----------------------------------------------------------

    def _resolve(self, module_name: str, qualname: str) -> Any:
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError:
            return None
        for part in qualname.split("."):
            target = getattr(target, part, None)
            if target is None:
                return None
        return target

    def ref(self, obj: Any, context: str) -> str:
        """Return the text naming ``obj`` in the generated module, recording its import."""
        sync_name = self.mirrored(obj)
        if sync_name is not None:
            return sync_name
        qualname = (
            getattr(obj, "__qualname__", None)
            or getattr(obj, "__name__", None)
            or getattr(obj, "_name", None)
        )
        module_name = getattr(obj, "__module__", None)
        if not isinstance(qualname, str) or "<" in qualname:
            raise GenerationError(f"{context}: cannot name {obj!r} in generated code")
        if module_name == "builtins" and getattr(builtins, qualname, None) is obj:
            return qualname
        top = qualname.split(".")[0]
        candidates: list[str] = []
        if isinstance(module_name, str):
            if module_name.split(".")[0] == self.module_name.split(".")[0]:
                candidates.append(self.module_name)
            candidates.append(module_name)
            if module_name.startswith("_"):  # C accelerator modules such as _io
                candidates.append(module_name.lstrip("_"))
        candidates.append(self.module_name)
        for candidate in candidates:
            if self._resolve(candidate, qualname) is obj:
                self._add_import(top, candidate, context)
                return qualname
        # Types whose __module__/__qualname__ is not an import path, such as
        # types.TracebackType (builtins.traceback): look them up by identity.
        for candidate in ("types", self.module_name):
            module = importlib.import_module(candidate)
            for attr, value in sorted(vars(module).items()):
                if value is obj and not attr.startswith("_"):
                    self._add_import(attr, candidate, context)
                    return attr
        raise GenerationError(
            f"{context}: cannot find where to import {qualname} from (tried {candidates})"
        )

    def _add_import(self, local: str, module_name: str, context: str) -> None:
        if (module_name, local) in _MACHINERY_IMPORTS:
            return
        if local in self.reserved or keyword.iskeyword(local):
            raise GenerationError(
                f"{context}: annotation name {local!r} clashes with a name the generated "
                "module defines"
            )
        known = self.imports.get(local)
        if known is not None and known != (module_name, local):
            if self._resolve(*known) is not self._resolve(module_name, local):
                raise GenerationError(
                    f"{context}: two different objects named {local!r} are used in "
                    f"annotations ({known[0]} and {module_name})"
                )
            return
        self.imports[local] = (module_name, local)

    # -- annotations -----------------------------------------------------------------

    def hints(self, obj: Any, context: str) -> dict[str, Any]:
        """``typing.get_type_hints`` of ``obj``, or a GenerationError saying what failed."""
        try:
            return typing.get_type_hints(obj)
        except Exception as exc:
            raise GenerationError(
                f"{context}: annotations must be resolvable at runtime by "
                f"typing.get_type_hints ({type(exc).__name__}: {exc}); import the names "
                "they use at module level, not under TYPE_CHECKING"
            ) from exc

    def mentions_mirrored(self, tp: Any) -> bool:
        """Whether ``tp`` refers to a mirrored async class anywhere."""
        if self.mirrored(tp) is not None:
            return True
        if isinstance(tp, (list, tuple)):
            return any(self.mentions_mirrored(arg) for arg in tp)
        return any(self.mentions_mirrored(arg) for arg in typing.get_args(tp))

    def is_awaitable_type(self, tp: Any) -> bool:
        """``AwaitableContext[T]``, ``Awaitable[T]`` or ``Coroutine[.., .., T]``."""
        origin = typing.get_origin(tp)
        if origin in (collections.abc.Awaitable, collections.abc.Coroutine):
            return True
        return origin is not None and getattr(origin, "__name__", None) in AWAITABLE_NAMES

    def is_file_type(self, tp: Any) -> bool:
        """The async file type, bare or inside an awaitable type."""
        if self.is_awaitable_type(tp):
            args = typing.get_args(tp)
            return bool(args) and self.is_file_type(args[-1])
        return getattr(tp, "__name__", None) in FILE_TYPE_NAMES

    def fmt(self, tp: Any, context: str, *, returned: bool = False) -> str:
        """Annotation text for ``tp`` in the blocking API.

        Mirrored classes are renamed; with ``returned`` the awaitable wrappers are
        replaced by what they give and async iterators by iterators, as the generated
        code converts them.
        """
        if tp is None or tp is _NONE_TYPE:
            return "None"
        if tp is Ellipsis:
            return "..."
        sync_name = self.mirrored(tp)
        if sync_name is not None:
            return sync_name
        if isinstance(tp, (str, typing.ForwardRef)):
            raise GenerationError(f"{context}: unresolved annotation {tp!r}")
        if isinstance(tp, list):  # the parameter list of Callable[[...], R]
            return "[" + ", ".join(self.fmt(arg, context) for arg in tp) + "]"
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is None:
            return self.ref(tp, context)
        if returned and self.is_awaitable_type(tp):
            return self.fmt(args[-1], context, returned=True) if args else "Any"
        if returned and origin in _ASYNC_ITER_ORIGINS:
            self.ref(collections.abc.Iterator, context)
            item = self.fmt(args[0], context, returned=True) if args else "Any"
            return f"Iterator[{item}]"
        if origin is typing.Union or origin is types.UnionType:
            return " | ".join(self.fmt(arg, context, returned=returned) for arg in args)
        if origin is typing.Literal:
            return f"{self.ref(origin, context)}[{', '.join(map(repr, args))}]"
        head = self.ref(origin, context)
        if not args:
            return f"{head}[()]" if origin is tuple else head
        return f"{head}[{', '.join(self.fmt(arg, context, returned=returned) for arg in args)}]"

    def conv(self, tp: Any, context: str, owner: type | None = None) -> str | None:
        """Text of a callable converting a value of type ``tp``; None when unchanged."""
        sync_name = self.mirrored(tp)
        if sync_name is not None:
            return sync_name
        if owner is not None and any(tp is self_type for self_type in _SELF_TYPES):
            return self.sync_names.get(owner)
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is None:
            return None
        if self.is_awaitable_type(tp):
            inner = self.conv(args[-1], context, owner) if args else None
            return f"_awaited({inner or 'None'})"
        if origin in _ASYNC_ITER_ORIGINS:
            inner = self.conv(args[0], context, owner) if args else None
            return f"_iterator_of({inner or 'None'})"
        if origin is typing.Union or origin is types.UnionType:
            members = [arg for arg in args if arg is not _NONE_TYPE]
            converts = [self.conv(arg, context, owner) for arg in members]
            if not any(converts):
                return None
            if len(members) == 1:
                return f"_optional_of({converts[0]})"
            cases = []
            for member, convert in zip(members, converts):
                if convert is None:
                    continue
                check = typing.get_origin(member) or member
                if not isinstance(check, type) or self.is_awaitable_type(member):
                    raise GenerationError(
                        f"{context}: cannot tell the members of {tp} apart at runtime"
                    )
                if check in self.sync_names:
                    check_text = f"_aio.{check.__name__}"
                else:
                    check_text = self.ref(check, context)
                cases.append(f"({check_text}, {convert})")
            return f"_union_of({', '.join(cases)})"
        if origin in _LIST_ORIGINS and len(args) == 1:
            inner = self.conv(args[0], context, owner)
            return f"_list_of({inner})" if inner else None
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                inner = self.conv(args[0], context, owner)
                return f"_tuple_of({inner})" if inner else None
            converts = [self.conv(arg, context, owner) for arg in args]
            if not any(converts):
                return None
            return f"_fixed_tuple_of({', '.join(c or 'None' for c in converts)})"
        if origin in _DICT_ORIGINS and len(args) == 2:
            if self.mentions_mirrored(args[0]):
                raise GenerationError(f"{context}: async objects as dict keys are not supported")
            inner = self.conv(args[1], context, owner)
            return f"_dict_of({inner})" if inner else None
        if self.mentions_mirrored(tp):
            raise GenerationError(
                f"{context}: don't know how to convert a returned {tp}; use list, tuple, "
                "dict, Optional or a union of mirrored classes"
            )
        return None

    # -- values ----------------------------------------------------------------------

    def fmt_default(self, value: Any, owner_expr: str, name: str, context: str) -> str:
        """Source text for a default value (the async default object when not literal)."""
        if isinstance(value, enum.Enum):
            enum_type = type(value)
            if getattr(enum_type, value.name, None) is value:
                return f"{self.ref(enum_type, context)}.{value.name}"
        elif type(value) is str:
            return _str_literal(value)
        elif value is None or value is Ellipsis or type(value) in (bool, int, float, bytes, tuple):
            text = repr(value)
            try:
                if value is Ellipsis or ast.literal_eval(text) == value:
                    return text
            except (ValueError, SyntaxError):
                pass
        # Not expressible as a literal (a sentinel, say): use the very same object.
        return f"_default({owner_expr}, {_str_literal(name)})"

    def params(
        self, func: Any, hints: Mapping[str, Any], drop_first: bool, owner_expr: str, context: str
    ) -> list[_Param]:
        """The blocking signature's parameters for ``func``."""
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError) as exc:
            raise GenerationError(f"{context}: no signature ({exc})") from exc
        params = list(signature.parameters.values())
        if drop_first:
            if not params or params[0].kind not in (
                inspect.Parameter.POSITIONAL_ONLY,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
            ):
                raise GenerationError(f"{context}: a method needs a self/cls parameter")
            params = params[1:]
        result = []
        for param in params:
            if param.name in self.reserved:
                raise GenerationError(
                    f"{context}: parameter name {param.name!r} clashes with a name the "
                    "generated code uses"
                )
            hint = hints.get(param.name, inspect.Parameter.empty)
            annotation = None if hint is inspect.Parameter.empty else self.fmt(hint, context)
            default = None
            if param.default is not inspect.Parameter.empty:
                default = self.fmt_default(param.default, owner_expr, param.name, context)
            unwrap = hint is not inspect.Parameter.empty and self.mentions_mirrored(hint)
            result.append(_Param(param.name, param.kind, annotation, default, unwrap))
        return result

    # -- members ---------------------------------------------------------------------

    def members(self, cls: type) -> list[_Member]:
        """Public members of ``cls`` in definition order, most-derived class first."""
        seen: set[str] = set()
        found: list[_Member] = []
        for klass in cls.__mro__:
            if klass is object or klass.__module__ in _PLUMBING_MODULES:
                continue
            names = list(klass.__dict__.get("__annotations__", {})) + list(klass.__dict__)
            for name in names:
                if name in seen or not _public(name):
                    continue
                seen.add(name)
                member = self._member(cls, klass, name)
                if member is not None:
                    found.append(member)
        return found

    def _member(self, cls: type, klass: type, name: str) -> _Member | None:
        if name not in klass.__dict__:  # annotation only: an instance attribute
            hint = self.hints(cls, f"{cls.__name__}").get(name)
            if typing.get_origin(hint) is typing.ClassVar:
                return None
            return _Member(name, "property", None, cls)
        raw = inspect.getattr_static(cls, name)
        if name in klass.__dict__.get("__annotations__", {}) and not (
            inspect.isroutine(raw) or isinstance(raw, (property, type))
        ):
            # A declared instance field with a class-level default: read the instance.
            hint = self.hints(cls, f"{cls.__name__}").get(name)
            if typing.get_origin(hint) is not typing.ClassVar:
                return _Member(name, "property", None, cls)
        if isinstance(raw, staticmethod):
            return _Member(name, "staticmethod", raw.__func__, cls)
        if isinstance(raw, classmethod):
            return _Member(name, "classmethod", raw.__func__, cls)
        if isinstance(raw, (property, types.MemberDescriptorType, types.GetSetDescriptorType)):
            return _Member(name, "property", raw, cls)
        if type(raw).__name__ == "cached_property":
            return _Member(name, "property", raw, cls)
        if inspect.isfunction(raw) or _is_coroutine_function(raw):
            return _Member(name, "method", raw, cls)
        if isinstance(raw, type) or not callable(raw):
            return _Member(name, "attribute", raw, cls)
        raise GenerationError(
            f"{cls.__name__}.{name}: don't know how to mirror a {type(raw).__name__}"
        )

    # -- emission --------------------------------------------------------------------

    def doc(self, text: str | None, default: str) -> str:
        """The cleaned docstring with mirrored class names unprefixed, or ``default``."""
        if not text or not text.strip():
            return default
        cleaned = inspect.cleandoc(text)
        # "an AsyncDaemon" becomes "a Daemon", not "an Daemon".
        cleaned = self.article_re.sub(lambda m: m.group(1), cleaned)
        return self.async_names_re.sub("", cleaned)

    @staticmethod
    def signature_lines(
        indent: str, prefix: str, params: list[str], returns: str | None
    ) -> list[str]:
        """``def name(params) -> returns:`` on one line, or one parameter per line."""
        tail = f") -> {returns}:" if returns else "):"
        line = f"{indent}{prefix}(" + ", ".join(params) + tail
        if len(line) <= LINE_LENGTH or not params:
            return [line]
        return [f"{indent}{prefix}("] + [f"{indent}    {p}," for p in params] + [indent + tail]

    @staticmethod
    def param_texts(params: list[_Param], first: str | None) -> list[str]:
        """Parameter texts with ``/`` and ``*`` markers where needed."""
        texts = [first] if first else []
        kinds = [p.kind for p in params]
        star_done = inspect.Parameter.VAR_POSITIONAL in kinds
        for index, param in enumerate(params):
            if param.kind is inspect.Parameter.KEYWORD_ONLY and not star_done:
                texts.append("*")
                star_done = True
            stars = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
            text = stars.get(param.kind, "") + param.name
            if param.annotation is not None:
                text += f": {param.annotation}"
                if param.default is not None:
                    text += f" = {param.default}"
            elif param.default is not None:
                text += f"={param.default}"
            texts.append(text)
            if param.kind is inspect.Parameter.POSITIONAL_ONLY and (
                index + 1 == len(params) or params[index + 1].kind is not param.kind
            ):
                texts.append("/")
        return texts

    @staticmethod
    def call_args(
        params: list[_Param],
        replace: Mapping[str, str] | None = None,
        skip: frozenset[str] = frozenset(),
        keywords_after: str | None = None,
    ) -> list[str]:
        """Arguments forwarding ``params`` to the async callable, kinds preserved.

        Parameters in ``skip`` are left out; after one of them, and after the parameter
        named ``keywords_after``, positional-or-keyword parameters are passed by keyword.
        """
        replace = replace or {}
        parts: list[str] = []
        positional = True
        for param in params:
            if param.name in skip:
                if param.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
                    raise GenerationError(f"cannot leave out parameter {param.name}")
                positional = False
                continue
            value = replace.get(param.name, param.name)
            if param.unwrap:
                value = f"_unwrap({value})"
            if param.kind is inspect.Parameter.POSITIONAL_ONLY:
                parts.append(value)
            elif param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
                parts.append(value if positional else f"{param.name}={value}")
            elif param.kind is inspect.Parameter.VAR_POSITIONAL:
                if not positional:
                    raise GenerationError(f"cannot forward *{param.name} after a skipped argument")
                parts.append(f"*{value}")
            elif param.kind is inspect.Parameter.KEYWORD_ONLY:
                parts.append(f"{param.name}={value}")
            else:
                parts.append(f"**{value}")
            if param.name == keywords_after:
                positional = False
        return parts

    def result_expr(
        self,
        target: str,
        args: list[str],
        func: Any,
        hint: Any,
        context: str,
        owner: type | None,
        plain: str = "direct",
    ) -> tuple[str, list[str], str]:
        """The expression calling ``target(*args)`` and converting its result.

        Returned as (text before the arguments, arguments, text after them) so long
        calls can be split over lines. ``plain`` says how a plain (non-async) callable
        is invoked: ``"direct"`` in the calling thread, or ``"loop"`` on the loop thread
        via ``_loop.call``.
        """
        if _is_asyncgen_function(func):
            item = typing.get_args(hint)[0] if typing.get_args(hint) else None
            inner = self.conv(item, context, owner) if item is not None else None
            return f"_iterate({target}(", args, f"), {inner or 'None'})"
        if _is_coroutine_function(func):
            head, tail = f"_loop.run({target}(", "))"
        elif hint is not None and self.is_awaitable_type(hint):
            # Created on the loop thread: awaitables may need a running loop to exist.
            head, tail = f"_loop.run(lambda: {target}(", "))"
            hint_args = typing.get_args(hint)
            hint = hint_args[-1] if hint_args else None
        elif plain == "loop":
            head, tail, args = "_loop.call(", ")", [target, *args]
        else:
            head, tail = f"{target}(", ")"
        convert = self.conv(hint, context, owner) if hint is not None else None
        if convert is None:
            return head, args, tail
        if convert.startswith("_iterator_of("):
            return f"_iterate({head}", args, f"{tail}, {convert[len('_iterator_of(') : -1]})"
        return f"{convert}({head}", args, f"{tail})"

    @staticmethod
    def call_lines(indent: str, head: str, args: list[str], tail: str) -> list[str]:
        """``head + args + tail`` on one line, or with one argument per line if too long."""
        line = indent + head + ", ".join(args) + tail
        if len(line) <= LINE_LENGTH or not args:
            return [line]
        return [indent + head] + [f"{indent}    {arg}," for arg in args] + [indent + tail]

    def emit_function(
        self,
        lines: list[str],
        indent: str,
        name: str,
        func: Any,
        *,
        kind: str,
        owner: type | None,
        owner_expr: str,
        target_expr: str,
        sync_name: str | None = None,
        default_doc: str,
    ) -> None:
        """Emit one blocking method or function mirroring ``func``."""
        context = f"{owner.__name__}.{name}" if owner else name
        hints = self.hints(func, context)
        drop_first = kind in ("method", "classmethod")
        params = self.params(func, hints, drop_first, owner_expr, context)
        return_hint = hints.get("return")
        sync_name = sync_name or name
        first = {"method": "self", "classmethod": "cls"}.get(kind)
        if kind == "classmethod":
            lines.append(f"{indent}@classmethod")
        elif kind == "staticmethod":
            lines.append(f"{indent}@staticmethod")
        opener = self.file_openers.get(name) if kind == "method" else None
        if opener is not None and return_hint is not None and self.is_file_type(return_hint):
            self._emit_open(
                lines, indent, name, func, params, opener, context, target_expr, default_doc
            )
            return
        returns = None if return_hint is None else self.fmt(return_hint, context, returned=True)
        if sync_name == "__iter__" and returns is None:
            returns = "Iterator[Any]"
        if sync_name == "__enter__" and (
            return_hint is None
            or return_hint is owner
            or any(return_hint is t for t in _SELF_TYPES)
        ):
            returns = self.sync_names[owner] if owner in self.sync_names else returns
        lines += self.signature_lines(
            indent, f"def {sync_name}", self.param_texts(params, first), returns
        )
        body = indent + "    "
        lines.append(body + _docstring_literal(self.doc(func.__doc__, default_doc), body))
        args = self.call_args(params)
        call = f"{target_expr}({', '.join(args)})"
        if sync_name == "__enter__":
            convert = self.conv(return_hint, context, owner) if return_hint is not None else None
            lines.append(f"{body}result = _loop.run({call})")
            converted = f"{convert}(result)" if convert else "result"
            lines.append(f"{body}return self if result is self._async else {converted}")
            return
        plain = "loop" if owner is None else "direct"
        head, args, tail = self.result_expr(
            target_expr, args, func, return_hint, context, owner, plain
        )
        if sync_name == "__iter__" and not head.startswith("_iterate("):
            head, tail = f"_iterate({head}", f"{tail}, None)"
        lines += self.call_lines(body, f"return {head}", args, tail)

    def _emit_open(
        self,
        lines: list[str],
        indent: str,
        name: str,
        func: Any,
        params: list[_Param],
        opener: FileOpener,
        context: str,
        target_expr: str,
        default_doc: str,
    ) -> None:
        names = [p.name for p in params]
        if opener.mode_param not in names:
            raise GenerationError(f"{context}: no {opener.mode_param!r} parameter")
        mode_index = names.index(opener.mode_param)
        mode = params[mode_index]
        sync_mode = dataclasses.replace(
            mode, annotation="str", default=_str_literal(opener.mode_default), unwrap=False
        )
        rest = [p for p in params[mode_index + 1 :] if p.name not in opener.text_params]
        # The builtin's order, open(file, mode, buffering, encoding, errors, newline),
        # when possible; the async method's other parameters follow (passed by keyword).
        in_builtin_order = mode.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and all(
            p.kind is not inspect.Parameter.VAR_POSITIONAL for p in rest
        )
        text_kind = (
            inspect.Parameter.POSITIONAL_OR_KEYWORD
            if in_builtin_order
            else inspect.Parameter.KEYWORD_ONLY
        )
        text_params = []
        for text_name in opener.text_params:
            annotation, default = _TEXT_PARAM_DEFAULTS.get(text_name, (None, "None"))
            text_params.append(_Param(text_name, text_kind, annotation, default))
        if in_builtin_order:
            sync_params = [*params[:mode_index], sync_mode, *text_params, *rest]
        else:
            sync_params = [*params[:mode_index], sync_mode, *rest]
            position = next(
                (
                    i
                    for i, p in enumerate(sync_params)
                    if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD)
                ),
                len(sync_params),
            )
            sync_params[position:position] = text_params
        returns = f"{self.ref(typing.IO, context)}[{self.ref(Any, context)}]"
        lines += self.signature_lines(
            indent, f"def {name}", self.param_texts(sync_params, "self"), returns
        )
        body = indent + "    "
        lines.append(body + _docstring_literal(self.doc(func.__doc__, default_doc), body))
        skipped = frozenset(n for n in opener.text_params if n in names)
        call_args = self.call_args(
            params, {opener.mode_param: "binary_mode"}, skipped, keywords_after=opener.mode_param
        )
        lines.append(f"{body}return _open_blocking(")
        lines.append(f"{body}    lambda binary_mode: {target_expr}({', '.join(call_args)}),")
        lines.append(f"{body}    {opener.mode_param},")
        for text_name in ("buffering", "encoding", "errors", "newline"):
            if text_name in opener.text_params:
                value = text_name
            else:
                value = _TEXT_PARAM_DEFAULTS[text_name][1]
            lines.append(f"{body}    {value},")
        lines.append(f"{body})")

    def emit_property(self, lines: list[str], cls: type, member: _Member) -> None:
        """Emit a property delegating to the async object's attribute."""
        context = f"{cls.__name__}.{member.name}"
        raw = member.obj
        getter = None
        setter = None
        if isinstance(raw, property):
            getter, setter = raw.fget, raw.fset
        elif raw is not None and type(raw).__name__ == "cached_property":
            getter = raw.func
        hint = None
        if getter is not None:
            hint = self.hints(getter, context).get("return")
        else:
            hint = self.hints(cls, cls.__name__).get(member.name)
        returns = None if hint is None else self.fmt(hint, context)
        doc_source = getattr(raw, "__doc__", None) if isinstance(raw, property) else None
        if doc_source is None and getter is not None:
            doc_source = getter.__doc__
        default_doc = f"The ``{member.name}`` of the wrapped ``{cls.__name__}``."
        lines.append("    @property")
        lines += self.signature_lines("    ", f"def {member.name}", ["self"], returns)
        lines.append("        " + _docstring_literal(self.doc(doc_source, default_doc), "        "))
        convert = self.conv(hint, context, cls) if hint is not None else None
        value = f"self._async.{member.name}"
        lines.append(f"        return {convert}({value})" if convert else f"        return {value}")
        if setter is not None:
            unwrap = hint is not None and self.mentions_mirrored(hint)
            annotation = f": {returns}" if returns else ""
            lines.append("")
            lines.append(f"    @{member.name}.setter")
            lines.append(f"    def {member.name}(self, value{annotation}) -> None:")
            assigned = "_unwrap(value)" if unwrap else "value"
            lines.append(f"        self._async.{member.name} = {assigned}")

    def emit_constructor(self, lines: list[str], cls: type, async_ref: str) -> None:
        """Emit an ``__init__`` that builds the async object from the same arguments."""
        context = f"{cls.__name__}.__init__"
        init = cls.__init__  # type: ignore[misc]
        params = self.params(init, self.hints(init, context), True, f"{async_ref}.__init__", context)
        lines += self.signature_lines("    ", "def __init__", self.param_texts(params, "self"), "None")
        default_doc = f"Create the wrapped ``{cls.__name__}`` from the same arguments."
        lines.append("        " + _docstring_literal(self.doc(init.__doc__, default_doc), "        "))
        lines += self.call_lines("        ", f"super().__init__({async_ref}(", self.call_args(params), "))")

    def emit_class(self, cls: type) -> list[str]:
        """The blocking twin of ``cls``."""
        sync = self.sync_names[cls]
        async_ref = f"_aio.{cls.__name__}"
        lines = [f"class {sync}(_Facade):"]
        class_doc = cls.__dict__.get("__doc__")
        default_doc = f"Blocking version of :class:`{self.module_name}.{cls.__name__}`."
        lines.append("    " + _docstring_literal(self.doc(class_doc, default_doc), "    "))
        lines.append("")
        lines.append("    __slots__ = ()")
        lines.append(f"    _async_class = {async_ref}")
        lines.append(f"    _async: {async_ref}")
        members = self.members(cls)
        for member in members:
            if member.kind == "attribute":
                lines.append(f"    {member.name} = {async_ref}.{member.name}")
        if cls.__name__ in CONSTRUCTIBLE:
            lines.append("")
            self.emit_constructor(lines, cls, async_ref)
        for async_name, sync_name in SPECIAL_METHODS.items():
            func = getattr(cls, async_name, None)
            if func is None:
                continue
            lines.append("")
            self.emit_function(
                lines,
                "    ",
                async_name,
                func,
                kind="method",
                owner=cls,
                owner_expr=f"{async_ref}.{async_name}",
                target_expr=f"self._async.{async_name}",
                sync_name=sync_name,
                default_doc=f"Blocking version of ``{cls.__name__}.{async_name}``.",
            )
        for member in members:
            if member.kind == "attribute":
                continue
            lines.append("")
            default_doc = (
                f"Blocking version of :meth:`{self.module_name}.{cls.__name__}.{member.name}`."
            )
            if member.kind == "property":
                self.emit_property(lines, cls, member)
            else:
                target = "self._async" if member.kind == "method" else async_ref
                self.emit_function(
                    lines,
                    "    ",
                    member.name,
                    member.obj,
                    kind=member.kind,
                    owner=cls,
                    owner_expr=f"{async_ref}.{member.name}",
                    target_expr=f"{target}.{member.name}",
                    default_doc=default_doc,
                )
        return lines

    def generate(self) -> str:
        """The whole generated module's text."""
        body: list[str] = []
        for cls in self.classes:
            body += ["", ""] + self.emit_class(cls)
        for name, func in self.functions:
            body += ["", ""]
            self.emit_function(
                body,
                "",
                name,
                func,
                kind="function",
                owner=None,
                owner_expr=f"_aio.{name}",
                target_expr=f"_aio.{name}",
                default_doc=f"Blocking version of :func:`{self.module_name}.{name}`.",
            )
        exported = [self.sync_names[cls] for cls in self.classes] + [n for n, _ in self.functions]
        suffixes = sorted(self.sync_names.values())
        head = [
            f"# Generated from {self.module_name} by tools/generate_sync.py. "
            "Do not edit; run python tools/generate_sync.py",
            f'"""Blocking twins of the classes and factories of :mod:`{self.module_name}`.',
            "",
            "Each class wraps an instance of its ``Async`` counterpart and runs every coroutine",
            f"on the shared background event loop (:mod:`{self.loop_module}`).",
            '"""',
            "",
            "from __future__ import annotations",
            "",
            "import inspect as _inspect",
            "import re as _re",
        ]
        grouped: dict[str, set[str]] = {}
        for module_name, local in [*_MACHINERY_IMPORTS, *self.imports.values()]:
            grouped.setdefault(module_name, set()).add(local)
        for module_name in sorted(grouped):
            imported = sorted(grouped[module_name])
            line = f"from {module_name} import {', '.join(imported)}"
            if len(line) > LINE_LENGTH:
                line = f"from {module_name} import (\n"
                line += "".join(f"    {name},\n" for name in imported) + ")"
            head.append(line)
        head.append("")
        package, _, loop_name = self.loop_module.rpartition(".")
        loop_alias = "" if loop_name == "_loop" else " as _loop"
        head += [
            f"import {self.module_name} as _aio",
            f"from {package} import {loop_name}{loop_alias}"
            if package
            else f"import {loop_name} as _loop",
            f"from {self.fileio_module} import open_blocking as _open_blocking",
            "",
            "__all__ = [",
            *[f"    {_str_literal(name)}," for name in exported],
            "]",
            "",
            "_ASYNC_NAMES = _re.compile(",
            f"    r\"\\b{ASYNC_PREFIX}(?=(?:{'|'.join(map(re.escape, suffixes))})\\b)\"",
            ")",
        ]
        text = "\n".join(head) + "\n\n" + _PRELUDE + "\n".join(body) + "\n"
        try:
            compile(text, "<generated>", "exec")
        except SyntaxError as exc:
            raise GenerationError(f"generated code does not compile: {exc}") from exc
        return text


def generate(
    module_name: str = DEFAULT_MODULE,
    class_names: Sequence[str] = DEFAULT_CLASSES,
    function_names: Sequence[str] = DEFAULT_FUNCTIONS,
    *,
    file_openers: Mapping[str, FileOpener] = FILE_OPENERS,
    loop_module: str = "lucidlink._loop",
    fileio_module: str = "lucidlink._fileio",
) -> str:
    """Return the source of the blocking facade over ``module_name``.

    ``class_names`` are the ``Async*`` classes to mirror (in output order) and
    ``function_names`` the module-level factories; ``file_openers`` maps method names to
    their builtin-``open`` treatment. Raises :class:`GenerationError` when a member
    cannot be mirrored (unresolvable annotations, clashing names, ...).
    """
    return _Generator(
        module_name, class_names, function_names, file_openers, loop_module, fileio_module
    ).generate()


def _split_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", default=DEFAULT_MODULE, help="async module to mirror")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="file to write")
    parser.add_argument(
        "--classes",
        type=_split_names,
        default=list(DEFAULT_CLASSES),
        help="comma-separated Async* classes to mirror",
    )
    parser.add_argument(
        "--functions",
        type=_split_names,
        default=list(DEFAULT_FUNCTIONS),
        help="comma-separated module-level factory functions to mirror",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 with a diff if the output is missing or stale",
    )
    args = parser.parse_args(argv)
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    try:
        text = generate(args.module, args.classes, args.functions)
    except GenerationError as exc:
        print(f"generate_sync: {exc}", file=sys.stderr)
        return 2
    output: Path = args.output
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else None
        if current == text:
            return 0
        if current is None:
            print(f"{output} is missing; run python tools/generate_sync.py", file=sys.stderr)
            return 1
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=f"{output} (on disk)",
            tofile=f"{output} (generated)",
        )
        sys.stdout.writelines(diff)
        print(f"{output} is stale; run python tools/generate_sync.py", file=sys.stderr)
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", encoding="utf-8", newline="\n") as stream:
        stream.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
