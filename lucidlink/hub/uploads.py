"""Uploads the hub did not receive: blocks clients PUT straight to the S3 block store.

The hub issues a presigned PUT and records the block ``uploading``
(:func:`lucidlink.hub.core.files.begin_direct_uploads`); it learns whether the upload
happened only when a commit names the block. :func:`confirm_uploads` then asks the
store (HEAD: the object exists with the committed length and the checksum the store
enforced at PUT; a store that enforces none has the object read and hashed) and makes
the verified blocks ``live``. That I/O runs outside any transaction; the commit's own
transaction re-checks every block's state, so a block the GC marked in between, or one
never uploaded, is answered ``block_missing`` and the client uploads it again.

Where the hub reads a block itself (a store that enforces no checksum), it also records
the block's chunk digests from those bytes (:mod:`lucidlink.hub.core.chunks`), so clients
can verify ranged reads of it. Blocks verified by the store's checksum are queued for
:class:`~lucidlink.hub.digests.ChunkDigester`, which reads each once in the background
for its digests (until then, a client asking for them has them computed on demand).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import anyio.to_thread

from lucidlink.exceptions import IntegrityError, PathNotFoundError
from lucidlink.hub.core import chunks, files
from lucidlink.hub.identifiers import HASH_RE
from lucidlink.hub.state import Hub
from lucidlink.hub.store.base import MAX_INT64

_CONCURRENT_CHECKS = 16


def _reads_to_verify(store: Any) -> bool:
    """Whether verifying a block of ``store`` means reading it (a store that enforces no
    checksum): then the hub reads it once and computes the chunk digests as well."""
    return (getattr(store, "enforces_checksums", None) is False
            and callable(getattr(store, "get", None)))


def _named_blocks(changes: Iterable[Any]) -> set[tuple[str, int]]:
    """The well-formed ``(hash, length)`` pairs the changes name; the commit validates the rest."""
    named: set[tuple[str, int]] = set()
    for change in changes:
        blocks = change.get("blocks") if isinstance(change, dict) else None
        for block in blocks if isinstance(blocks, list) else ():
            if not isinstance(block, dict):
                continue
            digest, length = block.get("hash"), block.get("length")
            if (isinstance(digest, str) and HASH_RE.fullmatch(digest) and isinstance(length, int)
                    and not isinstance(length, bool) and 0 < length <= MAX_INT64):
                named.add((digest, length))
    return named


async def confirm_uploads(hub: Hub, filespace_id: str, changes: Iterable[Any]) -> int:
    """Make ``live`` the ``uploading`` blocks ``changes`` name that the store holds intact.

    Nothing to do for a store the hub writes itself. Returns how many became live.
    """
    if hub.blocks.serves_blocks:
        return 0
    named = _named_blocks(changes)
    if not named:
        return 0
    pending = set(await hub.store.read(
        files.uploading_blocks, filespace_id, sorted({d for d, _ in named})))
    candidates = sorted((d, n) for d, n in named if d in pending)
    if not candidates:
        return 0
    limit = asyncio.Semaphore(_CONCURRENT_CHECKS)
    digests: dict[str, bytes] = {}
    reads = _reads_to_verify(hub.blocks)

    async def check(digest: str, length: int) -> int | None:
        """The verified length of the block, ``None`` when the store does not hold it intact."""
        async with limit:
            if reads:
                # get() checks the bytes against the block's name; a block of another
                # length than the commit says goes live with its own (see below).
                try:
                    data = await hub.blocks.get(filespace_id, digest)  # type: ignore[attr-defined]
                except (PathNotFoundError, IntegrityError):
                    return None
                # Checked already: only the chunks are left to hash (one pass, not two).
                digests[digest] = await anyio.to_thread.run_sync(chunks.chunk_digests, data)
                return len(data)
            if await hub.blocks.verify(filespace_id, digest, length):
                return length
            # Another length than the commit says: the block goes live with its own, and
            # the commit is refused for the wrong length, as with blocks the hub received.
            stored = await hub.blocks.stored_length(filespace_id, digest)
            if stored and stored != length and await hub.blocks.verify(
                    filespace_id, digest, stored):
                return stored
            return None

    found = await asyncio.gather(*(check(d, n) for d, n in candidates))
    verified = sorted({(d, n) for (d, _), n in zip(candidates, found, strict=True) if n})
    if verified:
        await hub.store.write(chunks.finish_direct_uploads, filespace_id, verified,
                              {d: digests[d] for d, _ in verified if d in digests})
        # Verified by the store's checksum: the hub has not seen these bytes. It reads them
        # once in the background for their chunk digests (ranged reads of them).
        hub.digests.want(filespace_id, [(d, n) for d, n in verified if d not in digests])
    return len(verified)
