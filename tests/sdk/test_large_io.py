"""Large files: whole blocks written from immutable bytes upload without a read-back of
staging; anything else (a buffer the caller may change, a truncate) reads staging back.
Large reads across blocks come out whole. Counted, never timed."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest

import lucidlink.aio
from lucidlink.aio.file import AsyncFile
from tests.support.sdkfixtures import SMALL_BLOCK, SdkHub

B = SMALL_BLOCK
pytestmark = pytest.mark.asyncio


async def _read_back(sdk_hub: SdkHub, path: str) -> bytes:
    creds = lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token)
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as reader:
        fsp = await (await reader.authenticate(creds)).link_filespace(name="small")
        data = await fsp.fs.read_file(path)
        await fsp.unlink()
    return data


def _count_read_backs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = AsyncFile._read_staged

    async def counting(self: AsyncFile, slot: int) -> Any:
        calls.append(slot)
        return await real(self, slot)

    monkeypatch.setattr(AsyncFile, "_read_staged", counting)
    return calls


async def test_whole_blocks_from_bytes_upload_without_read_back(
    sdk_hub: SdkHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = os.urandom(24 * B + 100)
    view = memoryview(payload)
    read_backs = _count_read_backs(monkeypatch)
    creds = lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token)
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as writer:
        fsp = await (await writer.authenticate(creds)).link_filespace(name="small")
        async with fsp.fs.open("/big.bin", "wb") as f:
            for off in range(0, len(payload), 2 * B):  # two blocks per write
                await f.write(view[off:off + 2 * B])
        await fsp.sync_all()
        await fsp.unlink()
    assert read_backs == []
    assert await _read_back(sdk_hub, "/big.bin") == payload


async def test_a_buffer_changed_after_write_or_a_truncate_reads_staging(
    sdk_hub: SdkHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = bytearray(os.urandom(12 * B))
    want = bytes(payload)
    read_backs = _count_read_backs(monkeypatch)
    creds = lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token)
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as writer:
        fsp = await (await writer.authenticate(creds)).link_filespace(name="small")
        async with fsp.fs.open("/mutable.bin", "wb") as f:
            for off in range(0, len(payload), B):
                await f.write(memoryview(payload)[off:off + B])
                payload[off:off + B] = bytes(B)  # the caller reuses its buffer at once
        # Bytes, then a truncate into the written blocks and an extension with zeros.
        immutable = os.urandom(8 * B)
        async with fsp.fs.open("/truncated.bin", "wb") as f:
            await f.write(immutable[:4 * B])
            await f.truncate(B + 10)
            await f.truncate(3 * B)
            await f.seek(3 * B)
            await f.write(immutable[4 * B:])
        await fsp.sync_all()
        await fsp.unlink()
    assert len(read_backs) >= 11  # every block of the mutable buffer moved past
    assert await _read_back(sdk_hub, "/mutable.bin") == want
    expected = immutable[:B + 10] + bytes(2 * B - 10) + immutable[4 * B:]
    got = await _read_back(sdk_hub, "/truncated.bin")
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(expected).hexdigest()


async def test_large_reads_across_blocks_are_exact(sdk_hub: SdkHub) -> None:
    payload = os.urandom(40 * B + 77)
    creds = lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token)
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as writer:
        fsp = await (await writer.authenticate(creds)).link_filespace(name="small")
        await fsp.fs.write_file("/r.bin", payload)
        await fsp.sync_all()
        await fsp.unlink()
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as reader:
        fsp = await (await reader.authenticate(creds)).link_filespace(name="small")
        async with fsp.fs.open("/r.bin", "rb") as f:
            await f.seek(B // 2)
            first = await f.read(20 * B)  # over 1 MiB: gathered block by block
            rest = await f.read()
        whole = await fsp.fs.read_file("/r.bin")
        await fsp.unlink()
    assert type(first) is bytes and type(whole) is bytes
    assert first == payload[B // 2:B // 2 + 20 * B]
    assert rest == payload[B // 2 + 20 * B:]
    assert whole == payload
