"""The block endpoint of the local block store: reads and uploads on signed URLs."""

from __future__ import annotations

import anyio.to_thread
from aiohttp import web

from lucidlink.directio import LentBuffer
from lucidlink.exceptions import (
    BadRequestError,
    HubUnavailableError,
    IntegrityError,
    PathNotFoundError,
    PayloadTooLargeError,
    SignedUrlError,
)
from lucidlink.hub.api.context import hub_of
from lucidlink.hub.api.http import ok, query
from lucidlink.hub.api.route import INT, RouteTable, obj, ref, signed_params
from lucidlink.hub.blockstore.local import LocalBlockStore
from lucidlink.hub.core import chunks, files, inline_blocks
from lucidlink.hub.identifiers import HASH_RE, ID_RE

ROUTES = RouteTable()
route = ROUTES.route


def _local_store(request: web.Request) -> LocalBlockStore:
    blocks = hub_of(request).blocks
    if not isinstance(blocks, LocalBlockStore):
        raise PathNotFoundError("this hub keeps blocks in an object store; use the URLs it signs")
    return blocks


def _check_block_url(request: web.Request, op: str) -> tuple[str, str]:
    fs_id, digest = request.match_info["fs"], request.match_info["hash"]
    if not HASH_RE.fullmatch(digest):
        raise BadRequestError(f"{digest[:80]!r} is not a SHA-256 hex digest")
    if not ID_RE.fullmatch(fs_id):
        raise SignedUrlError(f"block URL for {digest[:12]} names no filespace this hub signs for")
    q = query(request)
    if q.get("op") != op:
        raise SignedUrlError(f"this block URL was signed for {q.get('op', '')[:20]!r}, not {op!r}")
    _local_store(request).signer.check(op, fs_id, digest, q.get("exp"), q.get("sig"))
    return fs_id, digest


@route("GET", "/v1/blocks/{fs}/{hash}", "Read a block (Range supported), on a signed URL.", auth="signed",
       params=signed_params("get"), required_params=("op", "exp", "sig"), statuses=(200, 206),
       content_type="application/octet-stream", errors=(416,))
async def get_block(request: web.Request) -> web.StreamResponse:
    fs_id, digest = _check_block_url(request, "get")
    if request.headers.get("Range"):
        # A small ranged read (verified chunks: lucidlink/aio/pages.py): one trip to a
        # thread opens the file and reads the range, instead of FileResponse's several.
        found = await _local_store(request).read_range(fs_id, digest, _range_of(request),
                                                        _RANGE_IN_MEMORY)
        if found is not None:
            return _range_response(*found)
    else:
        # Read whole in a worker thread, not sent with sendfile: a block not in the page
        # cache kept the event loop waiting on the disk, and filled fresh page-cache pages
        # (LocalBlockStore.lend_block reads past them).
        store = _local_store(request)
        with store.memory_slot() as free:
            data = await store.lend_block(fs_id, digest, _WHOLE_IN_MEMORY) if free else None
            if data is not None:
                return await _send(request, data)
    path = _local_store(request).path_of(fs_id, digest)  # what is left: stream or inline
    if not await anyio.to_thread.run_sync(path.exists):
        # A block kept inline (a client that asked for a URL by hash): served from the metadata store.
        data = await hub_of(request).store.read(inline_blocks.read_one, fs_id, digest)
        if data is None:
            raise PathNotFoundError(f"block {digest[:12]}... is not in the block store")
        return _inline_response(request, data)
    return web.FileResponse(path, headers=_BLOCK_HEADERS)  # too large, or no memory slot free


_RANGE_IN_MEMORY = 4 * 1024 * 1024
_WHOLE_IN_MEMORY = 16 * 1024 * 1024
"""A whole block up to this size is read into memory and answered from there; a larger
one (a filespace with larger blocks), or any while the store's memory slots are taken
(``LocalBlockStore.MEMORY_ANSWERS``), is streamed from its file."""
_BLOCK_HEADERS = {"Cache-Control": "private, max-age=31536000, immutable",
                  "Content-Type": "application/octet-stream"}


def _range_of(request: web.Request) -> slice:
    try:
        return request.http_range
    except ValueError:
        return slice(None, None)


