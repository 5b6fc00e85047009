"""The hub is SIGKILLed and restarted, again and again, under a writer: nothing closed is lost.

The hub runs as its own process (``lucidlink hub serve``, on a fixed free port so it
comes back where the client expects it), on SQLite and on PostgreSQL. A writer process
(``tests/support/faultworker.py``, the blocking SDK) keeps writing files of random sizes,
closing them and calling ``sync_all()``; it records each file after ``close()``
returned and each acknowledgement after a ``sync_all()`` returned. Meanwhile the test
kills the hub every 1-3 s and restarts it. At the end the writer syncs once more (the
hub is up) and stops. Then, through a client connected to the hub:

* every acknowledged file, and every file closed before the last successful
  ``sync_all()``, is present with the bytes last written to it (SHA-256);
* nothing is torn: a file's bytes are always one of the versions written to it;
* every write landed once: a path's create/modify journal entries number at least one
  and at most the times it was written (exactly one for a path written once);
* ``sync_all()`` only ever failed with "the hub did not answer in time" errors
  (``TimeoutError``, ``HubUnavailableError``), and ``write``/``close`` never failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import pytest

import lucidlink
from tests.support.ports import free_port

BLOCK = 64 * 1024
FILESPACE = "small"
LUCIDLINK = str(Path(sys.executable).with_name("lucidlink"))
WORKER = str(Path(__file__).resolve().parents[1] / "support" / "faultworker.py")
WORKER_CONFIG = {"fs.sync.timeout": 3, "hub.timeout": 5, "fs.flush.delay_ms": 50}
CI_SECONDS = 12.0
SOAK_SECONDS = 75.0
FINAL_TIMEOUT = 120.0
TRANSIENT = {"TimeoutError", "HubUnavailableError", "ConnectionError"}
"""``sync_all`` may fail with these (named in the error's MRO) while the hub is down."""


class HubProcess:
    """``lucidlink hub serve`` as a child process that can be SIGKILLed and restarted."""

    def __init__(self, data_dir: Path, metadata_url: str | None, log_path: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._store = ["--metadata-url", metadata_url] if metadata_url else []
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in close()
        self._log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.starts = 0

    def init(self) -> str:
        """Create workspace ``demo`` with filespace ``small`` (64 KiB blocks); return the token."""
        out = subprocess.run(
            [
                LUCIDLINK,
                "hub",
                "init",
                "--data-dir",
                str(self.data_dir),
                "--workspace",
                "demo",
                "--filespace",
                FILESPACE,
                "--block-size",
                str(BLOCK),
                *self._store,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return out.stdout.strip().splitlines()[-1]

    def start(self) -> None:
        """Start serving on the same port as before; return once /healthz answers."""
        for attempt in range(20):
            self.proc = subprocess.Popen(
                [
                    LUCIDLINK,
                    "hub",
                    "serve",
                    "--data-dir",
                    str(self.data_dir),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    *self._store,
                ],
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            self.starts += 1
            if self._wait_healthy():
                return
            # It exited (the port may still be held a moment after a kill): try again.
            time.sleep(0.2 * (attempt + 1))
        raise AssertionError(f"the hub would not start on port {self.port}: {self.log_tail()}")

    def _wait_healthy(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the hub did not become healthy in 60 s: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self.kills += 1

    def close(self) -> None:
        """Stop the hub (politely, then not) and close its log."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self._log.close()

    def log_tail(self) -> str:
        self._log.flush()
        return self._log_path.read_text(errors="replace")[-3000:]

    def get(self, path: str, token: str, **params: str) -> Any:
        """A JSON GET straight to the hub."""
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)


@attrs.define
class Record:
    """The writer's log, read back."""

    closed: list[dict[str, Any]] = attrs.Factory(list)
    acks: list[dict[str, Any]] = attrs.Factory(list)
    sync_failures: Counter[str] = attrs.Factory(Counter)
    unexpected_sync_failures: list[str] = attrs.Factory(list)
    open_retries: Counter[str] = attrs.Factory(Counter)
    write_failures: list[str] = attrs.Factory(list)
    other: Counter[str] = attrs.Factory(Counter)

    @classmethod
    def read(cls, path: Path) -> Record:
        rec = cls()
        for line in path.read_text().splitlines():
            event = json.loads(line)
            kind = event["ev"]
            if kind == "closed":
                rec.closed.append(event)
            elif kind == "ack":
                rec.acks.append(event)
            elif kind == "sync_failed":
                rec.sync_failures[event["error"]] += 1
                if not TRANSIENT & set(event["types"]):
                    rec.unexpected_sync_failures.append(f"{event['error']}: {event['message']}")
            elif kind == "open_retry":
                rec.open_retries[event["error"]] += 1
            elif kind == "write_failed":
                rec.write_failures.append(f"{event['path']}: {event['error']}: {event['message']}")
            else:
                rec.other[kind] += 1
        return rec


@attrs.frozen
class Verdict:
    lost: list[str]
    torn: list[str]
    not_once: list[str]
    acked_mid_run: int
    acked: int


def verify(hub: HubProcess, token: str, rec: Record) -> Verdict:
    """Compare what the hub holds with what the writer recorded."""
    acked = max((a["closed"] for a in rec.acks), default=0)
    acked_mid_run = max((a["closed"] for a in rec.acks if not a["final"]), default=0)
    writes: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for event in rec.closed:
        writes[event["path"]].append((event["i"], event["sha256"]))

    actual: dict[str, str | None] = {}
    with lucidlink.create_daemon(hub_url=hub.url) as daemon:
        workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=token))
        with workspace.link_filespace(name=FILESPACE) as filespace:
            fs_id = filespace.id
            for path in sorted(writes):
                try:
                    actual[path] = hashlib.sha256(filespace.fs.read_file(path)).hexdigest()
                except FileNotFoundError:
                    actual[path] = None

    lost: list[str] = []
    torn: list[str] = []
    for path, versions in sorted(writes.items()):
        got = actual[path]
        known = {sha for _, sha in versions}
        before = [sha for i, sha in versions if i < acked]
        after = {sha for i, sha in versions if i >= acked}
        if got is not None and got not in known:
            torn.append(f"{path}: {got[:12]} was never written to it")
        elif before and got != before[-1] and got not in after:
            state = "missing" if got is None else "an older version"
            lost.append(f"{path}: {state}, not the last version closed before the last sync_all")

    entries: list[dict[str, Any]] = []
    since = 0
    while True:
        body = hub.get(f"/v1/filespaces/{fs_id}/changes", token, since=str(since), limit="10000")
        entries += body["changes"]
        if not body["more"]:
            break
        since = int(body["changes"][-1]["seq"])
    landed = Counter(e["path"] for e in entries if e["op"] in ("create", "modify"))
    not_once = [
        f"{p}: {landed[p]} journal entries for {len(v)} write(s)"
        for p, v in sorted(writes.items())
        if not 1 <= landed[p] <= len(v)
    ]
    return Verdict(lost, torn, not_once, acked_mid_run, acked)


@pytest.fixture
def hub_process(tmp_path: Path, metadata_url: str | None) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path / "hub", metadata_url, tmp_path / "hub.log")
    try:
        yield hub
    finally:
        hub.close()


def run_kill_loop(hub: HubProcess, tmp_path: Path, seconds: float) -> None:
    token = hub.init()
    hub.start()
    log_path, stop = tmp_path / "writer.log", tmp_path / "writer.stop"
    setup = {
        "hub_url": hub.url,
        "token": token,
        "log": str(log_path),
        "stop": str(stop),
        "seed": random.randrange(1 << 30),
        "block_size": BLOCK,
        "config": WORKER_CONFIG,
        "final_timeout": FINAL_TIMEOUT,
    }
    with open(tmp_path / "writer.stderr", "wb") as err:
        writer = subprocess.Popen(
            [sys.executable, WORKER, json.dumps(setup)],
            stdout=err,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            rng = random.Random()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                time.sleep(rng.uniform(1.0, 3.0))
                assert writer.poll() is None, (
                    f"the writer died: {(tmp_path / 'writer.stderr').read_text()[-3000:]}"
                )
                hub.kill()
                time.sleep(rng.uniform(0.0, 0.5))  # down for a moment: connections are refused
                hub.start()
            stop.touch()
            try:
                code = writer.wait(FINAL_TIMEOUT + 60)
            except subprocess.TimeoutExpired:
                writer.kill()
                writer.wait(30)
                raise AssertionError("the writer did not finish its final sync_all") from None
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait(30)
    rec = Record.read(log_path)
    verdict = verify(hub, token, rec)
    figures = (
        f"hub kills={hub.kills} starts={hub.starts} files closed={len(rec.closed)} "
        f"paths={len({e['path'] for e in rec.closed})} "
        f"bytes={sum(e['size'] for e in rec.closed)} "
        f"acknowledged mid-run={verdict.acked_mid_run} acknowledged={verdict.acked} "
        f"sync_all ok={len(rec.acks)} failed={dict(rec.sync_failures)} "
        f"open retries={dict(rec.open_retries)} lost={len(verdict.lost)} torn={len(verdict.torn)} "
        f"not exactly once={len(verdict.not_once)}"
    )
    print(f"\n[hub kill] {figures}")
    stderr = (tmp_path / "writer.stderr").read_text(errors="replace")[-3000:]
    assert code == 0, f"the writer failed ({code}): {figures}\n{stderr}"
    assert hub.kills >= 2 and rec.closed, figures
    assert verdict.acked == len(rec.closed), (
        f"the final sync_all did not cover every closed file: {figures}"
    )
    assert not verdict.lost, (
        f"{figures}\nlost: {verdict.lost[:20]}\nsync failures: {rec.unexpected_sync_failures[:5]}"
    )
    assert not verdict.torn, f"{figures}\ntorn: {verdict.torn[:20]}"
    assert not verdict.not_once, f"{figures}\nnot exactly once: {verdict.not_once[:20]}"
    assert not rec.write_failures, f"{figures}\nwrite/close failed: {rec.write_failures[:10]}"
    assert not rec.unexpected_sync_failures, (
        f"{figures}\nsync_all failed with errors other than timeouts: "
        f"{rec.unexpected_sync_failures[:10]}"
    )


def test_hub_sigkill_loop_loses_nothing(hub_process: HubProcess, tmp_path: Path) -> None:
    run_kill_loop(hub_process, tmp_path, CI_SECONDS)


@pytest.mark.slow
def test_hub_sigkill_soak(hub_process: HubProcess, tmp_path: Path) -> None:
    run_kill_loop(hub_process, tmp_path, SOAK_SECONDS)
