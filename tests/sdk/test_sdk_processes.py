"""Daemons in separate OS processes on one filespace, and a daemon killed before it synced.

Each daemon runs in its own process (``tests/support/sdkworker.py``, the blocking API, driven by
JSON lines); the hub runs in this process (``sdk_hub``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import lucidlink
from tests.support.sdkfixtures import SMALL_BLOCK, SdkHub

B = SMALL_BLOCK
WORKER = str(Path(__file__).resolve().parents[1] / "support" / "sdkworker.py")


class WorkerError(Exception):
    pass


class Worker:
    """A daemon in a child process."""

    def __init__(self, log_dir: Path, name: str, **setup: Any) -> None:
        self.name = name
        self._stderr = open(log_dir / f"{name}.stderr", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, WORKER, json.dumps(setup)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self.noise: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        ready = self._next(120)
        assert ready.get("event") == "ready", ready
        self.root = ready.get("root")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put("")

    def _next(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise WorkerError(
                f"{self.name}: no answer within {timeout} s; {self.stderr()}"
            ) from None
        if not line:
            raise WorkerError(f"{self.name} exited ({self.proc.poll()}): {self.stderr()}")
        if not line.startswith("{"):
            # Not the worker's: the SDK's own log lines land on stdout (see
            # test_the_sdk_prints_nothing_on_stdout).
            self.noise.append(line)
            return self._next(timeout)
        result: dict[str, Any] = json.loads(line)
        return result

    def stderr(self) -> str:
        self._stderr.flush()
        return Path(self._stderr.name).read_text()[-3000:]

    def raw(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        return self._next(120)

    def __call__(self, op: str, *args: Any, **fields: Any) -> Any:
        fields["args"] = [encode(a) for a in fields.get("args", args)]
        answer = self.raw(op, **fields)
        if "error" in answer:
            raise WorkerError(f"{self.name}: {op}{args}: {answer['error']}: {answer['message']}")
        return decode(answer["ok"])

    def error(self, op: str, *args: Any, **fields: Any) -> dict[str, Any]:
        answer = self.raw(op, args=[encode(a) for a in args], **fields)
        assert "error" in answer, f"{self.name}: {op}{args} did not fail: {answer}"
        return answer

    def write(self, path: str, data: bytes, **fields: Any) -> None:
        self("write", path=path, data=base64.b64encode(data).decode(), **fields)

    def read(self, path: str, **fields: Any) -> bytes:
        return base64.b64decode(self("read", path=path, **fields))

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(30)
        errors = self.stderr()
        self.close()
        assert self.proc.returncode == 0, (self.proc.returncode, errors)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        assert self.proc.returncode == -signal.SIGKILL
        self.close()

    def close(self) -> None:
        """Reap the process (killing it if still running) and close every pipe."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self._reader.join(30)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                try:
                    pipe.close()
                except OSError:
                    pass
        if not self._stderr.closed:
            self._stderr.close()


def encode(value: Any) -> Any:
    return {"b64": base64.b64encode(value).decode()} if isinstance(value, bytes) else value


def decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    return value


def data(seed: int, size: int) -> bytes:
    return hashlib.shake_256(b"%d" % seed).digest(size) if size else b""


@pytest.fixture
def workers(tmp_path: Path) -> Any:
    started: list[Worker] = []

    def start(name: str, **setup: Any) -> Worker:
        w = Worker(tmp_path, name, **setup)
        started.append(w)
        return w

    yield start
    for w in started:
        w.close()


# -- two processes, one filespace --------------------------------------------------------


