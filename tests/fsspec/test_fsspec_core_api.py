"""The public methods of the async core that the fsspec package is built on.

``AsyncFile.reopen``/``prepare_ranges``/``fingerprint`` (``cat_ranges``, ``checksum``),
``AsyncFile.abort`` (a failed ``put``), ``AsyncFile.close(wait=True)``
(``commit_on_close``) and ``AsyncFilesystem.create_dir(parents=, exist_ok=)`` (``mkdir``).
"""

from __future__ import annotations

import io
import os
from typing import Any

import pytest

import lucidlink.aio
from tests.support.sdkfixtures import SMALL_BLOCK

B = SMALL_BLOCK

pytestmark = pytest.mark.asyncio


async def test_reopened_readers_keep_the_version_they_opened(afilespace: Any) -> None:
    fs = afilespace.fs
    old = os.urandom(3 * B + 5)
    await fs.write_file("/v.bin", old)
    async with fs.open("/v.bin", "rb") as base:
        await fs.write_file("/v.bin", b"new")
        await afilespace.sync_all()
        async with base.reopen() as other:
            assert other.mode == "rb" and other.tell() == 0 and other.size == len(old)
            await base.prepare_ranges([(0, 10), (2 * B, 3 * B + 5), (7, 7)])
            await other.seek(2 * B)
            assert await other.read() == old[2 * B :]
        assert await base.read() == old  # each handle closes on its own
    async with fs.open("/v.bin", "rb") as now:
        assert await now.read() == b"new"


async def test_only_readers_reopen(afilespace: Any) -> None:
    async with afilespace.fs.open("/w.bin", "wb") as f:
        with pytest.raises(io.UnsupportedOperation):
            f.reopen()


async def test_fingerprint_follows_the_content(afilespace: Any) -> None:
    fs = afilespace.fs
    await fs.write_file("/a.bin", b"a" * (B + 1))
    await fs.copy_file("/a.bin", "/b.bin")
    prints = {}
    for name in ("a", "b"):
        async with fs.open(f"/{name}.bin", "rb") as f:
            prints[name] = f.fingerprint()
    assert prints["a"] == prints["b"]  # a copy shares the blocks
    await fs.write_file("/b.bin", b"a" * B + b"b")
    async with fs.open("/b.bin", "rb") as f:
        assert f.fingerprint() != prints["a"]


async def test_abort_commits_nothing(afilespace: Any) -> None:
    fs = afilespace.fs
    await fs.write_file("/k.bin", b"kept")
    f = await fs.open("/k.bin", "wb")
    await f.write(os.urandom(3 * B))  # finished slots upload in the background
    await f.abort()
    assert f.closed
    await f.abort()  # idempotent
    await afilespace.sync_all()
    assert await fs.read_file("/k.bin") == b"kept"


async def test_close_wait_commits_before_returning(afilespace: Any, sdk_hub: Any) -> None:
    f = await afilespace.fs.open("/c.bin", "wb")
    await f.write(b"now")
    await f.close(wait=True)
    # Another daemon (as on another machine) asks the hub at once, with no sync of ours.
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        credentials = lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token)
        workspace = await daemon.authenticate(credentials)
        async with workspace.link_filespace(name="small") as other:
            assert (await other.fs.get_entry("/c.bin")).size == 3


async def test_create_dir_parents_and_exist_ok(afilespace: Any) -> None:
    fs = afilespace.fs
    with pytest.raises(FileNotFoundError):
        await fs.create_dir("/p/q", parents=False)
    await fs.create_dir("/p/q")
    await fs.create_dir("/p/q")  # os.makedirs(exist_ok=True) by default
    with pytest.raises(FileExistsError):
        await fs.create_dir("/p/q", exist_ok=False)
    await fs.create_dir("/p/r", parents=False, exist_ok=False)
    assert await fs.list_dir("/p") == ["q", "r"]
