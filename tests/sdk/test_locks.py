"""File locks across real OS processes: each worker is its own daemon (its own session).

Times are ``time.monotonic()``: on Linux one clock for every process of the machine,
and never set back (a wall-clock step made a worker's ``closed`` come 5 ms before its
``acquired``).

The workers (``tests/support/lockworker.py``) are driven over stdin/stdout with JSON lines and
report times and fencing tokens, so the assertions below are about order
and overlap, never about speed (except for generous upper bounds on lease expiry and
lock timeouts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest

import lucidlink.aio
from lucidlink.exceptions import (
    ConfigurationError,
    LeaseExpiredError,
    LockConflictError,
    LockError,
    LockTimeoutError,
    LucidLinkError,
    ReadOnlyError,
)
from lucidlink.hub.embedded import EmbeddedHub

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().parents[1] / "support" / "lockworker.py"
FS = "locks"
SHORT_LEASE = 2.0
"""The lease of the hub of the expiry tests; daemons renew every third of it."""
LONG_LEASE = 15.0
"""The lease of the other tests' hub: long enough that a loaded machine never loses one."""
EVENT_TIMEOUT = 60.0


@attrs.frozen
class LockHub:
    """An embedded hub with filespace ``locks`` and a read-write and a read-only token."""

    hub: EmbeddedHub
    url: str
    token: str
    read_only_token: str
    lease: float
    fs_id: str

    def get(self, route: str, **params: str) -> Any:
        """GET a hub route with the read-write token; the decoded JSON body."""
        url = f"{self.url}{route}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def locks(self, path: str) -> list[dict[str, Any]]:
        """``GET /v1/filespaces/{fs}/locks?path=...``: who holds and who waits."""
        return list(self.get(f"/v1/filespaces/{self.fs_id}/locks", path=path)["locks"])

    def sdk(self, fn: Callable[[Any], Awaitable[Any]], token: str | None = None) -> Any:
        """Run ``fn(fs)`` with a fresh in-process daemon linked to the filespace."""

        async def go() -> Any:
            async with lucidlink.aio.create_daemon(hub_url=self.url) as daemon:
                ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=token or self.token))
                async with ws.link_filespace(name=FS) as filespace:
                    return await fn(filespace.fs)

        return asyncio.run(go())

    def put(self, path: str, data: bytes) -> None:
        async def put(fs: Any) -> None:
            await fs.write_file(path, data)

        self.sdk(put)

    def read(self, path: str) -> bytes:
        async def read(fs: Any) -> bytes:
            return bytes(await fs.read_file(path))

        return bytes(self.sdk(read))


def _start_hub(data_dir: Path, lease: float) -> tuple[EmbeddedHub, LockHub]:
    hub = EmbeddedHub(data_dir, lease_seconds=lease, gc_interval_seconds=3600).start()
    token = hub.init("demo", [FS], block_size=64 * 1024, admin=True)
    read_only = hub.init("demo", [], read_only=True)
    lh = LockHub(hub, hub.url, token, read_only, lease, "")
    fs_id = next(f["id"] for f in lh.get("/v1/filespaces")["filespaces"] if f["name"] == FS)
    return hub, attrs.evolve(lh, fs_id=fs_id)


@pytest.fixture
def short_hub(tmp_path: Path) -> Iterator[LockHub]:
    """A hub whose leases last 2 s, for the expiry tests."""
    hub, lh = _start_hub(tmp_path / "hub-short", SHORT_LEASE)
    try:
        yield lh
    finally:
        hub.stop()


@pytest.fixture
def long_hub(tmp_path: Path) -> Iterator[LockHub]:
    """A hub with long leases, for the tests about order and exclusion."""
    hub, lh = _start_hub(tmp_path / "hub-long", LONG_LEASE)
    try:
        yield lh
    finally:
        hub.stop()


