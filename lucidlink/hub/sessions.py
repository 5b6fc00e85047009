"""Daemon sessions: a daemon's presence on a filespace, kept alive by heartbeats.

Locks (and commit fencing) hang off sessions, so a daemon that dies stops renewing
and everything it held lapses when its session expires.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from lucidlink.exceptions import SessionExpiredError
from lucidlink.hub import locks
from lucidlink.hub.store.base import Tx


def open_session(tx: Tx, filespace_id: str, key_id: str, client: str, lease: float) -> dict[str, Any]:
    """Start a session; it lives ``lease`` seconds unless renewed."""
    sid = uuid.uuid4().hex
    now = time.time_ns()
    expires = now + int(lease * 1e9)
    tx.execute(
        "INSERT INTO sessions (id, filespace_id, key_id, client, created, expires) VALUES (?, ?, ?, ?, ?, ?)",
        (sid, filespace_id, key_id, client[:200], now, expires),
    )
    return {"session_id": sid, "lease_seconds": lease, "expires": expires}


def _get(tx: Tx, session_id: str, key_id: str) -> dict[str, Any]:
    row = tx.one("SELECT * FROM sessions WHERE id = ? AND key_id = ?", (session_id, key_id))
    if row is None or row["expires"] < time.time_ns():
        raise SessionExpiredError(
            f"session {session_id} has expired or does not exist; link the filespace again"
        )
    return dict(row)


def heartbeat(tx: Tx, session_id: str, key_id: str, lease: float) -> dict[str, Any]:
    """Renew a live session for another ``lease`` seconds."""
    row = _get(tx, session_id, key_id)
    expires = time.time_ns() + int(lease * 1e9)
    tx.execute("UPDATE sessions SET expires = ? WHERE id = ?", (expires, session_id))
    locks.renew(tx, session_id, expires)
    return {"session_id": session_id, "filespace_id": row["filespace_id"], "expires": expires,
            "lease_seconds": lease}


def close_session(tx: Tx, session_id: str, key_id: str) -> None:
    """End a session (idempotent)."""
    if tx.execute("DELETE FROM sessions WHERE id = ? AND key_id = ?", (session_id, key_id)):
        tx.execute("DELETE FROM locks WHERE session_id = ?", (session_id,))


def filespace_of(tx: Tx, session_id: str, key_id: str) -> str:
    """The filespace of a live session."""
    return str(_get(tx, session_id, key_id)["filespace_id"])
