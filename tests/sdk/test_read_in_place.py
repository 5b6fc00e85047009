"""Large reads receive their blocks straight into the result (reader._gather, get_into).

What must hold: the bytes are exact; each distinct block crosses the network once (not
again through read-ahead, not again for a repeat of the same block); only verified bytes
are handed out (a corrupt answer is fetched again, twice corrupt raises and moves
nothing); a cut connection is retried; a cancelled read leaves no task behind; and the
cache fills from the returned result, without the read waiting for the disk, and serves
the next read in place. The results' pages are
faulted in ahead by another thread here as they are for large reads (prefault.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import lucidlink.aio
from lucidlink.aio import blocks, reader
from lucidlink.aio._util import run_in_thread_on
from lucidlink.aio.blocks import sha256_hex
from lucidlink.aio.cache import BlockCache
from lucidlink.exceptions import IntegrityError, LucidLinkError
from tests.support.faultproxy import FaultProxy, reset_after
from tests.sdk.test_random_reads import BS as MID
from tests.sdk.test_random_reads import Hub, hub, write  # noqa: F401 (the fixture)
from tests.support.sdkfixtures import SMALL_BLOCK, SdkHub

pytestmark = pytest.mark.asyncio
B = SMALL_BLOCK
FS = "fs1"


async def _write(sdk_hub: SdkHub, path: str, data: bytes) -> None:
    """Write ``data`` to the ``small`` filespace with a daemon of its own."""
    creds = lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token)
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as writer:
        fsp = await (await writer.authenticate(creds)).link_filespace(name="small")
        await fsp.fs.write_file(path, data)
        await fsp.sync_all()
        await fsp.unlink()


class Counted:
    """A fresh reader whose block GETs are counted: (url, received in place?)."""

    def __init__(self, hub_url: str, token: str) -> None:
        self.hub_url = hub_url
        self.token = token
        self.gets: list[tuple[str, bool]] = []
        self.corrupt = 0  # corrupt this many answers (a flipped byte) before letting them be
        self._daemon: Any = None
        self.fsp: Any = None

    async def __aenter__(self) -> Counted:
        self._daemon = lucidlink.aio.create_daemon(hub_url=self.hub_url)
        await self._daemon.__aenter__()
        creds = lucidlink.aio.ServiceAccountCredentials(token=self.token)
        self.fsp = await (await self._daemon.authenticate(creds)).link_filespace(name="small")
        transport = self.fsp._link.blocks.transport
        real = transport.get_block

        async def counting(url: str, into: memoryview | None = None) -> Any:
            body = await real(url, into)
            self.gets.append((url, into is not None and body is into))
            if self.corrupt:
                self.corrupt -= 1
                body[0] ^= 1
            return body

        transport.get_block = counting
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.fsp.unlink()
        await self._daemon.__aexit__(*exc)


@pytest.fixture(autouse=True)
def prefault_small_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """These files are small: have their results faulted in ahead all the same."""
    monkeypatch.setattr(reader, "_PREFAULT_MIN", 1 << 20)


@pytest_asyncio.fixture
async def big(sdk_hub: SdkHub) -> AsyncIterator[bytes]:
    data = os.urandom(40 * B + 123)
    await _write(sdk_hub, "/big.bin", data)
    yield data


async def test_a_large_read_receives_each_block_once_in_place(sdk_hub: SdkHub, big: bytes) -> None:
    async with Counted(sdk_hub.url, sdk_hub.token) as r:
        assert await r.fsp.fs.read_file("/big.bin") == big
        urls = [u for u, _ in r.gets]
        assert len(urls) == len(set(urls)) >= 40, urls  # the tail may come inline
        assert all(in_place for _, in_place in r.gets)
        # The cache was filled from the result; the next read comes from it, in place.
        await r.fsp._link.blocks.cache.drain()
        r.gets.clear()
        assert await r.fsp.fs.read_file("/big.bin") == big
        assert r.gets == []


async def test_a_stream_of_large_reads_downloads_each_block_once(
        sdk_hub: SdkHub, big: bytes) -> None:
    """Read-ahead past one large read feeds the next; a fetch never repeats its blocks."""
    async with Counted(sdk_hub.url, sdk_hub.token) as r:
        got = bytearray()
        async with r.fsp.fs.open("/big.bin", "rb") as f:
            await f.seek(5)
            while piece := await f.read(17 * B + 3):
                got += piece
        assert bytes(got) == big[5:]
        urls = [u for u, _ in r.gets]
        assert len(urls) == len(set(urls)), urls
        assert any(in_place for _, in_place in r.gets)


async def test_a_repeated_block_is_fetched_once(sdk_hub: SdkHub) -> None:
    same = os.urandom(B)
    data = b"".join(same if i % 3 == 0 else os.urandom(B) for i in range(30))
    await _write(sdk_hub, "/repeats.bin", data)
    async with Counted(sdk_hub.url, sdk_hub.token) as r:
        assert await r.fsp.fs.read_file("/repeats.bin") == data
        assert len(r.gets) == 21  # 20 distinct blocks and the repeated one, once


async def test_a_corrupt_answer_is_fetched_again_and_twice_corrupt_moves_nothing(
        sdk_hub: SdkHub, big: bytes) -> None:
    async with Counted(sdk_hub.url, sdk_hub.token) as r:
        r.corrupt = 1
        assert await r.fsp.fs.read_file("/big.bin") == big
        assert len(r.gets) == len({u for u, _ in r.gets}) + 1
    async with Counted(sdk_hub.url, sdk_hub.token) as r:
        r.corrupt = 1 << 30
        async with r.fsp.fs.open("/big.bin", "rb") as f:
            await f.seek(7)
            with pytest.raises(IntegrityError):
                await f.read(20 * B)
            assert f.tell() == 7
        assert r.fsp._link.blocks.cache.size == 0  # nothing unverified was cached


async def test_cut_answers_into_place_are_retried_whole(sdk_hub: SdkHub, big: bytes) -> None:
    port = int(sdk_hub.url.rsplit(":", 1)[1])
    with FaultProxy(("127.0.0.1", port)) as proxy:
        proxy.mode = reset_after(B // 3, match=r"^GET /v1/blocks/", times=5)
        async with Counted(proxy.url, sdk_hub.token) as r:
            got = await r.fsp.fs.read_file("/big.bin")
    assert hashlib.sha256(got).digest() == hashlib.sha256(big).digest()


async def test_a_cancelled_large_read_leaves_no_task_and_the_handle_usable(
        sdk_hub: SdkHub, big: bytes) -> None:
    def fetches() -> list[asyncio.Task[Any]]:  # the read's own tasks: fetches, prefault
        return [t for t in asyncio.all_tasks()
                if any(n in t.get_coro().__qualname__ for n in ("_fill", "run_sync", "get_into"))]

    async with Counted(sdk_hub.url, sdk_hub.token) as r:
        async with r.fsp.fs.open("/big.bin", "rb") as f:
            read = asyncio.create_task(f.read())
            while len(r.gets) < 3:
                await asyncio.sleep(0.001)
            read.cancel()
            with pytest.raises(asyncio.CancelledError):
                await read
            assert f.tell() == 0
            await asyncio.sleep(0.05)  # cancelled fetches unwind; background cache writes end
            await r.fsp._link.blocks.cache.drain()
            assert fetches() == []
            assert await f.read() == big


async def test_the_cache_reads_into_a_buffer_only_what_it_can_vouch_for(tmp_path: Path) -> None:
    cache = BlockCache(tmp_path, 1 << 30)
    await cache.open()
    data = os.urandom(256 * 1024)
    digest = hashlib.sha256(data).hexdigest()
    await cache.put(FS, digest, data)
    into = memoryview(bytearray(len(data)))
    assert await cache.get_into(FS, digest, into, digest=digest)  # while its write is pending
    assert into == data
    await cache.drain()
    into[:] = bytes(len(data))
    assert await cache.get_into(FS, digest, into, digest=digest) and into == data
    assert not await cache.get_into(FS, digest, memoryview(bytearray(10)), digest=digest)
    path = tmp_path / FS / digest
    damaged = bytearray(data)
    damaged[1000] ^= 1
    path.write_bytes(damaged)  # a new ctime: fully checked again
    assert not await cache.get_into(FS, digest, into, digest=digest)
    assert not cache.contains(FS, digest) and not path.exists()


READER = """
import sys
import lucidlink

