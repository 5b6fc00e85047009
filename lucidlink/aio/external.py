"""Reading Connect files: ranged GETs on presigned S3 URLs, through the same read path as blocks.

An open linked file looks to :class:`~lucidlink.aio.file.AsyncFile` like any other: a
lazy mapping of *slots* (block-sized ranges of the object) and a *slot source* with
the ``get``/``prepare_get_urls`` interface of :class:`~lucidlink.aio.blocks.BlockIO`.
So linked files get the same sequential detection, read-ahead window and block cache.

* The hub signs one GET URL per linked file (``POST .../connect/urls``, by entry id);
  it is kept until shortly before it expires, and fetched again after a 403 (the
  store may have been rekeyed).
* Every response is checked: the ETag must be the one recorded at link time (or, for
  a link made with a caller's non-ETag checksum, the one this handle saw first), and
  the ``Content-Range`` total must be the linked size. A changed object fails the read
  with :class:`~lucidlink.exceptions.IntegrityError` naming the path and what changed,
  never returning a mix of old and new bytes. Requests also carry ``If-Match``.
* Ranges are cached in the daemon's block cache under a key derived from the store,
  object, ETag (or size and checksum), block size and slot, so a changed object can
  never be served from stale cached bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import yarl

from lucidlink.aio.blockref import BlockRef
from lucidlink.aio.singleflight import SingleFlight
from lucidlink.exceptions import (
    AccessDeniedError,
    HubUnavailableError,
    IntegrityError,
    PathNotFoundError,
)
from lucidlink.shared import normalize_etag

if TYPE_CHECKING:
    from lucidlink.aio.link import FilespaceLink

_RANGE_RE = re.compile(r"bytes ([0-9]+)-([0-9]+)/([0-9]+|\*)")
_RETRY_STATUS = {500, 502, 503, 504}
_URL_MARGIN = 60.0


class ExternalSlots(Mapping[int, BlockRef]):
    """The slots of a linked file, made on demand (a huge object costs nothing at open)."""

    def __init__(self, size: int, block_size: int) -> None:
        self._size = size
        self._bs = block_size
        self._count = (size + block_size - 1) // block_size

    def __getitem__(self, slot: int) -> BlockRef:
        if not isinstance(slot, int) or not 0 <= slot < self._count:
            raise KeyError(slot)
        extent = min(self._bs, self._size - slot * self._bs)
        return BlockRef(str(slot), extent, extent)

    def __contains__(self, slot: object) -> bool:
        return isinstance(slot, int) and 0 <= slot < self._count

    def __iter__(self) -> Iterator[int]:
        return iter(range(self._count))

    def __len__(self) -> int:
        return self._count


class ExternalSource:
    """The slot source of one open linked file (``get``/``prepare_get_urls`` like ``BlockIO``)."""

    def __init__(self, reader: ExternalReader, path: str, node_id: int, external: dict[str, Any],
                 block_size: int) -> None:
        self._reader = reader
        self.path = path
        self.node_id = node_id
        self.store = str(external["store"])
        self.object_id = str(external["object_id"])
        self.size = int(external["size"])
        self.expected_etag = normalize_etag(external.get("etag"))
        self.seen_etag: str | None = None
        self.block_size = block_size
        version = self.expected_etag or f"size={self.size};checksum={external.get('checksum') or ''}"
        self._key_base = (f"{external['store_id']}\n{self.object_id}\n{version}\n{block_size}\n").encode()

    def cache_key(self, slot: int) -> str:
        """The block-cache name of a slot: changes with the object's ETag (or size and checksum)."""
        return "x" + hashlib.sha256(self._key_base + str(slot).encode()).hexdigest()

    @property
    def identity(self) -> str:
        """The object version this source reads: its store, object, ETag (or size and
        checksum) and block size; :meth:`AsyncFile.fingerprint` digests it."""
        return self._key_base.decode()

    @property
    def what(self) -> str:
        """The file and its object, for messages."""
        return f"{self.path} (object {self.object_id!r} of data store {self.store!r})"

    async def prepare_get_urls(self, keys: list[str]) -> None:
        """Make sure the file's presigned URL is at hand (one per file, not per slot)."""
        if any(not self._reader.cache.contains(self._reader.filespace_id, self.cache_key(int(k))) for k in keys):
            await self._reader.url(self)

    async def get(self, key: str, length: int) -> bytes:
        """The bytes of slot ``key``: from the cache, a fetch already running, or a ranged GET."""
        return await self._reader.get(self, int(key), length)

    def check_etag(self, etag: str | None, status: int) -> None:
        """Refuse a response of another version of the object than the one linked (or first seen)."""
        want = self.expected_etag or self.seen_etag
        if want is None:
            self.seen_etag = etag
            return
        if etag is not None and etag != want:
            raise IntegrityError(
                f"{self.what} changed in S3 after it was linked: its ETag is now {etag!r}, not {want!r}; the read "
                "was stopped so it cannot mix versions. Unlink and link it again to read the new version",
                path=self.path, reason="object_changed", expected_etag=want, actual_etag=etag,
            )


