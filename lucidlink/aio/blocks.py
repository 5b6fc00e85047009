"""Moving blocks: signed-URL batches from the hub, downloads with verification, uploads.

The hub only signs URLs (in batches); bytes travel between the daemon and the block
store directly: the hub's own block endpoint, or an S3 bucket on presigned URLs. Every
downloaded block is checked against its SHA-256 before anyone sees it or it enters the
cache. An upload to S3 carries the headers the hub signed with it (the block's
``x-amz-checksum-sha256``: the store refuses other bytes with 400 ``BadDigest``).

What an answer of the store means, on either store: bytes refused as not matching
their hash (damaged in transit) are sent again; a refused signature (403: expired or
invalid) has the hub asked for a fresh URL; a block missing on read (404) too, once,
before it is reported missing; anything else 5xx is retried with backoff.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import pybase64
import yarl

from lucidlink.aio._util import run_in_thread_on
from lucidlink.aio.cache import BlockCache
from lucidlink.aio.retry import backoff_delay
from lucidlink.aio.singleflight import SingleFlight
from lucidlink.aio.transport import BlockBody, Transport
from lucidlink.exceptions import (
    HubUnavailableError,
    IntegrityError,
    LucidLinkError,
    PathNotFoundError,
    SignedUrlError,
)

_HASH_IN_THREAD = 256 * 1024
_INLINE_MAX_BLOCK = 1024 * 1024
"""Largest block accepted inline (the hub's limit is at most this)."""
_INLINE_KEEP_BYTES = 32 * 1024 * 1024
"""Small blocks the hub sent with metadata, held in memory at most (the oldest go first)."""
_URL_BATCH = 512
_PUT_RETRIES = 4
_PUT_ATTEMPTS = 3
"""Uploads of one block on fresh URLs or after damaged bytes, before the error is raised."""
_S3_CODE = re.compile(rb"<Code>([^<]{1,64})</Code>")
_CHECKSUM_MISMATCH = {b"BadDigest", b"XAmzContentChecksumMismatch", b"InvalidDigest"}
_CONNECTION_ERRORS = (aiohttp.ClientConnectionError, asyncio.TimeoutError,
                      aiohttp.ClientPayloadError)


def _is_missing(exc: LucidLinkError) -> bool:
    """A read answered "no such block": the hub's 404 envelope, or an object store's 404."""
    return isinstance(exc, PathNotFoundError) or (
        type(exc) is LucidLinkError and exc.details.get("status") == 404)


async def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    """SHA-256 of ``data``; large buffers are hashed in a thread (hashlib frees the GIL)."""
    if len(data) >= _HASH_IN_THREAD:
        return await run_in_thread_on(data, _hex_digest)
    return hashlib.sha256(data).hexdigest()


def _hex_digest(view: memoryview) -> str:
    return hashlib.sha256(view).hexdigest()


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
        self._inflight: SingleFlight[str, bytes | bytearray] = SingleFlight()  # by digest
        self._inline: dict[str, bytes] = {}  # small blocks the hub answered with (oldest first)
        self._inline_bytes = 0

    def _api(self, suffix: str) -> str:
        return f"/v1/filespaces/{self.filespace_id}{suffix}"

    async def prepare_get_urls(self, hashes: list[str]) -> None:
        """Fetch signed GET URLs for the hashes not already known, in batches."""
        now = time.monotonic()
        missing = list(dict.fromkeys(
            h for h in hashes
            if (h not in self._urls or self._urls[h][1] < now)
            and h not in self._inline and not self.cache.contains(self.filespace_id, h)
        ))
        for start in range(0, len(missing), _URL_BATCH):
            batch = missing[start:start + _URL_BATCH]
            body = await self.transport.call("POST", self._api("/blocks/urls"),
                                             json={"op": "get", "hashes": batch}, idempotent=True)
            ttl = max(1.0, body["expires"] - time.time() - 30)
            for h, url in body["urls"].items():
                self._urls[h] = (url, now + ttl)
            for h, data in (body.get("inline") or {}).items():  # small blocks: no URL, the bytes
                self.accept_inline(h, pybase64.b64decode(data))

    def accept_inline(self, digest: str, data: bytes) -> bool:
        """Keep a small block the hub sent with its metadata (``"data"`` in a file answer,
        ``"inline"`` in a URL answer), once it matches its SHA-256; ``False`` (nothing kept)
        when it does not. Later reads of it need no request. Held in memory, bounded
        (:data:`_INLINE_KEEP_BYTES`; the oldest go first), not in the disk cache: a small
        block costs no more to ask for again than to write to disk.
        """
        if digest in self._inline:
            return True
        if len(data) > _INLINE_MAX_BLOCK or hashlib.sha256(data).hexdigest() != digest:
            return False
        self._inline[digest] = data
        self._inline_bytes += len(data)
        while self._inline_bytes > _INLINE_KEEP_BYTES:
            self._inline_bytes -= len(self._inline.pop(next(iter(self._inline))))
        return True

    def accept_file(self, info: Mapping[str, Any]) -> int:
        """:meth:`accept_inline` every block of a ``GET .../file`` answer that carries its bytes,
        and those of its ``prefetched`` answers; returns how many were kept."""
        kept = 0
        for answer in [info, *(info.get("prefetched") or ())]:
            for block in answer.get("blocks") or ():
                data = block.get("data")
                if isinstance(data, str) and self.accept_inline(block["hash"], pybase64.b64decode(data)):
                    kept += 1
        return kept

    def inline_block(self, digest: str) -> bytes | None:
        """A small block's bytes, when the hub sent them and they are still held."""
        return self._inline.get(digest)

    def is_cached(self, digest: str) -> bool:
        """Whether the block is in the daemon's cache (a local read away)."""
        return self.cache.contains(self.filespace_id, digest)

    async def get(self, digest: str, length: int) -> bytes | bytearray:
        """A block's verified bytes: from the cache, a download already running, or a new one.

        Concurrent readers of one block share one download (:class:`SingleFlight`): one
        reader giving up (a cancelled read-ahead) never fails it for the others, and it
        is cancelled only when no reader waits for it any more.
        """
        inline = self._inline.get(digest)
        if inline is not None and len(inline) == length:
            return inline
        cached = await self.cache.get(self.filespace_id, digest, digest=digest)
        if cached is not None:
            return cached
        return await self._inflight.run(digest, lambda: self._download_shared(digest, length))

    async def get_into(self, digest: str, into: memoryview, *, cache: bool = True) -> bool:
        """Write a block's verified bytes (exactly ``len(into)`` of them) into ``into``;
        return whether they were downloaded for it.

        For a large read that owns its result buffer: a block that is not held, cached or
        already being downloaded is received straight into its place there
        (:mod:`lucidlink.aio.rawget`) and checked. With ``cache``, it is also cached and
        this returns once the cache has written it, so the cache keeps no reference to
        ``into``; without, a ``True`` answer leaves caching it to the caller
        (:meth:`cache_later`, once the result is immutable), and a download first waits
        while the cache's disk is behind (:meth:`BlockCache.room_for_later`). ``into`` is
        never handed to another reader (this download is not shared), and on a failed or
        corrupt download it holds undefined bytes.
        """
        length = len(into)
        inline = self._inline.get(digest)
        if inline is not None and len(inline) == length:
            into[:] = inline
            return False
        if await self.cache.get_into(self.filespace_id, digest, into, digest=digest):
            return False
        if digest in self._inflight:  # another reader is downloading it: share its copy
            into[:] = await self._inflight.run(
                digest, lambda: self._download_shared(digest, length))
            return False
        if not cache:  # the caller's cache_later is the cache's: bounded by its backlog
            await self.cache.room_for_later()
        data = await self._download(digest, length, into, cache=cache)
        if data is not into:  # answered otherwise than in place (inline, or through aiohttp)
            into[:] = data
        return True

    def cache_later(self, blocks: Sequence[tuple[str, memoryview]]) -> None:
        """Cache blocks :meth:`get_into` downloaded without caching, as views of immutable
        bytes that hold their verified contents (see :meth:`BlockCache.put_later`)."""
        self.cache.put_later(self.filespace_id, blocks)

    async def get_range(self, digest: str, length: int, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of a block of ``length`` bytes, NOT verified (an HTTP
        ``Range`` GET on its signed URL): :mod:`lucidlink.aio.pages` checks them against
        the block's chunk digests. A refused or missing URL is replaced once, as for a
        whole block; a store that ignores ``Range`` (200, whole body) is sliced here.
        """
        for attempt in range(2):
            await self.prepare_get_urls([digest])
            if digest not in self._urls:  # cached meanwhile, so no URL was asked for
                cached = await self.cache.get(self.filespace_id, digest, digest=digest)
                if cached is None:
                    raise PathNotFoundError(f"no URL for block {digest[:12]}...; read it whole")
                return cached[start:end]
            url = self._urls[digest][0]
            async with self._downloads:
                try:
                    data = await self.transport.get_bytes(
                        url, headers={"Range": f"bytes={start}-{end - 1}"})
                except LucidLinkError as exc:
                    if not (isinstance(exc, SignedUrlError) or _is_missing(exc)) or attempt:
                        raise
                    self._urls.pop(digest, None)
                    continue
            if len(data) == length and end - start != length:
                data = data[start:end]
            return data
        raise AssertionError("unreachable")

    async def _download_shared(self, digest: str, length: int) -> bytes | bytearray:
        """A download into a buffer of its own, which any number of readers may share."""
        data = await self._download(digest, length)
        assert not isinstance(data, memoryview)  # only a caller's ``into`` comes back as one
        return data

    async def _download(self, digest: str, length: int, into: memoryview | None = None, *,
                        cache: bool = True) -> bytes | bytearray | memoryview:
        for attempt in range(2):
            await self.prepare_get_urls([digest])
            inline = self._inline.get(digest)
            if inline is not None and len(inline) == length:  # the hub answered its bytes
                return inline
            url = self._urls[digest][0]
            async with self._downloads:
                try:
                    data = await self.transport.get_block(url, into)  # received in place
                except SignedUrlError:
                    self._urls.pop(digest, None)
                    if attempt == 0:
                        continue
                    raise
                except LucidLinkError as exc:
                    if not _is_missing(exc):
                        raise
                    self._urls.pop(digest, None)
                    if attempt == 0:
                        continue
                    raise PathNotFoundError(
                        f"block {digest[:12]}... is not in the block store (a fresh URL did not "
                        "find it either): the file's version may have been replaced and "
                        "collected; reopen the file to read its current version"
                    ) from exc
            actual = await sha256_hex(data)
            if actual == digest and len(data) == length:
                if cache:
                    await self.cache.put(self.filespace_id, digest, data, wait=data is into)
                return data
            if attempt == 0:
                continue
            raise IntegrityError(
                f"block {digest[:12]}... arrived corrupt twice (hash {actual[:12]}..., "
                f"{len(data)} bytes); the block store may be damaged"
            )
        raise AssertionError("unreachable")

    async def upload(self, blocks: dict[str, bytes | memoryview], *,
                     best_effort: bool = False) -> None:
        """Upload blocks the hub does not have yet (it answers which it has).

        ``best_effort``: one attempt per request, for uploads made while a file is
        still being written; the write-back flusher uploads whatever they miss, and
        it retries for as long as it takes.
        """
        hashes = list(blocks)
        retries = 0 if best_effort else None
        for start in range(0, len(hashes), _URL_BATCH):
            urls = await self._put_urls(hashes[start:start + _URL_BATCH], best_effort)
            await asyncio.gather(*(self._put(h, request, blocks[h], retries)
                                   for h, request in urls.items()))

    async def _put_urls(self, hashes: list[str],
                        best_effort: bool = False) -> dict[str, tuple[str, Mapping[str, str]]]:
        """Upload URLs, with the headers to send, for the hashes the hub does not have."""
        body = await self.transport.call("POST", self._api("/blocks/urls"),
                                         json={"op": "put", "hashes": hashes},
                                         idempotent=not best_effort)
        headers = body.get("headers") or {}
        return {h: (url, headers.get(h) or {}) for h, url in body["urls"].items()}

    async def _put(self, digest: str, request: tuple[str, Mapping[str, str]],
                   data: bytes | memoryview, retries: int | None) -> None:
        """Upload one block: again after damaged bytes, on a fresh URL after a refused one."""
        attempts = 1 if retries == 0 else _PUT_ATTEMPTS
        async with self._uploads:
            for attempt in range(1, attempts + 1):
                url, headers = request
                try:
                    if headers:
                        await self._put_signed(url, headers, data, retries)
                    else:
                        await self.transport.put_bytes(url, data, retries=retries)
                    return
                except IntegrityError:
                    if attempt == attempts:
                        raise
                except SignedUrlError:
                    if attempt == attempts:
                        raise
                    fresh = await self._put_urls([digest])
                    if digest not in fresh:
                        return  # another upload of the same bytes got there first
                    request = fresh[digest]

    async def _put_signed(self, url: str, headers: Mapping[str, str], data: bytes | memoryview,
                          retries: int | None) -> None:
        """PUT on a presigned object-store URL, sending the headers it was signed with.

        400 ``BadDigest`` (the bytes arrived damaged) raises :class:`IntegrityError`; 403
        (expired, invalid) :class:`SignedUrlError`; 5xx, 429 and broken connections are
        retried ``retries`` times, then raise :class:`HubUnavailableError`.
        """
        retries = _PUT_RETRIES if retries is None else retries
        send = {"Content-Type": "application/octet-stream", **headers}
        attempt = 0
        while True:
            try:
                async with self.transport.session.put(yarl.URL(url, encoded=True),
                                                      data=BlockBody(data), headers=send) as resp:
                    status = resp.status
                    answer = b"" if status < 300 else await resp.content.read(65536)
            except _CONNECTION_ERRORS as exc:
                if attempt < retries:
                    attempt += 1
                    await asyncio.sleep(backoff_delay(attempt))
                    continue
                raise HubUnavailableError(
                    f"block upload to the block store failed after {attempt} retries: "
                    f"{type(exc).__name__}; retry later") from exc
            if status < 300:
                return
            found = _S3_CODE.search(answer)
            code = found.group(1) if found else b""
            if status == 400 and code in _CHECKSUM_MISMATCH:
                raise IntegrityError(
                    "the block store refused an upload whose bytes do not match its checksum "
                    f"({code.decode()}): they were damaged on the way; it is sent again")
            if status == 403:
                raise SignedUrlError(
                    f"the block store refused the upload URL (HTTP 403 {code.decode()}); it "
                    "expired or is invalid: ask the hub for a fresh one")
            if (status >= 500 or status == 429) and attempt < retries:
                attempt += 1
                await asyncio.sleep(backoff_delay(attempt))
                continue
            if status >= 500 or status == 429:
                raise HubUnavailableError(
                    f"the block store answered HTTP {status} {code.decode()} to an upload "
                    f"{attempt + 1} times; retry later")
            raise LucidLinkError(
                f"the block store refused an upload with HTTP {status} {code.decode()}")
