"""Random small reads fetch verified chunks, not whole blocks (lucidlink/aio/pages.py).

Counts, never timings: bytes the hub's block endpoint sent, hub calls, wrong bytes (0).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import lucidlink.aio
from lucidlink.aio import pages
from lucidlink.exceptions import IntegrityError, LucidLinkError
from lucidlink.hub.api.app_keys import HUB_KEY
from lucidlink.hub.core.chunks import CHUNK_SIZE
from lucidlink.hub.embedded import EmbeddedHub

BS = 1024 * 1024
"""Block size of the test filespace: 16 chunks a block."""
SMALL = 4096


class Hub:
    """An embedded hub that can be restarted on the same data dir and port."""

    def __init__(self, data_dir: Path, metadata_url: str | None) -> None:
        self.data_dir = data_dir
        self.metadata_url = metadata_url
        self.embedded = EmbeddedHub(data_dir, gc_interval_seconds=3600,
                                    metadata_url=metadata_url).start()
        self.token = self.embedded.init("demo", ["mid"], block_size=BS, admin=True)
        self.url = self.embedded.url

    def bytes_out(self) -> int:
        assert self.embedded.app is not None
        return int(self.embedded.app[HUB_KEY].metrics.block_bytes.get("out", 0))

    def restart(self) -> None:
        port = int(self.url.rsplit(":", 1)[1])
        self.embedded.stop()
        self.embedded = EmbeddedHub(self.data_dir, port=port, gc_interval_seconds=3600,
                                    metadata_url=self.metadata_url).start()
        assert self.embedded.url == self.url

    def block_file(self, fs_id: str, data: bytes) -> Path:
        digest = hashlib.sha256(data).hexdigest()
        return self.data_dir / "blocks" / fs_id / digest[:2] / digest


@pytest.fixture
def hub(tmp_path: Path, metadata_url: str | None) -> Iterator[Hub]:
    h = Hub(tmp_path / "hub", metadata_url)
    try:
        yield h
    finally:
        h.embedded.stop()


@pytest_asyncio.fixture
async def link(hub: Hub) -> AsyncIterator[Any]:
    async with lucidlink.aio.create_daemon(hub_url=hub.url) as daemon:
        creds = lucidlink.aio.ServiceAccountCredentials(token=hub.token)
        fsp = await (await daemon.authenticate(creds)).link_filespace(name="mid")
        yield fsp
        await fsp.unlink()


async def write(hub: Hub, path: str, data: bytes) -> None:
    """Write ``data`` with another daemon, so the reader's cache has none of it."""
    async with lucidlink.aio.create_daemon(hub_url=hub.url) as daemon:
        creds = lucidlink.aio.ServiceAccountCredentials(token=hub.token)
        fsp = await (await daemon.authenticate(creds)).link_filespace(name="mid")
        await fsp.fs.write_file(path, data)
        await fsp.sync_all()
        await fsp.unlink()


