"""Scale-out: three hub processes on one PostgreSQL schema and one S3 bucket (issue 12).

Each hub is its own ``python -m lucidlink hub serve --metadata-url ... --block-store
s3://...`` process with no data dir. Three SDK daemons are each given the three hubs,
in a different order, so each starts on a different hub. Checked:

* a file written through one hub is read through another;
* a lock held through one hub blocks a client on another, which gets it on release;
* a change committed through hub A wakes a journal long-poll on hub B at once
  (PostgreSQL NOTIFY; the hubs' periodic re-read alone would take up to a second);
* hub A is SIGKILLed while every client keeps writing: the clients carry on through
  the others, and every closed file is there afterwards, counted byte for byte;
* no block byte passes through any hub (``lucidhub_block_bytes_total`` is 0).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest

import lucidlink.aio as aio
from lucidlink.exceptions import HubUnavailableError, LockTimeoutError
from lucidlink.types import SyncMode
from tests.support.pgfixture import fresh_schema
from tests.support.ports import free_port
from tests.support.s3fixtures import s3_env
from tests.support.seaweed import SeaweedS3

BLOCK = 64 * 1024
FILESPACE = "data"
WAKE_BOUND = 0.6
"""Seconds within which a long-poll on one hub answers a commit made through another."""
WRITE_SECONDS = (1.5, 2.5)
"""Clients write this long before the kill, and this long after it."""
CONFIG = {"fs.flush.delay_ms": "20", "hub.timeout": "10", "fs.sync.timeout": "30"}


class HubProc:
    """One ``lucidlink hub serve`` process in its own process group."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = log_dir / f"hub-{name}.log"
        self._log: IO[bytes] = open(self._log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lucidlink", "hub", "serve", *args,
             "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )

    async def wait_healthy(self, http: aiohttp.ClientSession, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"hub {self.name} exited: {self.log_tail()}")
            try:
                async with http.get(self.url + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise AssertionError(f"hub {self.name} did not become healthy: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the hub's process group: no shutdown of any kind."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        """Stop the process group (politely, then not) and close the log."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        self._log.close()

    def log_tail(self) -> str:
        self._log.flush()
        return self._log_path.read_text(errors="replace")[-3000:]


@pytest.fixture
def cluster(tmp_path: Path, postgres_dsn: str,
            seaweed: SeaweedS3) -> Iterator[tuple[list[HubProc], str]]:
    """Three hub processes sharing a fresh schema and a fresh bucket prefix; the token."""
    with fresh_schema(postgres_dsn) as url:
        store = ["--metadata-url", url, "--block-store",
                 f"s3://{seaweed.bucket}/{seaweed.prefix().rstrip('/')}"]
        env = {**os.environ, **s3_env(seaweed)}
        out = subprocess.run(
            [sys.executable, "-m", "lucidlink", "hub", "init", *store, "--workspace", "demo",
             "--filespace", FILESPACE, "--block-size", str(BLOCK)],
            capture_output=True, text=True, timeout=120, env=env, check=False)
        assert out.returncode == 0, out.stderr
        token = out.stdout.strip().splitlines()[-1]
        hubs: list[HubProc] = []
        try:
            for name in "ABC":
                hubs.append(HubProc(name, store, env, tmp_path))
            yield hubs, token
        finally:
            for hub in hubs:
                hub.stop()


async def metrics(http: aiohttp.ClientSession, hub: HubProc) -> dict[str, float]:
    """The hub's ``lucidhub_block_bytes_total`` samples, by direction."""
    async with http.get(hub.url + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    return {line.split("{", 1)[1].split("}", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line.startswith("lucidhub_block_bytes_total{")}


class Writer:
    """A client that writes, closes and now and then syncs, until told to stop."""

    def __init__(self, index: int, fs: Any) -> None:
        self.index = index
        self.fs = fs
        self.closed: dict[str, bytes] = {}
        self.sync_failures: list[str] = []
        self._rng = random.Random(index)

    async def run(self, stop: asyncio.Event) -> None:
        await self.fs.fs.create_dir(f"/writer{self.index}")
        n = 0
        while not stop.is_set():
            path = f"/writer{self.index}/{n:04d}.bin"
            data = self._rng.randbytes(self._rng.randrange(1, 3 * BLOCK))
            await self.fs.fs.write_file(path, data)  # must never fail: it only queues
            self.closed[path] = data
            n += 1
            if n % 4 == 0:
                try:
                    await self.fs.sync_all()
                except (HubUnavailableError, TimeoutError) as exc:
                    self.sync_failures.append(f"{type(exc).__name__}: {exc}")


@pytest.mark.asyncio
async def test_three_hubs_one_store_one_bucket(
        cluster: tuple[list[HubProc], str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="lucidlink")
    hubs, token = cluster
    creds = aio.ServiceAccountCredentials(token=token)
    urls = [h.url for h in hubs]
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(h.wait_healthy(http) for h in hubs))
        daemons = [aio.create_daemon(hub_url=",".join(urls[i:] + urls[:i]), config=CONFIG)
                   for i in range(3)]
        try:
            spaces = []
            for i, daemon in enumerate(daemons):
                await daemon.start()
                workspace = await daemon.authenticate(creds)
                spaces.append(await workspace.link_filespace(
                    name=FILESPACE, sync_mode=SyncMode.SYNC_ALL))
                assert daemon._config.hubs.current == urls[i]  # each on its own hub
            fa, fb, fc = spaces

            # Written through hub A, read through hub B.
            await fa.fs.write_file("/hello.txt", b"written through hub A")
            await fa.sync_all()
            await fb.sync_all()
            assert await fb.fs.read_file("/hello.txt") == b"written through hub A"

            # A lock held through hub A blocks a client on hub C until it is released.
            holder = await fa.fs.open("/hello.txt", "r+b", lock_type="exclusive")
            with pytest.raises(LockTimeoutError):
                await fc.fs.open("/hello.txt", "rb", lock_type="shared", lock_timeout=0.5)
            waiter = asyncio.ensure_future(
                fc.fs.open("/hello.txt", "rb", lock_type="shared", lock_timeout=30))
            await asyncio.sleep(0.3)
            assert not waiter.done()
            await holder.write(b"WRITTEN")
            await holder.close()
            reader = await asyncio.wait_for(waiter, 10)
            assert await reader.read() == b"WRITTEN through hub A"
            await reader.close()

            # A commit through hub A wakes a long-poll on hub B at once.
            for i in range(3):
                seq = (await fb._call("GET", "/changes", params={"since": "0"}))["seq"]
                poll = asyncio.create_task(
                    fb._call("GET", "/changes", params={"since": str(seq), "wait": "10"}))
                await asyncio.sleep(0.05)
                started = time.monotonic()
                await fa.fs.create_dir(f"/woke{i}")
                body = await asyncio.wait_for(poll, 10)
                waited = time.monotonic() - started
                assert [c["path"] for c in body["changes"]] == [f"/woke{i}"]
                assert waited < WAKE_BOUND, f"the long-poll on hub B took {waited:.2f} s"
                assert await fb.fs.dir_exists(f"/woke{i}")

            # Every client writes; hub A is SIGKILLed mid-run; they carry on.
            before_kill = await metrics(http, hubs[0])
            writers = [Writer(i, fs) for i, fs in enumerate(spaces)]
            stop = asyncio.Event()
            tasks = [asyncio.create_task(w.run(stop)) for w in writers]
            await asyncio.sleep(WRITE_SECONDS[0])
            hubs[0].kill()
            closed_at_kill = sum(len(w.closed) for w in writers)
            await asyncio.sleep(WRITE_SECONDS[1])
            stop.set()
            await asyncio.gather(*tasks)
            for fs in spaces:
                await fs.sync_all()
            assert sum(len(w.closed) for w in writers) > closed_at_kill + 3  # they went on
            assert daemons[0]._config.hubs.current != urls[0]
            for w in writers:
                assert not w.sync_failures, w.sync_failures

            # Every closed file is there, byte for byte, read by a fresh client whose
            # first hub is the dead one.
            expected = {p: d for w in writers for p, d in w.closed.items()}
            async with aio.create_daemon(hub_url=",".join(urls), config=CONFIG) as checker:
                check = await (await checker.authenticate(creds)).link_filespace(name=FILESPACE)
                found = 0
                for path, data in expected.items():
                    got = await check.fs.read_file(path)
                    assert got == data, f"{path}: {len(got)} bytes, expected {len(data)}"
                    found += len(got)
                assert found == sum(len(d) for d in expected.values())

            # One switch logged by the client that was on hub A, one by the checker.
            switched = [r for r in caplog.records if r.getMessage() == "lucidlink.hub_switch"]
            assert [r.failed for r in switched] == [urls[0], urls[0]]  # type: ignore[attr-defined]

            # No block byte went through any hub: they moved between clients and S3.
            for sample in (before_kill, *[await metrics(http, h) for h in hubs[1:]]):
                assert sample and all(v == 0 for v in sample.values()), sample
        finally:
            for daemon in daemons:
                await daemon.stop()
