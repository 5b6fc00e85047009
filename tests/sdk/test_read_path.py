"""The read path: random reads sign their URLs in one call; multi-block reads are exact."""

from __future__ import annotations

import os
import random
from typing import Any

import pytest

import lucidlink.aio
from tests.support.sdkfixtures import SMALL_BLOCK, SdkHub

B = SMALL_BLOCK
pytestmark = pytest.mark.asyncio


async def test_random_reads_are_exact_and_sign_their_urls_in_one_call(sdk_hub: SdkHub) -> None:
    data = os.urandom(40 * B + 123)
    creds = lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token)
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as writer:
        fsp = await (await writer.authenticate(creds)).link_filespace(name="small")
        await fsp.fs.write_file("/r.bin", data)
        await fsp.sync_all()
        await fsp.unlink()
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as reader:
        fsp = await (await reader.authenticate(creds)).link_filespace(name="small")
        transport = fsp._link.blocks.transport
        calls: list[str] = []
        real = transport.call

        async def counting(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
            calls.append(path)
            return await real(method, path, *args, **kwargs)

        transport.call = counting  # type: ignore[method-assign]
        rng = random.Random(3)
        async with fsp.fs.open("/r.bin", "rb") as f:
            slots = list(range(0, 40, 2))
            rng.shuffle(slots)
            for slot in slots:
                off = slot * B + rng.randrange(B - 100)
                await f.seek(off)
                assert await f.read(100) == data[off:off + 100]
            # Across blocks, in one read: several pieces joined into one result.
            await f.seek(B - 7)
            assert await f.read(5 * B) == data[B - 7:6 * B - 7]
            await f.seek(3)
            buf = bytearray(3 * B)
            assert await f.readinto(buf) == 3 * B and bytes(buf) == data[3:3 * B + 3]
            await f.seek(len(data) - 10)
            assert await f.read() == data[-10:]
        assert sum(p.endswith("/blocks/urls") for p in calls) == 1, calls
        assert await fsp.fs.read_file("/r.bin") == data
        await fsp.unlink()
