"""Garbage collection of unreferenced blocks.

Three steps, each safe against concurrent uploads and commits:

1. ``mark``: in one transaction, blocks that no file references and that nobody has
   uploaded or asked about for ``grace`` seconds become ``deleting``. A commit only
   accepts ``live`` blocks; an upload re-claims a block before writing it, and a
   request for upload URLs that answers "present" refreshes the block, both of which
   set ``last_seen`` so it cannot be marked; so no pending commit can still count on a
   marked block (as long as ``grace`` exceeds the time from upload to commit).
2. the bytes are deleted from the block store;
3. ``forget``: the ``deleting`` rows are removed. An upload that arrives while a
   block is ``deleting`` is told to retry (HTTP 503 ``hub_unavailable``) and succeeds
   after step 3.
"""

from __future__ import annotations

import time

from lucidlink.hub.store.base import Tx


def mark(tx: Tx, grace_seconds: float, limit: int = 10_000) -> list[tuple[str, str]]:
    """Mark unreferenced, idle blocks for deletion; return ``(filespace_id, hash)`` pairs."""
    cutoff = time.time_ns() - int(grace_seconds * 1e9)
    rows = tx.all(
        "SELECT b.filespace_id, b.hash FROM blocks b WHERE b.state = 'live' AND b.last_seen < ? "
        "AND NOT EXISTS (SELECT 1 FROM file_blocks f WHERE f.filespace_id = b.filespace_id "
        "AND f.hash = b.hash) LIMIT ?",
        (cutoff, limit),
    )
    pairs = [(r["filespace_id"], r["hash"]) for r in rows]
    tx.executemany(
        "UPDATE blocks SET state = 'deleting' WHERE filespace_id = ? AND hash = ?", pairs
    )
    return pairs


def marked(tx: Tx) -> list[tuple[str, str]]:
    """Blocks left ``deleting`` (by a GC run that was interrupted)."""
    return [(r["filespace_id"], r["hash"]) for r in tx.all(
        "SELECT filespace_id, hash FROM blocks WHERE state = 'deleting'"
    )]


def forget(tx: Tx, pairs: list[tuple[str, str]]) -> None:
    """Remove the rows of deleted blocks."""
    tx.executemany(
        "DELETE FROM blocks WHERE filespace_id = ? AND hash = ? AND state = 'deleting'", pairs
    )


def expire_sessions(tx: Tx) -> int:
    """Drop sessions whose lease ran out."""
    return tx.execute("DELETE FROM sessions WHERE expires < ?", (time.time_ns(),))
