"""Tests of tools/generate_sync.py: generate the blocking facade of a toy async module."""

from __future__ import annotations

import collections.abc
import functools
import importlib
import importlib.util
import inspect
import io
import operator
import os
import re
import subprocess
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lucidlink._fileio import RawFile

REPO_ROOT = Path(__file__).resolve().parents[2]
TOY = "tests.support.toy_aio"
CLASSES = ["AsyncThing", "AsyncChild"]
FUNCTIONS = ["create_thing", "make_child"]
LOOP_THREAD = "lucidlink-loop"
STRIP = re.compile(r"\bAsync(?=(?:Thing|Child)\b)")

toy: Any = importlib.import_module(TOY)


def _load_tool() -> Any:
    spec = importlib.util.spec_from_file_location(
        "generate_sync", REPO_ROOT / "tools" / "generate_sync.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("generate_sync", module)
    spec.loader.exec_module(module)
    return module


gen: Any = _load_tool()


def _import_file(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def source() -> str:
    return gen.generate(TOY, CLASSES, FUNCTIONS)


@pytest.fixture(scope="module")
def sync(source: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("generated") / "toy_sync.py"
    path.write_text(source, encoding="utf-8")
    return _import_file(path, "toy_sync_generated")


@pytest.fixture
def thing(sync: Any, tmp_path: Path) -> Any:
    return sync.create_thing(str(tmp_path), label="toy")


def test_output_is_deterministic_and_has_header(source: str) -> None:
    assert source == gen.generate(TOY, CLASSES, FUNCTIONS)
    assert source.splitlines()[0] == (
        f"# Generated from {TOY} by tools/generate_sync.py. "
        "Do not edit; run python tools/generate_sync.py"
    )
    compile(source, "generated", "exec")


def test_all_and_class_order(sync: Any, source: str) -> None:
    assert sync.__all__ == ["Thing", "Child", "create_thing", "make_child"]
    assert source.index("class Thing(") < source.index("class Child(")
    # Methods keep the async class's definition order.
    positions = [source.index(f"    def {name}(") for name in ("add", "children", "find", "walk")]
    assert positions == sorted(positions)


def test_factories_and_wrappers(sync: Any, thing: Any, tmp_path: Path) -> None:
    assert type(thing) is sync.Thing
    assert isinstance(thing._async, toy.AsyncThing)
    assert thing._async.root == str(tmp_path)
    child = sync.make_child("solo")  # a plain factory, run on the loop thread
    assert type(child) is sync.Child and child.name == "solo"
    with pytest.raises(TypeError, match="wraps an existing AsyncThing"):
        sync.Thing(object())


def test_methods_run_on_the_loop_and_wrap_results(sync: Any, thing: Any) -> None:
    a = thing.add("a", 2, tag="t")
    assert type(a) is sync.Child and a.name == "a"
    assert thing._async.events[-1] == f"add:a:2:t:{LOOP_THREAD}"
    b = thing.add("b")
    assert a.where() == LOOP_THREAD
    assert [type(c) for c in thing.children()] == [sync.Child, sync.Child]
    assert [c.name for c in thing.children()] == ["a", "b"]
    assert thing.find("a") == a and hash(thing.find("a")) == hash(a)
    assert thing.find("zzz") is None
    first, count = thing.pair()
    assert type(first) is sync.Child and count == 2
    assert {k: type(v) for k, v in thing.by_name().items()} == {"a": sync.Child, "b": sync.Child}
    assert type(thing.first) is sync.Child and thing.first.name == "a"
    assert type(thing.child_now("b")) is sync.Child and thing.child_now("x") is None
    walked = thing.walk(limit=5)
    assert isinstance(walked, collections.abc.Iterator)
    assert [(type(c), c.name) for c in walked] == [(sync.Child, "a"), (sync.Child, "b")]
    assert [c.name for c in thing.walk(1)] == ["a"]
    assert type(b.sibling("c")) is sync.Child


def test_arguments_are_unwrapped(sync: Any, thing: Any) -> None:
    c = sync.make_child("c")
    d = sync.make_child("d")
    assert thing.adopt(c, [d]) == 2
    assert thing.find("d")._async is d._async


def test_plain_members(sync: Any, thing: Any) -> None:
    assert thing.describe(verbose=True) == "toy:0:True"
    assert thing.size == 0
    assert thing.label == "toy"
    assert thing.title == "toy"
    thing.title = "renamed"
    assert thing._async.label == "renamed" and thing.label == "renamed"
    with pytest.raises(AttributeError):
        thing.size = 3
    assert sync.Thing.KIND == "thing"
    assert sync.Thing.version() == "1.0"
    created = sync.Thing.create("/root")
    assert type(created) is sync.Thing and created._async.root == "/root"
    assert thing.noop() == 42
    thing.add("n")
    assert thing.rename_all(str.upper)() == ["N"]


def test_defaults_keywords_and_varargs(sync: Any, thing: Any) -> None:
    assert thing.echo(1, 2) == "1, 2|RED|<unset>|None|[]"
    echoed = thing.echo(3, sep="-", color=toy.Color.BLUE, path=Path("p"), x=1)
    assert echoed == "3|BLUE|<unset>|p|['x']"
    params = inspect.signature(sync.Thing.echo).parameters
    assert params["marker"].default is toy._UNSET
    assert params["color"].default is toy.Color.RED
    with pytest.raises(TypeError):
        thing.add(name="x")  # positional-only stays positional-only
    with pytest.raises(TypeError):
        thing.add("x", 1, "tag")  # keyword-only stays keyword-only


def test_exceptions_pass_through_unchanged(thing: Any) -> None:
    error = KeyError("k")
    with pytest.raises(KeyError) as info:
        thing.fail(error)
    assert info.value is error


def test_context_managers(sync: Any, thing: Any) -> None:
    with thing as entered:
        assert entered is thing
    assert thing._async.events[-2:] == ["enter", "exit:None"]
    with pytest.raises(ZeroDivisionError):
        with thing:
            1 / 0
    assert thing._async.events[-1] == "exit:ZeroDivisionError"
    connected = thing.connect("conn")  # AwaitableContext[AsyncChild]: awaited, wrapped
    assert type(connected) is sync.Child
    assert thing._async.events[-1] == f"connect:conn:{LOOP_THREAD}"
    with connected as child:
        assert child is connected and child._async.entered == 1
    assert connected._async.closed


def test_repr_strips_async_prefix(thing: Any) -> None:
    assert repr(thing) == "<Thing label='toy' first=Child>"
    assert repr(thing.add("n")) == "Child(name='n')"


def test_open_is_builtin_like(sync: Any, thing: Any, tmp_path: Path) -> None:
    with thing.open("t.txt", "w", encoding="latin-1") as f:
        assert isinstance(f, io.TextIOWrapper) and f.mode == "w"
        f.write("héllo\nwörld\n")
    assert thing._async.events[-1] == f"open:t.txt:wb:False:{LOOP_THREAD}"
    assert (tmp_path / "t.txt").read_bytes() == "héllo\nwörld\n".encode("latin-1")
    with thing.open("t.txt", "r", encoding="latin-1") as f:
        assert isinstance(f, io.TextIOWrapper) and f.mode == "r"
        assert list(f) == ["héllo\n", "wörld\n"]
    with thing.open("t.txt", "rb", exclusive_lock=True) as f:
        assert isinstance(f, io.BufferedReader)
        assert f.read() == "héllo\nwörld\n".encode("latin-1")
    assert thing._async.events[-1] == f"open:t.txt:rb:True:{LOOP_THREAD}"
    with thing.open("t.txt", "rb", buffering=0) as f:
        assert isinstance(f, RawFile) and f.read(2) == b"h\xe9"
    with thing.open("t.txt", "r+b") as f:
        assert isinstance(f, io.BufferedRandom)
    with pytest.raises(FileExistsError):
        thing.open("t.txt", "x")
    with pytest.raises(ValueError, match="invalid mode"):
        thing.open("t.txt", "rr")
    params = inspect.signature(sync.Thing.open).parameters
    assert list(params) == [
        "self", "path", "mode", "buffering", "encoding", "errors", "newline", "exclusive_lock"
    ]
    # The documented API opens for binary reading by default: fs.open(path, mode="rb", ...).
    assert params["mode"].default == "rb" and params["buffering"].default == -1
    assert params["exclusive_lock"].kind is inspect.Parameter.KEYWORD_ONLY


def _public_names(cls: type) -> list[str]:
    return [n for n in vars(cls) if not n.startswith("_")] + ["label"] * (cls is toy.AsyncThing)


def _sync_type(tp: Any, sync: Any) -> Any:
    """What the blocking API's annotation should be for the async annotation ``tp``."""
    mirrored = {toy.AsyncThing: sync.Thing, toy.AsyncChild: sync.Child}
    if isinstance(tp, list):  # Callable's argument list
        return [_sync_type(arg, sync) for arg in tp]
    if tp in mirrored:
        return mirrored[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is None:
        return tp
    if origin is toy.AwaitableContext:
        return _sync_type(args[0], sync)
    if origin is collections.abc.AsyncIterator:
        return Iterator[_sync_type(args[0], sync)]
    mapped = tuple(_sync_type(arg, sync) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return functools.reduce(operator.or_, mapped)
    return origin[mapped]


@pytest.mark.parametrize("name", ["AsyncThing", "AsyncChild"])
def test_docstrings_and_signatures_match(sync: Any, name: str) -> None:
    async_cls = getattr(toy, name)
    sync_cls = getattr(sync, name.removeprefix("Async"))
    assert inspect.getdoc(sync_cls) == STRIP.sub("", inspect.getdoc(async_cls) or "")
    for member in _public_names(async_cls):
        if member == "label":
            assert isinstance(inspect.getattr_static(sync_cls, member), property)
            continue
        async_attr = inspect.getattr_static(async_cls, member)
        sync_attr = inspect.getattr_static(sync_cls, member)
        if not callable(async_attr) and not isinstance(
            async_attr, (property, classmethod, staticmethod)
        ):
            continue
        assert type(sync_attr) is type(async_attr) or (
            inspect.isfunction(sync_attr) and inspect.isfunction(async_attr)
        ), member
        if isinstance(async_attr, property):
            assert sync_attr.__doc__ == STRIP.sub("", async_attr.__doc__)
            assert (sync_attr.fset is None) == (async_attr.fset is None)
            hint = typing.get_type_hints(async_attr.fget).get("return")
            assert typing.get_type_hints(sync_attr.fget).get("return") == _sync_type(hint, sync)
            continue
        async_fn = getattr(async_cls, member)
        sync_fn = getattr(sync_cls, member)
        assert inspect.getdoc(sync_fn) == STRIP.sub("", inspect.getdoc(async_fn) or ""), member
        if member == "open":
            continue  # builtin-open-like: checked in test_open_is_builtin_like
        async_sig = inspect.signature(async_fn)
        sync_sig = inspect.signature(sync_fn)
        assert [(p.name, p.kind, p.default) for p in sync_sig.parameters.values()] == [
            (p.name, p.kind, p.default) for p in async_sig.parameters.values()
        ], member
        async_hints = typing.get_type_hints(async_fn)
        expected = {k: _sync_type(v, sync) for k, v in async_hints.items()}
        assert typing.get_type_hints(sync_fn) == expected, member
    for simple in ("add", "sibling", "adopt") if name == "AsyncThing" else ("sibling",):
        if hasattr(async_cls, simple):
            # Written in the generated form already: the text matches once unprefixed.
            assert str(inspect.signature(getattr(sync_cls, simple))) == STRIP.sub(
                "", str(inspect.signature(getattr(async_cls, simple)))
            )


def test_special_methods_exist(sync: Any) -> None:
    for cls in (sync.Thing, sync.Child):
        assert callable(cls.__enter__) and callable(cls.__exit__)
    assert typing.get_type_hints(sync.Thing.__enter__)["return"] is sync.Thing
    assert inspect.getdoc(sync.Thing.__exit__) == "Record the exit and the exception type seen."


def test_factory_signatures(sync: Any) -> None:
    expected = STRIP.sub("", str(inspect.signature(toy.create_thing)))
    assert str(inspect.signature(sync.create_thing)) == expected
    assert inspect.getdoc(sync.make_child) == "Create a Child (plain factory)."
    assert typing.get_type_hints(sync.create_thing)["return"] is sync.Thing


# -- the command line -----------------------------------------------------------------

def _cli_args(output: Path) -> list[str]:
    return [
        "--module", TOY, "--classes", ",".join(CLASSES), "--functions", ",".join(FUNCTIONS),
        "--output", str(output),
    ]


def test_check_detects_stale_and_missing(
    tmp_path: Path, source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out.py"
    assert gen.main([*_cli_args(output), "--check"]) == 1  # missing
    assert gen.main(_cli_args(output)) == 0
    assert output.read_text(encoding="utf-8") == source
    assert gen.main([*_cli_args(output), "--check"]) == 0
    capsys.readouterr()
    output.write_text(source.replace("Add a child", "Add one child"), encoding="utf-8")
    assert gen.main([*_cli_args(output), "--check"]) == 1
    out = capsys.readouterr()
    assert "-        \"\"\"Add one child" in out.out and "+        \"\"\"Add a child" in out.out
    assert "stale" in out.err


def test_cli_subprocess(tmp_path: Path, source: str) -> None:
    output = tmp_path / "out.py"
    env = dict(os.environ)
    extra = [str(REPO_ROOT), str(REPO_ROOT / "tests")]
    env["PYTHONPATH"] = os.pathsep.join(extra + [env.get("PYTHONPATH", "")])
    script = str(REPO_ROOT / "tools" / "generate_sync.py")
    run = functools.partial(
        subprocess.run, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert run([sys.executable, script, *_cli_args(output)]).returncode == 0
    assert output.read_text(encoding="utf-8") == source
    assert run([sys.executable, script, *_cli_args(output), "--check"]).returncode == 0
    output.write_text(source + "# edited\n", encoding="utf-8")
    stale = run([sys.executable, script, *_cli_args(output), "--check"])
    assert stale.returncode == 1 and "-# edited" in stale.stdout


# -- errors -------------------------------------------------------------------------

BAD_MODULE = '''
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from decimal import Decimal


class AsyncHidden:
    async def value(self) -> Decimal:
        return 0


class Plain:
    pass


class AsyncSet:
    async def items(self) -> set[AsyncSet]:
        return set()


class AsyncClash:
    async def go(self, _loop: int) -> None:
        pass
'''


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (["AsyncHidden"], "resolvable at runtime"),
        (["Plain"], "must be named Async"),
        (["AsyncMissing"], "is not a class"),
        (["AsyncSet"], "don't know how to convert"),
        (["AsyncClash"], "clashes"),
    ],
)
def test_generation_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, classes: list[str], message: str
) -> None:
    (tmp_path / "bad_toy_aio.py").write_text(BAD_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "bad_toy_aio", raising=False)
    with pytest.raises(gen.GenerationError, match=message):
        gen.generate("bad_toy_aio", classes, [])


def test_real_core_generates() -> None:
    """Smoke test against lucidlink.aio as it currently stands (classes that exist)."""
    try:
        aio = importlib.import_module("lucidlink.aio")
    except ImportError as exc:  # the core is written in parallel
        pytest.skip(f"lucidlink.aio not importable: {exc}")
    classes = [name for name in gen.DEFAULT_CLASSES if hasattr(aio, name)]
    functions = [name for name in gen.DEFAULT_FUNCTIONS if hasattr(aio, name)]
    if not classes:
        pytest.skip("no async classes yet")
    text = gen.generate("lucidlink.aio", classes, functions)
    compile(text, "generated", "exec")
