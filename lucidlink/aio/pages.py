"""Verified ranged reads: a small random read fetches the chunks it needs, not its block.

A block is named by the SHA-256 of all its bytes, so a range of it cannot be checked
against its name. The hub records, per block, the SHA-256 of each fixed-size chunk
(64 KiB), computed from bytes it verified itself (``POST .../blocks/chunks``). A
:class:`PageReader` fetches the chunk-aligned byte range covering a read with one HTTP
``Range`` GET on the block's signed URL, checks every chunk against its digest, and
keeps verified chunks in a small in-memory LRU.

The invariants:

* No byte is returned that was not checked against a digest the hub gave. A chunk that
  does not match is never returned: :meth:`PageReader.read` answers ``None`` and the
  caller reads the whole block, which is verified against its name (and raises
  ``IntegrityError`` when the block itself is damaged).
* Anything else that goes wrong (no digests for a block, a hub without the route, a
  refused URL) also answers ``None``: the whole-block path is always the fallback.
* Digests are asked for in batches (the block read and the blocks around it, up to
  ``DIGEST_BATCH`` a call); concurrent reads share the call in flight for their block.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Callable

import anyio.to_thread
import attrs

from lucidlink._log import get_logger
from lucidlink.aio.blocks import BlockIO
from lucidlink.exceptions import HubUnavailableError, LucidLinkError, PathNotFoundError

log = get_logger("lucidlink")

PAGE_SIZE = 64 * 1024
"""A short random read (``AsyncFile.readinto1``) returns up to the end of the page that
holds the byte ``PAGE_MIN`` bytes on: the hub's chunk size (lucidlink/hub/core/chunks.py)."""
PAGE_MIN = 16 * 1024
DIGEST_BATCH = 256
"""Blocks whose digests one ``blocks/chunks`` call asks for."""
CHUNK_CACHE_BYTES = 32 * 1024 * 1024
"""Verified chunks kept in memory per filespace link."""
_KNOWN_MAX = 16384
"""Blocks whose digests (or their absence) are remembered per filespace link."""
_DIGEST = 32
_HASH_IN_THREAD = 256 * 1024


