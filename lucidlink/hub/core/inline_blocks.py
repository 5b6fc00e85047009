"""Small blocks kept with their metadata: bytes committed inline, stored in ``block_data``.

A block of at most the hub's ``inline_block_max`` bytes may travel inside the commit
that references it (``"data"``: base64 on the block item) instead of being uploaded to
the block store first. The hub checks the bytes before any transaction
(:func:`decode`: base64, length, SHA-256 against the block's name), then, inside the
commit's own write transaction and before the commit's "blocks present" rule,
:func:`store` records each block ``live`` in ``blocks`` and keeps its bytes in
``block_data``. So a small file costs one request and one transaction, and nothing of
it ever reaches the block store (an S3 bucket included).

Rules kept from the block store's path (see :mod:`lucidlink.hub.core.gc`):

* a block already ``live`` is only refreshed (``last_seen``): its bytes are wherever
  they already are;
* an ``uploading`` row (an S3 URL was issued) becomes ``live`` with the verified bytes;
* a ``deleting`` one (the GC marked it) refuses with 503 ``hub_unavailable``: the
  client retries once the GC has forgotten it, exactly as an upload would;
* the GC deletes an inline block's row here instead of asking the block store
  (:func:`inline_of`, :func:`delete`), in the transaction that forgets the block.

Reads answer the bytes with the metadata: ``GET .../file`` puts ``"data"`` on each
inline block, ``blocks/urls`` (op ``get``) answers them in ``"inline"`` instead of a URL.
"""

from __future__ import annotations

import binascii
import hashlib
import time
from collections.abc import Iterable, Sequence
from typing import Any

import pybase64

from lucidlink.exceptions import BadRequestError, HubUnavailableError, IntegrityError
from lucidlink.hub.identifiers import HASH_RE
from lucidlink.hub.store.base import Tx, rows_in

BASE64_PATTERN = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
"""Standard base64 with padding, as ``data`` fields are (the schema states it)."""


def encoded_length(data: Any) -> int:
    """How many bytes a base64 ``data`` field decodes to, at most (for cheap size checks)."""
    return len(data) * 3 // 4 if isinstance(data, str) else 0


def inline_bytes(changes: Iterable[Any]) -> int:
    """About how many inline bytes the changes carry (to decide whether to decode in a thread)."""
    total = 0
    for change in changes:
        blocks = change.get("blocks") if isinstance(change, dict) else None
        for block in blocks if isinstance(blocks, list) else ():
            if isinstance(block, dict):
                total += encoded_length(block.get("data"))
    return total


def decode(changes: Iterable[Any], limit: int) -> dict[str, bytes]:
    """The verified bytes of the inline blocks of ``changes``, by hash; the ``data`` fields removed.

    Refuses (changing nothing) a ``data`` that is not base64 (400), a block longer than
    ``limit`` (400; every block when ``limit`` is 0: this hub keeps none inline), and
    bytes whose length or SHA-256 differ from the block's ``length`` and ``hash``
    (422 ``hash_mismatch``). Other fields are left to the commit's own validation.
    Hashing a few MiB takes milliseconds: call it in a thread for large batches.
    """
    found: dict[str, bytes] = {}
    for change in changes:
        blocks = change.get("blocks") if isinstance(change, dict) else None
        for block in blocks if isinstance(blocks, list) else ():
            if not isinstance(block, dict) or "data" not in block:
                continue
            data, digest, length = block.pop("data"), block.get("hash"), block.get("length")
            if not isinstance(digest, str) or not HASH_RE.fullmatch(digest):
                raise BadRequestError(f"block hash {digest!r} must be 64 lowercase hex digits (SHA-256)")
            if not isinstance(length, int) or isinstance(length, bool) or length < 1:
                raise BadRequestError(f"block length {length!r} must be a positive integer")
            if limit <= 0:
                raise BadRequestError(
                    f"this hub keeps no blocks inline: upload block {digest[:12]}... to the block "
                    "store (POST .../blocks/urls) and commit it without 'data'")
            if length > limit:
                raise BadRequestError(
                    f"block {digest[:12]}... has {length} bytes; only blocks of at most {limit} bytes "
                    "may be committed with their data: upload it to the block store instead")
            if not isinstance(data, str):
                raise BadRequestError(f"block {digest[:12]}...: 'data' must be the block's bytes in base64")
            if encoded_length(data) > length + 3:
                raise IntegrityError(
                    f"block {digest[:12]}... carries more bytes than its length {length}; nothing was "
                    "changed. Send the block's exact bytes", expected=length)
            try:
                raw = pybase64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise BadRequestError(
                    f"block {digest[:12]}...: 'data' is not valid base64; nothing was changed") from None
            if len(raw) != length:
                raise IntegrityError(
                    f"block {digest[:12]}... carries {len(raw)} bytes but its length is given as "
                    f"{length}; nothing was changed. Send the block's exact bytes",
                    expected=length, actual=len(raw))
            actual = hashlib.sha256(raw).hexdigest()
            if actual != digest:
                raise IntegrityError(
                    f"block bytes hash to {actual[:12]}..., not {digest[:12]}...; nothing was changed. "
                    "Send the block's exact bytes again", expected=digest, actual=actual)
            found[digest] = raw
    return found


