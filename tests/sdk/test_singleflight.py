"""The single-flight rule: shared work, private cancellation, shared errors."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lucidlink.aio.blocks import BlockIO
from lucidlink.aio.cache import BlockCache
from lucidlink.aio.external import ExternalReader, ExternalSource
from lucidlink.aio.singleflight import SingleFlight

pytestmark = pytest.mark.asyncio


class Work:
    """A call that runs until released, counting how often it started and was cancelled."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0
        self.release = asyncio.Event()
        self.error: Exception | None = None

    async def __call__(self) -> bytes:
        self.started += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.error is not None:
            raise self.error
        return b"block"


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_concurrent_callers_share_one_call() -> None:
    flights: SingleFlight[str, bytes] = SingleFlight()
    work = Work()
    waiters = [asyncio.create_task(flights.run("k", work)) for _ in range(3)]
    await _settle()
    work.release.set()
    assert await asyncio.gather(*waiters) == [b"block"] * 3
    assert work.started == 1
    assert "k" not in flights and len(flights) == 0


async def test_first_callers_cancellation_reaches_no_other_waiter() -> None:
    flights: SingleFlight[str, bytes] = SingleFlight()
    work = Work()
    first = asyncio.create_task(flights.run("k", work))  # the one that started the call
    await _settle()
    second = asyncio.create_task(flights.run("k", work))
    await _settle()
    first.cancel()
    await _settle()
    assert first.cancelled()
    assert not second.done() and work.cancelled == 0  # the shared call goes on
    work.release.set()
    assert await second == b"block"
    assert work.started == 1


async def test_shared_call_is_cancelled_when_the_last_waiter_leaves() -> None:
    flights: SingleFlight[str, bytes] = SingleFlight()
    work = Work()
    waiters = [asyncio.create_task(flights.run("k", work)) for _ in range(2)]
    await _settle()
    waiters[0].cancel()
    await _settle()
    assert work.cancelled == 0
    waiters[1].cancel()
    await _settle()
    assert work.cancelled == 1 and "k" not in flights
    # The next caller starts afresh rather than joining the cancelled call.
    again = asyncio.create_task(flights.run("k", work))
    await _settle()
    work.release.set()
    assert await again == b"block"
    assert work.started == 2


async def test_the_calls_exception_reaches_every_waiter() -> None:
    flights: SingleFlight[str, bytes] = SingleFlight()
    work = Work()
    work.error = OSError("store unreachable")
    waiters = [asyncio.create_task(flights.run("k", work)) for _ in range(3)]
    await _settle()
    work.release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, OSError) and str(r) == "store unreachable" for r in results)
    assert work.started == 1 and "k" not in flights


async def test_keys_are_independent() -> None:
    flights: SingleFlight[str, bytes] = SingleFlight()
    a, b = Work(), Work()
    ta = asyncio.create_task(flights.run("a", a))
    tb = asyncio.create_task(flights.run("b", b))
    await _settle()
    ta.cancel()
    await _settle()
    assert a.cancelled == 1 and b.cancelled == 0
    b.release.set()
    assert await tb == b"block"
    with pytest.raises(asyncio.CancelledError):
        await ta


# -- as block reads and Connect reads apply it -------------------------------------------------


class SlowStore:
    """A transport whose block GETs wait until released, counting them."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.gets = 0
        self.release = asyncio.Event()

    async def call(self, method: str, path: str, **kw: Any) -> Any:  # signs URLs
        hashes = kw["json"]["hashes"]
        return {"expires": time.time() + 3600, "urls": {h: f"http://store/{h}" for h in hashes}}

    async def get_bytes(self, url: str) -> bytes:
        self.gets += 1
        await self.release.wait()
        return self.data

    async def get_block(self, url: str, into: memoryview | None = None) -> bytes:
        """A whole block (the real transport may receive it into ``into``; this one never)."""
        return await self.get_bytes(url)


async def test_block_reader_cancelled_leaves_the_other_reader_its_block(tmp_path: Path) -> None:
    data = b"x" * 1000
    digest = hashlib.sha256(data).hexdigest()
    store = SlowStore(data)
    blocks = BlockIO(
        store,  # type: ignore[arg-type]
        "fs1",
        BlockCache(tmp_path, 1 << 20),
        download_concurrency=2,
        upload_concurrency=2,
    )
    first = asyncio.create_task(blocks.get(digest, len(data)))  # a read-ahead, say
    await _settle()
    second = asyncio.create_task(blocks.get(digest, len(data)))
    await _settle()
    first.cancel()
    await _settle()
    store.release.set()
    assert await second == data
    assert first.cancelled() and store.gets == 1


async def test_connect_reader_cancelled_leaves_the_other_reader_its_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = BlockCache(tmp_path, 1 << 20)
    link = SimpleNamespace(
        transport=None,
        services=SimpleNamespace(cache=cache),
        id="fs1",
        config=SimpleNamespace(download_concurrency=2),
    )
    reader = ExternalReader(link)  # type: ignore[arg-type]
    external = {"store": "s3", "store_id": "st1", "object_id": "a.csv", "size": 100, "etag": "e1"}
    source = ExternalSource(reader, "/a.csv", 7, external, 64)
    release = asyncio.Event()
    fetches = []

    async def fetch(source: ExternalSource, slot: int, length: int) -> bytes:
        fetches.append(slot)
        await release.wait()
        return b"y" * length

    monkeypatch.setattr(reader, "_fetch", fetch)  # the ranged GET on S3
    first = asyncio.create_task(reader.get(source, 0, 64))  # the reader that starts the fetch
    await _settle()
    second = asyncio.create_task(reader.get(source, 0, 64))
    await _settle()
    first.cancel()
    await _settle()
    release.set()
    assert await second == b"y" * 64
    assert first.cancelled() and fetches == [0]