def count_calls(fsp: Any) -> list[str]:
    transport = fsp._link.blocks.transport
    calls: list[str] = []
    real = transport.call

    async def counting(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(path.rsplit("/", 2)[-2] + "/" + path.rsplit("/", 1)[-1])
        return await real(method, path, *args, **kwargs)

    transport.call = counting
    return calls


@pytest.mark.asyncio
async def test_random_reads_are_exact_at_any_offset(hub: Hub, link: Any) -> None:
    data = os.urandom(5 * BS + 12345)
    await write(hub, "/r.bin", data)
    rng = random.Random(7)
    reads = [(rng.randrange(len(data)), rng.choice([1, 100, SMALL, 3 * CHUNK_SIZE, BS // 4]))
             for _ in range(150)]
    reads += [(k * CHUNK_SIZE - 10, 20) for k in range(1, 40, 3)]  # across chunk boundaries
    reads += [(b * BS - 100, 200) for b in range(1, 6)]  # across block boundaries
    reads += [(len(data) - 50, 100), (len(data) - SMALL, SMALL), (len(data) - 1, 1)]  # the tail
    rng.shuffle(reads)
    wrong = 0
    async with link.fs.open("/r.bin", "rb") as f:
        for off, size in reads:
            await f.seek(off)
            wrong += await f.read(size) != data[off:off + size]
            if rng.random() < 0.1:  # continuing the read: whole blocks again, still exact
                more = await f.read(SMALL)
                wrong += more != data[off + size:off + size + SMALL]
        buf = bytearray(SMALL)
        await f.seek(3 * BS - 7)
        assert await f.readinto(buf) == SMALL and bytes(buf) == data[3 * BS - 7:3 * BS - 7 + SMALL]
    assert wrong == 0
    reader = pages.reader_for(link._link.blocks)
    assert reader is not None and reader.fetched > 0
    assert await link.fs.read_file("/r.bin") == data


@pytest.mark.asyncio
async def test_64_random_small_reads_fetch_chunks_not_blocks(hub: Hub, link: Any) -> None:
    blocks = 32
    data = os.urandom(blocks * BS)
    await write(hub, "/big.bin", data)
    rng = random.Random(1)
    # Two reads in each block, in distinct chunks, all in random order.
    offsets = [b * BS + c * CHUNK_SIZE + rng.randrange(CHUNK_SIZE - SMALL)
               for b in range(blocks) for c in rng.sample(range(BS // CHUNK_SIZE), 2)]
    rng.shuffle(offsets)
    calls = count_calls(link)
    before = hub.bytes_out()
    wrong = 0
    async with link.fs.open("/big.bin", "rb") as f:
        for off in offsets:
            await f.seek(off)
            wrong += await f.read(SMALL) != data[off:off + SMALL]
    fetched = hub.bytes_out() - before
    assert wrong == 0
    assert len(offsets) == 64
    # At most two chunks a read (a 4 KiB read crossing a chunk boundary), never a block.
    assert fetched <= 64 * 2 * CHUNK_SIZE, fetched
    assert fetched == 64 * CHUNK_SIZE  # these reads lie within one chunk each
    # One call for the digests of every block around, one for their URLs.
    assert calls.count("blocks/chunks") == 1 and calls.count("blocks/urls") == 1, calls
    # Reading on from a random read turns sequential: whole blocks and read-ahead again.
    async with link.fs.open("/big.bin", "rb") as f:
        await f.seek(5 * BS + 10)
        assert await f.read(SMALL) == data[5 * BS + 10:5 * BS + 10 + SMALL]
        before = hub.bytes_out()
        assert await f.read(3 * BS) == data[5 * BS + 10 + SMALL:8 * BS + 10 + SMALL]
        assert hub.bytes_out() - before >= 3 * BS


@pytest.mark.asyncio
async def test_blocks_stored_before_digests_existed_get_them_on_demand(hub: Hub, link: Any) -> None:
    blocks = 40
    data = os.urandom(blocks * BS)
    await write(hub, "/old.bin", data)
    hub.embedded.write(lambda tx: tx.execute("DELETE FROM block_chunks"))  # as before this change
    rng = random.Random(4)
    offsets = [b * BS + rng.randrange(BS // CHUNK_SIZE) * CHUNK_SIZE for b in range(blocks)]
    rng.shuffle(offsets)
    calls = count_calls(link)
    before = hub.bytes_out()
    wrong = 0
    async with link.fs.open("/old.bin", "rb") as f:
        for off in offsets:
            await f.seek(off)
            wrong += await f.read(SMALL) != data[off:off + SMALL]
    assert wrong == 0
    # The hub computes 16 blocks' digests a call and defers the others: asked again as
    # they are needed, never read whole.
    assert hub.bytes_out() - before == blocks * CHUNK_SIZE
    assert 2 <= calls.count("blocks/chunks") <= blocks, calls


@pytest.mark.asyncio
async def test_a_corrupt_chunk_on_the_hubs_disk_is_never_returned(hub: Hub, link: Any) -> None:
    data = os.urandom(4 * BS)
    await write(hub, "/c.bin", data)
    fs_id = link._link.blocks.filespace_id
    bad_block = 2
    path = hub.block_file(fs_id, data[bad_block * BS:(bad_block + 1) * BS])
    damaged = bytearray(path.read_bytes())
    bad_at = 5 * CHUNK_SIZE + 77
    damaged[bad_at] ^= 0x40
    path.write_bytes(bytes(damaged))
    rng = random.Random(5)
    offsets = [rng.randrange(len(data) - SMALL) for _ in range(60)]
    offsets += [bad_block * BS + bad_at - 100, bad_block * BS + 5 * CHUNK_SIZE]
    rng.shuffle(offsets)
    wrong = refused = 0
    async with link.fs.open("/c.bin", "rb") as f:
        for off in offsets:
            await f.seek(off)
            try:
                got = await f.read(SMALL)
            except IntegrityError:
                refused += 1
                assert off // BS == bad_block  # only the damaged block is refused
                continue
            wrong += got != data[off:off + SMALL]
    assert wrong == 0
    assert refused >= 2  # the reads of the damaged chunk, at least


@pytest.mark.asyncio
async def test_gc_and_a_hub_restart_during_random_reads_return_no_wrong_bytes(
        hub: Hub, link: Any) -> None:
    old = os.urandom(8 * BS)
    await write(hub, "/g.bin", old)
    rng = random.Random(9)
    wrong = errors = good = 0

    async def reads(f: Any, data: bytes, count: int) -> None:
        nonlocal wrong, errors, good
        for _ in range(count):
            off = rng.randrange(len(data) - SMALL)
            await f.seek(off)
            try:
                got = await f.read(SMALL)
            except LucidLinkError:  # the hub away, the block collected: told, never wrong
                errors += 1
                continue
            if got == data[off:off + SMALL]:
                good += 1
            else:
                wrong += 1

    async def gc(grace: float = 900) -> None:  # the least the hub takes: its URL lifetime
        await link._link.blocks.transport.call(
            "POST", "/v1/admin/gc", json={"grace_seconds": grace})

    async with link.fs.open("/g.bin", "rb") as f:
        await reads(f, old, 10)
        new = os.urandom(8 * BS)
        await write(hub, "/g.bin", new)  # the old version's blocks are unreferenced now
        # GC passes while reading the old version: its blocks are within the grace period.
        task = asyncio.ensure_future(reads(f, old, 40))
        for _ in range(5):
            await gc()
            await asyncio.sleep(0)
        await task
        assert errors == 0
        # A hub restart in the middle of a run of reads.
        task = asyncio.ensure_future(reads(f, old, 40))
        await asyncio.sleep(0.01)
        await asyncio.to_thread(hub.restart)
        await task
        # The grace has passed (played as time passing): the GC collects the old blocks
        # (and their digests); reads of them are refused or served from verified chunks.
        hub.embedded.write(lambda tx: tx.execute(
            "UPDATE blocks SET last_seen = last_seen - ?", (1000 * 10**9,)))
        await gc()
        await reads(f, old, 40)
    async with link.fs.open("/g.bin", "rb") as f:
        await reads(f, new, 40)
    assert wrong == 0 and good > 0
    rows = hub.embedded.write(lambda tx: tx.all("SELECT hash FROM block_chunks"))
    assert {r["hash"] for r in rows} == {
        hashlib.sha256(new[i:i + BS]).hexdigest() for i in range(0, len(new), BS)}


def test_blocking_random_reads_through_a_buffered_file_fetch_pages(hub: Hub) -> None:
    """``open`` of the blocking API buffers 1 MiB; a random read still fetches one page."""
    data = os.urandom(16 * BS)
    daemon = lucidlink.create_daemon(hub_url=hub.url)
    daemon.start()
    try:
        workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=hub.token))
        filespace = workspace.link_filespace(name="mid")
        filespace.fs.write_file("/b.bin", data)
        filespace.sync_all()
        filespace.unlink()
        daemon.stop()
        daemon = lucidlink.create_daemon(hub_url=hub.url)  # a fresh cache
        daemon.start()
        workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=hub.token))
        filespace = workspace.link_filespace(name="mid")
        rng = random.Random(3)
        offsets = [b * BS + rng.randrange(BS - SMALL) for b in rng.sample(range(16), 16)]
        before = hub.bytes_out()
        wrong = 0
        with filespace.fs.open("/b.bin", "rb") as f:
            for off in offsets:
                f.seek(off)
                wrong += f.read(SMALL) != data[off:off + SMALL]
            fetched = hub.bytes_out() - before
            # Reading on: whole blocks again, through the same buffered file.
            f.seek(2 * BS + 5)
            wrong += f.read(3 * BS) != data[2 * BS + 5:5 * BS + 5]
        assert wrong == 0
        assert fetched <= len(offsets) * 2 * CHUNK_SIZE, fetched
        filespace.unlink()
    finally:
        daemon.stop()


def test_a_blocking_seek_makes_no_trip_to_the_loop(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """A random read is a seek then a read: only the read goes through the event loop,
    unless writes wait to be carried (then the seek takes them, in order)."""
    from lucidlink import _loop

    calls = 0
    real_run = _loop.run

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return real_run(*args, **kwargs)

    data = os.urandom(3 * BS)
    with lucidlink.create_daemon(hub_url=hub.url) as daemon:
        workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=hub.token))
        filespace = workspace.link_filespace(name="mid")
        filespace.fs.write_file("/s.bin", data)
        with filespace.fs.open("/s.bin", "rb") as f:
            monkeypatch.setattr(_loop, "run", counted)
            assert f.seek(BS + 7) == BS + 7
            assert f.seek(-10, os.SEEK_CUR) == BS - 3
            assert f.seek(-SMALL, os.SEEK_END) == 3 * BS - SMALL
            assert f.seek(BS - 3) == BS - 3 and f.tell() == BS - 3
            assert calls == 0
            assert f.read(SMALL) == data[BS - 3:BS - 3 + SMALL]
            assert calls == 1
            with pytest.raises(OSError):
                f.seek(-1)
            assert f.tell() == BS - 3 + SMALL
            monkeypatch.setattr(_loop, "run", real_run)
        with filespace.fs.open("/w.bin", "wb") as w:
            w.write(b"a" * 100)
            monkeypatch.setattr(_loop, "run", counted)
            calls = 0
            # The buffer goes to the raw file, which holds it for the next call into
            # the loop: the seek, which carries it first.
            w.seek(10)
            assert calls == 1
            monkeypatch.setattr(_loop, "run", real_run)
            w.write(b"B")
        assert filespace.fs.read_file("/w.bin") == b"a" * 10 + b"B" + b"a" * 89
        filespace.unlink()