@attrs.frozen
class ChunkDigests:
    """The chunk digests of one block: chunk ``i`` is bytes ``[i*chunk_size, (i+1)*chunk_size)``."""

    chunk_size: int
    digests: bytes
    """Concatenated raw SHA-256 digests, 32 bytes each, in chunk order."""

    def digest(self, index: int) -> bytes:
        """The SHA-256 of chunk ``index``."""
        return self.digests[index * _DIGEST:(index + 1) * _DIGEST]

    def fits(self, length: int) -> bool:
        """Whether these are digests of a block of ``length`` bytes (one per chunk)."""
        return self.chunk_size > 0 and len(self.digests) == -(-length // self.chunk_size) * _DIGEST


def _verify(data: bytes, first: int, info: ChunkDigests) -> bool:
    view = memoryview(data)
    size = info.chunk_size
    return all(hashlib.sha256(view[k:k + size]).digest() == info.digest(first + k // size)
               for k in range(0, len(view), size))


class PageReader:
    """Verified chunk reads of the blocks of one :class:`BlockIO` (see the module docstring)."""

    def __init__(self, blocks: BlockIO, cache_bytes: int = CHUNK_CACHE_BYTES) -> None:
        self._io = blocks
        self._known: OrderedDict[str, ChunkDigests | None] = OrderedDict()
        self._asking: dict[str, asyncio.Future[None]] = {}
        self._chunks: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._chunk_bytes = 0
        self._cache_bytes = cache_bytes
        self._unsupported = False
        self.fetched = 0
        """Bytes fetched with ranged GETs (for tests and benchmarks)."""

    async def lookup(self, digest: str, around: Callable[[], list[str]]) -> ChunkDigests | None:
        """The chunk digests of block ``digest`` (``None``: read it whole).

        When they are not known yet, one hub call asks for them together with those of
        ``around()`` (the blocks near it, not known or asked for yet); concurrent
        lookups of a block wait for the call that asks for it.
        """
        if digest in self._known:
            self._known.move_to_end(digest)
            return self._known[digest]
        if self._unsupported:
            return None
        flight = self._asking.get(digest)
        if flight is None:
            batch = [digest]
            for h in around():
                if len(batch) >= DIGEST_BATCH:
                    break
                if h not in self._known and h not in self._asking and h not in batch:
                    batch.append(h)
            flight = asyncio.ensure_future(self._ask(batch))
            flight.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved
            for h in batch:
                self._asking[h] = flight
        try:
            await asyncio.shield(flight)
        except Exception as exc:  # only a shortcut: the whole-block read reports its own errors
            log.debug("lucidlink.chunks_unavailable", block=digest[:12], error=type(exc).__name__)
            return None
        return self._known.get(digest)

    async def _ask(self, batch: list[str]) -> None:
        try:
            body = await self._io.transport.call(
                "POST", f"/v1/filespaces/{self._io.filespace_id}/blocks/chunks",
                json={"hashes": batch}, idempotent=True)
        except PathNotFoundError:
            # A hub without chunk digests: every block is read whole from now on.
            self._unsupported = True
            raise
        finally:
            for h in batch:
                self._asking.pop(h, None)
        size = int(body.get("chunk_size") or 0)
        answered = body.get("digests") or {}
        deferred = set(body.get("deferred") or ())
        for h in batch:
            hexdigests = answered.get(h)
            if isinstance(hexdigests, str):
                self._remember(h, ChunkDigests(size, bytes.fromhex(hexdigests)))
            elif h not in deferred:
                self._remember(h, None)

    def _remember(self, digest: str, info: ChunkDigests | None) -> None:
        self._known[digest] = info
        self._known.move_to_end(digest)
        while len(self._known) > _KNOWN_MAX:
            self._known.popitem(last=False)

    async def read(self, digest: str, length: int, offset: int, size: int,
                   info: ChunkDigests) -> bytes | None:
        """Bytes ``[offset, offset + size)`` of the block ``digest`` (``length`` bytes), every
        chunk they touch verified against ``info``; ``None`` when they cannot be (read the
        block whole instead)."""
        if not info.fits(length) or size <= 0 or offset + size > length:
            return None
        chunk = info.chunk_size
        first, last = offset // chunk, (offset + size - 1) // chunk
        have = {i: self._chunks.get((digest, i)) for i in range(first, last + 1)}
        for i, data in have.items():
            if data is not None:
                self._chunks.move_to_end((digest, i))
        missing = [i for i, data in have.items() if data is None]
        if missing:
            lo, hi = missing[0], missing[-1]
            start, end = lo * chunk, min(length, (hi + 1) * chunk)
            try:
                data = await self._io.get_range(digest, length, start, end)
            except HubUnavailableError:
                raise
            except LucidLinkError as exc:
                log.debug("lucidlink.range_failed", block=digest[:12], error=type(exc).__name__)
                return None
            self.fetched += len(data)
            if len(data) != end - start:
                return None
            if len(data) >= _HASH_IN_THREAD:
                good = await anyio.to_thread.run_sync(_verify, data, lo, info)
            else:
                good = _verify(data, lo, info)
            if not good:
                log.warning("lucidlink.chunk_mismatch", block=digest[:12], start=start, end=end)
                return None
            for i in range(lo, hi + 1):
                piece = data[(i - lo) * chunk:(i - lo + 1) * chunk]
                have[i] = piece
                self._keep((digest, i), piece)
        joined = b"".join(have[i] or b"" for i in range(first, last + 1))
        skip = offset - first * chunk
        return joined[skip:skip + size]

    def _keep(self, key: tuple[str, int], piece: bytes) -> None:
        old = self._chunks.pop(key, None)
        if old is not None:
            self._chunk_bytes -= len(old)
        self._chunks[key] = piece
        self._chunk_bytes += len(piece)
        while self._chunk_bytes > self._cache_bytes:
            _, dropped = self._chunks.popitem(last=False)
            self._chunk_bytes -= len(dropped)


_readers: weakref.WeakKeyDictionary[BlockIO, PageReader] = weakref.WeakKeyDictionary()


def reader_for(source: object) -> PageReader | None:
    """The :class:`PageReader` of a block source, or ``None`` when it reads no blocks by hash
    (a Connect object's ranges)."""
    if not isinstance(source, BlockIO):
        return None
    reader = _readers.get(source)
    if reader is None:
        reader = _readers[source] = PageReader(source)
    return reader
