"""The change journal: a per-filespace, gap-free sequence of committed changes."""

from __future__ import annotations

import time
from typing import Any

from lucidlink.hub.store.base import Tx, insert_rows


def append(
    tx: Tx,
    filespace_id: str,
    op: str,
    path: str,
    *,
    node_id: int | None = None,
    type: str | None = None,
    new_path: str | None = None,
    size: int | None = None,
    version: int | None = None,
    session_id: str | None = None,
) -> int:
    """Record one change in the same transaction as the change itself; return its seq.

    Bumping ``filespaces.seq`` inside the writing transaction makes the sequence
    gap-free and ordered by commit, in SQLite and PostgreSQL alike (the row update
    serialises concurrent writers of one filespace).
    """
    row = tx.one(
        "UPDATE filespaces SET seq = seq + 1 WHERE id = ? RETURNING seq", (filespace_id,)
    )
    assert row is not None
    seq = int(row["seq"])
    tx.execute(
        "INSERT INTO changes (filespace_id, seq, time, op, node_id, type, path, new_path, "
        "size, version, session_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (filespace_id, seq, time.time_ns(), op, node_id, type, path, new_path, size, version, session_id),
    )
    return seq


def current_seq(tx: Tx, filespace_id: str) -> int:
    """The sequence number of the newest change."""
    row = tx.one("SELECT seq FROM filespaces WHERE id = ?", (filespace_id,))
    return 0 if row is None else int(row["seq"])


def since(tx: Tx, filespace_id: str, after: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Changes with ``seq > after`` (at most ``limit``) and the newest seq."""
    rows = tx.all(
        "SELECT seq, time, op, node_id, type, path, new_path, size, version, session_id "
        "FROM changes WHERE filespace_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        (filespace_id, after, limit),
    )
    return [dict(r) for r in rows], current_seq(tx, filespace_id)


def append_many(tx: Tx, filespace_id: str, changes: list[dict[str, Any]], session_id: str | None) -> int:
    """Append many changes (dicts of op, node_id, type, path, size?, version?) in bulk; return the last seq.

    Like :func:`append`: the sequence numbers are reserved by one update of the
    filespace row, so they stay gap-free and ordered by commit.
    """
    row = tx.one("UPDATE filespaces SET seq = seq + ? WHERE id = ? RETURNING seq", (len(changes), filespace_id))
    assert row is not None
    last = int(row["seq"])
    first = last - len(changes) + 1
    now = time.time_ns()
    insert_rows(
        tx, "INSERT INTO changes (filespace_id, seq, time, op, node_id, type, path, new_path, size, version, "
        "session_id) VALUES ", "(?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
        [(filespace_id, first + i, now, c["op"], c["node_id"], c["type"], c["path"], c.get("size"), c.get("version"),
          session_id) for i, c in enumerate(changes)],
    )
    return last
