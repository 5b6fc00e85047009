"""Uploads the hub did not receive: blocks clients PUT straight to the S3 block store.

The hub issues a presigned PUT and records the block ``uploading``
(:func:`lucidlink.hub.core.files.begin_direct_uploads`); it learns whether the upload
happened only when a commit names the block. :func:`confirm_uploads` then asks the
store (HEAD: the object exists with the committed length and the checksum the store
enforced at PUT; a store that enforces none has the object read and hashed) and makes
the verified blocks ``live``. That I/O runs outside any transaction; the commit's own
transaction re-checks every block's state, so a block the GC marked in between, or one
never uploaded, is answered ``block_missing`` and the client uploads it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from lucidlink.hub.core import files
from lucidlink.hub.identifiers import HASH_RE
from lucidlink.hub.state import Hub
from lucidlink.hub.store.base import MAX_INT64

_CONCURRENT_CHECKS = 16


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

    async def check(digest: str, length: int) -> int | None:
        """The verified length of the block, ``None`` when the store does not hold it intact."""
        async with limit:
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
        await hub.store.write(files.finish_direct_uploads, filespace_id, verified)
    return len(verified)
