"""Whole-file locks: shared/exclusive leases held by daemon sessions, served in order.

A lock request is a row with a ticket from a per-filespace counter. A request is
granted when every request ahead of it (held, or waiting with a smaller ticket) is
compatible with it: shared with shared. So a waiting exclusive request blocks the
shared requests that arrive after it, and nobody starves. Held locks expire with
their session's lease (renewed by its heartbeats); waiting rows expire unless the
waiter keeps polling. Each grant carries a fencing token (its ticket, unique and
increasing per filespace): commits name the lock they were made under, and the hub
refuses them when that lock is no longer held (see :func:`check_commit`).

Locks are keyed by the file's path, so a file can be locked before it exists
(``open(..., "xb", lock_type="exclusive")``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from lucidlink.exceptions import (
    BadRequestError,
    IsADirectoryFilespaceError,
    LeaseExpiredError,
    LockConflictError,
    LockTimeoutError,
    PathNotFoundError,
    ReadOnlyError,
)
from lucidlink.hub import namespace
from lucidlink.hub.store.base import Row, Tx

MODES = ("shared", "exclusive")


def _next_ticket(tx: Tx, filespace_id: str) -> int:
    row = tx.one(
        "INSERT INTO counters (name, value) VALUES (?, 1) "
        "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
        (f"locks:{filespace_id}",),
    )
    assert row is not None
    return int(row["value"])


def _live(tx: Tx, filespace_id: str, path: str, now: int) -> list[Row]:
    tx.execute("DELETE FROM locks WHERE filespace_id = ? AND path = ? AND expires < ?", (filespace_id, path, now))
    return tx.all(
        "SELECT l.*, s.client FROM locks l LEFT JOIN sessions s ON s.id = l.session_id "
        "WHERE l.filespace_id = ? AND l.path = ? ORDER BY l.ticket",
        (filespace_id, path),
    )


def _grantable(rows: list[Row], me: Row) -> bool:
    for other in rows:
        if other["id"] == me["id"]:
            continue
        ahead = other["state"] == "held" or other["ticket"] < me["ticket"]
        if ahead and not (other["mode"] == "shared" and me["mode"] == "shared"):
            return False
    return True


def holders_json(rows: list[Row]) -> list[dict[str, Any]]:
    """Who holds and who waits, for operators and error messages."""
    return [
        {"lock_id": r["id"], "session_id": r["session_id"], "client": r["client"], "mode": r["mode"],
         "state": r["state"], "since": r["created"], "expires": r["expires"], "token": r["ticket"]}
        for r in rows
    ]


def request(tx: Tx, filespace_id: str, path: str, mode: str, session_id: str, lease: float,
            lock_id: str | None, must_exist: bool, waiter_ttl: float) -> dict[str, Any]:
    """Ask for (or re-poll) a lock; returns its state: ``held`` or ``waiting``."""
    if mode not in MODES:
        raise BadRequestError(f"lock mode {mode!r} must be 'shared' or 'exclusive'")
    node = namespace.lookup(tx, filespace_id, path)
    if node is not None and node["type"] == "dir":
        raise IsADirectoryFilespaceError(f"{path} is a directory; only files can be locked", path=path)
    if node is not None and node["type"] == "external" and mode == "exclusive":  # Connect
        raise ReadOnlyError(f"{path} is linked from a Connect data store and is read-only; it cannot be locked "
                            "exclusively (a shared lock is fine)", path=path)
    if node is None and must_exist:
        raise PathNotFoundError(f"{path} does not exist, so it cannot be opened for reading", path=path)
    now = time.time_ns()
    rows = _live(tx, filespace_id, path, now)
    # Only the session's own request: another session must not poll (and so be
    # granted, or keep alive) a request whose id it read from the lock listing.
    me = next((r for r in rows if r["id"] == lock_id and r["session_id"] == session_id), None) if lock_id else None
    if me is None:
        lock_id = uuid.uuid4().hex
        tx.execute(
            "INSERT INTO locks (id, filespace_id, path, session_id, mode, state, ticket, created, expires) "
            "VALUES (?, ?, ?, ?, ?, 'waiting', ?, ?, ?)",
            (lock_id, filespace_id, path, session_id, mode, _next_ticket(tx, filespace_id), now,
             now + int(waiter_ttl * 1e9)),
        )
        rows = _live(tx, filespace_id, path, now)
        me = next(r for r in rows if r["id"] == lock_id)
    if me["state"] == "held":
        return {"lock_id": me["id"], "state": "held", "token": me["ticket"], "expires": me["expires"]}
    if _grantable(rows, me):
        expires = now + int(lease * 1e9)
        tx.execute("UPDATE locks SET state = 'held', expires = ? WHERE id = ?", (expires, me["id"]))
        return {"lock_id": me["id"], "state": "held", "token": me["ticket"], "expires": expires}
    tx.execute("UPDATE locks SET expires = ? WHERE id = ?", (now + int(waiter_ttl * 1e9), me["id"]))
    return {"lock_id": me["id"], "state": "waiting", "holders": holders_json([r for r in rows if r["state"] == "held"])}


def give_up(tx: Tx, filespace_id: str, path: str, lock_id: str, session_id: str) -> LockTimeoutError:
    """Drop a waiting request whose caller stopped waiting; the error names the holders."""
    tx.execute("DELETE FROM locks WHERE id = ? AND filespace_id = ? AND session_id = ? AND state = 'waiting'",
               (lock_id, filespace_id, session_id))
    holders = [r for r in _live(tx, filespace_id, path, time.time_ns()) if r["state"] == "held"]
    names = ", ".join(f"{r['mode']} by {r['client'] or r['session_id']}" for r in holders) or "nobody now"
    return LockTimeoutError(
        f"timed out waiting for a lock on {path}; held: {names}. Retry, or pass a longer lock_timeout "
        "(None waits for ever)", path=path, holders=holders_json(holders),
    )


def release(tx: Tx, filespace_id: str, lock_id: str, session_id: str) -> bool:
    """Release a lock (or withdraw a request); ``False`` if it was already gone."""
    return tx.execute(
        "DELETE FROM locks WHERE id = ? AND filespace_id = ? AND session_id = ?", (lock_id, filespace_id, session_id)
    ) > 0


def renew(tx: Tx, session_id: str, expires: int) -> None:
    """Extend every held lock of a session (called with its heartbeat)."""
    tx.execute("UPDATE locks SET expires = ? WHERE session_id = ? AND state = 'held' AND expires >= ?",
               (expires, session_id, time.time_ns()))


def list_locks(tx: Tx, filespace_id: str, path: str | None) -> list[dict[str, Any]]:
    """Live locks and requests of a filespace, or of one path."""
    now = time.time_ns()
    if path is not None:
        rows = _live(tx, filespace_id, path, now)
    else:
        rows = tx.all(
            "SELECT l.*, s.client FROM locks l LEFT JOIN sessions s ON s.id = l.session_id "
            "WHERE l.filespace_id = ? AND l.expires >= ? ORDER BY l.path, l.ticket",
            (filespace_id, now),
        )
    return [{**h, "path": r["path"]} for h, r in zip(holders_json(rows), rows)]


def check_commit(tx: Tx, filespace_id: str, path: str, session_id: str | None, lock_id: str | None) -> None:
    """Fencing: refuse a change made under a lost lease, or against another's exclusive lock."""
    now = time.time_ns()
    if lock_id is not None:
        row = tx.one("SELECT * FROM locks WHERE id = ?", (lock_id,))
        if row is None or row["state"] != "held" or row["expires"] < now or row["session_id"] != session_id:
            raise LeaseExpiredError(
                f"the lock on {path} this change was made under has expired or was released; the change "
                "was refused and the file keeps its last committed contents. Lock the file again and redo it",
                path=path,
            )
    other = tx.one(
        "SELECT session_id FROM locks WHERE filespace_id = ? AND path = ? AND mode = 'exclusive' "
        "AND state = 'held' AND expires >= ? AND (CAST(? AS TEXT) IS NULL OR session_id <> ?) LIMIT 1",
        (filespace_id, path, now, session_id, session_id),
    )
    if other is not None:
        raise LockConflictError(
            f"{path} is locked exclusively by another session ({other['session_id']}); the change was "
            "refused. Open it with lock_type='exclusive' to wait for your turn", path=path,
        )
