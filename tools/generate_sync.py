"""Generate the blocking API, ``lucidlink/_generated*.py``, from the async core.

    python tools/generate_sync.py            # rewrite the modules of SPECS
    python tools/generate_sync.py --check    # exit 1 if one is stale or has unused entries

Each async class of a :class:`Spec` gets a blocking twin wrapping an instance of it, same
signatures and docstrings, whose methods run the async ones on the background loop
(:mod:`lucidlink._loop`): coroutines and ``AwaitableContext`` through ``_loop.run``, async
generators as blocking iterators, ``__aenter__``/``__aexit__`` as ``__enter__``/``__exit__``,
``__init__`` for ``Spec.constructible`` classes only. Returned values are converted by shape
(:meth:`_Generator.returned` refuses a new shape, naming the converter to add); docstrings
lose ``await``/``async with``/``async for``. The runtime is :mod:`lucidlink._facade`; the
output is formatted by ruff with the repository's config.
"""

from __future__ import annotations

import argparse
import builtins
import collections.abc as cabc
import dataclasses
import difflib
import enum
import importlib
import inspect
import re
import subprocess
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
FACADE = "lucidlink._facade"
#: Plain methods returning one of these generics give an awaitable of the argument.
AWAITABLE_NAMES = frozenset({"AwaitableContext"})
SPECIAL_METHODS = {"__aenter__": "__enter__", "__aexit__": "__exit__"}
_ASYNC_ITERATORS = (cabc.AsyncIterator, cabc.AsyncGenerator, cabc.AsyncIterable)
_ASYNC_ABCS = (*_ASYNC_ITERATORS, cabc.Awaitable, cabc.Coroutine)
_DOC_REWRITES = [  # the async idioms in their blocking form
    (re.compile(r"\b([Aa])n (``)?async (with|for)\b"), r"\1 \2\3"),
    (re.compile(r"\basync (with|for)\b"), r"\1"),
    (re.compile(r"\bawait +"), ""),
]


@dataclasses.dataclass(frozen=True)
class Spec:
    """What to mirror, and where to write it."""

    module: str  # the async module; the output imports it as ``_aio``
    names: Mapping[str, str]  # async class or function -> blocking name, in output order
    output: Path
    # Async class -> "module.Base", a hand-written Facade subclass whose methods override.
    bases: Mapping[str, str] = dataclasses.field(default_factory=dict)
    constructible: frozenset[str] = frozenset()  # classes whose __init__ is mirrored
    # Async class -> "module.Blocking": mirrored by another Spec's output, imported from it.
    elsewhere: Mapping[str, str] = dataclasses.field(default_factory=dict)


# Two modules, so that each stays under the 600-line module limit (tests/test_layout.py).
_FS = {"AsyncFilesystem": "Filesystem", "AsyncConnect": "Connect"}
_CORE = {"AsyncDaemon": "Daemon", "AsyncWorkspace": "Workspace", "AsyncFilespace": "Filespace"}
_CORE |= {"AsyncClient": "Client", "create_daemon": "create_daemon"}
_BASES = {"AsyncFilesystem": "lucidlink._facade.FilesystemFacade"}
_ELSEWHERE = {name: f"lucidlink._generated_fs.{sync}" for name, sync in _FS.items()}
_OUT, _CONSTRUCTIBLE = REPO_ROOT / "lucidlink", frozenset({"AsyncClient", "AsyncDaemon"})
SPECS = (
    Spec("lucidlink.aio", _FS, _OUT / "_generated_fs.py", bases=_BASES),
    Spec("lucidlink.aio", _CORE, _OUT / "_generated.py", {}, _CONSTRUCTIBLE, _ELSEWHERE),
)


class GenerationError(Exception):
    """The async module cannot be mirrored as it is (the message says what to change)."""