async def _send(request: web.Request, data: bytes | LentBuffer) -> web.StreamResponse:
    """Answer a whole block from memory, returning once it is handed to the connection (so
    the caller's memory slot covers the time the block is held).

    A block in a lent buffer is sent from it, and the buffer is given back for reuse only
    once the connection holds no view of it: while the body is written the transport's
    high-water mark is 0, so the write returns when the socket has taken every byte (a
    transport may keep a view of what it could not send at once; Python 3.12's does).
    If the send fails, the buffer is dropped rather than reused.
    """
    lent = data if isinstance(data, LentBuffer) else None
    body: bytes | memoryview = data.view if isinstance(data, LentBuffer) else data
    transport = request.transport if lent is not None else None
    flushed = False
    try:
        response = web.StreamResponse(headers=_BLOCK_HEADERS)
        response.content_length = len(body)
        await response.prepare(request)
        # The headers go first, on their own: with a body in the same write, aiohttp joins
        # the two into one new buffer (Python < 3.12.9), a copy of the whole block.
        await response.write(b"")
        if transport is None:
            await response.write(body)
        else:
            low, high = transport.get_write_buffer_limits()
            transport.set_write_buffer_limits(high=0)
            try:
                await response.write(body)
            finally:
                if not transport.is_closing():
                    transport.set_write_buffer_limits(high=high, low=low)
            flushed = transport.get_write_buffer_size() == 0
        await response.write_eof()
        return response
    finally:
        if lent is not None:
            lent.give_back(reuse=flushed)


def _range_response(ranges: slice, size: int, data: bytes) -> web.Response:
    start = ranges.indices(size)[0]
    return web.Response(body=data, status=206, headers={
        "Cache-Control": "private, max-age=31536000, immutable",
        "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes",
        "Content-Range": f"bytes {start}-{start + len(data) - 1}/{size}"})


def _inline_response(request: web.Request, data: bytes) -> web.Response:
    """An inline block's bytes, honouring a single ``Range: bytes=a-b`` as the file response does."""
    headers = {"Cache-Control": "private, max-age=31536000, immutable",
               "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
    try:
        ranges = request.http_range
    except ValueError:
        ranges = slice(None, None)
    if ranges.start is None and ranges.stop is None:
        return web.Response(body=data, headers=headers)
    start, stop, _ = ranges.indices(len(data))
    if ranges.start is not None and ranges.start >= len(data) or start >= stop:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
    headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
    return web.Response(body=data[start:stop], status=206, headers=headers)


async def _read_parts(request: web.Request, limit: int) -> list[bytes]:
    """The body as received, in the pieces it arrived in, at most about ``limit`` bytes
    plus one piece (so a caller can tell it is too long)."""
    parts: list[bytes] = []
    total = 0
    while total <= limit:
        part = await request.content.readany()
        if not part:
            break
        parts.append(part)
        total += len(part)
    return parts


@route("PUT", "/v1/blocks/{fs}/{hash}", "Upload a block on a signed URL; its bytes must hash to its name.",
       auth="signed", params=signed_params("put"), required_params=("op", "exp", "sig"), status=201,
       request_content_type="application/octet-stream", request={"type": "string", "format": "binary"},
       response=obj({"hash": ref("Hash"), "length": INT}), errors=(413, 422, 503))
async def put_block(request: web.Request) -> web.StreamResponse:
    fs_id, digest = _check_block_url(request, "put")
    hub = hub_of(request)
    store = _local_store(request)
    fs = await hub.filespace_row(fs_id)
    if fs is None:
        raise PathNotFoundError(f"filespace {fs_id} does not exist")
    limit = int(fs["block_size"])
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError(f"a block is at most {limit} bytes; this one is {request.content_length}")
    parts = await _read_parts(request, limit)
    size = sum(map(len, parts))
    if size > limit:
        raise PayloadTooLargeError(f"a block is at most {limit} bytes")
    if not size:
        raise BadRequestError("a block cannot be empty")
    # The parts as received, never joined: hashed in one pass (the block's name and its
    # chunk digests) and written as they lie in memory.
    actual, digests = await anyio.to_thread.run_sync(chunks.hash_parts, parts)
    if actual != digest:
        raise IntegrityError(
            f"block bytes hash to {actual[:12]}..., not {digest[:12]}...; nothing was stored. "
            "Upload the block's exact bytes again",
            expected=digest, actual=actual,
        )
    # The block becomes known only once its bytes are durable (see lucidlink/hub/core/gc.py).
    await hub.store.write(files.begin_upload, fs_id, digest, size)
    try:
        await store.write_verified(fs_id, digest, parts)
    except OSError as exc:
        await hub.store.write(files.abort_upload, fs_id, digest)
        raise HubUnavailableError(
            f"the hub could not store block {digest[:12]}... ({exc.strerror or exc}); nothing "
            "was stored. Retry the upload later; if this persists, the hub's disk is full or "
            "failing"
        ) from exc
    await hub.store.write(chunks.finish_upload, fs_id, digest, digests)
    hub.metrics.count_block_bytes("in", size)
    return ok({"hash": digest, "length": size}, status=201)
