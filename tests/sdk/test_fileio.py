"""Blocking file objects (lucidlink._fileio) compared with the builtin open on local files."""

from __future__ import annotations

import asyncio
import io
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lucidlink import _fileio
from lucidlink._fileio import (
    BINARY_MODES,
    AsyncFileLike,
    HandoffBufferedWriter,
    RawFile,
    open_blocking,
    unchangeable,
)

MODES = ["r", "rb", "w", "wb", "a", "ab", "x", "xb", "r+", "r+b", "w+", "w+b", "a+", "a+b"]
MODES += ["rt", "wt", "x+", "x+b", "+r", "br", "tw+"]
INITIAL = "héllo\nwörld\r\nthird\rfourth\n€nd".encode()


class FakeAsyncFile:
    """An AsyncFileLike over a local io.FileIO; checks it is driven from the loop thread."""

    def __init__(self, path: str, mode: str) -> None:
        assert mode in BINARY_MODES, mode
        self._raw = io.FileIO(path, mode.replace("b", ""))
        self.name = path
        self.mode = mode
        self.close_calls = 0
        self.flush_calls = 0

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def readable(self) -> bool:
        return self._raw.readable()

    def writable(self) -> bool:
        return self._raw.writable()

    def seekable(self) -> bool:
        return self._raw.seekable()

    def tell(self) -> int:
        return self._raw.tell()

    @staticmethod
    async def _on_loop() -> None:
        assert threading.current_thread().name == "lucidlink-loop"
        await asyncio.sleep(0)

    async def read(self, size: int = -1) -> bytes:
        await self._on_loop()
        return self._raw.read(size) or b""

    async def readinto(self, buf: Any) -> int:
        await self._on_loop()
        return self._raw.readinto(buf) or 0

    async def write(self, data: bytes | memoryview) -> int:
        await self._on_loop()
        # Never a view of a buffer its owner may change (RawFile copies those).
        assert unchangeable(data) is not None
        return self._raw.write(data) or 0

    async def seek(self, offset: int, whence: int = 0) -> int:
        await self._on_loop()
        return self._raw.seek(offset, whence)

    async def truncate(self, size: int | None = None) -> int:
        await self._on_loop()
        return self._raw.truncate(size)

    async def flush(self) -> None:
        await self._on_loop()
        self.flush_calls += 1

    async def close(self) -> None:
        await self._on_loop()
        self.close_calls += 1
        self._raw.close()


class Twins:
    """A pair of local files: one opened through open_blocking, one with the builtin open."""

    def __init__(self, root: Path, initial: bytes | None = INITIAL) -> None:
        self.ours = root / "ours.bin"
        self.ref = root / "ref.bin"
        for path in (self.ours, self.ref):
            if path.exists():
                path.unlink()
            if initial is not None:
                path.write_bytes(initial)
        self.opened: list[FakeAsyncFile] = []
        self.modes: list[str] = []

    async def opener(self, binary_mode: str) -> FakeAsyncFile:
        self.modes.append(binary_mode)
        afile = FakeAsyncFile(str(self.ours), binary_mode)
        self.opened.append(afile)
        return afile

    def open(self, mode: str, **kwargs: Any) -> tuple[Any, Any]:
        """Open both twins; each side is the file object or the exception raised."""
        return (
            outcome(lambda: open_blocking(self.opener, mode, **kwargs)),
            outcome(lambda: open(self.ref, mode, **kwargs)),
        )

    def contents(self) -> tuple[bytes | None, bytes | None]:
        ours, ref = (p.read_bytes() if p.exists() else None for p in (self.ours, self.ref))
        return ours, ref