class _Generator:
    """One generation run: the mirrored classes, the imports, the unused map entries."""

    def __init__(self, spec: Spec) -> None:
        self.spec, self.module = spec, importlib.import_module(spec.module)
        self.unused: list[str] = []
        self.objects = {name: getattr(self.module, name, None) for name in spec.names}
        for name in [name for name, obj in self.objects.items() if obj is None]:
            self.unused.append(f"names[{name!r}]: {spec.module} has no {name}")
            del self.objects[name]
        for kind, names in (("bases", spec.bases), ("constructible", spec.constructible)):
            for name in names:
                if not isinstance(self.objects.get(name), type):
                    self.unused.append(f"{kind}[{name!r}]: {spec.module} has no class {name}")
        self.mirrored = {o: spec.names[n] for n, o in self.objects.items() if isinstance(o, type)}
        self.imports: dict[str, str] = {}  # local name -> module
        self.homes = {getattr(self.module, n): p.rsplit(".", 1) for n, p in spec.elsewhere.items()}
        self.mirrored |= {cls: sync for cls, (_, sync) in self.homes.items()}
        self.reserved = set(spec.names.values()) | {"self"}
        self.doc_rewrites = list(_DOC_REWRITES)
        for cls, sync_name in self.mirrored.items():
            if sync_name[0].lower() not in "aeiou":  # "an AsyncDaemon" -> "a Daemon"
                self.doc_rewrites.append((re.compile(rf"\b([Aa])n (?={cls.__name__}\b)"), r"\1 "))
            self.doc_rewrites.append((re.compile(rf"\b{cls.__name__}\b"), sync_name))

    def ref(self, obj: Any, context: str) -> str:
        """The name of ``obj`` in the output, imported from a public module."""
        name = getattr(obj, "__name__", None) or getattr(obj, "_name", None)
        if isinstance(name, str) and getattr(builtins, name, None) is obj:
            return name
        home = getattr(obj, "__module__", "")
        # The async module when it re-exports its package's names (lucidlink.aio's types).
        first = [self.spec.module] if home.split(".")[0] == self.spec.module.split(".")[0] else []
        for module_name in dict.fromkeys([*first, home, "types"]):
            module = importlib.import_module(module_name)
            found = [name] if isinstance(name, str) and getattr(module, name, None) is obj else []
            found += [k for k, v in vars(module).items() if v is obj and not k.startswith("_")]
            if found:
                return self.add_import(found[0], module_name, context)
        raise GenerationError(f"{context}: cannot find a module to import {obj!r} from")

    def add_import(self, name: str, module: str, context: str) -> str:
        if name in self.reserved or self.imports.get(name, module) != module:
            raise GenerationError(f"{context}: the name {name!r} is used twice in the module")
        self.imports[name] = module
        return name

    def is_async_type(self, tp: Any) -> bool:
        """Whether ``tp`` mentions an async class or an async protocol anywhere."""
        origin = typing.get_origin(tp)
        if isinstance(tp, list):  # the argument list of a Callable
            return any(map(self.is_async_type, tp))
        if tp in self.mirrored or origin in _ASYNC_ABCS:
            return True
        name = getattr(tp if origin is None else origin, "__name__", "")
        if name.startswith("Async") or name in AWAITABLE_NAMES:
            return True
        return any(map(self.is_async_type, typing.get_args(tp)))

    def fmt(self, tp: Any, context: str) -> str:
        """Annotation text for ``tp``, which mentions no async type."""
        if tp is None or tp is type(None):
            return "None"
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is typing.Union or origin is types.UnionType:
            return " | ".join(self.fmt(arg, context) for arg in args)
        if origin is None:
            return self.ref(tp, context)
        return f"{self.ref(origin, context)}[{', '.join(self.fmt(a, context) for a in args)}]"

    def maker(self, cls: type) -> str:
        """How a returned ``cls`` is wrapped: ``X``, or ``X.wrap`` when ``X()`` builds anew."""
        sync = self.mirrored[cls]
        if cls in self.homes:
            self.add_import(sync, self.homes[cls][0], f"elsewhere[{cls.__name__!r}]")
        return f"{sync}.wrap" if cls.__name__ in self.spec.constructible else sync

    def returned(self, tp: Any, context: str) -> tuple[str | None, Callable[[str], str]]:
        """The blocking annotation of a returned ``tp``, and how to convert the value: the
        shapes the API uses are ``AsyncX`` (``X(value)``), ``list[AsyncX]``, async iterators
        of ``AsyncX`` or of a plain type, and any type mentioning no async type."""
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        item = args[0] if args else None
        if tp is None or not self.is_async_type(tp):
            return None if tp is None else self.fmt(tp, context), lambda value: value
        if tp in self.mirrored:
            return self.mirrored[tp], lambda value: f"{self.maker(tp)}({value})"
        if origin is list and item in self.mirrored:
            make = self.maker(item)
            return f"list[{self.mirrored[item]}]", lambda v: f"_facade.wrap_each({make}, {v})"
        if origin in _ASYNC_ITERATORS and (item in self.mirrored or not self.is_async_type(item)):
            text, _ = self.returned(item, context)
            wrap = f", {self.maker(item)}" if item in self.mirrored else ""
            iterator = self.ref(cabc.Iterator, context)
            return f"{iterator}[{text}]", lambda value: f"_facade.iterate({value}{wrap})"
        raise GenerationError(
            f"{context}: no converter for a returned {tp!r}; add one to lucidlink/_facade.py "
            "and its shape to _Generator.returned in tools/generate_sync.py"
        )

    def hints(self, obj: Any, context: str) -> dict[str, Any]:
        try:
            return typing.get_type_hints(obj)
        except Exception as exc:
            raise GenerationError(
                f"{context}: annotations must resolve at runtime ({type(exc).__name__}: "
                f"{exc}); import their names at module level, not under TYPE_CHECKING"
            ) from exc

    def params(self, func: Any, context: str, *, method: bool) -> tuple[str, str]:
        """The blocking parameter list and the arguments forwarding it to ``func``."""
        hints = self.hints(func, context)
        texts, args = ["self"] if method else [], []
        for param in list(inspect.signature(func).parameters.values())[method:]:
            name, hint, default = param.name, hints.get(param.name), param.default
            if name.startswith("_") or name in self.reserved:
                raise GenerationError(f"{context}: rename parameter {name!r} (a name clash)")
            if param.kind is param.KEYWORD_ONLY:
                texts += [] if "*" in texts else ["*"]
                args.append(f"{name}={name}")
            elif param.kind is param.POSITIONAL_OR_KEYWORD:
                args.append(name)
            else:
                raise GenerationError(f"{context}: cannot forward a {param.kind} parameter")
            if hint is not None and self.is_async_type(hint):
                raise GenerationError(f"{context}: parameter {name} takes an async type")
            texts.append(name if hint is None else f"{name}: {self.fmt(hint, context)}")
            if isinstance(default, enum.Enum):
                texts[-1] += f" = {self.ref(type(default), context)}.{default.name}"
            elif default is None or type(default) in (bool, int, float, str, bytes):
                texts[-1] += f" = {default!r}"
            elif default is not param.empty:
                raise GenerationError(f"{context}: default {default!r} is not a literal or enum")
        return ", ".join(texts), ", ".join(args)

    def doc(self, text: str | None, default: str, indent: str) -> str:
        """The docstring for the blocking face, as an indented literal."""
        doc = inspect.cleandoc(text) if text and text.strip() else ""
        for pattern, replacement in self.doc_rewrites if doc else ():
            doc = pattern.sub(replacement, doc)
        doc = doc or default
        if '"""' in doc or doc.endswith(('"', "\\")):
            return indent + repr(doc)
        first, *rest = doc.replace("\\", "\\\\").split("\n")
        lines = [f'{indent}"""{first}', *(indent + line if line else "" for line in rest)]
        return "\n".join(lines + [indent] if rest else lines) + '"""'

    def function(self, name: str, func: Any, owner: type | None, default: str) -> list[str]:
        """A blocking method of ``owner``, or a module function, mirroring ``func``."""
        context = f"{owner.__name__}.{name}" if owner else name
        params, args = self.params(func, context, method=owner is not None)
        target = f"self._async.{name}" if owner else f"_aio.{name}"
        hint, call = self.hints(func, context).get("return"), f"{target}({args})"
        if inspect.isasyncgenfunction(func):
            value = call
        elif inspect.iscoroutinefunction(func):
            value = f"_loop.run({call})"
        elif getattr(typing.get_origin(hint), "__name__", None) in AWAITABLE_NAMES:
            # Created on the loop thread: such awaitables may need a running loop.
            value, hint = f"_loop.run(lambda: {call})", typing.get_args(hint)[0]
        else:
            value = f"_loop.call({target}{', ' if args else ''}{args})" if not owner else call
        sync_name = SPECIAL_METHODS.get(name, name) if owner else self.spec.names[name]
        returns, convert = self.returned(hint, context)
        body = [f"return {convert(value)}"]
        if sync_name == "__enter__":
            if hint is not owner:  # and it returns self, as the API's do
                raise GenerationError(f"{context} must return its own class (self)")
            body = [value, "return self"]
        head = f"def {sync_name}({params}){f' -> {returns}' if returns else ''}:"
        return [head, self.doc(func.__doc__, default, "    "), *(f"    {line}" for line in body)]

    def base(self, cls: type) -> tuple[str, set[str]]:
        """The base class's name in the output, and the public names it overrides."""
        path = self.spec.bases.get(cls.__name__)
        if path is None:
            return "_facade.Facade", set()
        module_name, _, name = path.rpartition(".")
        base = getattr(importlib.import_module(module_name), name, None)
        facade = importlib.import_module(FACADE).Facade
        if not (isinstance(base, type) and issubclass(base, facade)):
            raise GenerationError(f"bases[{cls.__name__!r}]: {path} is not a Facade subclass")
        own = base.__mro__[: base.__mro__.index(facade)]
        overrides = {m for klass in own for m in vars(klass) if not m.startswith("_")}
        for member in sorted(overrides):
            if (twin := getattr(cls, member, None)) is None:
                self.unused.append(f"{path}.{member}: {cls.__name__} has no {member}")
                continue
            mine = inspect.signature(getattr(base, member)).parameters
            if missing := [p for p in inspect.signature(twin).parameters if p not in mine]:
                raise GenerationError(f"{path}.{member} lacks the parameters {missing}")
        return self.add_import(name, module_name, path), overrides

    def members(self, cls: type, skip: set[str]) -> list[str]:
        """The generated members of ``cls``'s blocking twin, in definition order."""
        lines: list[str] = []
        for klass in cls.__mro__[:-1]:
            for member, raw in vars(klass).items():
                if member.startswith("_") or member in skip:
                    continue
                skip.add(member)
                context = f"{cls.__name__}.{member}"
                if isinstance(raw, property) and raw.fget and not raw.fset:
                    hint = self.hints(raw.fget, context).get("return")
                    returns, convert = self.returned(hint, context)
                    default = f"The ``{member}`` of the wrapped ``{cls.__name__}``."
                    arrow = f" -> {returns}" if returns else ""
                    lines += ["", "@property", f"def {member}(self){arrow}:"]
                    lines += [self.doc(raw.__doc__, default, "    ")]
                    lines += [f"    return {convert(f'self._async.{member}')}"]
                elif inspect.isfunction(raw):
                    default = f"Blocking version of :meth:`{self.spec.module}.{context}`."
                    lines += ["", *self.function(member, raw, cls, default)]
                else:
                    raise GenerationError(
                        f"{context}: cannot mirror a {type(raw).__name__}; write it in a base "
                        f"in {FACADE} (Spec.bases) or teach tools/generate_sync.py"
                    )
        return lines

    def class_lines(self, cls: type) -> list[str]:
        name, sync = cls.__name__, self.mirrored[cls]
        base, overrides = self.base(cls)
        default = f"Blocking version of :class:`{self.spec.module}.{name}`."
        lines = [f"class {sync}({base}):", self.doc(cls.__doc__, default, "    "), ""]
        body = ["__slots__ = ()", f"_async_class = _aio.{name}", f"_async: _aio.{name}"]
        if name in self.spec.constructible:
            init: Any = cls.__init__  # type: ignore[misc]
            params, args = self.params(init, f"{name}.__init__", method=True)
            default = f"Create the wrapped ``{name}`` from the same arguments."
            body += [
                "",
                f"def __init__({params}) -> None:",
                self.doc(init.__doc__, default, "    "),
            ]
            body += [f"    super().__init__(_aio.{name}({args}))"]
        for special in filter(lambda special: hasattr(cls, special), SPECIAL_METHODS):
            default = f"Blocking version of ``{name}.{special}``."
            body += ["", *self.function(special, getattr(cls, special), cls, default)]
        body += self.members(cls, overrides)
        return lines + [f"    {line}" if line else "" for line in "\n".join(body).split("\n")]

    def generate(self) -> str:
        body: list[str] = []
        for name, obj in self.objects.items():
            default = f"Blocking version of :func:`{self.spec.module}.{name}`."
            lines = self.class_lines(obj) if isinstance(obj, type) else None
            body += ["", "", *(lines or self.function(name, obj, None, default))]
        imports = "".join(f"from {m} import {n}\n" for n, m in self.imports.items())
        names = [self.spec.names[name] for name in self.objects]
        text = _HEAD.format(module=self.spec.module, imports=imports, all=names)
        text += "\n".join(body) + "\n"
        try:
            compile(text, str(self.spec.output), "exec")
        except SyntaxError as exc:
            raise GenerationError(f"the generated code does not compile: {exc}") from exc
        text = _ruff(["check", "--fix", "--select", "I", "--exit-zero"], text, self.spec.output)
        return _ruff(["format"], text, self.spec.output)


