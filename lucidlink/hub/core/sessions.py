"""Daemon sessions: a daemon's presence on a filespace, kept alive by heartbeats.

Locks (and commit fencing) hang off sessions, so a daemon that dies stops renewing
and everything it held lapses when its session expires.

A session belongs to the token (key id) that opened it, on the filespace it was
opened on. Session ids are visible (the change journal carries them), so they are no
secret: what makes a session yours is the token you send with it. Every request that
names a session (``X-Lucid-Session``, the session routes) is checked here:

* a session of another token, or on another filespace, is refused (403, nothing
  changes): otherwise any token could act as another's holder of a lock;
* an unknown or expired session counts as none where it only says who makes a change
  (:func:`caller`): it owns no locks, so every live lock of another session applies to
  the change, and a commit under a lock it held is refused as a lost lease. Refusing
  such changes outright would make a daemon that wakes from sleep drop the closed
  files it had queued before its heartbeat opens a new session;
* where the session itself is the subject (locking, heartbeats), an unknown or
  expired one is :class:`SessionExpiredError` (:func:`live`).

Error messages never repeat the session id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from lucidlink.exceptions import AccessDeniedError, BadRequestError, SessionExpiredError
from lucidlink.hub.core import locks
from lucidlink.hub.store.base import Row, Tx

T = TypeVar("T")


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


def _owned(tx: Tx, session_id: str, key_id: str, filespace_id: str | None = None) -> Row | None:
    """The session row, refused when another token (or another filespace) owns it."""
    row = tx.one("SELECT * FROM sessions WHERE id = ?", (session_id,))
    if row is None:
        return None
    if row["key_id"] != key_id:
        raise AccessDeniedError(
            "the session this request names (X-Lucid-Session, or the session in the URL) was opened by "
            "another token, and a session acts only for the token that opened it; nothing was changed. "
            "Open a session of your own (link the filespace with this token)"
        )
    if filespace_id is not None and row["filespace_id"] != filespace_id:
        raise BadRequestError(
            "the session this request names (X-Lucid-Session) is a session on another filespace; "
            "nothing was changed. Send the session of the filespace the request is about"
        )
    return row


def _expired() -> SessionExpiredError:
    return SessionExpiredError(
        "this daemon session has expired or does not exist (its heartbeats stopped for longer than its "
        "lease, or it was closed); link the filespace again"
    )


def live(tx: Tx, session_id: str, key_id: str, filespace_id: str | None = None) -> Row:
    """A live session of this token (and filespace); :class:`SessionExpiredError` otherwise."""
    row = _owned(tx, session_id, key_id, filespace_id)
    if row is None or row["expires"] < time.time_ns():
        raise _expired()
    return row


def caller(tx: Tx, session_id: str | None, key_id: str, filespace_id: str) -> str | None:
    """The session a change is made under: the named one if it is live and this token's.

    ``None`` when no session, or an unknown or expired one, is named (see the module
    docstring); :class:`AccessDeniedError` when it is another token's.
    """
    if session_id is None:
        return None
    row = _owned(tx, session_id, key_id, filespace_id)
    if row is None or row["expires"] < time.time_ns():
        return None
    return session_id


def run_as(tx: Tx, key_id: str, session_id: str | None, fn: Callable[..., T], filespace_id: str, /,
           *args: Any, **kwargs: Any) -> T:
    """Run the change ``fn(tx, filespace_id, *args, session_id=..., **kwargs)`` as :func:`caller` says.

    The check and the change share one transaction, so a refused session changes nothing.
    """
    return fn(tx, filespace_id, *args, session_id=caller(tx, session_id, key_id, filespace_id), **kwargs)


def heartbeat(tx: Tx, session_id: str, key_id: str, lease: float) -> dict[str, Any]:
    """Renew a live session for another ``lease`` seconds."""
    row = live(tx, session_id, key_id)
    expires = time.time_ns() + int(lease * 1e9)
    tx.execute("UPDATE sessions SET expires = ? WHERE id = ?", (expires, session_id))
    locks.renew(tx, session_id, expires)
    return {"session_id": session_id, "filespace_id": row["filespace_id"], "expires": expires,
            "lease_seconds": lease}


def close_session(tx: Tx, session_id: str, key_id: str) -> None:
    """End a session of this token and its locks (idempotent: an unknown one is already gone)."""
    if _owned(tx, session_id, key_id) is not None:
        tx.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        tx.execute("DELETE FROM locks WHERE session_id = ?", (session_id,))