def outcome(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # compared by type
        return exc


def same(ours: Any, ref: Any) -> None:
    if isinstance(ref, BaseException) or isinstance(ours, BaseException):
        assert type(ours) is type(ref), (ours, ref)
    else:
        assert ours == ref


def apply(files: tuple[Any, Any], op: str, *args: Any) -> Any:
    """Apply one operation to both files and check they agree; return the ref result."""
    results = [outcome(lambda f=f: getattr(f, op)(*args)) for f in files]
    if op in ("__next__",) and all(isinstance(r, StopIteration) for r in results):
        return None
    same(*results)
    return results[1]


def close_both(files: tuple[Any, Any]) -> None:
    for f in files:
        if not isinstance(f, BaseException):
            f.close()


@pytest.fixture
def twins(tmp_path: Path) -> Twins:
    return Twins(tmp_path)


def text_mode(mode: str) -> bool:
    return "b" not in mode


# -- opening ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("buffering", [-1, 0, 1, 7, 8192])
def test_types_modes_and_names_match_builtin(tmp_path: Path, mode: str, buffering: int) -> None:
    twins = Twins(tmp_path, None if "x" in mode else INITIAL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours, ref = twins.open(mode, buffering=buffering)
    if isinstance(ref, BaseException):
        assert type(ours) is type(ref)
        assert str(ours) == str(ref)
        return
    try:
        expected_type = RawFile if isinstance(ref, io.FileIO) else type(ref)
        if expected_type is io.BufferedWriter:
            expected_type = HandoffBufferedWriter  # an io.BufferedWriter
        assert type(ours) is expected_type
        assert ours.mode == ref.mode
        assert ours.name == str(twins.ours)
        assert ours.readable() == ref.readable()
        assert ours.writable() == ref.writable()
        assert ours.seekable() == ref.seekable()
        assert ours.tell() == ref.tell()
        assert not ours.isatty()
        if text_mode(mode):
            assert ours.encoding == "utf-8"
            assert ours.line_buffering == (buffering == 1)
            assert ours.buffer.mode == ref.buffer.mode
        if buffering not in (0, 1, -1):
            buffer = ours.buffer if text_mode(mode) else ours
            assert buffer.raw is not None
        with pytest.raises(io.UnsupportedOperation):
            ours.fileno()
    finally:
        close_both((ours, ref))
    assert twins.contents()[0] == twins.contents()[1]
    assert [str(w.category) for w in caught if w.category is RuntimeWarning] == (
        ["<class 'RuntimeWarning'>"] * 2 if buffering == 1 and not text_mode(mode) else []
    )


def test_default_buffer_size_is_large(twins: Twins) -> None:
    f = open_blocking(twins.opener, "rb")
    try:
        assert isinstance(f, io.BufferedReader)
        data = f.read(1)
        assert data == INITIAL[:1]
        # One raw read filled the whole (1 MiB) buffer: the rest comes from memory.
        assert twins.opened[0].tell() == len(INITIAL)
    finally:
        f.close()
    assert _fileio.DEFAULT_BUFFER_SIZE == 1 << 20


@pytest.mark.parametrize(
    ("mode", "kwargs"),
    [
        ("rw", {}),
        ("rr", {}),
        ("r++", {}),
        ("U", {}),
        ("rU", {}),
        ("rtb", {}),
        ("", {}),
        ("+", {}),
        ("z", {}),
        ("wax", {}),
        ("rb", {"encoding": "utf-8"}),
        ("rb", {"errors": "strict"}),
        ("rb", {"newline": "\n"}),
        ("b", {"encoding": "utf-8"}),
        (1, {}),
        ("r", {"buffering": "1"}),
        ("r", {"buffering": 1.5}),
        ("r", {"encoding": 1}),
        ("r", {"errors": b"x"}),
        ("r", {"newline": 0}),
    ],
)
def test_invalid_arguments_raise_like_builtin(
    twins: Twins, mode: Any, kwargs: dict[str, Any]
) -> None:
    ours, ref = twins.open(mode, **kwargs)
    assert isinstance(ref, (ValueError, TypeError)), ref
    assert type(ours) is type(ref)
    assert str(ours) == str(ref)
    assert twins.modes == []  # validated before opening anything


@pytest.mark.parametrize("mode", ["r", "w", "a", "r+", "w+", "x"])
def test_unbuffered_text_is_refused_before_opening(tmp_path: Path, mode: str) -> None:
    twins = Twins(tmp_path, None if "x" in mode else INITIAL)
    ours, ref = twins.open(mode, buffering=0)
    assert type(ours) is type(ref) is ValueError
    assert str(ours) == str(ref) == "can't have unbuffered text I/O"
    assert twins.modes == []


@pytest.mark.parametrize(("mode", "kwargs"), [("r", {"encoding": "nope"}), ("r", {"newline": "x"})])
def test_wrapping_failure_closes_the_raw_file(
    twins: Twins, mode: str, kwargs: dict[str, Any]
) -> None:
    ours, ref = twins.open(mode, **kwargs)
    assert isinstance(ref, (LookupError, ValueError))
    assert type(ours) is type(ref)
    assert len(twins.opened) == 1 and twins.opened[0].closed


def test_opener_exceptions_propagate(tmp_path: Path) -> None:
    twins = Twins(tmp_path)
    for mode in ("x", "xb", "x+"):
        ours, ref = twins.open(mode)
        assert type(ours) is type(ref) is FileExistsError
    twins = Twins(tmp_path, None)
    for mode in ("r", "rb", "r+"):
        ours, ref = twins.open(mode)
        assert type(ours) is type(ref) is FileNotFoundError


@pytest.mark.parametrize(
    ("mode", "binary_mode"),
    [
        ("r", "rb"), ("rt", "rb"), ("rb", "rb"), ("w", "wb"), ("wb", "wb"), ("a", "ab"),
        ("ab", "ab"), ("x", "xb"), ("xb", "xb"), ("r+", "r+b"), ("+rb", "r+b"), ("w+", "w+b"),
        ("a+", "a+b"), ("x+", "x+b"), ("bx+", "x+b"),
    ],
)
def test_opener_gets_binary_mode(tmp_path: Path, mode: str, binary_mode: str) -> None:
    twins = Twins(tmp_path, None if "x" in mode else INITIAL)
    open_blocking(twins.opener, mode).close()
    assert twins.modes == [binary_mode]


def test_opener_may_return_a_file_directly(twins: Twins) -> None:
    f = open_blocking(lambda m: FakeAsyncFile(str(twins.ours), m), "rb")
    with f:
        assert f.read() == INITIAL


def test_raw_file_protocol_and_close_once(twins: Twins) -> None:
    afile = FakeAsyncFile(str(twins.ours), "r+b")
    assert isinstance(afile, AsyncFileLike)
    raw = RawFile(afile)
    assert raw.async_file is afile
    assert repr(raw) == f"<RawFile name={str(twins.ours)!r} mode='rb+'>"
    assert raw.read(5) == INITIAL[:5]
    buf = bytearray(4)
    assert raw.readinto(buf) == 4 and bytes(buf) == INITIAL[5:9]
    assert raw.readall() == INITIAL[9:]
    assert raw.seek(-3, io.SEEK_END) == len(INITIAL) - 3
    with pytest.raises(ValueError):
        raw.seek(0, 7)
    assert raw.write(memoryview(b"XYZ")) == 3
    assert raw.truncate(4) == 4
    raw.flush()
    assert afile.flush_calls == 1
    raw.close()
    raw.close()
    assert afile.close_calls == 1 and raw.closed
    assert repr(raw) == "<RawFile [closed]>"
    for call in (raw.read, raw.tell, raw.readable, raw.flush, lambda: raw.write(b"x")):
        with pytest.raises(ValueError):
            call()
    assert twins.ours.read_bytes() == INITIAL[:4]


def test_buffered_close_flushes_and_closes_once(twins: Twins) -> None:
    f = open_blocking(twins.opener, "w")
    f.write("data")
    f.close()
    f.close()
    assert twins.opened[0].close_calls == 1
    assert twins.ours.read_bytes() == b"data"


def test_line_buffering_writes_each_line(twins: Twins) -> None:
    with open_blocking(twins.opener, "w", buffering=1) as f:
        f.write("one\ntw")
        assert twins.ours.read_bytes() == b"one\ntw"  # the newline flushed everything
        f.write("o")
        assert twins.ours.read_bytes() == b"one\ntw"


# -- scripted sequences ---------------------------------------------------------------


def script_binary() -> list[tuple[Any, ...]]:
    return [
        ("read", 3), ("tell",), ("read", 0),
        ("write", b"AB"), ("tell",), ("seek", 0), ("read",), ("seek", -4, 2), ("read", 10),
        ("seek", 2, 1), ("tell",), ("write", b"\x00\xff"), ("seek", 0), ("readline",),
        ("readlines",), ("seek", 1), ("truncate",), ("tell",), ("seek", 0, 2), ("tell",),
        ("truncate", 30), ("seek", 0), ("read",), ("write", b"end\n"), ("flush",),
        ("seek", -1, 1), ("read1", 5), ("seek", 100), ("read",), ("write", b"z"),
        ("seek", 0), ("readinto", 7),
    ]


def script_text() -> list[tuple[Any, ...]]:
    return [
        ("read", 3), ("tell",), ("readline",), ("write", "ÅÄÖ\n"), ("tell",), ("seek", 0),
        ("readline",), ("__next__",), ("read", 4), ("seek", 0, 2), ("tell",),
        ("write", "line\r\nnext\rlast\n"), ("seek", 0), ("read",), ("seek", 0),
        ("readlines",), ("seek", 0, 1), ("seek", 3, 1), ("seek", 0), ("truncate",),
        ("seek", 0, 2), ("write", "é€"), ("flush",), ("seek", 0), ("read", 2), ("tell",),
        ("truncate", 5), ("seek", 0), ("read",), ("write", "x\n"), ("seek", -1, 2),
    ]


def run_script(files: tuple[Any, Any], script: list[tuple[Any, ...]]) -> None:
    for op, *args in script:
        if op == "readinto":
            bufs = [bytearray(args[0]), bytearray(args[0])]
            results = [outcome(lambda f=f, b=b: f.readinto(b)) for f, b in zip(files, bufs)]
            same(*results)
            assert bufs[0] == bufs[1]
            continue
        apply(files, op, *args)


@pytest.mark.parametrize("mode", [m for m in MODES if "b" in m])
@pytest.mark.parametrize("buffering", [-1, 0, 5, 4096])
def test_binary_script_matches_builtin(tmp_path: Path, mode: str, buffering: int) -> None:
    twins = Twins(tmp_path, None if "x" in mode else INITIAL)
    ours, ref = twins.open(mode, buffering=buffering)
    assert not isinstance(ref, BaseException)
    files = (ours, ref)
    try:
        run_script(files, script_binary())
    finally:
        close_both(files)
    assert twins.contents()[0] == twins.contents()[1]


@pytest.mark.parametrize("mode", [m for m in MODES if "b" not in m])
@pytest.mark.parametrize("encoding", ["utf-8", "latin-1", "utf-16"])
@pytest.mark.parametrize("newline", [None, "", "\n", "\r", "\r\n"])
def test_text_script_matches_builtin(
    tmp_path: Path, mode: str, encoding: str, newline: str | None
) -> None:
    initial = INITIAL.decode().encode(encoding, "replace")
    twins = Twins(tmp_path, None if "x" in mode else initial)
    ours, ref = twins.open(mode, encoding=encoding, errors="replace", newline=newline)
    assert not isinstance(ref, BaseException)
    files = (ours, ref)
    try:
        assert ours.mode == ref.mode == mode
        run_script(files, script_text())
        if ref.readable():
            apply(files, "seek", 0)
            assert list(ours) == list(ref)
    finally:
        close_both(files)
    assert twins.contents()[0] == twins.contents()[1]


def test_iteration_and_context_manager(twins: Twins) -> None:
    with open_blocking(twins.opener, "r", newline="") as f, open(twins.ref, newline="") as g:
        assert list(f) == list(g)
    assert f.closed and twins.opened[0].closed


def test_read_on_write_only_raises_unsupported(tmp_path: Path) -> None:
    twins = Twins(tmp_path)
    for mode in ("w", "wb", "a", "ab"):
        for buffering in ((-1, 0) if "b" in mode else (-1,)):
            ours, ref = twins.open(mode, buffering=buffering)
            try:
                for op in ("read", "readline"):
                    results = [outcome(getattr(f, op)) for f in (ours, ref)]
                    assert type(results[0]) is type(results[1]) is io.UnsupportedOperation
            finally:
                close_both((ours, ref))
    ours, ref = twins.open("rb", buffering=0)
    try:
        for op in (lambda f: f.write(b"x"), lambda f: f.truncate(0)):
            results = [outcome(lambda f=f: op(f)) for f in (ours, ref)]
            assert type(results[0]) is type(results[1]) is io.UnsupportedOperation
    finally:
        close_both((ours, ref))


# -- random operation sequences ---------------------------------------------------------

_text_chars = st.sampled_from(list("ab\n\r€é \t"))
_text = st.text(_text_chars, max_size=12)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, dict[str, Any], list[tuple[Any, ...]]]:
    mode = draw(st.sampled_from([m for m in MODES if "x" not in m]))
    binary = "b" in mode
    kwargs: dict[str, Any] = {}
    choices = [-1, 1, 3, 16, 4096] + ([0] if binary else [])
    kwargs["buffering"] = draw(st.sampled_from(choices))
    if not binary:
        kwargs["encoding"] = draw(st.sampled_from(["utf-8", "latin-1", "utf-16"]))
        kwargs["errors"] = "replace"
        kwargs["newline"] = draw(st.sampled_from([None, "", "\n", "\r", "\r\n"]))
    data = st.binary(max_size=12) if binary else _text
    offsets = st.integers(0, 40) if not binary else st.integers(-5, 40)
    op = st.one_of(
        st.tuples(st.just("write"), data),
        st.tuples(st.just("read"), st.integers(-1, 20)),
        st.tuples(st.just("readline")),
        st.tuples(st.just("readlines")),
        st.tuples(st.just("tell")),
        st.tuples(st.just("flush")),
        st.tuples(st.just("seek"), offsets, st.sampled_from([0, 1, 2])),
        st.tuples(st.just("truncate"), st.one_of(st.none(), st.integers(0, 30))),
    )
    return mode, kwargs, draw(st.lists(op, max_size=25))


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios(), initial=st.binary(max_size=20))
def test_random_sequences_match_builtin(
    scenario: tuple[str, dict[str, Any], list[tuple[Any, ...]]], initial: bytes
) -> None:
    mode, kwargs, ops = scenario
    with tempfile.TemporaryDirectory() as root:
        twins = Twins(Path(root), initial)
        if kwargs["buffering"] == -1:
            # Same buffer size on both sides so partial-buffer effects line up.
            ours = outcome(lambda: open_blocking(twins.opener, mode, **kwargs))
            ref_kwargs = {**kwargs, "buffering": _fileio.DEFAULT_BUFFER_SIZE}
            ref = outcome(lambda: open(twins.ref, mode, **ref_kwargs))
        else:
            ours, ref = twins.open(mode, **kwargs)
        if isinstance(ref, BaseException) or isinstance(ours, BaseException):
            assert type(ours) is type(ref)
            return
        assert (type(ours) is type(ref) or isinstance(ref, io.FileIO)
                or (type(ref) is io.BufferedWriter and type(ours) is HandoffBufferedWriter))
        files = (ours, ref)
        try:
            for op, *args in ops:
                if op == "seek" and "b" not in mode and args[1] != 0:
                    args[0] = 0 if args[0] % 2 else args[0]  # mostly legal text seeks
                apply(files, op, *args)
        finally:
            close_both(files)
        assert twins.contents()[0] == twins.contents()[1]