def _states(tx: Tx, filespace_id: str, hashes: Sequence[str]) -> dict[str, str]:
    rows = rows_in(tx, "SELECT hash, state FROM blocks WHERE filespace_id = ? AND hash IN ({marks})",
                   (filespace_id,), hashes)
    return {str(row["hash"]): str(row["state"]) for row in rows}


def store(tx: Tx, filespace_id: str, blocks: dict[str, bytes]) -> None:
    """Make the verified ``blocks`` ``live``, their bytes kept in ``block_data`` (idempotent).

    A block already live is only refreshed; one the GC is deleting refuses (503, retry).
    Call inside the commit's transaction, before it checks that its blocks are present.
    """
    if not blocks:
        return
    hashes = sorted(blocks)
    states = _states(tx, filespace_id, hashes)
    deleting = [h for h in hashes if states.get(h) == "deleting"]
    if deleting:
        raise HubUnavailableError(
            f"block {deleting[0][:12]}... is being garbage-collected; retry the commit in a moment")
    now = time.time_ns()
    fresh = [h for h in hashes if states.get(h) != "live"]
    known = [h for h in hashes if states.get(h) == "live"]
    if known:
        tx.executemany("UPDATE blocks SET last_seen = ? WHERE filespace_id = ? AND hash = ?",
                       [(now, filespace_id, h) for h in known])
    if not fresh:
        return
    tx.executemany(
        "INSERT INTO blocks (filespace_id, hash, length, state, last_seen) VALUES (?, ?, ?, 'live', ?) "
        "ON CONFLICT (filespace_id, hash) DO UPDATE SET state = 'live', length = excluded.length, "
        "last_seen = excluded.last_seen",
        [(filespace_id, h, len(blocks[h]), now) for h in fresh],
    )
    tx.executemany(
        "INSERT INTO block_data (filespace_id, hash, data) VALUES (?, ?, ?) "
        "ON CONFLICT (filespace_id, hash) DO UPDATE SET data = excluded.data",
        [(filespace_id, h, blocks[h]) for h in fresh],
    )


def read_many(tx: Tx, filespace_id: str, hashes: Iterable[str]) -> dict[str, bytes]:
    """The bytes of those of ``hashes`` kept inline, by hash (the others are in the block store)."""
    rows = rows_in(tx, "SELECT hash, data FROM block_data WHERE filespace_id = ? AND hash IN ({marks})",
                   (filespace_id,), sorted(set(hashes)))
    return {str(row["hash"]): bytes(row["data"]) for row in rows}


def read_one(tx: Tx, filespace_id: str, digest: str) -> bytes | None:
    """One inline block's bytes, or ``None`` when it is not kept inline."""
    row = tx.one("SELECT data FROM block_data WHERE filespace_id = ? AND hash = ?", (filespace_id, digest))
    return None if row is None else bytes(row["data"])


def encode(data: bytes) -> str:
    """The base64 text of a block's bytes, as answers carry it."""
    return pybase64.b64encode_as_string(data)


def inline_of(tx: Tx, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which ``(filespace_id, hash)`` of ``pairs`` are kept inline (for the GC: not in the block store)."""
    by_fs: dict[str, list[str]] = {}
    for fs_id, digest in pairs:
        by_fs.setdefault(fs_id, []).append(digest)
    found: set[tuple[str, str]] = set()
    for fs_id, digests in by_fs.items():
        found.update((fs_id, str(r["hash"])) for r in rows_in(
            tx, "SELECT hash FROM block_data WHERE filespace_id = ? AND hash IN ({marks})", (fs_id,), digests))
    return found


def delete(tx: Tx, pairs: Sequence[tuple[str, str]]) -> None:
    """Drop the inline bytes of blocks the GC is forgetting (``deleting`` rows only)."""
    tx.executemany(
        "DELETE FROM block_data WHERE filespace_id = ? AND hash = ? AND EXISTS (SELECT 1 FROM blocks b "
        "WHERE b.filespace_id = block_data.filespace_id AND b.hash = block_data.hash AND b.state = 'deleting')",
        list(pairs),
    )
