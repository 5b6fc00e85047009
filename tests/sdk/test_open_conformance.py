"""Files opened through the blocking API behave like the builtin ``open``.

Every mode, buffering and text setting, scripted and random operation sequences: the
same bytes, positions and exceptions as the builtin on a local file.
"""

from __future__ import annotations

import io
import os
import reprlib
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lucidlink
import lucidlink.aio
from lucidlink._fileio import DEFAULT_BUFFER_SIZE, RawFile
from tests.sdk.conftest import unique
from tests.support.sdkfixtures import SMALL_BLOCK

B = SMALL_BLOCK
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 160


# -- a filespace directory and a local one, side by side ------------------------------


@pytest.fixture
def where(mspace: lucidlink.Filespace, tmp_path: Path) -> Twins:
    """A fresh directory in the filespace and a fresh local one, side by side."""
    remote = "/" + unique("case")
    mspace.fs.create_dir(remote)
    local = tmp_path / "local"
    local.mkdir()
    return Twins(mspace.fs, remote, local)


@attrs.define
class Twins:
    fs: lucidlink.Filesystem
    remote: str
    local: Path

    def put(self, name: str, data: bytes | None) -> None:
        """Create ``name`` with ``data`` on both sides (``None``: make sure it is missing)."""
        if data is None:
            return
        self.fs.write_file(f"{self.remote}/{name}", data)
        (self.local / name).write_bytes(data)

    def open_both(self, name: str, mode: str, **kw: Any) -> tuple[Any, Any]:
        """``(ours, builtin)`` outcomes of opening ``name`` with the same arguments."""
        ref_kw = dict(kw)
        if "b" not in mode and ref_kw.get("encoding") is None:
            ref_kw["encoding"] = "utf-8"  # ours defaults to UTF-8 whatever the locale
        if ref_kw.get("buffering", -1) < 0:
            # Ours buffers 1 MiB by default (each raw call is a trip to the loop thread);
            # give the builtin the same size, as buffer sizes show in tell() of append modes.
            ref_kw["buffering"] = DEFAULT_BUFFER_SIZE
        ours = outcome(lambda: self.fs.open(f"{self.remote}/{name}", mode, **kw))
        ref = outcome(lambda: open(self.local / name, mode, **ref_kw))
        return ours, ref

    def contents(self, name: str) -> tuple[bytes | None, bytes | None]:
        ours = (
            self.fs.read_file(f"{self.remote}/{name}")
            if self.fs.file_exists(f"{self.remote}/{name}")
            else None
        )
        path = self.local / name
        return ours, (path.read_bytes() if path.is_file() else None)


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", fn())
    except Exception as exc:  # compared with the builtin's
        return ("err", exc)


def io_class(obj: Any) -> str:
    """The :mod:`io` class an object is (ours may subclass one: ``HandoffBufferedWriter``)."""
    return next((cls.__name__ for cls in type(obj).__mro__ if cls.__module__ in ("io", "_io")),
                type(obj).__name__)


def opened(result: tuple[str, Any]) -> tuple[str, Any]:
    """An ``open`` outcome made comparable: the class of the object, not the object."""
    return (
        ("ok", io_class(result[1]))
        if result[0] == "ok" and not isinstance(result[1], RawFile)
        else (("ok", "FileIO") if result[0] == "ok" else result)
    )


def _short(value: Any) -> str:
    return _repr.repr(value)


def assert_same(ours: tuple[str, Any], ref: tuple[str, Any], what: Any) -> None:
    """Same result, or an exception of the builtin's class (and errno)."""
    what = _short(what)
    if ref[0] == "ok":
        assert ours[0] == "ok", (
            f"{what}: ours raised {ours[1]!r}, the builtin returned {_short(ref[1])}"
        )
        if ours[1] != ref[1]:
            raise AssertionError(f"{what}: ours {_short(ours[1])} != builtin {_short(ref[1])}")
        return
    assert ours[0] == "err", (
        f"{what}: ours returned {_short(ours[1])}, the builtin raised {ref[1]!r}"
    )
    assert isinstance(ours[1], type(ref[1])), (
        f"{what}: ours raised {ours[1]!r}, the builtin {ref[1]!r}"
    )
    if isinstance(ref[1], OSError) and ref[1].errno is not None:
        assert ours[1].errno == ref[1].errno, f"{what}: errno {ours[1].errno} != {ref[1].errno}"