# -- large writes of bytes no one can change ---------------------------------------------


class RecordingRaw(io.RawIOBase):
    """A raw file that keeps what each write handed it (the object itself)."""

    def __init__(self) -> None:
        self.got: list[Any] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.got.append(data)
        return len(memoryview(data).cast("B"))


def test_unchangeable_bytes_are_kept_and_anything_writable_is_not() -> None:
    data = bytes(range(256))
    assert unchangeable(data) is data
    view = unchangeable(memoryview(data)[3:40])
    assert view is not None and view.obj is data and bytes(view) == data[3:40]
    assert unchangeable(memoryview(data).cast("I")) is not None
    assert unchangeable(bytearray(data)) is None
    assert unchangeable(memoryview(bytearray(data))) is None
    assert unchangeable(memoryview(data)[::2]) is None  # not contiguous


def test_a_large_bytes_write_reaches_the_raw_file_as_it_is() -> None:
    raw = RecordingRaw()
    writer = HandoffBufferedWriter(raw, 8)
    big, small, mutable = b"0123456789", b"ab", bytearray(b"mutable-buffer")
    assert writer.write(b"12345678") == 8  # exactly the buffer size: buffered, as io does
    writer.flush()
    raw.got.clear()
    assert writer.write(small) == 2
    assert writer.write(big) == 10
    assert writer.write(mutable) == len(mutable)
    mutable[:] = b"X" * len(mutable)  # the writer's owner reuses its buffer
    writer.flush()
    assert raw.got[0] == small  # flushed first, in order
    assert raw.got[1] is big
    assert bytes(raw.got[2]) == b"mutable-buffer" or raw.got[2].obj is not mutable
    assert b"".join(bytes(g) for g in raw.got[:2]) == small + big


def test_large_and_small_writes_of_every_kind_land_in_order(twins: Twins) -> None:
    pieces: list[Any] = [b"head", bytes(range(200)) * 50, bytearray(b"ba" * 3000),
                         memoryview(bytes(range(256)) * 40)[7:9000], b"x", memoryview(b"tail")]
    expected = b"".join(bytes(p) for p in pieces)
    ours, ref = twins.open("wb", buffering=4096)
    try:
        for piece in pieces:
            assert ours.write(piece) == ref.write(piece)
            assert ours.tell() == ref.tell()
    finally:
        close_both((ours, ref))
    assert twins.contents() == (expected, expected)
