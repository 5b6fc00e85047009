"""Per-chunk digests of blocks: what lets a client verify a small range of a block.

A block is named by the SHA-256 of all its bytes, so only a whole block can be checked
against its name. For reads of a few KiB the hub also records, per block, the SHA-256 of
each fixed-size chunk (``CHUNK_SIZE``; the size is stored with each row so it can change),
computed from bytes the hub itself verified against the block's hash: on upload to the
local store (in the same pass that hashes the block), when the hub reads an object of a
store that enforces no checksum (``lucidlink/hub/uploads.py``), and otherwise after
the fact, reading the block back (``lucidlink/hub/digests.py``: in the background for
blocks uploaded straight to S3, on demand for any live block without digests). A client
that fetches a chunk-aligned range checks each chunk against its digest, so it never
hands out a byte the hub did not vouch for.

Rows (``block_chunks``) exist only beside a ``blocks`` row; the GC deletes them with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from lucidlink.hub.core import files
from lucidlink.hub.store.base import Tx, rows_in

CHUNK_SIZE = 64 * 1024
"""Bytes per chunk of new digests (a client fetches and verifies whole chunks)."""

DIGEST_SIZE = 32
"""Bytes of one chunk's raw SHA-256 in ``block_chunks.digests``."""


def chunk_count(length: int, chunk_size: int = CHUNK_SIZE) -> int:
    """How many chunks a block of ``length`` bytes has (the last may be short)."""
    return -(-length // chunk_size)


def hash_block(data: bytes | memoryview, chunk_size: int = CHUNK_SIZE) -> tuple[str, bytes]:
    """The block's SHA-256 (hex) and its chunk digests, in one pass over the buffer.

    Each chunk is hashed from a slice while it is in the processor's cache (no copies).
    CPU-bound for a large block: call it in a worker thread.
    """
    return hash_parts([data], chunk_size)


def hash_parts(parts: Sequence[bytes | memoryview],
               chunk_size: int = CHUNK_SIZE) -> tuple[str, bytes]:
    """:func:`hash_block` of the bytes of ``parts`` one after the other, without joining
    them: an upload received in pieces is hashed as it lies in memory (no copy of the
    block, no fresh block-sized buffer to fault in). Call it in a worker thread.
    """
    whole = hashlib.sha256()
    chunk = hashlib.sha256()
    filled = 0
    digests = []
    for part in parts:
        view = memoryview(part).cast("B")
        while view:
            piece = view[:chunk_size - filled]
            whole.update(piece)
            chunk.update(piece)
            filled += len(piece)
            view = view[len(piece):]
            if filled == chunk_size:
                digests.append(chunk.digest())
                chunk = hashlib.sha256()
                filled = 0
    if filled:
        digests.append(chunk.digest())
    return whole.hexdigest(), b"".join(digests)


def chunk_digests(data: bytes | memoryview, chunk_size: int = CHUNK_SIZE) -> bytes:
    """The chunk digests alone, of bytes already checked against their block's name.

    CPU-bound for a large block: call it in a worker thread.
    """
    view = memoryview(data).cast("B")
    return b"".join(hashlib.sha256(view[i:i + chunk_size]).digest()
                    for i in range(0, len(view), chunk_size))


def record(tx: Tx, filespace_id: str, digest: str, digests: bytes,
           chunk_size: int = CHUNK_SIZE) -> bool:
    """Record a block's chunk digests if the block is ``live`` in this filespace.

    ``digests`` must come from bytes the hub verified against ``digest``. Returns whether
    a row was written (a block the GC took meanwhile gets none, so no row outlives its
    block).
    """
    row = tx.one("SELECT state FROM blocks WHERE filespace_id = ? AND hash = ?",
                 (filespace_id, digest))
    if row is None or row["state"] != "live":
        return False
    tx.execute(
        "INSERT INTO block_chunks (filespace_id, hash, chunk_size, digests) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (filespace_id, hash) DO UPDATE SET chunk_size = excluded.chunk_size, "
        "digests = excluded.digests",
        (filespace_id, digest, chunk_size, digests),
    )
    return True


def finish_upload(tx: Tx, filespace_id: str, digest: str, digests: bytes,
                  chunk_size: int = CHUNK_SIZE) -> None:
    """Make an uploaded block ``live`` and record its chunk digests, in one transaction."""
    files.finish_upload(tx, filespace_id, digest)
    record(tx, filespace_id, digest, digests, chunk_size)


def finish_direct_uploads(tx: Tx, filespace_id: str, verified: list[tuple[str, int]],
                          digests: dict[str, bytes], chunk_size: int = CHUNK_SIZE) -> None:
    """:func:`files.finish_direct_uploads`, recording the digests the hub computed as well."""
    files.finish_direct_uploads(tx, filespace_id, verified)
    for digest in sorted(digests):
        record(tx, filespace_id, digest, digests[digest], chunk_size)


def live_digests(tx: Tx, filespace_id: str, hashes: Iterable[str],
                 chunk_size: int = CHUNK_SIZE) -> tuple[dict[str, bytes], dict[str, int]]:
    """The recorded chunk digests of the ``live`` blocks of ``hashes`` in this filespace.

    Returns ``(found, lacking)``: the digests of blocks recorded with ``chunk_size``, and
    the length of each other live block (none recorded, or with another chunk size). A
    hash of another filespace, unknown, or not live is in neither.
    """
    found: dict[str, bytes] = {}
    lacking: dict[str, int] = {}
    asked = list(dict.fromkeys(hashes))
    # One statement per INSERT_CHUNK hashes, not one per hash: a random read's first call
    # asks for every block of its file at once.
    rows = {str(row["hash"]): row for row in rows_in(
        tx, "SELECT b.hash, b.length, c.chunk_size, c.digests FROM blocks b "
            "LEFT JOIN block_chunks c ON c.filespace_id = b.filespace_id AND c.hash = b.hash "
            "WHERE b.filespace_id = ? AND b.state = 'live' AND b.hash IN ({marks})",
        (filespace_id,), asked)}
    for digest in asked:  # in the order asked
        row = rows.get(digest)
        if row is None:
            continue
        stored = row["digests"]
        length = int(row["length"])
        if (stored is not None and row["chunk_size"] == chunk_size
                and len(stored) == chunk_count(length, chunk_size) * DIGEST_SIZE):
            found[digest] = bytes(stored)
        elif length > 0:
            lacking[digest] = length
    return found, lacking