class ExternalReader:
    """The filespace's reader of linked files: URLs, de-duplicated ranged GETs, the cache."""

    def __init__(self, link: FilespaceLink) -> None:
        self._link = link
        self.transport = link.transport
        self.cache = link.services.cache
        self.filespace_id = link.id
        self._urls: dict[int, tuple[str, float]] = {}
        self._downloads = asyncio.Semaphore(link.config.download_concurrency)
        self._inflight: SingleFlight[str, bytes] = SingleFlight()  # by cache key

    def open(self, path: str, info: dict[str, Any]) -> tuple[ExternalSlots, ExternalSource]:
        """The slots and the source of a linked file, from its ``GET .../file`` answer."""
        external = info["external"]
        block_size = int(info["block_size"])
        source = ExternalSource(self, path, int(info["entry"]["id"]), external, block_size)
        return ExternalSlots(int(external["size"]), block_size), source

    async def url(self, source: ExternalSource, *, fresh: bool = False) -> str:
        """The presigned GET URL of a linked file (signed by the hub; kept until near expiry)."""
        known = self._urls.get(source.node_id)
        if known is not None and not fresh and known[1] > time.monotonic():
            return known[0]
        body = await self._link.call("POST", "/connect/urls", json={"ids": [source.node_id]},
                                     idempotent=True)
        item = body["urls"].get(str(source.node_id))
        if item is None:
            raise PathNotFoundError(
                f"{source.path} was unlinked (or replaced) after it was opened; open it again", path=source.path,
            )
        ttl = max(1.0, float(item["expires"]) - time.time() - _URL_MARGIN)
        self._urls[source.node_id] = (item["url"], time.monotonic() + ttl)
        return str(item["url"])

    async def get(self, source: ExternalSource, slot: int, length: int) -> bytes:
        """The bytes of a slot: from the cache, a fetch already running, or a ranged GET.

        Concurrent readers of one slot share one fetch (:class:`SingleFlight`): one
        reader's cancellation never reaches the others.
        """
        key = source.cache_key(slot)
        cached = await self.cache.get(self.filespace_id, key)
        if cached is not None and len(cached) == length:
            return cached
        return await self._inflight.run(key, lambda: self._fetched(source, slot, length, key))

    async def _fetched(self, source: ExternalSource, slot: int, length: int, key: str) -> bytes:
        data = await self._fetch(source, slot, length)
        await self.cache.put(self.filespace_id, key, data)
        return data

    async def _fetch(self, source: ExternalSource, slot: int, length: int) -> bytes:
        start = slot * source.block_size
        end = start + length - 1
        headers = {"Range": f"bytes={start}-{end}"}
        if source.expected_etag:
            headers["If-Match"] = f'"{source.expected_etag}"'
        refreshed = False
        attempt = 0
        while True:
            url = await self.url(source, fresh=refreshed)
            try:
                async with self._downloads, self.transport.session.get(yarl.URL(url, encoded=True),
                                                                       headers=headers) as resp:
                    status = resp.status
                    if status in (200, 206):
                        return await self._check(source, resp, start, end)
                    await resp.read()
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError, aiohttp.ClientPayloadError) as exc:
                if attempt < 3:
                    attempt += 1
                    await asyncio.sleep(0.1 * 2**attempt)
                    continue
                raise HubUnavailableError(
                    f"reading {source.what} failed: the data store did not answer ({type(exc).__name__}); retry later"
                ) from exc
            if status == 403 and not refreshed:
                refreshed = True  # the URL expired, or the store was rekeyed: ask the hub again
                continue
            if status in _RETRY_STATUS and attempt < 3:
                attempt += 1
                await asyncio.sleep(0.1 * 2**attempt)
                continue
            raise self._error(source, status)

    @staticmethod
    def _error(source: ExternalSource, status: int) -> Exception:
        if status == 412:
            return IntegrityError(
                f"{source.what} changed in S3 after it was linked (its ETag is no longer "
                f"{source.expected_etag!r}); the read was stopped so it cannot mix versions. Unlink and link it "
                "again to read the new version", path=source.path, reason="object_changed",
            )
        if status == 416:
            return IntegrityError(
                f"{source.what} changed in S3 after it was linked: it is now shorter than the linked "
                f"{source.size} bytes. Unlink and link it again", path=source.path, reason="object_changed",
            )
        if status == 404:
            return IntegrityError(
                f"{source.what} no longer exists in S3 (it was deleted after it was linked); unlink the file",
                path=source.path, reason="object_missing",
            )
        if status == 403:
            return AccessDeniedError(
                f"the data store refused to read {source.what} (HTTP 403): its credentials may have been revoked; "
                "an admin can rekey the store", path=source.path,
            )
        return HubUnavailableError(f"reading {source.what} failed: the data store answered HTTP {status}")

    @staticmethod
    async def _check(source: ExternalSource, resp: aiohttp.ClientResponse, start: int, end: int) -> bytes:
        source.check_etag(normalize_etag(resp.headers.get("ETag")), resp.status)
        data = await resp.read()
        if resp.status == 206:
            found = _RANGE_RE.fullmatch(resp.headers.get("Content-Range", ""))
            if found is None or found.group(3) == "*" or int(found.group(1)) != start or int(found.group(2)) != end:
                raise IntegrityError(
                    f"reading {source.what}: the data store answered bytes "
                    f"{resp.headers.get('Content-Range')!r} to a request for {start}-{end}", path=source.path,
                    reason="bad_range",
                )
            total = int(found.group(3))
            if total != source.size:
                raise IntegrityError(
                    f"{source.what} changed in S3 after it was linked: it is now {total} bytes, not {source.size}; "
                    "the read was stopped so it cannot mix versions. Unlink and link it again",
                    path=source.path, reason="object_changed", expected_size=source.size, actual_size=total,
                )
        else:  # the store ignored the Range header and sent the whole object
            if len(data) != source.size:
                raise IntegrityError(
                    f"{source.what} changed in S3 after it was linked: it is now {len(data)} bytes, not "
                    f"{source.size}. Unlink and link it again", path=source.path, reason="object_changed",
                    expected_size=source.size, actual_size=len(data),
                )
            data = data[start:end + 1]
        if len(data) != end - start + 1:
            raise IntegrityError(f"reading {source.what}: got {len(data)} bytes for a range of {end - start + 1}",
                                 path=source.path, reason="bad_range")
        return data
