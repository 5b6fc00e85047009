"""Garbage collection of unreferenced blocks, safe against concurrent uploads, commits and readers.

A block's row (``blocks``) has a ``state`` and a ``last_seen`` stamp:

* ``uploading``: an upload has begun writing the bytes (:func:`files.begin_upload`);
  the block is *not* present: a commit or a "present" answer accepts only ``live``.
* ``live``: the bytes are durable in the block store (:func:`files.finish_upload`
  sets it only after the write, fsync, rename and directory fsync have returned).
* ``deleting``: the GC has marked it; uploads of it are told to retry (HTTP 503
  ``hub_unavailable``) until step 3 below has removed the row.

``last_seen`` is the last moment anyone could count on the block without a reference
protecting it: the start or end of an upload, a "present" answer to a request for
upload URLs (the client then commits without uploading), and the moment a file last
stopped referencing it (:func:`release_blocks` / :func:`release_nodes`, called just
before rows of ``file_blocks`` are deleted or overwritten: overwrite, truncate,
delete, move over a target). A GC pass:

1. ``mark``: in one transaction, rows that no file references and whose ``last_seen``
   is older than ``grace`` become ``deleting``: ``live`` ones, and ``uploading`` ones
   left by uploads that died (a SIGKILLed hub). No commit can still use a marked
   block (commits accept only ``live``; the SDK re-uploads on ``block_missing``);
2. the bytes are deleted from the block store (an inline block's are not there:
   :func:`in_block_store` leaves it out);
3. ``forget``: the ``deleting`` rows are removed, with the ``block_data`` bytes of
   inline blocks (:mod:`lucidlink.hub.core.inline_blocks`).

What this guarantees, given ``grace`` >= the signed-URL lifetime (``url_ttl_seconds``;
:class:`~lucidlink.hub.config.HubSettings` and ``POST /v1/admin/gc`` refuse less):

* a client that uploaded a block, or was told it is present, may commit it for
  ``grace`` seconds afterwards;
* a reader of a file version keeps every block of it for at least ``grace`` seconds
  after that version was replaced, truncated or deleted; in particular every block
  URL handed out while the block was referenced works until the URL expires;
* bytes are never deleted under a block that is ``live`` and referenced, nor under an
  upload that is still inside ``grace``.

The hub's periodic pass covers every filespace; ``POST /v1/admin/gc`` runs one over the
filespaces of the caller's workspace (that its token may use) only: an admin of one
tenant never deletes, or waits on, another tenant's blocks.

An upload stalled for longer than ``grace`` between its two transactions finds its row
gone or ``deleting`` and is told to retry (its bytes may be left as an unreferenced
file, which the retry then reuses). With several hubs on PostgreSQL the stamps come
from different clocks: keep them synchronised (NTP); skew eats into ``grace``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from lucidlink.hub.core import inline_blocks
from lucidlink.hub.store.base import Tx

_CHUNK = 500


def _scope(column: str, filespace_ids: Sequence[str] | None) -> tuple[str, list[object]]:
    """An ``AND column IN (...)`` clause limiting a pass to some filespaces (``None``: all)."""
    if filespace_ids is None:
        return "", []
    return f" AND {column} IN ({','.join('?' * len(filespace_ids))})", list(filespace_ids)


def mark(
    tx: Tx, grace_seconds: float, limit: int = 10_000, filespace_ids: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """Mark unreferenced blocks idle for ``grace_seconds`` (and stale uploads) for deletion.

    ``filespace_ids`` limits the pass to those filespaces (``None``: every filespace).
    Returns the marked ``(filespace_id, hash)`` pairs.
    """
    if filespace_ids is not None and not filespace_ids:
        return []
    cutoff = time.time_ns() - int(grace_seconds * 1e9)
    scope, params = _scope("b.filespace_id", filespace_ids)
    rows = tx.all(
        "SELECT b.filespace_id, b.hash FROM blocks b WHERE b.last_seen < ? "
        "AND (b.state = 'uploading' OR (b.state = 'live' AND NOT EXISTS ("
        "SELECT 1 FROM file_blocks f WHERE f.filespace_id = b.filespace_id AND f.hash = b.hash)))"
        f"{scope} LIMIT ?",
        (cutoff, *params, limit),
    )
    pairs = [(r["filespace_id"], r["hash"]) for r in rows]
    tx.executemany(
        "UPDATE blocks SET state = 'deleting' WHERE filespace_id = ? AND hash = ?", pairs
    )
    return pairs


def marked(tx: Tx, filespace_ids: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """Blocks left ``deleting`` (by a GC run that was interrupted), in ``filespace_ids`` if given."""
    if filespace_ids is not None and not filespace_ids:
        return []
    scope, params = _scope("filespace_id", filespace_ids)
    return [(r["filespace_id"], r["hash"]) for r in tx.all(
        f"SELECT filespace_id, hash FROM blocks WHERE state = 'deleting'{scope}", params
    )]


def in_block_store(tx: Tx, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Those of ``pairs`` whose bytes are in the block store: inline blocks
    (:mod:`lucidlink.hub.core.inline_blocks`) are deleted by :func:`forget` instead."""
    inline = inline_blocks.inline_of(tx, pairs)
    return [p for p in pairs if p not in inline]