_HEAD = f'''\
# Generated from {{module}} by tools/generate_sync.py: do not edit.
"""Blocking twins of the classes and factories of :mod:`{{module}}`.

Each class wraps an instance of its ``Async`` counterpart and runs its coroutines on
the background event loop (:mod:`lucidlink._loop`); the runtime is :mod:`{FACADE}`.
"""

from __future__ import annotations
import {{module}} as _aio
from lucidlink import _facade, _loop
{{imports}}
__all__ = {{all!r}}
'''


def _ruff(args: list[str], text: str, filename: Path) -> str:
    """``text`` passed through ``ruff <args>`` with the repository's configuration."""
    config = ["--config", str(REPO_ROOT / "pyproject.toml"), "--stdin-filename", str(filename)]
    command = [sys.executable, "-m", "ruff", *args, *config, "-"]
    done = subprocess.run(command, input=text, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise GenerationError(f"ruff {args[0]} failed (pip install ruff?): {done.stderr.strip()}")
    return done.stdout


def generate(spec: Spec) -> tuple[str, list[str]]:
    """The blocking module for ``spec``, and the unused map entries; or GenerationError."""
    generator = _Generator(spec)
    return generator.generate(), generator.unused


def main(argv: Sequence[str] | None = None, *specs: Spec) -> int:
    """The command line over ``specs`` (default SPECS); exit 1: stale or unused entries; 2: error"""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the output is stale")
    check, status = parser.parse_args(argv).check, 0
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    for spec in specs or SPECS:
        try:
            text, unused = generate(spec)
        except GenerationError as exc:
            print(f"generate_sync: {exc}", file=sys.stderr)
            return 2
        for entry in unused:
            print(f"generate_sync: unused entry {entry}; remove it from the Spec", file=sys.stderr)
        current = spec.output.read_text(encoding="utf-8") if spec.output.exists() else ""
        if not check:
            spec.output.write_text(text, encoding="utf-8")
        elif current != text:
            name = str(spec.output)
            lines = current.splitlines(True), text.splitlines(True)
            sys.stdout.writelines(difflib.unified_diff(*lines, f"{name} (on disk)", name))
            print(f"generate_sync: {name} is stale; run tools/generate_sync.py", file=sys.stderr)
        status = max(status, 1 if unused or (check and current != text) else 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
