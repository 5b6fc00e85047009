"""Byte-range locks through the SDK, both faces, and across two processes.

A worker process (tests/support/rangeworker.py, the blocking face) holds an exclusive
range; this process (the async face) gets ``False`` from a non-blocking request on an
overlapping range, waits in a blocking one until the worker unlocks, and has its
commits inside the range refused meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

import lucidlink
import lucidlink.aio
from lucidlink.exceptions import ConfigurationError, LockConflictError
from tests.sdk.conftest import unique
from tests.support.sdkfixtures import SMALL_BLOCK, SdkHub

pytest_plugins = ["tests.support.sdkfixtures"]

WORKER = Path(__file__).resolve().parents[1] / "support" / "rangeworker.py"
REPO = Path(__file__).resolve().parents[2]


def test_blocking_face(mspace: lucidlink.Filespace) -> None:
    fs = mspace.fs
    path = f"/{unique('range')}.bin"
    handle = fs.create(path)
    assert isinstance(handle, int) and fs.file_exists(path)
    with pytest.raises(FileExistsError):
        fs.create(path)
    assert fs.lock_byte_range(handle, 0, 10) is True
    assert fs.lock_byte_range(handle, 5, 10, lock_type="shared", blocking=False) is True  # its own
    other = fs.open_handle(path)
    assert fs.lock_byte_range(other, 9, 1, blocking=False) is False
    assert fs.lock_byte_range(other, 20, 1, blocking=False) is True
    fs.unlock_byte_range(handle, 0, 10)
    assert fs.lock_byte_range(other, 0, 6, blocking=False) is False  # 5..15 is shared
    fs.unlock_all_byte_ranges(handle)
    assert fs.lock_byte_range(other, 0, 5, blocking=False) is True
    with pytest.raises(ConfigurationError, match="not a handle"):
        fs.lock_byte_range(10**9, 0, 1)
    with pytest.raises(ConfigurationError, match="lock_type"):
        fs.lock_byte_range(handle, 0, 1, lock_type="")
    with pytest.raises(ConfigurationError, match="offset"):
        fs.lock_byte_range(handle, -1, 1)


class Worker:
    """The rangeworker child process."""

    def __init__(self, hub: SdkHub, path: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), hub.url, hub.token, "small", path],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    async def event(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), 60)
        assert line, "the worker exited"
        return json.loads(line)  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send(op="exit")
                self.proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.mark.asyncio
async def test_two_processes(sdk_hub: SdkHub) -> None:
    path = f"/{unique('shared')}.bin"
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token))
        filespace = await ws.link_filespace(name="small")
        fs = filespace.fs
        await fs.write_file(path, b"a" * (2 * SMALL_BLOCK))
        mine = await fs.open_handle(path)
        worker = Worker(sdk_hub, path)
        try:
            assert (await worker.event())["event"] == "ready"
            worker.send(op="lock", offset=0, length=100, mode="exclusive", blocking=True)
            assert await worker.event() == {"event": "locked", "granted": True}
            assert await fs.lock_byte_range(mine, 50, 10, blocking=False) is False
            assert await fs.lock_byte_range(mine, 50, 10, "shared", blocking=False) is False
            assert await fs.lock_byte_range(mine, SMALL_BLOCK, 10, blocking=False) is True
            # A change inside the worker's range is refused by the hub; outside it lands.
            async with fs.open(path, "r+b") as f:
                await f.seek(SMALL_BLOCK + 1)
                await f.write(b"outside")
            with pytest.raises(LockConflictError):
                async with fs.open(path, "r+b") as f:
                    await f.seek(10)
                    await f.write(b"inside")
                await filespace.sync_all()
            waiter = asyncio.create_task(fs.lock_byte_range(mine, 60, 1))
            await asyncio.sleep(1.0)
            assert not waiter.done()
            worker.send(op="unlock_all")
            assert (await worker.event())["event"] == "unlocked"
            assert await asyncio.wait_for(waiter, 10) is True
            worker.send(op="lock", offset=0, length=1, mode="shared", blocking=False)
            assert await worker.event() == {"event": "locked", "granted": True}
            worker.send(op="lock", offset=55, length=10, mode="shared", blocking=False)
            assert await worker.event() == {"event": "locked", "granted": False}
        finally:
            worker.stop()
        await filespace.unlink()


@pytest_asyncio.fixture
async def losing_proxy(mhub: SdkHub) -> AsyncIterator[tuple[str, list[str]]]:
    """A proxy to ``mhub`` that loses the answer of the first lock request of each kind: the
    hub acts on it, the client gets 502 (as from a hub dying after its commit)."""
    lost: list[str] = []

    async def forward(request: web.Request) -> web.Response:
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                request.method,
                mhub.url + request.path_qs,
                headers=headers,
                data=await request.read(),
            ) as resp,
        ):
            body = await resp.read()
            kind = request.path.rsplit("/", 1)[-1]
            if request.method == "POST" and kind in ("locks", "range-locks") and kind not in lost:
                lost.append(kind)
                return web.Response(status=502, text="bad gateway")
            return web.Response(status=resp.status, body=body, content_type=resp.content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", lost
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
async def test_lock_requests_are_retried_on_another_hub(
    mhub: SdkHub, losing_proxy: tuple[str, list[str]]
) -> None:
    """The hub granted the lock, its answer was lost: the retry on the next hub finds the
    grant (one lock, not a second request queued behind the first)."""
    proxy, lost = losing_proxy
    path = f"/{unique('failover')}.bin"
    for kind in ("locks", "range-locks"):  # a daemon each: after a failure the ring moves on
        async with lucidlink.aio.create_daemon(hub_url=f"{proxy},{mhub.url}") as daemon:
            ws = await daemon.authenticate(
                lucidlink.aio.ServiceAccountCredentials(token=mhub.token)
            )
            filespace = await ws.link_filespace(name="small")
            fs = filespace.fs
            if kind == "locks":
                async with fs.open(path, "xb", lock_type="exclusive", lock_timeout=5) as f:
                    await f.write(b"locked")
                    assert len(await fs.get_locks(path)) == 1
            else:
                handle = await fs.open_handle(path)
                assert await fs.lock_byte_range(handle, 0, 10, blocking=False) is True
                rows = mhub.hub.write(
                    lambda tx: tx.all("SELECT id FROM range_locks WHERE path = ?", (path,))
                )
                assert len(rows) == 1
            assert lost[-1] == kind
            await filespace.unlink()


@pytest.mark.parametrize("cls", [lucidlink.Filesystem, lucidlink.aio.AsyncFilesystem])
def test_signatures_are_lucidlinks(cls: type) -> None:
    """As LucidLink documents them (0.9 to 0.12)."""
    import inspect

    def shape(name: str) -> list[tuple[str, object]]:
        params = inspect.signature(getattr(cls, name)).parameters.values()
        return [(p.name, p.default) for p in params]

    empty = inspect.Parameter.empty
    assert shape("create") == [("self", empty), ("path", empty)]
    assert shape("lock_byte_range") == [
        ("self", empty),
        ("handle_id", empty),
        ("offset", empty),
        ("length", empty),
        ("lock_type", "exclusive"),
        ("blocking", True),
    ]
    assert shape("unlock_byte_range") == [
        ("self", empty),
        ("handle_id", empty),
        ("offset", empty),
        ("length", empty),
    ]
    assert shape("unlock_all_byte_ranges") == [("self", empty), ("handle_id", empty)]
