"""Chunk digests the hub computes after the fact: for blocks it did not hash on the way in.

A block uploaded to the hub's own store gets its chunk digests in the pass that checks
its hash (:mod:`lucidlink.hub.api.blocks`). Two kinds of live block have none:

* blocks a client PUT straight to an S3 store that enforces the SHA-256 checksum: the
  hub verified them by HEAD and never saw their bytes (:mod:`lucidlink.hub.uploads`);
* blocks stored before digests existed.

Without digests a client reads such a block whole for a 4 KiB random read (a 4 MiB GET
where a 64 KiB range would do). So :class:`ChunkDigester` computes them from bytes the
hub reads and verifies itself: in the background, for every block a commit made live
without digests, and on demand, when a client asks for the digests of a block that has
none (``POST .../blocks/chunks``, bounded per call). Digests always come from bytes that
hashed to the block's name; a damaged or missing block gets none, so its readers read
it whole and are told.

The background queue is bounded and kept in memory: what a restart or a full queue
drops is computed on demand. The cost on S3 is one GET of each block a commit makes
live, which is the same read the hub makes of every block uploaded to its own store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

import anyio.to_thread
import structlog

from lucidlink.exceptions import IntegrityError, PathNotFoundError
from lucidlink.hub.blockstore.local import LocalBlockStore
from lucidlink.hub.core import chunks

if TYPE_CHECKING:
    from lucidlink.hub.state import Hub

log = structlog.get_logger("lucidlink.hub")

QUEUE_MAX = 65_536
"""Blocks waiting for background digests at most; more are left to the on-demand path."""
WORKERS = 2
"""Blocks digested at once in the background (each a read of the block and a hash of it)."""
ON_DEMAND_CONCURRENCY = 8


class ChunkDigester:
    """Computes and records chunk digests of live blocks (one per hub process)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[tuple[str, str, int]] = asyncio.Queue(QUEUE_MAX)
        self._queued: set[tuple[str, str]] = set()
        self._workers: list[asyncio.Task[None]] = []
        self.computed = 0
        """Blocks whose digests this hub computed and recorded (tests, diagnostics)."""

    def start(self) -> None:
        """Start the background workers (on the hub's event loop)."""
        if not self._workers:
            self._workers = [asyncio.create_task(self._work(), name=f"hub-digests-{i}")
                             for i in range(WORKERS)]

    async def close(self) -> None:
        """Stop the workers; what is still queued is computed on demand later."""
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []

    def want(self, filespace_id: str, blocks: Iterable[tuple[str, int]]) -> None:
        """Queue blocks (``(hash, length)``) for background digests, without waiting."""
        for digest, length in blocks:
            key = (filespace_id, digest)
            if key in self._queued:
                continue
            try:
                self._queue.put_nowait((filespace_id, digest, length))
            except asyncio.QueueFull:
                return  # the on-demand path covers the rest
            self._queued.add(key)

    async def compute(self, filespace_id: str, lacking: dict[str, int],
                      limit: int) -> tuple[dict[str, bytes], list[str]]:
        """Digests of up to ``limit`` of the live blocks ``lacking`` (hash -> length), now.

        Returns the digests computed and recorded, and the hashes left for a later call:
        those beyond ``limit``, and those the store could not be read for just now (a
        transient error of an object store is not an answer that the block has none).
        """
        todo = list(lacking)
        gate = asyncio.Semaphore(ON_DEMAND_CONCURRENCY)
        later: list[str] = []

        async def one(digest: str) -> bytes | None:
            async with gate:
                try:
                    return await self._digest(filespace_id, digest, lacking[digest])
                except Exception as exc:
                    log.warning("hub.digests.failed", filespace=filespace_id, block=digest,
                                error=f"{type(exc).__name__}: {exc}"[:300])
                    later.append(digest)
                    return None

        found = await asyncio.gather(*(one(d) for d in todo[:limit]))
        computed = {d: f for d, f in zip(todo[:limit], found, strict=True) if f is not None}
        return computed, [d for d in todo[:limit] if d in later] + todo[limit:]

    async def _work(self) -> None:
        while True:
            filespace_id, digest, length = await self._queue.get()
            try:
                _, lacking = await self._hub.store.read(chunks.live_digests, filespace_id, [digest])
                if digest in lacking:  # live, and still without digests
                    await self._digest(filespace_id, digest, length)
            except Exception as exc:  # a worker outlives any one block (the hub logs why)
                log.warning("hub.digests.failed", filespace=filespace_id, block=digest,
                            error=f"{type(exc).__name__}: {exc}"[:300])
            finally:
                self._queued.discard((filespace_id, digest))

    async def _digest(self, filespace_id: str, digest: str, length: int) -> bytes | None:
        """Read the block, check it against its name, record its digests; ``None`` if it is
        missing, damaged, of another length, or no longer live."""
        digests = await self._read_and_hash(filespace_id, digest, length)
        if digests is None:
            return None
        if not await self._hub.store.write(chunks.record, filespace_id, digest, digests):
            return None
        self.computed += 1
        return digests

    async def _read_and_hash(self, filespace_id: str, digest: str, length: int) -> bytes | None:
        store = self._hub.blocks
        if isinstance(store, LocalBlockStore):
            return await anyio.to_thread.run_sync(
                _digests_of_file, store, filespace_id, digest, length)
        get = getattr(store, "get", None)
        if get is None:
            return None
        try:
            data = await get(filespace_id, digest)  # checked against the block's name
        except (PathNotFoundError, IntegrityError) as exc:
            log.warning("hub.digests.unreadable", filespace=filespace_id, block=digest,
                        error=type(exc).__name__)
            return None
        if len(data) != length:
            return None
        return await anyio.to_thread.run_sync(chunks.chunk_digests, data)


def _digests_of_file(store: LocalBlockStore, fs_id: str, digest: str, length: int) -> bytes | None:
    """The chunk digests of a block file of the hub's own store, if it still hashes to its name."""
    try:
        data = store.path_of(fs_id, digest).read_bytes()
    except OSError:
        return None
    if len(data) != length:
        return None
    actual, digests = chunks.hash_block(data)
    return digests if actual == digest else None