url, token, root = sys.argv[1:4]
with lucidlink.create_daemon(sandboxed=False, root_path=root, hub_url=url) as daemon:
    workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=token))
    filespace = workspace.link_filespace(name="small")
    print("ready", flush=True)
    while True:
        filespace.fs.read_file("/crash.bin")
"""


@pytest.mark.parametrize("cached_before_kill", [1, 40, 110])
async def test_a_reader_killed_mid_read_leaves_a_cache_that_serves_only_whole_blocks(
        sdk_hub: SdkHub, tmp_path: Path, cached_before_kill: int) -> None:
    """kill -9 of a physical daemon while large reads receive blocks into their results and
    the cache writes them from there: the next daemon on the same root drops the
    half-written temporaries, every entry left hashes to its name, and the file reads
    back exact."""
    data = os.urandom(128 * B + 77)  # 8 MiB: in place, and faulted in ahead
    await _write(sdk_hub, "/crash.bin", data)
    root = tmp_path / "root"
    root.mkdir()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", READER, sdk_hub.url, sdk_hub.token, str(root),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 60) == b"ready\n"
        cache = root / ".lucid" / "cache"
        deadline = asyncio.get_running_loop().time() + 60
        while sum(1 for p in cache.rglob("*") if p.is_file()) < cached_before_kill:
            assert asyncio.get_running_loop().time() < deadline, "the reader cached nothing"
            await asyncio.sleep(0.002)
    finally:
        proc.kill()  # SIGKILL
        await proc.wait()
    creds = lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token)
    async with lucidlink.aio.create_daemon(sandboxed=False, root_path=str(root),
                                           hub_url=sdk_hub.url) as daemon:
        fsp = await (await daemon.authenticate(creds)).link_filespace(name="small")
        assert await fsp.fs.read_file("/crash.bin") == data
        await fsp._link.blocks.cache.drain()
        entries = [p for p in (root / ".lucid" / "cache").rglob("*") if p.is_file()]
        assert not [p for p in entries if p.name.startswith(".")]
        torn = [p for p in entries if hashlib.sha256(p.read_bytes()).hexdigest() != p.name]
        assert torn == []
        assert len(entries) >= 128
        await fsp.unlink()


async def test_large_reads_through_gc_and_a_hub_restart_are_exact_or_refused(hub: Hub) -> None:
    """A large read of a replaced version while the GC runs (within its grace: exact), one
    across a hub restart (exact, or an error: never other bytes), and one of a version the
    GC has collected meanwhile (refused, the position unmoved)."""
    creds = lucidlink.aio.ServiceAccountCredentials(token=hub.token)
    old, new = os.urandom(12 * MID + 3), os.urandom(12 * MID + 5)
    await write(hub, "/L.bin", old)
    async with contextlib.AsyncExitStack() as stack:
        readers = []
        for _ in range(3):  # each its own daemon: an empty cache, every block downloaded
            daemon = await stack.enter_async_context(lucidlink.aio.create_daemon(hub_url=hub.url))
            readers.append(await (await daemon.authenticate(creds)).link_filespace(name="mid"))
        during_gc = await stack.enter_async_context(readers[0].fs.open("/L.bin", "rb"))
        after_gc = await stack.enter_async_context(readers[1].fs.open("/L.bin", "rb"))
        await write(hub, "/L.bin", new)  # the old version's blocks are unreferenced now

        async def gc() -> None:
            await readers[0]._link.blocks.transport.call(
                "POST", "/v1/admin/gc", json={"grace_seconds": 900})

        read = asyncio.ensure_future(during_gc.read())
        for _ in range(5):
            await gc()
            await asyncio.sleep(0)
        assert await read == old

        async with readers[2].fs.open("/L.bin", "rb") as f:
            read = asyncio.ensure_future(f.read())
            await asyncio.sleep(0.01)
            await asyncio.to_thread(hub.restart)
            try:
                assert await read == new
            except LucidLinkError:
                assert f.tell() == 0

        hub.embedded.write(lambda tx: tx.execute(
            "UPDATE blocks SET last_seen = last_seen - ?", (1000 * 10**9,)))
        await gc()
        with pytest.raises(LucidLinkError):
            await after_gc.read()
        assert after_gc.tell() == 0
        for fsp in readers:
            await fsp.unlink()


class _HandOver(io.BytesIO):
    """The reader's result buffer, noting at ``getvalue`` whether any view of it is left
    (``getvalue`` copies the whole result then, instead of handing it over)."""

    handed_over: list[bool] = []

    def getvalue(self) -> bytes:
        try:
            self.truncate(self.seek(0, io.SEEK_END))  # refused while a view is still held
        except BufferError:
            self.handed_over.append(False)
        else:
            self.handed_over.append(True)
        return super().getvalue()


class _ReaderIo:
    """The ``io`` module as the reader sees it, with :class:`_HandOver` as ``BytesIO``."""

    BytesIO = _HandOver

    def __getattr__(self, name: str) -> Any:
        return getattr(io, name)


async def test_a_worker_thread_keeps_no_hold_on_the_buffer_it_worked_on(
        lingering_workers: list[tuple[Any, ...]]) -> None:
    data = bytearray(os.urandom(512 * 1024))
    assert await sha256_hex(memoryview(data)[1:]) == hashlib.sha256(data[1:]).hexdigest()
    assert await run_in_thread_on(data, len) == len(data)
    assert len(lingering_workers) == 2
    data.append(0)  # a bytearray with a view still exported refuses to resize


async def test_a_large_read_hands_its_result_over_while_workers_linger(
        sdk_hub: SdkHub, big: bytes, lingering_workers: list[tuple[Any, ...]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The threads that hashed, cached and read back its blocks keep their last jobs:
    the result is still handed over, not copied (cold, then from the cache)."""
    monkeypatch.setattr(reader, "io", _ReaderIo())
    monkeypatch.setattr(blocks, "_HASH_IN_THREAD", 0)  # these blocks are small: hash them there too
    monkeypatch.setattr(_HandOver, "handed_over", [])
    async with Counted(sdk_hub.url, sdk_hub.token) as r:
        assert await r.fsp.fs.read_file("/big.bin") == big
        await r.fsp._link.blocks.cache.drain()
        n = len(r.gets)
        assert await r.fsp.fs.read_file("/big.bin") == big
        assert len(r.gets) == n  # the second read came from the cache
    assert len(lingering_workers) > 80  # hashes, cache writes and reads went to threads
    assert _HandOver.handed_over == [True, True]