def test_changes_synced_in_one_process_are_seen_by_another(sdk_hub: SdkHub, workers: Any) -> None:
    setup = {"hub_url": sdk_hub.url, "token": sdk_hub.token, "filespaces": ["small"]}
    a = workers("a", **setup)
    b = workers("b", **setup)

    # Round 1, a -> b: directories and files of every size class.
    a("create_dir", "/shared/d1/deep")
    files = {
        "/shared/d1/a.bin": data(1, 3 * B + 5),
        "/shared/b.txt": b"hello\n",
        "/shared/empty": b"",
        "/shared/d1/deep/one": b"1",
        "/shared/d1/block": data(2, B),
    }
    for path, content in files.items():
        a.write(path, content)
    a("sync")
    b("sync")
    assert b("list_dir", "/shared") == ["b.txt", "d1", "empty"]
    assert b("list_dir", "/shared/d1") == ["a.bin", "block", "deep"]
    for path, content in files.items():
        assert b.read(path) == content, path
        assert b("get_entry", path)["size"] == len(content)
    assert b("dir_exists", "/shared/d1/deep") and b("file_exists", "/shared/d1/deep/one")

    # b keeps a reader open on a.bin: it goes on seeing the version it opened.
    b("open", id="old", path="/shared/d1/a.bin", mode="rb")

    # Round 2, b -> a: partial update, append, handle truncate, moves, replace, text.
    b("open", id="w", path="/shared/d1/a.bin", mode="r+b")
    b("h", id="w", call="seek", args=[B - 2])
    b("h", id="w", call="write", args=[encode(b"PATCH")])
    b("close", id="w")
    b("open", id="ap", path="/shared/b.txt", mode="ab")
    b("h", id="ap", call="write", args=[encode(b"world\n")])
    b("close", id="ap")
    b("open", id="t", path="/shared/d1/block", mode="r+b")
    b("h", id="t", call="truncate", args=[100])
    b("close", id="t")
    b("truncate", "/shared/d1/deep/one", B + 1)  # extend: zeros
    b("move", "/shared/d1", "/shared/d2")
    b("move", "/shared/empty", "/shared/d2/deep/was-empty")
    b.write("/shared/b2.txt", "ünïcode\n".encode())
    b("sync")
    a("sync")
    expected_a = bytearray(files["/shared/d1/a.bin"])
    expected_a[B - 2 : B + 3] = b"PATCH"
    assert a("list_dir", "/shared") == ["b.txt", "b2.txt", "d2"]
    assert a("list_dir", "/shared/d2") == ["a.bin", "block", "deep"]
    assert a("list_dir", "/shared/d2/deep") == ["one", "was-empty"]
    assert a.read("/shared/d2/a.bin") == bytes(expected_a)
    assert a.read("/shared/b.txt") == b"hello\nworld\n"
    assert a.read("/shared/d2/block") == files["/shared/d1/block"][:100]
    assert a.read("/shared/d2/deep/one") == b"1" + bytes(B)
    assert a.read("/shared/b2.txt") == "ünïcode\n".encode()
    assert not a("dir_exists", "/shared/d1") and not a("file_exists", "/shared/empty")
    # The old reader in b still reads the version it opened, across the patched block.
    b("h", id="old", call="seek", args=[B - 4])
    assert b("h", id="old", call="read", args=[10]) == files["/shared/d1/a.bin"][B - 4 : B + 6]
    b("close", id="old")

    # Round 3, a -> b: deletes (a file, a tree), a replace, and a file replacing a moved one.
    a("delete", "/shared/b.txt")
    a("delete_dir", "/shared/d2/deep", True)
    a.write("/shared/d2/a.bin", b"replaced")
    a("move", "/shared/b2.txt", "/shared/d2/block")  # over an existing file: replaced
    a("sync")
    b("sync")
    assert b("list_dir", "/shared") == ["d2"]
    assert b("list_dir", "/shared/d2") == ["a.bin", "block"]
    assert b.read("/shared/d2/a.bin") == b"replaced"
    assert b.read("/shared/d2/block") == "ünïcode\n".encode()
    gone = b.error("read", path="/shared/b.txt")
    assert "FileNotFoundError" in gone["types"]
    assert "FileNotFoundError" in b.error("list_dir", "/shared/d2/deep")["types"]

    # Both at once, different files, then each sees the other's.
    a.write("/shared/from-a", data(3, 2 * B + 1))
    b.write("/shared/from-b", data(4, 2 * B + 2))
    a("sync")
    b("sync")
    a("sync")
    assert a.read("/shared/from-b") == data(4, 2 * B + 2)
    assert b.read("/shared/from-a") == data(3, 2 * B + 1)
    a.stop()
    b.stop()


