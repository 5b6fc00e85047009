"""Unlinking a filespace while other tasks and threads keep writing: every write that
returned (``write_file``, a ``close``) is committed; the others raise. Counted: files
acknowledged and then missing from a fresh client (0)."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest

import lucidlink
import lucidlink.aio
from lucidlink.exceptions import LucidLinkError
from tests.support.sdkfixtures import SdkHub


async def _fresh_read(sdk_hub: SdkHub, paths: list[str]) -> dict[str, bytes | None]:
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token))
        async with ws.link_filespace(name="small") as fsp:
            out: dict[str, bytes | None] = {}
            for p in paths:
                try:
                    out[p] = await fsp.fs.read_file(p)
                except LucidLinkError:
                    out[p] = None
            return out


@pytest.mark.asyncio
@pytest.mark.parametrize("delay", [0.01, 0.05, 0.2])
async def test_writes_racing_an_unlink_are_committed_or_refused(sdk_hub: SdkHub,
                                                                delay: float) -> None:
    acked: dict[str, bytes] = {}
    refused = 0
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token))
        fsp = await ws.link_filespace(name="small")
        await fsp.fs.create_dir("/race")
        await fsp.sync_all()
        stop = asyncio.Event()

        async def writer(k: int) -> None:
            nonlocal refused
            i = 0
            while not stop.is_set() and i < 3000:
                # A write of a small file held in memory never suspends: yield, so that
                # the unlink runs among the writes.
                await asyncio.sleep(0)
                path, data = f"/race/w{k}-{i}", os.urandom(100 + i % 3000)
                i += 1
                try:
                    if i % 2:
                        await fsp.fs.write_file(path, data)
                    else:
                        async with fsp.fs.open(path, "wb") as f:
                            await f.write(data)
                except (LucidLinkError, ValueError):
                    refused += 1
                    if not fsp.is_linked:
                        return
                    continue
                acked[path] = data

        tasks = [asyncio.create_task(writer(k)) for k in range(4)]
        await asyncio.sleep(delay)
        await fsp.unlink()
        await asyncio.sleep(0.05)  # writers that were mid-call finish or fail
        stop.set()
        await asyncio.gather(*tasks)
    assert acked, "no write was acknowledged: the test proves nothing"
    got = await _fresh_read(sdk_hub, list(acked))
    lost = [p for p, data in acked.items() if got[p] != data]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged files lost ({refused} refused)"


def test_blocking_writes_racing_an_unlink_are_committed_or_refused(sdk_hub: SdkHub) -> None:
    """The blocking API's ``write_file`` queues from the calling thread (no loop trip)."""
    acked: dict[str, bytes] = {}
    with lucidlink.create_daemon(hub_url=sdk_hub.url) as daemon:
        ws = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=sdk_hub.token))
        fsp = ws.link_filespace(name="small")
        fsp.fs.create_dir("/brace")
        fsp.sync_all()
        started = threading.Event()

        def writer(k: int) -> None:
            for i in range(100_000):
                path, data = f"/brace/t{k}-{i}", os.urandom(100 + i % 3000)
                try:
                    fsp.fs.write_file(path, data)
                except (LucidLinkError, ValueError):
                    return
                acked[path] = data
                started.set()

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        started.wait(30)
        fsp.unlink()
        for t in threads:
            t.join(60)
    assert acked
    got = asyncio.run(_fresh_read(sdk_hub, list(acked)))
    lost = [p for p, data in acked.items() if got[p] != data]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged files lost"


@pytest.mark.asyncio
async def test_a_write_in_flight_when_its_handle_is_closed_by_an_unlink_is_committed(
        sdk_hub: SdkHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """One task writes a large file in 100 KiB pieces (staging, uploads: every write
    suspends, and each staging write is slowed so that the unlink lands in one); the
    filespace is unlinked under it. The committed file is exactly the pieces whose write
    returned: none torn off, none half there."""
    from lucidlink.aio import file as afile

    real_pwrite = afile.AsyncFile._pwrite

    async def slow_pwrite(self: Any, view: Any, offset: int) -> None:
        await asyncio.sleep(0.02)
        await real_pwrite(self, view, offset)

    monkeypatch.setattr(afile.AsyncFile, "_pwrite", slow_pwrite)
    data = os.urandom(8 << 20)
    piece = 100 * 1024
    acked = 0
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token))
        fsp = await ws.link_filespace(name="small")
        f = await fsp.fs.open("/inflight.bin", "wb")

        async def writer() -> None:
            nonlocal acked
            for off in range(0, len(data), piece):
                try:
                    await f.write(data[off:off + piece])
                except ValueError:  # the handle was closed by the unlink
                    return
                acked = off + len(data[off:off + piece])

        task = asyncio.create_task(writer())
        while acked < 10 * piece:
            await asyncio.sleep(0.001)
        await fsp.unlink()
        await task
    assert 10 * piece <= acked < len(data), acked
    got = (await _fresh_read(sdk_hub, ["/inflight.bin"]))["/inflight.bin"]
    assert got is not None and len(got) == acked, (None if got is None else len(got), acked)
    assert got == data[:acked]


@pytest.mark.asyncio
async def test_an_unlink_gives_back_the_locks_of_the_files_it_closes(sdk_hub: SdkHub) -> None:
    """The unlink refuses new operations, not the calls that finish what is open: closing a
    locked handle still releases its lock with its own request."""
    from lucidlink.hub.api.app_keys import HUB_KEY

    assert sdk_hub.hub.app is not None
    metrics = sdk_hub.hub.app[HUB_KEY].metrics

    def releases() -> int:
        return sum(n for (route, method, status), n in metrics.requests.items()
                   if method == "DELETE" and route.endswith("/locks/{lock_id}") and status < 300)

    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token))
        fsp = await ws.link_filespace(name="small")
        before = releases()
        f = await fsp.fs.open("/locked.bin", "wb", lock_type="exclusive")
        await f.write(b"held")
        await fsp.unlink()
        assert releases() == before + 1
    got = await _fresh_read(sdk_hub, ["/locked.bin"])
    assert got["/locked.bin"] == b"held"