class Worker:
    """A ``lockworker.py`` child process: send commands, wait for its events."""

    def __init__(self, hub: LockHub, log_dir: Path, name: str, *flags: str, token: str | None = None) -> None:
        self.name = name
        self.stderr_path = log_dir / f"worker-{name}.stderr"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), hub.url, token or hub.token, FS, *flags],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1,
            cwd=REPO,
        )
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name=f"lockworker-{name}", daemon=True)
        self._reader.start()
        self.info: dict[str, Any] = {}

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                pass  # not an event (a stray print); the worker logs to stderr
        self.events.put(None)

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def stderr_tail(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")[-3000:]

    def next_event(self, timeout: float = EVENT_TIMEOUT) -> dict[str, Any] | None:
        """The next event, or ``None`` if none comes within ``timeout`` (or the process ended)."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def expect(self, *names: str, timeout: float = EVENT_TIMEOUT) -> dict[str, Any]:
        """The next event, which must be one of ``names``."""
        event = self.next_event(timeout)
        if event is None or event["event"] not in names:
            raise AssertionError(
                f"worker {self.name}: expected {names}, got {event!r}\n--- stderr ---\n{self.stderr_tail()}"
            )
        return event

    def assert_quiet(self, seconds: float) -> None:
        """No event for ``seconds``."""
        event = self.next_event(seconds)
        assert event is None, f"worker {self.name} reported {event!r} too early"

    def ready(self) -> Worker:
        self.info = self.expect("ready", timeout=EVENT_TIMEOUT)
        return self

    def stop(self) -> None:
        """Ask the worker to exit; kill it if it does not; close the pipes."""
        try:
            if self.proc.poll() is None:
                with _suppress_pipe_errors():
                    self.send(op="exit")
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    with _suppress_pipe_errors():
                        pipe.close()
            self._reader.join(timeout=5)
            self._stderr.close()


class _suppress_pipe_errors:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return exc_type is not None and issubclass(exc_type, (OSError, ValueError))


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., list[Worker]]]:
    """``spawn(hub, n, *flags, token=None)`` starts ``n`` workers in parallel and waits until all are ready."""
    started: list[Worker] = []

    def spawn(hub: LockHub, n: int = 1, *flags: str, token: str | None = None) -> list[Worker]:
        workers = [Worker(hub, tmp_path, f"{len(started) + i}", *flags, token=token) for i in range(n)]
        started.extend(workers)
        return [w.ready() for w in workers]

    yield spawn
    for w in started:
        w.stop()


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def lock_of(hub: LockHub, path: str, worker: Worker, state: str) -> dict[str, Any] | None:
    """The worker's lock (or request) on ``path`` in the given state, from the hub's route."""
    return next((r for r in hub.locks(path)
                 if r["session_id"] == worker.info["session"] and r["state"] == state), None)


# -- 1. mutual exclusion -------------------------------------------------------------------------------------------


def test_counter_four_processes_exclusive_increments(long_hub: LockHub, spawn: Any) -> None:
    long_hub.put("/counter", b"0")
    workers = spawn(long_hub, 4)
    for w in workers:
        w.send(op="count", path="/counter", n=50)
    results = [w.expect("counted", timeout=180) for w in workers]
    assert long_hub.read("/counter") == b"200"
    # Every increment read the value the previous grant (by fencing token) left:
    # the tokens order the critical sections, and no two of them overlapped.
    steps = sorted(tuple(s) for r in results for s in r["steps"])
    assert [value for _, value in steps] == list(range(200))
    assert len({token for token, _ in steps}) == 200
    assert long_hub.locks("/counter") == []


# -- 2. shared locks overlap; waiters are served in arrival order --------------------------------------------------


def test_shared_locks_are_held_at_the_same_time(long_hub: LockHub, spawn: Any) -> None:
    long_hub.put("/shared", b"read me")
    workers = spawn(long_hub, 3)
    for w in workers:
        w.send(op="open", path="/shared", mode="rb", lock="shared", timeout=30)
    granted = []
    for w in workers:
        w.expect("requesting")
        granted.append(w.expect("acquired"))
    # Each holder waits, while holding, until the hub lists all three as holders.
    for w in workers:
        w.send(op="wait_holders", path="/shared", n=3)
    for w in workers:
        w.expect("holders")
    assert sorted(r["mode"] for r in long_hub.locks("/shared")) == ["shared"] * 3
    for w in workers:
        w.send(op="close")
    closed = [w.expect("closed") for w in workers]
    # The intervals [acquired, closed] of all three holders share a common stretch.
    assert max(g["t"] for g in granted) < min(c["t"] for c in closed)
    assert len({g["token"] for g in granted}) == 3


def test_exclusive_waiter_goes_before_later_shared_requests(long_hub: LockHub, spawn: Any) -> None:
    long_hub.put("/fifo", b"x")
    a, b, c = spawn(long_hub, 3)
    a.send(op="open", path="/fifo", mode="rb", lock="shared")
    a.expect("requesting")
    token_a = a.expect("acquired")["token"]

    b.send(op="open", path="/fifo", mode="r+b", lock="exclusive", timeout=60)
    b.expect("requesting")
    wait_for(lambda: lock_of(long_hub, "/fifo", b, "waiting"), what="B's exclusive request to be queued")

    c.send(op="open", path="/fifo", mode="rb", lock="shared", timeout=60)
    c.expect("requesting")
    waiting_c = wait_for(lambda: lock_of(long_hub, "/fifo", c, "waiting"), what="C's shared request")
    # C's shared request is compatible with A's shared lock, yet it waits behind B.
    b_row = lock_of(long_hub, "/fifo", b, "waiting")
    assert b_row is not None and b_row["token"] < waiting_c["token"]
    assert lock_of(long_hub, "/fifo", c, "held") is None
    c.assert_quiet(0.5)
    b.assert_quiet(0.0)

    a.send(op="close")
    a.expect("closed")
    got_b = b.expect("acquired")
    c.assert_quiet(0.5)  # B holds it exclusively: C still waits
    # C may be granted before B's worker reports "closed" (the hub releases B's lock
    # before B's close returns), never before B was asked to close.
    closing_b = time.monotonic()
    b.send(op="close")
    b.expect("closed")
    got_c = c.expect("acquired")
    assert token_a < got_b["token"] < got_c["token"]
    assert got_b["t"] <= closing_b <= got_c["t"]
    c.send(op="close")
    c.expect("closed")


# -- 3. a killed holder's lock lapses with its lease ---------------------------------------------------------------


def test_killed_holder_lock_expires_within_lease(short_hub: LockHub, spawn: Any) -> None:
    lease = short_hub.lease
    short_hub.put("/victim", b"v")
    holder, waiter = spawn(short_hub, 2)
    holder.send(op="open", path="/victim", mode="r+b", lock="exclusive")
    holder.expect("requesting")
    holder.expect("acquired")
    waiter.send(op="open", path="/victim", mode="r+b", lock="exclusive", timeout=60)
    waiter.expect("requesting")
    wait_for(lambda: lock_of(short_hub, "/victim", waiter, "waiting"), what="the waiter's request")
    # While the holder lives its daemon renews the lease: longer than a lease passes
    # and the waiter still waits.
    waiter.assert_quiet(lease + 0.5)
    assert lock_of(short_hub, "/victim", holder, "held") is not None

    killed_at = time.monotonic()
    holder.proc.send_signal(signal.SIGKILL)
    holder.proc.wait(timeout=10)
    got = waiter.expect("acquired", timeout=lease + 30)
    waited = got["t"] - killed_at
    assert 0 < waited < lease + lease / 3 + 2.0, f"took {waited:.2f} s after the kill (lease {lease} s)"
    assert lock_of(short_hub, "/victim", waiter, "held") is not None
    waiter.send(op="close")
    waiter.expect("closed")


# -- 4. a writer paused past its lease cannot commit --------------------------------------------------------------


@pytest.mark.parametrize("check", ["client", "hub"])
def test_writer_paused_past_its_lease_is_refused(short_hub: LockHub, spawn: Any, check: str) -> None:
    """SIGSTOP a writer holding the lock, let another take it and write, SIGCONT the first.

    ``client``: the SDK notices the lapsed lease itself; ``hub``: with that check turned
    off in the worker, the change reaches the hub, whose fencing refuses it.
    """
    lease = short_hub.lease
    short_hub.put("/fenced", b"original")
    (paused,) = spawn(short_hub, 1, *(["--no-client-check"] if check == "hub" else []))
    (other,) = spawn(short_hub, 1)
    paused.send(op="open", path="/fenced", mode="r+b", lock="exclusive")
    paused.expect("requesting")
    paused.expect("acquired")
    paused.send(op="write", data="PAUSED WRITER")
    paused.expect("wrote")

    stopped_at = time.monotonic()
    paused.proc.send_signal(signal.SIGSTOP)
    try:
        other.send(op="open", path="/fenced", mode="wb", lock="exclusive", timeout=60)
        other.expect("requesting")
        got = other.expect("acquired", timeout=lease + 30)
        assert got["t"] - stopped_at > lease / 3, "the lock was granted while its lease should still run"
        other.send(op="write", data="other writer")
        other.expect("wrote")
        other.send(op="close")
        other.expect("closed")
        time.sleep(max(0.0, stopped_at + lease + 1.0 - time.monotonic()))  # paused for more than a lease
    finally:
        paused.proc.send_signal(signal.SIGCONT)

    paused.send(op="write", data=" and more")
    wrote = paused.expect("wrote", "error")
    paused.send(op="close")
    closed = paused.expect("closed", "error")
    if check == "client":
        assert wrote["event"] == "error" and wrote["type"] == "LeaseExpiredError", wrote
    else:
        assert wrote["event"] == "wrote"
    assert closed["event"] == "error" and closed["type"] == "LeaseExpiredError", closed
    assert "/fenced" in closed["message"]
    assert "LockError" in closed["types"] and "LucidLinkError" in closed["types"]
    paused.send(op="exit")
    paused.expect("bye", "exit_error")
    assert short_hub.read("/fenced") == b"other writer"


# -- 5. timeouts ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [0, 0.5])
def test_lock_timeout(long_hub: LockHub, spawn: Any, timeout: float) -> None:
    long_hub.put("/busy", b"b")
    (holder,) = spawn(long_hub, 1)
    holder.send(op="open", path="/busy", mode="r+b", lock="exclusive")
    holder.expect("requesting")
    holder.expect("acquired")

    async def attempt(fs: Any) -> list[tuple[BaseException, float]]:
        out = []
        for mode, lock in (("r+b", "exclusive"), ("rb", "shared")):
            started = time.monotonic()
            try:
                async with fs.open("/busy", mode, lock_type=lock, lock_timeout=timeout):
                    pass
            except Exception as exc:
                out.append((exc, time.monotonic() - started))
            else:
                raise AssertionError(f"a {lock} lock was granted while another daemon holds it exclusively")
        return out

    for err, elapsed in long_hub.sdk(attempt):
        assert isinstance(err, LockTimeoutError), repr(err)
        assert isinstance(err, TimeoutError) and isinstance(err, LucidLinkError)
        assert timeout <= elapsed < 5.0
        assert "/busy" in str(err)
        assert holder.info["client"] in str(err) and "exclusive" in str(err)
    # The abandoned requests were withdrawn: only the holder is left.
    rows = long_hub.locks("/busy")
    assert [(r["session_id"], r["state"]) for r in rows] == [(holder.info["session"], "held")]
    holder.send(op="close")
    holder.expect("closed")


# -- 6. the API's edges, in one process ----------------------------------------------------------------------------


def test_lock_api_in_process(long_hub: LockHub) -> None:
    async def scenario(fs: Any) -> None:
        await fs.write_file("/doc", b"keep me")
        await fs.create_dir("/dir")
        with pytest.raises(ConfigurationError) as bad:
            await fs.open("/doc", "rb", lock_type="writer")
        assert isinstance(bad.value, ValueError)
        with pytest.raises(IsADirectoryError):
            await fs.open("/dir", "rb", lock_type="shared")
        with pytest.raises(IsADirectoryError):
            await fs.open("/dir", "r+b", lock_type="exclusive")
        with pytest.raises(FileNotFoundError):
            await fs.open("/missing", "rb", lock_type="shared")
        assert await fs.get_locks("/missing") == []  # the refused request left nothing behind

        # A file can be locked before it exists, and created under the lock.
        async with fs.open("/new", "xb", lock_type="exclusive") as f:
            await f.write(b"created under the lock")
        assert await fs.read_file("/new") == b"created under the lock"

        async with fs.open("/doc", "r+b", lock_type="exclusive") as f:
            assert f.lock_token is not None
            (info,) = await fs.get_locks("/doc")
            assert (info.path, info.mode, info.state, info.token) == ("/doc", "exclusive", "held", f.lock_token)
            assert info.session_id == fs._link.session_id
            assert info.client.startswith("lucidlink-python daemon")
            assert [x.path for x in await fs.get_locks()] == ["/doc"]
            (row,) = await asyncio.to_thread(long_hub.locks, "/doc")
            assert (row["mode"], row["state"], row["token"], row["session_id"]) == (
                "exclusive", "held", f.lock_token, info.session_id)

            # A commit without a session (or from another session) is refused while
            # this session holds the file exclusively; the file is unchanged.
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{long_hub.url}/v1/filespaces/{long_hub.fs_id}/commit",
                                     json={"path": "/doc", "size": 0, "blocks": []},
                                     headers={"Authorization": f"Bearer {long_hub.token}"}) as resp:
                    body = await resp.json()
                    assert resp.status == 409, body
                    assert body["error"]["code"] == "lock_conflict"
            assert await f.read() == b"keep me"
            await f.seek(0, 2)
            await f.write(b", and me")
        assert await fs.get_locks("/doc") == []
        assert await fs.read_file("/doc") == b"keep me, and me"

        async with fs.open("/doc", "rb", lock_type="shared") as f1, fs.open("/doc", "rb", lock_type="shared") as f2:
            assert await f1.read() == await f2.read() == b"keep me, and me"
            assert [x.mode for x in await fs.get_locks("/doc")] == ["shared", "shared"]

    long_hub.sdk(scenario)

    async def read_only(fs: Any) -> None:
        with pytest.raises(PermissionError) as denied:
            await fs.open("/doc", "r+b", lock_type="exclusive")
        assert isinstance(denied.value, ReadOnlyError)
        with pytest.raises(PermissionError):
            await fs.open("/doc", "rb", lock_type="exclusive")
        async with fs.open("/doc", "rb", lock_type="shared") as f:  # reading under a shared lock is fine
            assert await f.read() == b"keep me, and me"
        # The hub refuses too, whatever the client does.
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{long_hub.url}/v1/filespaces/{long_hub.fs_id}/locks",
                                 json={"path": "/doc", "mode": "exclusive"},
                                 headers={"Authorization": f"Bearer {long_hub.read_only_token}",
                                          "X-Lucid-Session": fs._link.session_id}) as resp:
                body = await resp.json()
                assert resp.status == 403 and body["error"]["code"] == "read_only", body

    long_hub.sdk(read_only, token=long_hub.read_only_token)


def test_lock_error_classes() -> None:
    assert issubclass(LeaseExpiredError, LockError) and issubclass(LockTimeoutError, LockError)
    assert issubclass(LockError, LucidLinkError)
    assert issubclass(LockTimeoutError, TimeoutError) and issubclass(LockTimeoutError, LucidLinkError)


# -- nobody walks through a lock (issue 10) ------------------------------------------------------------------------
# The user's report, replayed with the blocking SDK in separate processes: one holds
# /locked.txt exclusively; another, with the same token, deletes and moves it through
# plain fs.delete / fs.move; a third, with another token of the workspace, truncates it
# by sending the holder's session id.


def hold(worker: Worker, path: str, lock: str = "exclusive") -> None:
    """The worker opens ``path`` (``r+b``) under a lock and keeps it open."""
    worker.send(op="open", path=path, mode="r+b", lock=lock)
    worker.expect("requesting")
    worker.expect("acquired")


def refused_with(event: dict[str, Any], cls: type[BaseException]) -> str:
    """The worker's ``error`` event for a refusal of class ``cls``; its message."""
    assert event["event"] == "error" and cls.__name__ in event["types"], event
    return str(event["message"])


def test_another_process_cannot_delete_or_move_an_exclusively_locked_file(long_hub: LockHub, spawn: Any) -> None:
    long_hub.put("/locked.txt", b"precious")
    holder, other = spawn(long_hub, 2, "--blocking")
    hold(holder, "/locked.txt")
    for cmd in ({"op": "delete", "path": "/locked.txt"}, {"op": "move", "src": "/locked.txt", "dst": "/away.txt"},
                {"op": "truncate", "path": "/locked.txt", "size": 0},
                {"op": "write_file", "path": "/locked.txt", "data": "overwritten"}):
        other.send(**cmd)
        event = other.expect("error", "deleted", "moved", "truncated", "written")
        message = refused_with(event, LockConflictError)
        assert "PermissionError" in event["types"], event
        assert "/locked.txt" in message and "locked" in message, message
        assert holder.info["session"] not in message, message
    other.send(op="read", path="/locked.txt")
    assert other.expect("read")["data"] == "precious"
    assert [r["session_id"] for r in long_hub.locks("/locked.txt")] == [holder.info["session"]]
    # Once the holder lets go, the same delete goes through.
    holder.send(op="close")
    holder.expect("closed")
    other.send(op="delete", path="/locked.txt")
    other.expect("deleted")


def test_another_token_cannot_act_with_a_stolen_session_id(long_hub: LockHub, spawn: Any) -> None:
    long_hub.put("/locked.txt", b"precious")
    [holder] = spawn(long_hub, 1, "--blocking")
    hold(holder, "/locked.txt")
    [thief] = spawn(long_hub, 1, "--blocking", token=long_hub.hub.init("demo", []))
    base = f"/v1/filespaces/{long_hub.fs_id}"
    # The listing no longer shows another token's session ids...
    thief.send(op="raw", method="GET", route=f"{base}/locks?path=/locked.txt", json=None, session=None)
    listed = thief.expect("raw")
    assert listed["status"] == 200 and [(r["mode"], r["session_id"], r["lock_id"]) for r in listed["body"]["locks"]] \
        == [("exclusive", None, None)], listed
    # ...and one learnt elsewhere (it is in the change journal, for one) acts for nobody else.
    stolen = holder.info["session"]
    for route, body in ((f"{base}/truncate", {"path": "/locked.txt", "size": 0}),
                        (f"{base}/delete", {"path": "/locked.txt"}),
                        (f"{base}/move", {"src": "/locked.txt", "dst": "/away.txt"}),
                        (f"/v1/sessions/{stolen}/heartbeat", None)):
        thief.send(op="raw", method="POST", route=route, json=body, session=stolen)
        answer = thief.expect("raw")
        assert answer["status"] == 403 and answer["body"]["error"]["code"] == "permission_denied", answer
        assert stolen not in json.dumps(answer["body"]), answer
    # With its own session it is one more writer the lock refuses.
    thief.send(op="truncate", path="/locked.txt", size=0)
    refused_with(thief.expect("error", "truncated"), LockConflictError)
    thief.send(op="read", path="/locked.txt")
    assert thief.expect("read")["data"] == "precious"
    assert [r["session_id"] for r in long_hub.locks("/locked.txt")] == [stolen]


def test_a_lock_follows_its_file_and_ends_with_it(long_hub: LockHub, spawn: Any) -> None:
    long_hub.put("/a.txt", b"a")
    holder, other = spawn(long_hub, 2, "--blocking")
    hold(holder, "/a.txt")
    holder.send(op="move", src="/a.txt", dst="/b.txt")
    holder.expect("moved")
    assert long_hub.locks("/a.txt") == []
    assert [(r["session_id"], r["state"]) for r in long_hub.locks("/b.txt")] == [(holder.info["session"], "held")]
    # Another process cannot write the file at its new path; the old path is free.
    other.send(op="write_file", path="/b.txt", data="not yours")
    refused_with(other.expect("error", "written"), LockConflictError)
    other.send(op="write_file", path="/a.txt", data="a new a")
    other.expect("written")
    # Deleting the file ends its lock: the path is anyone's again.
    holder.send(op="delete", path="/b.txt")
    holder.expect("deleted")
    assert long_hub.locks("/b.txt") == []
    other.send(op="write_file", path="/b.txt", data="a new b")
    other.expect("written")
    holder.send(op="close")
    holder.expect("closed")
    assert long_hub.read("/b.txt") == b"a new b" and long_hub.read("/a.txt") == b"a new a"


# -- regressions ---------------------------------------------------------------------------------------------------


async def _linked(hub: LockHub, stack: contextlib.AsyncExitStack, token: str | None = None) -> Any:
    daemon = await stack.enter_async_context(lucidlink.aio.create_daemon(hub_url=hub.url))
    ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=token or hub.token))
    return await stack.enter_async_context(ws.link_filespace(name=FS))