def forget(tx: Tx, pairs: list[tuple[str, str]]) -> None:
    """Remove the rows of deleted blocks (and the bytes of inline ones, kept in ``block_data``)."""
    inline_blocks.delete(tx, pairs)
    # Chunk digests (lucidlink/hub/core/chunks.py) go with their block.
    tx.executemany(
        "DELETE FROM block_chunks WHERE filespace_id = ? AND hash = ? AND EXISTS (SELECT 1 FROM blocks b "
        "WHERE b.filespace_id = block_chunks.filespace_id AND b.hash = block_chunks.hash "
        "AND b.state = 'deleting')", pairs
    )
    tx.executemany(
        "DELETE FROM blocks WHERE filespace_id = ? AND hash = ? AND state = 'deleting'", pairs
    )


def release_blocks(
    tx: Tx, filespace_id: str, node_id: int, slots: Iterable[int] | None = None, *,
    after: int | None = None,
) -> None:
    """Restart the grace period of the blocks that slots of a file reference.

    Call it immediately *before* deleting or overwriting those rows of ``file_blocks``:
    a reader who saw the old version may still fetch them for ``grace`` seconds.
    ``slots``: the slot indexes (``None``: every slot); ``after``: only slots past it.
    """
    now = time.time_ns()
    sql = ("UPDATE blocks SET last_seen = ? WHERE filespace_id = ? AND last_seen < ? AND hash IN "
           "(SELECT hash FROM file_blocks WHERE node_id = ?")
    params: list[object] = [now, filespace_id, now, node_id]
    if after is not None:
        sql += " AND idx > ?"
        params.append(after)
    if slots is None:
        tx.execute(sql + ")", params)
        return
    wanted = sorted(set(slots))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        tx.execute(sql + f" AND idx IN ({','.join('?' * len(chunk))}))", [*params, *chunk])


def release_nodes(tx: Tx, node_ids: list[int]) -> None:
    """:func:`release_blocks` for every slot of the files ``node_ids`` (about to be deleted)."""
    now = time.time_ns()
    for start in range(0, len(node_ids), _CHUNK):
        chunk = node_ids[start:start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        tx.execute(
            "UPDATE blocks SET last_seen = ? WHERE last_seen < ? AND (filespace_id, hash) IN "
            f"(SELECT filespace_id, hash FROM file_blocks WHERE node_id IN ({marks}))",
            [now, now, *chunk],
        )


def expire_sessions(tx: Tx, filespace_ids: Sequence[str] | None = None) -> int:
    """Drop sessions whose lease ran out (of ``filespace_ids`` only, if given)."""
    if filespace_ids is not None and not filespace_ids:
        return 0
    scope, params = _scope("filespace_id", filespace_ids)
    return tx.execute(f"DELETE FROM sessions WHERE expires < ?{scope}", (time.time_ns(), *params))