class Cursor:
    """Applies script steps to a file object, remembering the cookies ``tell`` gave."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.told: list[int] = []

    def step(self, op: tuple[Any, ...]) -> Any:
        name, *args = op
        f = self.f
        if name == "readinto":
            buf = bytearray(args[0])
            n = f.readinto(buf)
            return n, bytes(buf)
        if name == "iter":
            return list(f)
        if name == "tell":
            pos = f.tell()
            self.told.append(pos)
            return pos
        if name == "seek_told":
            return f.seek(self.told[args[0]]) if self.told else f.seek(0)
        if name == "attrs":
            return (f.readable(), f.writable(), f.seekable(), f.closed)
        return getattr(f, name)(*args)


def run_script(ours: Any, ref: Any, script: list[tuple[Any, ...]], *, check_tell: bool) -> None:
    a, b = Cursor(ours), Cursor(ref)
    for i, op in enumerate(script):
        assert_same(outcome(partial(a.step, op)), outcome(partial(b.step, op)), (i, op))
        if check_tell:
            assert_same(outcome(ours.tell), outcome(ref.tell), (i, op, "tell"))


def compare_script(
    tw: Twins, name: str, initial: bytes | None, mode: str, script: list[tuple[Any, ...]], **kw: Any
) -> None:
    tw.put(name, initial)
    ours, ref = tw.open_both(name, mode, **kw)
    assert_same(opened(ours), opened(ref), ("open", mode, kw))
    if ref[0] == "ok":
        with ours[1] as f, ref[1] as g:
            assert f.mode == g.mode
            run_script(f, g, script, check_tell="b" in mode)
        assert f.closed and g.closed
    got, expected = tw.contents(name)
    if got != expected:
        raise AssertionError(f"contents differ: ours {_short(got)} != builtin {_short(expected)}")


# -- open(): every mode against the builtin ------------------------------------------

ALL_MODES = [
    "r",
    "rb",
    "w",
    "wb",
    "a",
    "ab",
    "x",
    "xb",
    "r+",
    "r+b",
    "w+",
    "w+b",
    "a+",
    "a+b",
    "x+b",
    "rt",
    "wt",
]
SIZES = {"missing": None, "empty": 0, "one": 1, "block": B, "blocks": 3 * B + 5}


def _content(size: int, seed: int = 0) -> bytes:
    # ASCII lines, so text modes can read it too; distinct per position.
    line = b"".join(
        b"%06d:%s\n" % (i, b"abcdefghij"[seed % 10 :] + b"klmnop") for i in range(size // 16 + 2)
    )
    return line[:size]


def binary_script(size: int) -> list[tuple[Any, ...]]:
    big = bytes(range(256)) * ((2 * B + 3) // 256) + b"end"
    return [
        ("attrs",),
        ("read", 1),
        ("read", 10),
        ("readinto", 5),
        ("seek", B - 3),
        ("read", 7),
        ("seek", 0, 2),
        ("seek", -4, 2),
        ("read",),
        ("read", 5),
        ("seek", -(size + 10), 2),
        ("seek", 5, 1),
        ("seek", -2, 1),
        ("write", b"XYZ"),
        ("read", 2),
        ("seek", 2 * B + 10),
        ("write", b"tail"),
        ("seek", 0),
        ("read", B // 2),
        ("readline",),
        ("truncate", B + 1),
        ("read", 3),
        ("seek", 0, 2),
        ("truncate",),
        ("truncate", 3 * B + 17),
        ("seek", B),
        ("read", 100),
        ("seek", 3 * B + 10),
        ("read", 100),
        ("write", big),
        ("flush",),
        ("seek", 0),
        ("readline",),
        ("readlines",),
        ("seek", 1),
        ("read", 10),
        ("seek", 10 * B),
        ("read", 1),
        ("write", b""),
        ("truncate", 0),
        ("read",),
        ("write", b"z" * B),
        ("seek", 0),
        ("iter",),
        ("isatty",),
        ("seek", 0, 7),
    ]


@pytest.mark.parametrize("size_name", list(SIZES))
@pytest.mark.parametrize("mode", ["rb", "wb", "ab", "xb", "r+b", "w+b", "a+b", "x+b"])
def test_binary_modes_match_builtin(where: Twins, mode: str, size_name: str) -> None:
    size = SIZES[size_name]
    initial = None if size is None else _content(size)
    script = binary_script(size or 0)
    if mode.startswith(("r", "a")) and size:
        script = [("read",)] + [("seek", 0)] + script  # one whole read of the original
    compare_script(where, "f.bin", initial, mode, script)


@pytest.mark.parametrize("buffering", [0, 17, 4096, B, -1])
@pytest.mark.parametrize("mode", ["rb", "wb", "ab", "r+b", "w+b", "a+b"])
def test_buffering_matches_builtin(where: Twins, mode: str, buffering: int) -> None:
    initial = _content(2 * B + 9)
    script = binary_script(len(initial))
    if buffering < 100:  # unbuffered line reading is a read call per byte: keep it short
        script = [op for op in script if op[0] not in ("readline", "readlines", "iter")]
    if buffering == 0:  # FileIO hands whence to lseek (3, 4 are SEEK_DATA/SEEK_HOLE on Linux)
        script = [op for op in script if op != ("seek", 0, 7)]
    compare_script(where, "f.bin", initial, mode, script, buffering=buffering)


TEXT_INITIAL = "héllo\nwörld\r\nthird\rfourth\n¿nd of ünïcode ✓\n"


def text_script(extra: str) -> list[tuple[Any, ...]]:
    return [
        ("attrs",),
        ("read", 3),
        ("readline",),
        ("tell",),
        ("readline", 4),
        ("readlines",),
        ("tell",),
        ("seek", 0),
        ("read",),
        ("seek_told", 0),
        ("read", 5),
        ("seek", 0, 2),
        ("tell",),
        ("write", "ünï\r\nline2\rthree\nfour" + extra),
        ("tell",),
        ("seek", 3, 1),
        ("seek", 0, 1),
        ("seek", 0),
        ("readline",),
        ("write", "mid"),
        ("seek", 0, 2),
        ("write", "€nd\n"),
        ("flush",),
        ("seek_told", 1),
        ("read",),
        ("seek", 0),
        ("iter",),
        ("truncate", 4),
        ("seek", 0),
        ("read",),
        ("write", "x" * 70000 + "\n"),
        ("seek", 0),
        ("readlines",),
        ("tell",),
        ("seek", -1, 2),
    ]


TEXT_VARIANTS = [
    # (encoding, errors, newline, initial bytes)
    (None, None, None, TEXT_INITIAL.encode()),
    ("utf-8", None, None, TEXT_INITIAL.encode()),
    ("utf-8", "strict", "", TEXT_INITIAL.encode()),
    ("utf-8", None, "\n", TEXT_INITIAL.encode()),
    ("utf-8", None, "\r\n", TEXT_INITIAL.encode()),
    ("utf-8", None, "\r", TEXT_INITIAL.encode()),
    ("latin-1", None, None, TEXT_INITIAL.replace("✓", "!").encode("latin-1")),
    ("utf-16", None, None, TEXT_INITIAL.encode("utf-16")),
    ("utf-16", None, "", TEXT_INITIAL.encode("utf-16")),
    ("utf-8", "strict", None, b"bad \xff\xfe bytes \x80\nline\n"),  # UnicodeDecodeError both
    ("utf-8", "replace", None, b"bad \xff\xfe bytes \x80\nline\n"),
    ("utf-8", "ignore", None, b"bad \xff\xfe bytes \x80\nline\n"),
    ("utf-8", "surrogateescape", "", b"bad \xff\xfe bytes \x80\r\nline\n"),
    ("ascii", "backslashreplace", None, b"plain\n"),  # writes of non-ASCII are escaped
    ("ascii", None, None, b"plain\n"),  # and refused with UnicodeEncodeError when strict
]


@pytest.mark.parametrize("variant", range(len(TEXT_VARIANTS)))
@pytest.mark.parametrize("mode", ["r", "w", "a", "x", "r+", "w+", "a+", "rt", "x+"])
def test_text_modes_match_builtin(where: Twins, mode: str, variant: int) -> None:
    encoding, errors, newline, initial = TEXT_VARIANTS[variant]
    kw: dict[str, Any] = {"encoding": encoding, "errors": errors, "newline": newline}
    extra = "ū" if encoding in (None, "utf-8", "utf-16", "ascii") else ""
    compare_script(
        where, "t.txt", None if mode.startswith("x") else initial, mode, text_script(extra), **kw
    )


@pytest.mark.parametrize("size_name", ["empty", "one", "block", "blocks"])
@pytest.mark.parametrize("mode", ["r", "w", "a", "r+", "w+", "a+"])
def test_text_modes_on_sizes_match_builtin(where: Twins, mode: str, size_name: str) -> None:
    size = SIZES[size_name]
    assert size is not None
    initial = _content(size)
    compare_script(
        where, "s.txt", initial, mode, text_script(""), buffering=1 if mode == "a+" else -1
    )


def test_line_buffering_and_binary_warning_match_builtin(where: Twins) -> None:
    where.put("l.txt", b"")
    with (
        where.fs.open(f"{where.remote}/l.txt", "w", buffering=1) as f,
        open(where.local / "l.txt", "w", buffering=1, encoding="utf-8") as g,
    ):
        assert f.line_buffering and g.line_buffering
        f.write("one\ntw")
        g.write("one\ntw")
        # A write holding a newline flushes everything to the raw file at once.
        assert f.buffer.raw.tell() == g.buffer.raw.tell() == 6
    assert where.contents("l.txt") == (b"one\ntw", b"one\ntw")
    with pytest.warns(RuntimeWarning, match="line buffering"):
        f = where.fs.open(f"{where.remote}/l.txt", "rb", buffering=1)
    f.close()
    with pytest.warns(RuntimeWarning, match="line buffering"):
        g = open(where.local / "l.txt", "rb", buffering=1)
    g.close()


@pytest.mark.parametrize(
    "mode, buffering",
    [
        ("rb", -1),
        ("wb", -1),
        ("ab", -1),
        ("r+b", -1),
        ("w+b", -1),
        ("a+b", -1),
        ("x+b", -1),
        ("rb", 0),
        ("wb", 0),
        ("r+b", 0),
        ("a+b", 0),
        ("r", -1),
        ("w+", -1),
        ("a", 1),
    ],
)
def test_object_types_and_attributes_match_builtin(where: Twins, mode: str, buffering: int) -> None:
    if not mode.startswith("x"):
        where.put("o", b"data")
    kw: dict[str, Any] = {"buffering": buffering}
    ours, ref = where.open_both("o", mode, **kw)
    assert ours[0] == ref[0] == "ok", (ours, ref)
    with ours[1] as f, ref[1] as g:
        assert io_class(f) == io_class(g) or (
            buffering == 0 and isinstance(f, io.RawIOBase)
        )
        assert f.mode == g.mode
        assert f.name == f"{where.remote}/o"
        assert (f.readable(), f.writable(), f.seekable()) == (
            g.readable(),
            g.writable(),
            g.seekable(),
        )
        raw = f if buffering == 0 else (f.buffer.raw if hasattr(f, "buffer") else f.raw)
        assert isinstance(raw, io.RawIOBase) and isinstance(raw, RawFile)
        with pytest.raises(io.UnsupportedOperation):
            raw.fileno()
        with pytest.raises(io.UnsupportedOperation):
            f.fileno()
        assert not f.isatty()
        if "b" not in mode:
            assert f.encoding == g.encoding == "utf-8"
            assert f.line_buffering == g.line_buffering
    assert f.closed and raw.closed
    with pytest.raises(ValueError):
        f.read() if f.readable() else f.write(b"" if "b" in mode else "")


def test_raw_file_protocol(where: Twins) -> None:
    data = os.urandom(3 * B + 11)
    where.put("raw.bin", data)
    p = f"{where.remote}/raw.bin"
    with where.fs.open(p, "r+b", buffering=0) as f:
        assert isinstance(f, io.RawIOBase) and (f.readable(), f.writable(), f.seekable()) == (
            True,
            True,
            True,
        )
        buf = bytearray(B + 10)
        assert f.readinto(buf) == B + 10 and bytes(buf) == data[: B + 10]
        assert f.tell() == B + 10
        view = memoryview(bytearray(7))
        f.seek(B - 3)
        assert f.readinto(view) == 7 and view.tobytes() == data[B - 3 : B + 4]
        assert f.seek(-5, io.SEEK_END) == len(data) - 5
        assert f.read() == data[-5:]
        assert f.readinto(bytearray(4)) == 0 and f.read(4) == b"" and f.readall() == b""
        assert f.seek(-10, io.SEEK_CUR) == len(data) - 10
        assert f.seek(2, io.SEEK_SET) == 2
        assert f.write(memoryview(b"0123")) == 4 and f.tell() == 6
        assert f.write(bytearray(b"")) == 0
        assert f.truncate(2 * B) == 2 * B and f.tell() == 6
        assert f.seek(0, io.SEEK_END) == 2 * B
        assert f.truncate(5 * B) == 5 * B
        f.seek(4 * B)
        assert f.read(8) == bytes(8)
        assert f.truncate() == 4 * B + 8
        with pytest.raises(io.UnsupportedOperation):
            f.fileno()
        with pytest.raises(ValueError):
            f.seek(0, 3)
        with pytest.raises(OSError):
            f.seek(-1)
    expected = (data[:2] + b"0123" + data[6 : 2 * B]) + bytes(2 * B + 8)
    assert where.fs.read_file(p) == expected
    with where.fs.open(p, "rb", buffering=0) as f:
        assert not f.writable()
        with pytest.raises(io.UnsupportedOperation):
            f.write(b"x")
        with pytest.raises(io.UnsupportedOperation):
            f.truncate(0)
    with where.fs.open(p, "rb") as b:
        assert isinstance(b, io.BufferedReader) and isinstance(b.raw, io.RawIOBase)
        b.raw.seek(3)
        assert b.raw.read(2) == expected[3:5]  # the raw object is usable directly
    with where.fs.open(p, "wb", buffering=0) as f:
        with pytest.raises(io.UnsupportedOperation):
            f.read(1)
        with pytest.raises(io.UnsupportedOperation):
            f.readinto(bytearray(1))
    assert where.fs.read_file(p) == b""  # 'w' truncated it


def test_byte_range_reads_across_blocks(where: Twins) -> None:
    data = os.urandom(9 * B + 123)
    where.put("ranges.bin", data)
    p = f"{where.remote}/ranges.bin"
    ranges = [
        (0, 1),
        (0, B),
        (B - 1, 2),
        (B, B),
        (2 * B - 7, 3 * B + 14),
        (5 * B + 5, 17),
        (len(data) - 3, 10),
        (len(data), 5),
        (len(data) + 100, 1),
        (3 * B, 0),
    ]
    for buffering in (0, -1, 4096):
        with where.fs.open(p, "rb", buffering=buffering) as f:
            for off, n in ranges:
                f.seek(off)
                assert f.read(n) == data[off : off + n], (buffering, off, n)
            for off, n in reversed(ranges):  # backwards too (random access)
                f.seek(off)
                assert f.read(n) == data[off : off + n], (buffering, off, n)
    assert where.fs.read_file(p) == data


@pytest.mark.parametrize("size", [0, 1, B - 1, B, B + 1, 4 * B, 4 * B + 1])
def test_sizes_stream_and_roundtrip(where: Twins, size: int) -> None:
    data = os.urandom(size)
    p = f"{where.remote}/{size}.bin"
    with where.fs.open(p, "wb") as f:
        for i in range(0, size, 10_000):
            f.write(data[i : i + 10_000])
    assert where.fs.get_entry(p).size == size
    with where.fs.open(p, "rb") as f:
        chunks = iter(lambda: f.read(7777), b"")
        assert b"".join(chunks) == data
    with where.fs.open(p, "ab") as f:
        assert f.tell() == size
        f.write(b"!")
    assert where.fs.read_file(p) == data + b"!"


def test_open_errors_match_builtin(where: Twins) -> None:
    where.fs.create_dir(f"{where.remote}/dir")
    (where.local / "dir").mkdir()
    where.put("file", b"content")
    where.fs.get_entry(
        f"{where.remote}/file"
    )  # committed (see test_paths_under_a_file_just_closed_...)
    cases = [
        ("missing", "r"),
        ("missing", "rb"),
        ("missing", "r+b"),
        ("missing", "r+"),
        ("nodir/new", "wb"),
        ("nodir/new", "w"),
        ("nodir/new", "ab"),
        ("nodir/new", "xb"),
        ("dir", "rb"),
        ("dir", "r"),
        ("dir", "wb"),
        ("dir", "ab"),
        ("dir", "r+b"),
        ("dir", "w+"),
        ("dir", "a+b"),
        ("file/below", "rb"),
        ("file/below", "wb"),
        ("file/below", "xb"),
        ("file", "xb"),
        ("file", "x"),
        ("file", "x+b"),
        ("file", "rw"),
        ("file", "rbt"),
        ("file", "z"),
        ("file", "b"),
        ("file", "+"),
        ("file", "rr"),
    ]
    for name, mode in cases:
        ours, ref = where.open_both(name, mode)
        for o in (ours, ref):
            if o[0] == "ok":
                o[1].close()
        assert_same(opened(ours), opened(ref), (name, mode))
    assert where.contents("file") == (b"content", b"content")  # nothing was truncated
    with pytest.raises(IsADirectoryError):
        where.fs.open("/", "rb")
    with pytest.raises(IsADirectoryError):
        where.fs.read_file(f"{where.remote}/dir")
    with pytest.raises(FileNotFoundError):
        where.fs.read_file(f"{where.remote}/missing")


def test_x_mode_on_an_existing_directory_is_file_exists_like_builtin(where: Twins) -> None:
    where.fs.create_dir(f"{where.remote}/dir")
    (where.local / "dir").mkdir()
    for mode in ("xb", "x", "x+b"):
        ours, ref = where.open_both("dir", mode)
        assert_same(opened(ours), opened(ref), mode)


@pytest.mark.parametrize(
    "args, kwargs",
    [
        (("rb",), {"encoding": "utf-8"}),
        (("rb",), {"errors": "strict"}),
        (("wb",), {"newline": "\n"}),
        (("r",), {"buffering": 0}),
        (("r",), {"buffering": "1"}),
        ((1,), {}),
        (("r",), {"encoding": 5}),
        (("r",), {"newline": "x"}),
        (("r",), {"encoding": "no-such-codec"}),
    ],
)
def test_invalid_open_arguments_match_builtin(
    where: Twins, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    where.put("v", b"keep")
    ours = outcome(lambda: where.fs.open(f"{where.remote}/v", *args, **kwargs))
    ref = outcome(lambda: open(where.local / "v", *args, **kwargs))
    for o in (ours, ref):
        if o[0] == "ok":
            o[1].close()
    assert_same(opened(ours), opened(ref), (args, kwargs))
    assert where.contents("v") == (b"keep", b"keep")


# -- random operation sequences through the blocking API vs the builtin --------------

_bin_ops = st.one_of(
    st.tuples(st.just("write"), st.binary(max_size=B + 50)),
    st.tuples(
        st.just("write"), st.integers(0, 3).map(lambda n: bytes([65 + n]) * (n * B // 2 + 1))
    ),
    st.tuples(st.just("read"), st.integers(-1, 2 * B)),
    st.tuples(st.just("readinto"), st.integers(0, B + 7)),
    st.tuples(
        st.just("readline"),
    ),
    st.tuples(st.just("seek"), st.integers(0, 3 * B + 3), st.just(0)),
    st.tuples(st.just("seek"), st.integers(-B, B), st.sampled_from([1, 2])),
    st.tuples(st.just("truncate"), st.integers(0, 3 * B)),
    st.tuples(
        st.just("truncate"),
    ),
    st.tuples(
        st.just("flush"),
    ),
    st.tuples(
        st.just("tell"),
    ),
)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    mode=st.sampled_from(["rb", "wb", "ab", "r+b", "w+b", "a+b", "x+b"]),
    buffering=st.sampled_from([-1, 0, 1000, B]),
    initial=st.one_of(st.binary(max_size=100), st.integers(0, 3 * B + 3).map(_content)),
    ops=st.lists(_bin_ops, max_size=15),
)
def test_random_binary_sequences_match_builtin(
    mspace: lucidlink.Filespace,
    mode: str,
    buffering: int,
    initial: bytes,
    ops: list[tuple[Any, ...]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        remote = "/" + unique("hyp")
        mspace.fs.create_dir(remote)
        tw = Twins(mspace.fs, remote, Path(tmp))
        compare_script(
            tw, "h.bin", None if mode.startswith("x") else initial, mode, ops, buffering=buffering
        )


_text_ops = st.one_of(
    st.tuples(st.just("write"), st.text(alphabet="ab\r\né€\u2713\U0001f600", max_size=40)),
    st.tuples(st.just("read"), st.integers(-1, 30)),
    st.tuples(
        st.just("readline"),
    ),
    st.tuples(st.just("readline"), st.integers(0, 10)),
    st.tuples(st.just("seek"), st.just(0), st.sampled_from([0, 2])),
    st.tuples(
        st.just("tell"),
    ),
    st.tuples(st.just("seek_told"), st.integers(-1, 0)),
    st.tuples(
        st.just("truncate"),
    ),
    st.tuples(
        st.just("flush"),
    ),
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    mode=st.sampled_from(["r", "w", "a", "r+", "w+", "a+"]),
    encoding=st.sampled_from([None, "latin-1", "utf-16", "utf-8"]),
    errors=st.sampled_from([None, "replace"]),
    newline=st.sampled_from([None, "", "\n", "\r\n", "\r"]),
    initial=st.text(alphabet="ab\r\né", max_size=30),
    ops=st.lists(_text_ops, max_size=12),
)
def test_random_text_sequences_match_builtin(
    mspace: lucidlink.Filespace,
    mode: str,
    encoding: str | None,
    errors: str | None,
    newline: str | None,
    initial: str,
    ops: list[tuple[Any, ...]],
) -> None:
    raw = initial.encode(encoding or "utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        remote = "/" + unique("hyp")
        mspace.fs.create_dir(remote)
        tw = Twins(mspace.fs, remote, Path(tmp))
        compare_script(
            tw, "h.txt", raw, mode, ops, encoding=encoding, errors=errors, newline=newline
        )
