"""Several hub processes sharing one PostgreSQL metadata store (and one data dir)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import lucidlink.aio as aio
from lucidlink.exceptions import LockTimeoutError
from lucidlink.hub.embedded import EmbeddedHub
from tests.support.pgfixture import fresh_schema


@pytest.mark.asyncio
async def test_two_hubs_share_namespace_journal_and_locks(tmp_path: Path, postgres_dsn: str) -> None:
    with fresh_schema(postgres_dsn) as url, \
            EmbeddedHub(tmp_path / "hub", metadata_url=url, gc_interval_seconds=3600) as hub_a, \
            EmbeddedHub(tmp_path / "hub", metadata_url=url, gc_interval_seconds=3600) as hub_b:
        token = hub_a.init("demo", ["data"])
        creds = aio.ServiceAccountCredentials(token=token)
        async with aio.create_daemon(hub_url=hub_a.url) as da, aio.create_daemon(hub_url=hub_b.url) as db:
            fa = await (await da.authenticate(creds)).link_filespace(name="data")
            fb = await (await db.authenticate(creds)).link_filespace(name="data")
            # A change committed through hub A is read through hub B.
            await fa.fs.write_file("/shared.bin", b"via hub A")
            await fa.sync_all()
            await fb.sync_all()
            assert await fb.fs.read_file("/shared.bin") == b"via hub A"
            # A lock granted by hub A holds against a waiter on hub B, which gets it on release.
            holder = await fa.fs.open("/shared.bin", "r+b", lock_type="exclusive")
            with pytest.raises(LockTimeoutError):
                await fb.fs.open("/shared.bin", "rb", lock_type="shared", lock_timeout=0.5)
            waiter = asyncio.ensure_future(fb.fs.open("/shared.bin", "rb", lock_type="shared", lock_timeout=30))
            await asyncio.sleep(0.5)
            assert not waiter.done()
            await holder.write(b"VIA")
            await holder.close()
            reader = await asyncio.wait_for(waiter, 10)
            assert await reader.read() == b"VIA hub A"
            await reader.close()
            # A long-poll on hub B wakes for a change made through hub A.
            seq = (await fb._call("GET", "/changes", params={"since": "0"}))["seq"]
            poll = asyncio.create_task(fb._call("GET", "/changes", params={"since": str(seq), "wait": "10"}))
            await asyncio.sleep(0.3)
            await fa.fs.create_dir("/new")
            body = await asyncio.wait_for(poll, 5)
            assert [c["path"] for c in body["changes"]] == ["/new"]