class _HeldWrites:
    """The cache's disk writes, held until :meth:`release` (the reads go on)."""

    def __init__(self, cache: BlockCache, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = 0
        self._go = asyncio.Event()
        real = cache._write

        async def held(key: str, data: Any) -> None:
            self.started += 1
            await self._go.wait()
            await real(key, data)

        monkeypatch.setattr(cache, "_write", held)

    def release(self) -> None:
        self._go.set()


async def test_a_large_read_returns_before_its_blocks_reach_the_cache_files(
        sdk_hub: SdkHub, big: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk writes of the cache are not waited for: the read returns, its blocks are
    already indexed and served from the returned bytes, and they reach the disk later,
    each file hashing to its name."""
    async with Counted(sdk_hub.url, sdk_hub.token) as r:
        cache = r.fsp._link.blocks.cache
        held = _HeldWrites(cache, monkeypatch)
        try:
            got = await asyncio.wait_for(r.fsp.fs.read_file("/big.bin"), 20)
            assert got == big
            await asyncio.sleep(0.05)
            assert held.started == 1  # the first write waits; the others queue behind it
            n = len(r.gets)
            assert await r.fsp.fs.read_file("/big.bin") == big  # from the result's memory
            assert len(r.gets) == n
        finally:
            held.release()
        await cache.drain()
        files = [p for p in cache.root.rglob("*") if p.is_file() and not p.name.startswith(".")]
        assert len(files) >= 40
        assert all(hashlib.sha256(p.read_bytes()).hexdigest() == p.name for p in files)
        del got


async def test_large_reads_wait_for_the_cache_only_past_its_pending_limit(
        sdk_hub: SdkHub, big: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream of large reads cannot outrun the cache's disk without bound: once more
    than the pending limit waits for the disk, the next read's downloads wait until the
    disk has caught up (its bytes are exact all the same); a read the cache answers
    does not wait."""
    other = os.urandom(20 * B)
    await _write(sdk_hub, "/other.bin", other)
    monkeypatch.setattr("lucidlink.aio.cache._PENDING_MAX", 8 * B)
    async with Counted(sdk_hub.url, sdk_hub.token) as r:
        cache = r.fsp._link.blocks.cache
        held = _HeldWrites(cache, monkeypatch)
        try:
            assert await asyncio.wait_for(r.fsp.fs.read_file("/big.bin"), 20) == big
            # A read the cache answers whole downloads nothing: it does not wait.
            assert await asyncio.wait_for(r.fsp.fs.read_file("/big.bin"), 20) == big
            second = asyncio.ensure_future(r.fsp.fs.read_file("/other.bin"))
            await asyncio.sleep(0.5)
            assert not second.done()  # 40 blocks of the first read wait for the disk
        finally:
            held.release()
        assert await asyncio.wait_for(second, 60) == other
        await cache.drain()
