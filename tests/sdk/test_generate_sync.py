"""Tests of tools/generate_sync.py: generate the blocking facade of a toy async module."""

from __future__ import annotations

import collections.abc
import importlib
import importlib.util
import inspect
import io
import sys
import threading
import typing
from pathlib import Path
from typing import Any

import pytest

from lucidlink._fileio import RawFile

REPO_ROOT = Path(__file__).resolve().parents[2]
TOY = "tests.support.toy_aio"
LOOP_THREAD = "lucidlink-loop"

toy: Any = importlib.import_module(TOY)


def _import_file(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


gen: Any = _import_file(REPO_ROOT / "tools" / "generate_sync.py", "generate_sync")


def _spec(output: Path, **changes: Any) -> Any:
    spec = gen.Spec(
        module=TOY,
        names={"AsyncThing": "Thing", "AsyncChild": "Child", "make_child": "make_child"},
        output=output,
        bases={"AsyncThing": f"{TOY}.ThingFacade"},
        constructible=frozenset({"AsyncThing"}),
    )
    return gen.dataclasses.replace(spec, **changes)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> str:
    text, unused = gen.generate(_spec(tmp_path_factory.mktemp("generated") / "toy_sync.py"))
    assert unused == []
    return str(text)


@pytest.fixture(scope="module")
def sync(source: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("generated") / "toy_sync.py"
    path.write_text(source, encoding="utf-8")
    return _import_file(path, "toy_sync_generated")


@pytest.fixture
def thing(sync: Any, tmp_path: Path) -> Any:
    return sync.Thing(str(tmp_path), label="toy")


# -- the shapes, as text and as behaviour ---------------------------------------------


def test_module_head_and_order(source: str, sync: Any) -> None:
    assert (
        source.splitlines()[0] == f"# Generated from {TOY} by tools/generate_sync.py: do not edit."
    )
    assert sync.__all__ == ["Thing", "Child", "make_child"]
    positions = [source.index(f"def {name}(") for name in ("size", "children", "add", "walk")]
    assert positions == sorted(positions)  # the async class's definition order
    assert "class Thing(ThingFacade):" in source and "class Child(_facade.Facade):" in source


@pytest.mark.parametrize(
    "line",
    [
        "super().__init__(_aio.AsyncThing(root, label=label))",  # constructible
        "return Child(_loop.run(self._async.add(name, count, tag=tag)))",  # -> a mirrored class
        "return _facade.wrap_each(Child, self._async.children)",  # -> list of one
        "return _loop.run(self._async.names())",  # -> a plain type
        "return Child(_loop.run(lambda: self._async.connect(name)))",  # AwaitableContext
        "return _facade.iterate(self._async.walk(limit), Child)",  # async generator
        "return self._async.describe(verbose)",  # plain method: the calling thread
        "return Child(_loop.call(_aio.make_child, name))",  # plain function: the loop
        "_loop.run(self._async.__aenter__())\n        return self",  # __aenter__ gives self
        "return _loop.run(self._async.__aexit__(exc_type, exc, tb))",
    ],
)
def test_each_shape_is_generated(source: str, line: str) -> None:
    assert line in source


def test_constructor_and_context_manager(sync: Any, thing: Any, tmp_path: Path) -> None:
    assert type(thing._async) is toy.AsyncThing and thing._async.root == str(tmp_path)
    with thing as entered:
        assert entered is thing
    with pytest.raises(ZeroDivisionError), thing:
        raise ZeroDivisionError
    assert thing._async.events == ["enter", "exit:None", "enter", "exit:ZeroDivisionError"]
    with pytest.raises(TypeError, match="wraps an existing AsyncChild, not str"):
        sync.Child("not a child")


def test_calls_run_on_the_loop_and_wrap_results(sync: Any, thing: Any) -> None:
    a = thing.add("a", 2, tag="t")
    assert type(a) is sync.Child and a.name == "a" and a.where() == LOOP_THREAD
    assert thing._async.events[-1] == f"add:a:2:t:{LOOP_THREAD}"
    thing.add("b")
    assert thing.names() == ["a", "b"] and thing.size == 2
    assert [(type(c), c.name) for c in thing.children] == [(sync.Child, "a"), (sync.Child, "b")]
    assert thing.children[0] == a and hash(thing.children[0]) == hash(a) and a != thing
    connected = thing.connect("conn")
    assert type(connected) is sync.Child
    assert thing._async.events[-1] == f"connect:conn:{LOOP_THREAD}"
    with connected as child:
        assert child is connected and child._async.entered == 1
    assert connected._async.closed
    assert thing.describe(verbose=True) == f"toy:2:True:{threading.current_thread().name}"
    child = sync.make_child("solo")
    assert type(child) is sync.Child and child.name == "solo"
    assert thing.echo("x", toy.Color.BLUE, extra={"k": 1}) == "x|BLUE|['k']"
    error = KeyError("k")
    with pytest.raises(KeyError) as info:
        thing.fail(error)
    assert info.value is error  # exceptions pass through as the same object


def test_the_blocking_iterator(sync: Any, thing: Any) -> None:
    for name in "abc":
        thing.add(name)
    walked = thing.walk(limit=5)
    assert isinstance(walked, collections.abc.Iterator)
    assert [(type(c), c.name) for c in walked] == [(sync.Child, n) for n in "abc"]
    early = thing.walk()
    assert next(early).name == "a"
    early.close()  # closes the async generator on the loop (aclose)
    assert list(early) == []


def test_repr_shows_the_blocking_names(thing: Any) -> None:
    assert repr(thing) == "<Thing label='toy' first=Child>"
    assert repr(thing.add("n")) == "Child(name='n')"


def test_a_base_method_replaces_the_generated_one(
    sync: Any, thing: Any, source: str, tmp_path: Path
) -> None:
    assert "def open(" not in source and sync.Thing.open is toy.ThingFacade.open
    with thing.open("t.txt", "w", encoding="latin-1") as f:
        assert isinstance(f, io.TextIOWrapper)
        f.write("héllo\n")
    assert thing._async.events[-1] == f"open:t.txt:wb:False:{LOOP_THREAD}"
    assert (tmp_path / "t.txt").read_bytes() == "héllo\n".encode("latin-1")
    with thing.open("t.txt", "rb", 0, exclusive=True) as f:
        assert isinstance(f, RawFile) and f.read(2) == b"h\xe9"
    assert thing._async.events[-1] == f"open:t.txt:rb:True:{LOOP_THREAD}"


# -- signatures and docstrings --------------------------------------------------------


def _blocking_type(tp: Any, sync: Any) -> Any:
    mirrored = {toy.AsyncThing: sync.Thing, toy.AsyncChild: sync.Child}
    if tp in mirrored:
        return mirrored[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is toy.AwaitableContext:
        return _blocking_type(args[0], sync)
    if origin is collections.abc.AsyncIterator:
        return collections.abc.Iterator[_blocking_type(args[0], sync)]
    if origin is list:
        return list[_blocking_type(args[0], sync)]  # type: ignore[misc]
    return tp


@pytest.mark.parametrize("name", ["AsyncThing", "AsyncChild"])
def test_signatures_and_annotations_match(sync: Any, name: str) -> None:
    async_cls = getattr(toy, name)
    sync_cls = getattr(sync, name.removeprefix("Async"))
    for member, raw in vars(async_cls).items():
        if member.startswith("_") or member == "open":
            continue
        if isinstance(raw, property):
            hint = typing.get_type_hints(raw.fget)["return"]
            blocking = typing.get_type_hints(getattr(sync_cls, member).fget)["return"]
            assert blocking == _blocking_type(hint, sync), member
            continue
        async_params = list(inspect.signature(raw).parameters.values())
        sync_params = list(inspect.signature(getattr(sync_cls, member)).parameters.values())
        assert [(p.name, p.kind, p.default) for p in sync_params] == [
            (p.name, p.kind, p.default) for p in async_params
        ], member
        expected = {k: _blocking_type(v, sync) for k, v in typing.get_type_hints(raw).items()}
        assert typing.get_type_hints(getattr(sync_cls, member)) == expected, member
    assert typing.get_type_hints(sync_cls.__enter__)["return"] is sync_cls


@pytest.mark.parametrize(
    ("member", "doc"),
    [
        ("", "A thing holding Child objects: ``with Thing(root) as thing``."),
        ("add", "Add a child called ``name``: ``child = thing.add(name)``."),
        ("connect", "Connect a child: ``thing.connect(name)``, or ``with`` it."),
        ("walk", "Yield up to ``limit`` children: ``for child in thing.walk()``."),
        ("__enter__", "Blocking version of ``AsyncThing.__aenter__``."),
        ("__init__", "Make a thing under ``root``."),
    ],
)
def test_docstrings_are_rewritten_for_the_blocking_face(sync: Any, member: str, doc: str) -> None:
    obj = getattr(sync.Thing, member) if member else sync.Thing
    assert inspect.getdoc(obj).split("\n")[0] == doc  # type: ignore[union-attr]


def test_docstring_articles_literals_and_backslashes(sync: Any) -> None:
    assert inspect.getdoc(sync.Child) == "A child object. Child instances come from a Thing."
    assert "a ``literal`` and a backslash \\ in it." in inspect.getdoc(sync.Thing)  # type: ignore[operator]
    assert (
        inspect.getdoc(sync.make_child) == "Create a Child (plain factory, run on the loop thread)."
    )


# -- refusals -------------------------------------------------------------------------

BAD_MODULE = '''
from __future__ import annotations

from typing import TYPE_CHECKING

from lucidlink._facade import Facade

if TYPE_CHECKING:
    from decimal import Decimal


class AsyncOther:
    pass


class AsyncBad:
    async def as_set(self) -> set[AsyncBad]: ...
    async def as_dict(self) -> dict[str, AsyncBad]: ...
    async def as_optional(self) -> AsyncBad | None: ...
    async def unmapped(self) -> AsyncOther: ...
    async def hidden(self) -> Decimal: ...
    async def star(self, *names: str) -> None: ...
    async def takes(self, other: AsyncBad) -> None: ...
    @classmethod
    def build(cls) -> None: ...


class AsyncGood:
    async def ping(self) -> None:
        """Ping."""


class GoodFacade(Facade):
    """A base overriding what AsyncGood lacks."""

    def pong(self) -> None:
        """Pong."""
'''


@pytest.fixture
def bad(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "bad_toy_aio.py").write_text(BAD_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "bad_toy_aio", raising=False)
    return "bad_toy_aio"


@pytest.mark.parametrize(
    ("method", "message"),
    [
        (
            "as_set",
            r"as_set: no converter for a returned set\[.*AsyncBad\]; add one to "
            r"lucidlink/_facade.py and its shape to _Generator.returned",
        ),
        ("as_dict", "as_dict: no converter for a returned dict"),
        ("as_optional", "as_optional: no converter for a returned"),
        ("unmapped", "unmapped: no converter for a returned <class 'bad_toy_aio.AsyncOther'>"),
        ("hidden", "annotations must resolve at runtime"),
        ("star", "cannot forward a VAR_POSITIONAL parameter"),
        ("takes", "parameter other takes an async type"),
        ("build", "AsyncBad.build: cannot mirror a classmethod"),
    ],
)
def test_an_unknown_shape_is_refused_clearly(
    bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str, message: str
) -> None:
    module = importlib.import_module(bad)
    for other in set(vars(module.AsyncBad)) - {method} - set(vars(object)):
        if not other.startswith("__"):
            monkeypatch.delattr(module.AsyncBad, other)
    spec = gen.Spec(module=bad, names={"AsyncBad": "Bad"}, output=tmp_path / "out.py")
    with pytest.raises(gen.GenerationError, match=message):
        gen.generate(spec)


# -- the command line -----------------------------------------------------------------


def test_check_fails_on_stale_and_missing_output(
    tmp_path: Path, source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path / "out.py")
    assert gen.main(["--check"], spec) == 1  # missing
    assert gen.main([], spec) == 0
    assert spec.output.read_text(encoding="utf-8") == source
    assert gen.main(["--check"], spec) == 0
    capsys.readouterr()
    spec.output.write_text(source.replace("Add a child", "Add one child"), encoding="utf-8")
    assert gen.main(["--check"], spec) == 1
    out = capsys.readouterr()
    assert '-        """Add one child' in out.out and '+        """Add a child' in out.out
    assert "is stale; run tools/generate_sync.py" in out.err


def test_check_fails_on_unused_map_entries(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = gen.Spec(
        module=bad,
        names={"AsyncGood": "Good", "AsyncGone": "Gone"},
        output=tmp_path / "out.py",
        bases={"AsyncGood": f"{bad}.GoodFacade"},
        constructible=frozenset({"AsyncAlsoGone"}),
    )
    assert gen.main([], spec) == 1  # written, but the map is wrong
    capsys.readouterr()
    assert gen.main(["--check"], spec) == 1
    err = capsys.readouterr().err
    assert "unused entry names['AsyncGone']: bad_toy_aio has no AsyncGone" in err
    assert "unused entry constructible['AsyncAlsoGone']" in err
    assert "unused entry bad_toy_aio.GoodFacade.pong: AsyncGood has no pong" in err
    assert "stale" not in err
    fixed = gen.dataclasses.replace(spec, names={"AsyncGood": "Good"}, constructible=frozenset())
    assert gen.main(["--check"], gen.dataclasses.replace(fixed, bases={})) == 1  # stale now
    assert gen.main([], gen.dataclasses.replace(fixed, bases={})) == 0


def test_the_real_core_generates() -> None:
    texts = []
    for spec in gen.SPECS:
        text, unused = gen.generate(gen.dataclasses.replace(spec, output=REPO_ROOT / "x.py"))
        assert unused == []
        compile(text, "generated", "exec")
        texts.append(text)
    fs_module, core_module = texts
    assert "class Filesystem(FilesystemFacade):" in fs_module
    # A class mirrored by the other module is imported from it, not mirrored twice.
    assert "from lucidlink._generated_fs import Connect, Filesystem" in core_module
    assert "class Filesystem(" not in core_module