# -- killed before syncing, resumed by a new process -----------------------------------


def _hub_view(sdk_hub: SdkHub) -> dict[str, dict[str, bytes]]:
    """What a fresh daemon reads from the hub now: every file of both filespaces."""
    out: dict[str, dict[str, bytes]] = {}
    with lucidlink.create_daemon(hub_url=sdk_hub.url) as daemon:
        ws = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=sdk_hub.token))
        for name in ("small", "big"):
            with ws.link_filespace(name=name, sync_mode=lucidlink.SyncMode.SYNC_NONE) as fsp:
                files: dict[str, bytes] = {}
                todo = ["/"]
                while todo:
                    d = todo.pop()
                    for e in fsp.fs.read_dir(d):
                        p = d.rstrip("/") + "/" + e.name
                        if e.is_dir():
                            todo.append(p)
                        else:
                            files[p] = fsp.fs.read_file(p)
                out[name] = files
    return out


def test_killed_daemon_loses_no_closed_file_once_restarted(
    sdk_hub: SdkHub, workers: Any, tmp_path: Path
) -> None:
    root = tmp_path / "lucid-root"
    setup = {
        "hub_url": sdk_hub.url,
        "token": sdk_hub.token,
        "filespaces": ["small", "big"],
        "sandboxed": False,
        "persist_files": True,
        "root_path": str(root),
        # The flusher would wait ten minutes: only the journal can save the changes.
        "config": {"fs.flush.delay_ms": "600000"},
    }
    w = workers("doomed", **setup)
    assert w.root == str(root)

    # A committed base, so that partial updates have something to change.
    base = {
        "/base/patched.bin": data(10, 4 * B + 3),
        "/base/appended.log": b"line 1\n",
        "/base/truncated.bin": data(11, 3 * B),
        "/base/replaced.bin": data(12, 2 * B),
    }
    w("create_dir", "/base")
    w("create_dir", "/new/sub")
    for path, content in base.items():
        w.write(path, content)
    w.write("/big-base.bin", data(13, 5 * 1024 * 1024 + 7), fs="big")
    w("sync")
    assert w("pending") == 0
    committed = _hub_view(sdk_hub)
    assert committed["small"] == base and committed["big"]["/big-base.bin"] == data(
        13, 5 * 1024 * 1024 + 7
    )

    # A partial update's close waits for its commit (a version conflict is raised
    # there), so these land before the crash: a partial update in place (two blocks
    # touched), an append, a shrink through a handle ...
    expected = dict(base)
    w("open", id="p", path="/base/patched.bin", mode="r+b")
    w("h", id="p", call="seek", args=[2 * B - 3])
    w("h", id="p", call="write", args=[encode(b"<<patch>>")])
    w("close", id="p")
    patched = bytearray(base["/base/patched.bin"])
    patched[2 * B - 3 : 2 * B + 6] = b"<<patch>>"
    expected["/base/patched.bin"] = bytes(patched)
    w("open", id="a", path="/base/appended.log", mode="ab")
    w("h", id="a", call="write", args=[encode(b"line 2\n")])
    w("close", id="a")
    expected["/base/appended.log"] = b"line 1\nline 2\n"
    w("open", id="t", path="/base/truncated.bin", mode="r+b")
    w("h", id="t", call="truncate", args=[B + 10])
    w("h", id="t", call="seek", args=[0, 2])
    w("h", id="t", call="write", args=[encode(b"END")])
    w("close", id="t")
    expected["/base/truncated.bin"] = base["/base/truncated.bin"][: B + 10] + b"END"
    # ... and these are closed, never committed: new files of every size class, in
    # several directories, a whole replacement, an exclusive create, a text file ...
    for i, size in enumerate([0, 1, B - 1, B, B + 1, 3 * B + 5]):
        path = f"/new/sub/f{i}.bin" if i % 2 else f"/new/f{i}.bin"
        w.write(path, data(100 + i, size))
        expected[path] = data(100 + i, size)
    w.write("/base/replaced.bin", b"short now")
    expected["/base/replaced.bin"] = b"short now"
    w("open", id="x", path="/new/exclusive.bin", mode="xb")
    w("h", id="x", call="write", args=[encode(data(20, 2 * B))])
    w("close", id="x")
    expected["/new/exclusive.bin"] = data(20, 2 * B)
    w("open", id="txt", path="/new/notes.txt", mode="w")
    w("h", id="txt", call="write", args=["ünïcode line\n"])
    w("close", id="txt")
    expected["/new/notes.txt"] = "ünïcode line\n".encode()
    # ... and changes on the second filespace of the same daemon (the partial one first).
    w("open", id="bp", path="/big-base.bin", mode="r+b", fs="big")
    w("h", id="bp", call="seek", args=[4 * 1024 * 1024 - 1])
    w("h", id="bp", call="write", args=[encode(b"XY")])
    w("close", id="bp")
    big_patched = bytearray(data(13, 5 * 1024 * 1024 + 7))
    big_patched[4 * 1024 * 1024 - 1 : 4 * 1024 * 1024 + 1] = b"XY"
    big_new = data(30, 9 * 1024 * 1024 + 1)
    w.write("/big-new.bin", big_new, fs="big")

    pending = w("pending")
    assert pending == 6 + 3 + 1, pending  # one journalled record per closed, uncommitted change
    w.kill()

    # The hub has the partial updates and none of the rest.
    before = _hub_view(sdk_hub)
    landed = {p: expected[p] for p in ("/base/patched.bin", "/base/appended.log", "/base/truncated.bin")}
    assert before["small"] == {**committed["small"], **landed}, "whole-file changes reached the hub early"
    assert before["big"] == {"/big-base.bin": bytes(big_patched)}
    state = root / ".lucid"
    assert len(list((state / "pending").glob("*.json"))) == pending
    assert any((state / "staging").iterdir())

    # A new process on the same root resumes the journal when it links the filespaces.
    w2 = workers("resumed", **{**setup, "config": {}})
    w2("sync")
    for path, content in expected.items():
        assert w2("sha", path=path) == hashlib.sha256(content).hexdigest(), path
    assert w2("sha", path="/big-new.bin", fs="big") == hashlib.sha256(big_new).hexdigest()
    assert w2("sha", path="/big-base.bin", fs="big") == hashlib.sha256(big_patched).hexdigest()
    assert w2("pending") == 0
    w2.stop()
    assert list((state / "pending").glob("*.json")) == []
    assert list((state / "staging").iterdir()) == []
    assert state.is_dir()  # persist_files keeps the state dir

    after = _hub_view(sdk_hub)  # and every other client sees it all
    assert after["small"] == expected
    assert after["big"] == {"/big-base.bin": bytes(big_patched), "/big-new.bin": big_new}


# -- hygiene ---------------------------------------------------------------------------

NOISY = """
import socket
import lucidlink
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
with lucidlink.create_daemon(hub_url=f"http://127.0.0.1:{port}", config={"hub.retries": "2"}) as d:
    try:
        d.authenticate(lucidlink.ServiceAccountCredentials(token="sa_live:abcdef12:" + "x" * 40))
    except lucidlink.DaemonError:
        pass
print("the program's own output")
"""


def test_the_sdk_prints_nothing_on_stdout() -> None:
    out = subprocess.run([sys.executable, "-c", NOISY], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "the program's own output\n"
