"""Moving blocks: signed-URL batches from the hub, downloads with verification, uploads.

The hub only signs URLs (in batches); bytes travel between the daemon and the block
store directly. Every downloaded block is checked against its SHA-256 before anyone
sees it or it enters the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import anyio.to_thread

from lucidlink.aio.cache import BlockCache
from lucidlink.aio.singleflight import SingleFlight
from lucidlink.aio.transport import Transport
from lucidlink.exceptions import IntegrityError, SignedUrlError

_HASH_IN_THREAD = 256 * 1024
_URL_BATCH = 512


async def sha256_hex(data: bytes | memoryview) -> str:
    """SHA-256 of ``data``; large buffers are hashed in a thread (hashlib frees the GIL)."""
    if len(data) >= _HASH_IN_THREAD:
        return await anyio.to_thread.run_sync(lambda: hashlib.sha256(data).hexdigest())
    return hashlib.sha256(data).hexdigest()


class BlockIO:
    """Downloads and uploads the blocks of one filespace for one daemon."""

    def __init__(self, transport: Transport, filespace_id: str, cache: BlockCache, *,
                 download_concurrency: int, upload_concurrency: int) -> None:
        self.transport = transport
        self.filespace_id = filespace_id
        self.cache = cache
        self._urls: dict[str, tuple[str, float]] = {}
        self._downloads = asyncio.Semaphore(download_concurrency)
        self._uploads = asyncio.Semaphore(upload_concurrency)
        self._inflight: SingleFlight[str, bytes] = SingleFlight()  # by digest

    def _api(self, suffix: str) -> str:
        return f"/v1/filespaces/{self.filespace_id}{suffix}"

    async def prepare_get_urls(self, hashes: list[str]) -> None:
        """Fetch signed GET URLs for the hashes not already known, in batches."""
        now = time.monotonic()
        missing = list(dict.fromkeys(
            h for h in hashes
            if (h not in self._urls or self._urls[h][1] < now) and not self.cache.contains(self.filespace_id, h)
        ))
        for start in range(0, len(missing), _URL_BATCH):
            body = await self.transport.call("POST", self._api("/blocks/urls"),
                                             json={"op": "get", "hashes": missing[start:start + _URL_BATCH]},
                                             idempotent=True)
            ttl = max(1.0, body["expires"] - time.time() - 30)
            for h, url in body["urls"].items():
                self._urls[h] = (url, now + ttl)

    def is_cached(self, digest: str) -> bool:
        """Whether the block is in the daemon's cache (a local read away)."""
        return self.cache.contains(self.filespace_id, digest)

    async def get(self, digest: str, length: int) -> bytes:
        """A block's verified bytes: from the cache, a download already running, or a new one.

        Concurrent readers of one block share one download (:class:`SingleFlight`): one
        reader giving up (a cancelled read-ahead) never fails it for the others, and it
        is cancelled only when no reader waits for it any more.
        """
        cached = await self.cache.get(self.filespace_id, digest, digest=digest)
        if cached is not None:
            return cached
        return await self._inflight.run(digest, lambda: self._download(digest, length))

    async def _download(self, digest: str, length: int) -> bytes:
        for attempt in range(2):
            await self.prepare_get_urls([digest])
            url = self._urls[digest][0]
            async with self._downloads:
                try:
                    data = await self.transport.get_bytes(url)
                except SignedUrlError:
                    self._urls.pop(digest, None)
                    if attempt == 0:
                        continue
                    raise
            actual = await sha256_hex(data)
            if actual == digest and len(data) == length:
                await self.cache.put(self.filespace_id, digest, data)
                return data
            if attempt == 0:
                continue
            raise IntegrityError(
                f"block {digest[:12]}... arrived corrupt twice (hash {actual[:12]}..., {len(data)} bytes); "
                "the block store may be damaged"
            )
        raise AssertionError("unreachable")

    async def upload(self, blocks: dict[str, bytes | memoryview], *, best_effort: bool = False) -> None:
        """Upload blocks the hub does not have yet (it answers which it has).

        ``best_effort``: one attempt per request, for uploads made while a file is
        still being written; the write-back flusher uploads whatever they miss, and
        it retries for as long as it takes.
        """
        hashes = list(blocks)
        retries = 0 if best_effort else None
        for start in range(0, len(hashes), _URL_BATCH):
            body = await self.transport.call("POST", self._api("/blocks/urls"),
                                             json={"op": "put", "hashes": hashes[start:start + _URL_BATCH]},
                                             idempotent=not best_effort)
            await asyncio.gather(*(self._put(url, blocks[h], retries) for h, url in body["urls"].items()))

    async def _put(self, url: str, data: bytes | memoryview, retries: int | None) -> None:
        async with self._uploads:
            await self.transport.put_bytes(url, data, retries=retries)
