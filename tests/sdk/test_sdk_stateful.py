"""Random operation sequences through the SDK agree with a model file system.

A hypothesis ``RuleBasedStateMachine`` drives the blocking API of one daemon against a
model (a dict of path -> bytes or ``DIR``), with the POSIX results and errors the
builtin file API gives; a second daemon in the same process checks, after
``sync_all()`` on both, that it sees exactly the model. The hub and both daemons are
created once per test function; each example works in a fresh directory.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

import lucidlink
from tests.support.sdkfixtures import SMALL_BLOCK, SdkHub

B = SMALL_BLOCK
DIR = object()  # a directory in the model
Parts = tuple[str, ...]

#: The SDK answers an operation on a path below (or a listing of, or a create_dir over) a
#: file that was closed but is not committed yet as if that file did not exist (see
#: test_sync_api.py::test_paths_under_a_file_just_closed_are_not_a_directory, xfail).
#: While that is so, the machine commits before such operations; set this to False
#: once the bug is fixed.
WORKAROUND_PENDING_ANCESTOR_BUG = False

names = st.sampled_from(["a", "b", "c"])
paths = st.lists(names, min_size=1, max_size=3).map(tuple)
sizes = st.sampled_from([0, 1, 100, B - 1, B, B + 1, 2 * B + 3, 3 * B])
offsets = st.sampled_from([0, 5, B - 2, B, B + 7, 2 * B + 5, 4 * B])
seeds = st.integers(0, 2**16)


def payload(seed: int, size: int) -> bytes:
    return hashlib.shake_256(b"%d" % seed).digest(size) if size else b""


class Expect:
    """An expected error: a builtin class, and an errno for plain ``OSError``s."""

    def __init__(self, cls: type[BaseException], err: int | None = None) -> None:
        self.cls = cls
        self.errno = err

    def __repr__(self) -> str:
        return f"{self.cls.__name__}({errno.errorcode.get(self.errno or 0, '')})"


NOT_FOUND = Expect(FileNotFoundError)
NOT_DIR = Expect(NotADirectoryError)
IS_DIR = Expect(IsADirectoryError)
EXISTS = Expect(FileExistsError)
NOT_EMPTY = Expect(OSError, errno.ENOTEMPTY)
INVALID = Expect(OSError, errno.EINVAL)


def fs_machine(fsp1: lucidlink.Filespace, fsp2: lucidlink.Filespace) -> type[RuleBasedStateMachine]:
    fs1, fs2 = fsp1.fs, fsp2.fs

    class FilesystemMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.base = f"/sm-{uuid.uuid4().hex[:12]}"
            self.model: dict[Parts, Any] = {(): DIR}
            self.dirty: set[Parts] = set()  # files closed in daemon 1 since its last sync
            # The calls since daemon 1 last synced, for the message of a refused commit: a
            # failure that depends on timing is not replayed by hypothesis, nor printed.
            self.calls: list[str] = []

        @initialize()
        def make_base(self) -> None:
            fs1.create_dir(self.base)

        # -- helpers ---------------------------------------------------------------

        def path(self, parts: Parts) -> str:
            return self.base + "".join("/" + p for p in parts)

        def state(self, parts: Parts) -> str:
            """``file``, ``dir``, ``missing`` or ``notdir`` (a file where a parent should be)."""
            for i in range(1, len(parts)):
                node = self.model.get(parts[:i])
                if node is None:
                    return "missing"
                if node is not DIR:
                    return "notdir"
            node = self.model.get(parts)
            return "missing" if node is None else ("dir" if node is DIR else "file")

        def parent_error(self, parts: Parts) -> Expect | None:
            """The error of creating ``parts``, due to its parent, if any."""
            parent = self.state(parts[:-1])
            return None if parent == "dir" else (NOT_FOUND if parent == "missing" else NOT_DIR)

        def file_error(self, parts: Parts) -> Expect | None:
            """The error of opening an existing file ``parts``, if any."""
            return {"file": None, "dir": IS_DIR, "missing": NOT_FOUND, "notdir": NOT_DIR}[
                self.state(parts)
            ]

        # Paths are drawn mostly among those the model has (or next to them), so that
        # operations succeed often enough; random ones still reach every error.

        def any_path(self, data: st.DataObject) -> Parts:
            existing = sorted(p for p in self.model if p)
            return data.draw(st.one_of(st.sampled_from(existing), paths) if existing else paths)

        def file_path(self, data: st.DataObject) -> Parts:
            files = sorted(p for p, v in self.model.items() if v is not DIR)
            return data.draw(st.one_of(st.sampled_from(files), paths) if files else paths)

        def new_path(self, data: st.DataObject) -> Parts:
            dirs = sorted(p for p, v in self.model.items() if v is DIR)
            beside = st.tuples(st.sampled_from(dirs), names).map(lambda t: t[0] + (t[1],))
            return data.draw(st.one_of(beside, paths))

        def children(self, parts: Parts) -> list[Parts]:
            return [p for p in self.model if len(p) == len(parts) + 1 and p[: len(parts)] == parts]

        def settle(self, *targets: Parts) -> None:
            if WORKAROUND_PENDING_ANCESTOR_BUG and any(
                d == t[: len(d)] for d in self.dirty for t in targets
            ):
                fsp1.sync_all()
                self.dirty.clear()

        def run(self, expect: Expect | None, call: Callable[[], Any]) -> Any:
            """Run ``call``; it must raise ``expect`` (or succeed when ``None``)."""
            caller = sys._getframe(1)
            args = {k: v for k, v in caller.f_locals.items()
                    if k in ("parts", "src", "dst", "size", "offset", "recursive", "overwrite",
                             "through_handle")}
            self.calls.append(f"{caller.f_code.co_name}({args}) -> {expect or 'ok'}")
            with contextlib.suppress(InvalidArgument):  # outside a hypothesis run
                event(f"{caller.f_code.co_name}: {expect or 'ok'}")
            try:
                result = call()
            except Exception as exc:
                if expect is None:
                    raise AssertionError(f"unexpected {exc!r}") from exc
                assert isinstance(exc, expect.cls), f"expected {expect}, got {exc!r}"
                if expect.errno is not None:
                    assert exc.errno == expect.errno, (
                        f"expected {expect}, got {exc!r} errno {exc.errno}"
                    )
                return None
            assert expect is None, f"expected {expect}, got {result!r}"
            return result

        # -- operations (the rules below draw their arguments) ---------------------

        def do_create_dir(self, parts: Parts) -> None:
            self.settle(parts)
            expect = None
            for i in range(1, len(parts) + 1):
                node = self.model.get(parts[:i])
                if node is None:
                    break
                if node is not DIR:
                    expect = EXISTS if i == len(parts) else NOT_DIR
                    break
            self.run(expect, lambda: fs1.create_dir(self.path(parts)))
            if expect is None:
                for i in range(1, len(parts) + 1):
                    self.model.setdefault(parts[:i], DIR)

        def do_write_file(self, parts: Parts, size: int, seed: int) -> None:
            self.settle(parts)
            expect = self.parent_error(parts) or (IS_DIR if self.state(parts) == "dir" else None)
            content = payload(seed, size)
            self.run(expect, lambda: fs1.write_file(self.path(parts), content))
            if expect is None:
                self.model[parts] = content
                self.dirty.add(parts)

        def do_append(self, parts: Parts, size: int, seed: int) -> None:
            self.settle(parts)
            expect = self.parent_error(parts) or (IS_DIR if self.state(parts) == "dir" else None)
            content = payload(seed, size)

            def append() -> None:
                with fs1.open(self.path(parts), "ab") as f:
                    assert f.tell() == len(self.model.get(parts, b""))
                    f.write(content)

            self.run(expect, append)
            if expect is None:
                self.model[parts] = self.model.get(parts, b"") + content
                self.dirty.add(parts)

        def do_overwrite_part(self, parts: Parts, offset: int, size: int, seed: int) -> None:
            self.settle(parts)
            expect = self.file_error(parts)
            content = payload(seed, size)

            def overwrite_part() -> None:
                with fs1.open(self.path(parts), "r+b") as f:
                    f.seek(offset)
                    f.write(content)

            self.run(expect, overwrite_part)
            if expect is None and content:  # writing nothing past the end extends nothing
                old = self.model[parts]
                new = bytearray(old + bytes(max(0, offset - len(old))))
                new[offset : offset + size] = content
                self.model[parts] = bytes(new)
                self.dirty.add(parts)

        def do_truncate(self, parts: Parts, size: int, through_handle: bool) -> None:
            self.settle(parts)
            expect = self.file_error(parts)

            def truncate() -> None:
                if through_handle:
                    with fs1.open(self.path(parts), "r+b") as f:
                        assert f.truncate(size) == size
                        assert f.tell() == 0
                else:
                    fs1.truncate(self.path(parts), size)

            self.run(expect, truncate)
            if expect is None:
                old = self.model[parts]
                self.model[parts] = old[:size] + bytes(max(0, size - len(old)))
                if through_handle:
                    self.dirty.add(parts)

        def do_move(self, src: Parts, dst: Parts, overwrite: bool) -> None:
            self.settle(src, dst)
            kind = self.state(src)
            target = self.state(dst)
            expect: Expect | None
            if kind in ("missing", "notdir"):
                expect = NOT_FOUND if kind == "missing" else NOT_DIR
            elif self.parent_error(dst):
                expect = self.parent_error(dst)
            elif kind == "dir" and dst[: len(src)] == src and dst != src:
                expect = INVALID
            elif src == dst:
                expect = None
            elif target in ("file", "dir") and not overwrite:
                expect = EXISTS
            elif target == "dir" and kind == "file":
                expect = IS_DIR
            elif target == "file" and kind == "dir":
                expect = NOT_DIR
            elif target == "dir" and self.children(dst):
                expect = NOT_EMPTY
            else:
                expect = None
            self.run(expect, lambda: fs1.move(self.path(src), self.path(dst), overwrite=overwrite))
            if expect is None and src != dst:
                moved = {p: v for p, v in self.model.items() if p[: len(src)] == src}
                for p in [p for p in self.model if p[: len(dst)] == dst]:
                    del self.model[p]
                for p in moved:
                    del self.model[p]
                for p, v in moved.items():
                    self.model[dst + p[len(src) :]] = v
                self.dirty = {
                    dst + d[len(src) :] if d[: len(src)] == src else d for d in self.dirty
                }

        def do_delete(self, parts: Parts) -> None:
            self.settle(parts)
            expect = self.file_error(parts)
            self.run(expect, lambda: fs1.delete(self.path(parts)))
            if expect is None:
                del self.model[parts]
                self.dirty.discard(parts)

        def do_delete_dir(self, parts: Parts, recursive: bool) -> None:
            self.settle(parts)
            state = self.state(parts)
            expect = {"dir": None, "file": NOT_DIR, "missing": NOT_FOUND, "notdir": NOT_DIR}[state]
            if expect is None and self.children(parts) and not recursive:
                expect = NOT_EMPTY
            self.run(expect, lambda: fs1.delete_dir(self.path(parts), recursive=recursive))
            if expect is None:
                for p in [p for p in self.model if p[: len(parts)] == parts]:
                    del self.model[p]
                self.dirty = {d for d in self.dirty if d[: len(parts)] != parts}

        def sync_first_daemon(self) -> None:
            """``sync_all`` of daemon 1; a refused commit names the calls that led to it."""
            try:
                fsp1.sync_all()
            except Exception as exc:
                steps = "\n  ".join(self.calls)
                raise AssertionError(
                    f"daemon 1's sync_all raised {exc!r} in {self.base} after:\n  {steps}") from exc
            self.dirty.clear()
            self.calls.clear()

        def do_write_in_second_daemon(self, parts: Parts, size: int, seed: int) -> None:
            self.sync_first_daemon()  # daemon 1's queued changes land first, as they were made first
            expect = self.parent_error(parts) or (IS_DIR if self.state(parts) == "dir" else None)
            content = payload(seed, size)
            if seed % 2:
                fsp2.refresh()  # close-to-open: daemon 2 knows what daemon 1 committed
                self.run(expect, lambda: fs2.write_file(self.path(parts), content))
                fsp2.sync_all()
            else:
                # Daemon 2's metadata cache may not have heard of daemon 1's last changes
                # yet: a conflict it could not see is refused at commit, and raised by its
                # next sync_all (docs/architecture.md, "Creates"). Either way, the same error.
                def write_and_sync() -> None:
                    fs2.write_file(self.path(parts), content)
                    fsp2.sync_all()

                self.run(expect, write_and_sync)
            self.sync_first_daemon()
            if expect is None:
                self.model[parts] = content

        def do_read_file(self, parts: Parts) -> None:
            self.settle(parts)
            expect = self.file_error(parts)
            got = self.run(expect, lambda: fs1.read_file(self.path(parts)))
            if expect is None:
                assert got == self.model[parts]

        def do_read_range(self, parts: Parts, offset: int, size: int) -> None:
            self.settle(parts)
            expect = self.file_error(parts)

            def read_range() -> bytes:
                with fs1.open(self.path(parts), "rb", buffering=0) as f:
                    assert isinstance(f, io.RawIOBase)
                    f.seek(offset)
                    return f.read(size)

            got = self.run(expect, read_range)
            if expect is None:
                assert got == self.model[parts][offset : offset + size]

        def do_list_dir(self, parts: Parts) -> None:
            self.settle(parts)
            state = self.state(parts)
            expect = {"dir": None, "file": NOT_DIR, "missing": NOT_FOUND, "notdir": NOT_DIR}[state]
            got = self.run(expect, lambda: fs1.list_dir(self.path(parts)))
            if expect is None:
                assert got == sorted(p[-1] for p in self.children(parts))

        def do_get_entry(self, parts: Parts) -> None:
            self.settle(parts)
            state = self.state(parts)
            expect = {"dir": None, "file": None, "missing": NOT_FOUND, "notdir": NOT_DIR}[state]
            entry = self.run(expect, lambda: fs1.get_entry(self.path(parts)))
            if expect is None:
                assert entry.name == parts[-1]
                assert entry.type == state and entry.is_dir() == (state == "dir")
                if state == "file":
                    assert entry.size == len(self.model[parts])

        def do_exists(self, parts: Parts) -> None:
            self.settle(parts)
            state = self.state(parts)
            with contextlib.suppress(InvalidArgument):
                event(f"exists: {state}")
            assert fs1.file_exists(self.path(parts)) == (state == "file")
            assert fs1.dir_exists(self.path(parts)) == (state == "dir")

        # -- rules -------------------------------------------------------------------

        @rule(data=st.data())
        def create_dir(self, data: st.DataObject) -> None:
            self.do_create_dir(self.new_path(data))

        @rule(data=st.data(), size=sizes, seed=seeds, new=st.booleans())
        def write_file(self, data: st.DataObject, size: int, seed: int, new: bool) -> None:
            self.do_write_file(self.new_path(data) if new else self.file_path(data), size, seed)

        @rule(data=st.data(), size=sizes, seed=seeds)
        def append(self, data: st.DataObject, size: int, seed: int) -> None:
            self.do_append(self.file_path(data), size, seed)

        @rule(data=st.data(), offset=offsets, size=sizes, seed=seeds)
        def overwrite_part(self, data: st.DataObject, offset: int, size: int, seed: int) -> None:
            self.do_overwrite_part(self.file_path(data), offset, size, seed)

        @rule(data=st.data(), size=st.one_of(sizes, offsets), through_handle=st.booleans())
        def truncate(self, data: st.DataObject, size: int, through_handle: bool) -> None:
            self.do_truncate(self.file_path(data), size, through_handle)

        @rule(data=st.data(), overwrite=st.booleans(), new=st.booleans())
        def move(self, data: st.DataObject, overwrite: bool, new: bool) -> None:
            src = self.any_path(data)
            self.do_move(src, self.new_path(data) if new else self.any_path(data), overwrite)

        @rule(data=st.data())
        def delete(self, data: st.DataObject) -> None:
            self.do_delete(self.any_path(data))

        @rule(data=st.data(), recursive=st.booleans())
        def delete_dir(self, data: st.DataObject, recursive: bool) -> None:
            self.do_delete_dir(self.any_path(data), recursive)

        @rule(data=st.data(), size=sizes, seed=seeds)
        def write_in_second_daemon(self, data: st.DataObject, size: int, seed: int) -> None:
            self.do_write_in_second_daemon(self.new_path(data), size, seed)

        @rule(data=st.data())
        def read_file(self, data: st.DataObject) -> None:
            self.do_read_file(self.any_path(data))

        @rule(data=st.data(), offset=offsets, size=sizes)
        def read_range(self, data: st.DataObject, offset: int, size: int) -> None:
            self.do_read_range(self.file_path(data), offset, size)

        @rule(data=st.data(), root=st.booleans())
        def list_dir(self, data: st.DataObject, root: bool) -> None:
            self.do_list_dir(() if root else self.any_path(data))

        @rule(data=st.data())
        def get_entry(self, data: st.DataObject) -> None:
            self.do_get_entry(self.any_path(data))

        @rule(data=st.data())
        def exists(self, data: st.DataObject) -> None:
            self.do_exists(self.any_path(data))

        @rule()
        def second_daemon_sees_the_model(self) -> None:
            self.sync_first_daemon()
            fsp2.sync_all()

            def walk(parts: Parts) -> Iterator[tuple[Parts, Any]]:
                for entry in fs2.read_dir(self.path(parts)):
                    here = parts + (entry.name,)
                    if entry.is_dir():
                        yield here, DIR
                        yield from walk(here)
                    else:
                        yield here, entry.size

            seen = dict(walk(()))
            want = {p: (DIR if v is DIR else len(v)) for p, v in self.model.items() if p}
            assert seen == want
            for p, v in self.model.items():
                if v is not DIR:
                    assert fs2.read_file(self.path(p)) == v, p

    return FilesystemMachine


def test_sdk_agrees_with_a_model_file_system(sdk_hub: SdkHub) -> None:
    creds = lucidlink.ServiceAccountCredentials(token=sdk_hub.token)
    with (
        lucidlink.create_daemon(hub_url=sdk_hub.url) as d1,
        lucidlink.create_daemon(hub_url=sdk_hub.url) as d2,
    ):
        fsp1 = d1.authenticate(creds).link_filespace(name="small")
        fsp2 = d2.authenticate(creds).link_filespace(name="small")
        machine = fs_machine(fsp1, fsp2)
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=30,
                stateful_step_count=40,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )


@pytest.mark.parametrize(
    "steps",
    [
        # Sequences worth keeping whatever hypothesis draws: block-boundary truncates and
        # patches, a file inside a moved tree, then the second daemon's view.
        [
            ("write_file", {"parts": ("a",), "size": B + 1, "seed": 1}),
            ("truncate", {"parts": ("a",), "size": B - 2, "through_handle": True}),
            ("overwrite_part", {"parts": ("a",), "offset": B, "size": 3, "seed": 2}),
            ("truncate", {"parts": ("a",), "size": 3 * B, "through_handle": False}),
            ("second_daemon_sees_the_model", {}),
        ],
        [
            ("create_dir", {"parts": ("a", "b")}),
            ("write_file", {"parts": ("a", "b", "c"), "size": 2 * B + 3, "seed": 3}),
            ("move", {"src": ("a",), "dst": ("c",), "overwrite": True}),
            ("append", {"parts": ("c", "b", "c"), "size": B, "seed": 4}),
            ("read_range", {"parts": ("c", "b", "c"), "offset": 2 * B + 5, "size": B}),
            ("second_daemon_sees_the_model", {}),
            ("move", {"src": ("c",), "dst": ("c", "b", "x"), "overwrite": True}),
            ("write_file", {"parts": ("c", "b", "c", "d"), "size": 1, "seed": 5}),
            ("delete_dir", {"parts": ("c",), "recursive": False}),
            ("delete_dir", {"parts": ("c",), "recursive": True}),
            ("list_dir", {"parts": ()}),
        ],
    ],
)
def test_fixed_sequences(sdk_hub: SdkHub, steps: list[tuple[str, dict[str, Any]]]) -> None:
    creds = lucidlink.ServiceAccountCredentials(token=sdk_hub.token)
    with (
        lucidlink.create_daemon(hub_url=sdk_hub.url) as d1,
        lucidlink.create_daemon(hub_url=sdk_hub.url) as d2,
    ):
        m = fs_machine(
            d1.authenticate(creds).link_filespace(name="small"),
            d2.authenticate(creds).link_filespace(name="small"),
        )()
        m.make_base()
        for name, kwargs in steps:
            getattr(m, name if name.startswith("second") else "do_" + name)(**kwargs)
        m.second_daemon_sees_the_model()
        m.teardown()