@pytest.mark.asyncio
async def test_cancelled_wait_leaves_no_lock_behind(long_hub: LockHub) -> None:
    """A wait cancelled from outside (``asyncio.wait_for``) must not leave a request, or a
    lock granted to nobody and kept alive by the waiter's heartbeats, on the hub."""
    async with contextlib.AsyncExitStack() as stack:
        a, b = await _linked(long_hub, stack), await _linked(long_hub, stack)
        await a.fs.write_file("/cancel", b"c")
        holder = await a.fs.open("/cancel", "r+b", lock_type="exclusive")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(b.fs.open("/cancel", "r+b", lock_type="exclusive", lock_timeout=None), 0.5)

        async def only_holder() -> bool:
            return [x.session_id for x in await a.fs.get_locks("/cancel")] == [a._link.session_id]

        deadline = time.monotonic() + 5
        while not await only_holder():
            assert time.monotonic() < deadline, await a.fs.get_locks("/cancel")
            await asyncio.sleep(0.05)
        await holder.close()
        await asyncio.sleep(0.5)
        assert await a.fs.get_locks("/cancel") == []
        async with a.fs.open("/cancel", "r+b", lock_type="exclusive", lock_timeout=0):
            pass


@pytest.mark.asyncio
async def test_a_session_cannot_poll_or_withdraw_another_sessions_request(long_hub: LockHub) -> None:
    base = f"{long_hub.url}/v1/filespaces/{long_hub.fs_id}"
    auth = {"Authorization": f"Bearer {long_hub.token}"}
    async with aiohttp.ClientSession() as http:
        sessions = []
        for client in ("one", "two", "three"):
            async with http.post(f"{base}/sessions", json={"client": client}, headers=auth) as resp:
                sessions.append((await resp.json())["session_id"])

        async def lock(sid: str, **body: Any) -> tuple[int, Any]:
            async with http.post(f"{base}/locks", json={"path": "/owned", "mode": "exclusive", **body},
                                 headers={**auth, "X-Lucid-Session": sid}) as resp:
                return resp.status, await resp.json()

        status, held = await lock(sessions[0])
        assert status == 200 and held["state"] == "held"
        status, waiting = await lock(sessions[1])
        assert status == 202 and waiting["state"] == "waiting"
        # Session three re-polls two's request by its id (it is in the listing): it gets
        # a request of its own, behind two's, not two's place, nor one's lock.
        status, polled = await lock(sessions[2], lock_id=waiting["lock_id"])
        assert status == 202 and polled["lock_id"] != waiting["lock_id"]
        status, polled = await lock(sessions[2], lock_id=held["lock_id"])
        assert status == 202 and polled["lock_id"] != held["lock_id"]
        # Nor can it withdraw two's request.
        async with http.delete(f"{base}/locks/{waiting['lock_id']}", params={"timeout": "1", "path": "/owned"},
                               headers={**auth, "X-Lucid-Session": sessions[2]}) as resp:
            assert resp.status == 409 and (await resp.json())["error"]["code"] == "lock_timeout"
        rows = await asyncio.to_thread(long_hub.locks, "/owned")
        assert [r["lock_id"] for r in rows if r["session_id"] == sessions[1]] == [waiting["lock_id"]]
        assert [r["state"] for r in rows if r["session_id"] == sessions[0]] == ["held"]


@pytest.mark.asyncio
async def test_lost_lock_change_is_dropped_not_reported_later(long_hub: LockHub) -> None:
    async with contextlib.AsyncExitStack() as stack:
        filespace = await _linked(long_hub, stack)
        fs = filespace.fs
        await fs.write_file("/a", b"a0")
        await fs.write_file("/b", b"b0")
        f = await fs.open("/a", "r+b", lock_type="exclusive")
        await f.write(b"A1")
        f._lock.granted_at -= 1000  # the SDK now believes the lease lapsed
        filespace._link.lease.renewed -= 1000
        with pytest.raises(LeaseExpiredError):
            await f.close()
        async with fs.open("/b", "r+b", lock_type="exclusive") as g:
            await g.write(b"B1")  # its close must not report /a's refusal
        assert await fs.read_file("/a") == b"a0"
        assert await fs.read_file("/b") == b"B1"


# -- the example ---------------------------------------------------------------------------------------------------


def test_file_locking_example_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lucidlink", "hub", "embedded", "--", sys.executable, "examples/file_locking.py"],
        cwd=REPO, timeout=120, capture_output=True, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "final count" in proc.stdout
