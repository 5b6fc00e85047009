"""Small whole-file writes kept in memory until their commit: same results, same refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest

import lucidlink.aio
from lucidlink.exceptions import LucidLinkError
from tests.support.sdkfixtures import SMALL_BLOCK, SdkHub

B = SMALL_BLOCK
pytestmark = pytest.mark.asyncio


def _creds(hub: SdkHub) -> lucidlink.aio.ServiceAccountCredentials:
    return lucidlink.aio.ServiceAccountCredentials(token=hub.token)


async def test_small_files_land_without_a_staging_file(sdk_hub: SdkHub) -> None:
    datas = {f"/d/{n}.bin": os.urandom(n * 37 % 4096 + (n == 0) * B) for n in range(40)}
    datas["/d/empty.bin"] = b""
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        fsp = await (await daemon.authenticate(_creds(sdk_hub))).link_filespace(name="small")
        await fsp.fs.create_dir("/d")
        fsp._link.writeback._delay = 30.0  # all queued at once: one batch
        for path, data in datas.items():
            await fsp.fs.write_file(path, data)
        staging = fsp._link.services.staging_dir
        assert list(staging.iterdir()) == []
        await fsp.sync_all()
        assert fsp._link.writeback._inline_bytes == 0
        await fsp.unlink()
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        fsp = await (await daemon.authenticate(_creds(sdk_hub))).link_filespace(name="small")
        for path, data in datas.items():
            assert await fsp.fs.read_file(path) == data, path
        await fsp.unlink()


async def test_a_small_write_that_seeks_grows_or_truncates_moves_to_staging(
    sdk_hub: SdkHub,
) -> None:
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        fsp = await (await daemon.authenticate(_creds(sdk_hub))).link_filespace(name="small")
        fs = fsp.fs
        async with fs.open("/gap.bin", "wb") as f:
            await f.write(b"abc")
            await f.seek(10)
            await f.write(b"z")
        big = os.urandom(B + 5)
        async with fs.open("/grown.bin", "wb") as f:
            await f.write(big[:100])
            await f.write(big[100:])  # past the in-memory limit
        async with fs.open("/cut.bin", "w+b") as f:
            await f.write(b"hello")
        async with fs.open("/cut2.bin", "wb") as f:
            await f.write(b"hello")
            await f.truncate(2)
            await f.write(b"!")  # at position 5, past the new end
        async with fs.open("/back.bin", "xb") as f:
            await f.write(b"0123456789")
            await f.seek(2)
            await f.write(b"AB")
        await fsp.sync_all()
        assert await fs.read_file("/gap.bin") == b"abc" + bytes(7) + b"z"
        assert await fs.read_file("/grown.bin") == big
        assert await fs.read_file("/cut.bin") == b"hello"
        assert await fs.read_file("/cut2.bin") == b"he\0\0\0!"
        assert await fs.read_file("/back.bin") == b"01AB456789"
        await fsp.unlink()


async def test_a_refused_small_file_in_a_batch_is_reported_and_the_others_land(
    sdk_hub: SdkHub,
) -> None:
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as a, \
            lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as b:
        fa = await (await a.authenticate(_creds(sdk_hub))).link_filespace(name="small")
        fb = await (await b.authenticate(_creds(sdk_hub))).link_filespace(name="small")
        await fa.fs.create_dir("/keep")
        await fa.fs.create_dir("/gone")
        await fa.sync_all()
        fb._link.writeback._delay = 30.0  # everything below waits for one batch
        for n in range(5):
            await fb.fs.write_file(f"/keep/{n}", b"k%d" % n)
        await fb.fs.write_file("/gone/x", b"never")
        await fa.fs.delete_dir("/gone")
        with pytest.raises(LucidLinkError) as info:
            await fb.sync_all()
        assert "/gone/x" in str(info.value)
        await fb.sync_all()  # reported once
        for n in range(5):
            assert await fa.fs.read_file(f"/keep/{n}") == b"k%d" % n
        assert not await fa.fs.dir_exists("/gone")
        assert fb._link.writeback._inline_bytes == 0
        await fa.unlink()
        await fb.unlink()


async def test_a_persisting_daemon_journals_small_files_with_their_staging_bytes(
    sdk_hub: SdkHub, tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    async with lucidlink.aio.create_daemon(
        hub_url=sdk_hub.url, sandboxed=False, persist_files=True, root_path=str(root),
    ) as daemon:
        fsp = await (await daemon.authenticate(_creds(sdk_hub))).link_filespace(name="small")
        fsp._link.writeback._delay = 30.0
        await fsp.fs.write_file("/j.bin", b"journalled")
        records = list((root / ".lucid" / "pending").glob("*.json"))
        assert len(records) == 1
        record = json.loads(await anyio.Path(records[0]).read_text())
        assert "inline" not in record and record["staging"]
        assert await anyio.Path(record["staging"]).read_bytes() == b"journalled"
        await fsp.sync_all()
        assert await fsp.fs.read_file("/j.bin") == b"journalled"
        await fsp.unlink()
