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
(``open(..., "xb", lock_type="exclusive")``). Yet a held lock belongs to the file, not
to the path: when its holder moves the file (or a directory above it) the lock moves
with it (:func:`follow`), and deleting the file ends it (:func:`forget`). Waiting
requests stay on the path they asked for.

Every change respects the locks *other* sessions hold (:func:`check_free`, called by
commit, truncate, copy, delete, move and Connect's link and unlink): a held lock of
another session refuses the change, whatever its mode. Exclusive means "only I use
it"; shared means "we are reading it, don't change it under us", so it refuses others'
changes too. The holders themselves may change the file (a commit that names a lock
must name an exclusive one). Requests still waiting hold nothing and refuse nothing.

Byte-range locks (:mod:`lucidlink.hub.core.range_locks`) take part: a whole-file request
is not granted while another session holds a conflicting range, :func:`check_free` also
refuses a change another session's exclusive range covers (a commit checks its block
footprint instead), and :func:`forget`/:func:`follow` end or carry them with the file.

Who holds what is public within the filespace, but the session and lock ids are
shown only to the token that owns them (:func:`holders_json`): the ids are how a
daemon acts as the holder.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
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
from lucidlink.hub.core import range_locks, tree
from lucidlink.hub.store.base import INSERT_CHUNK, Row, Tx

MODES = ("shared", "exclusive")
_ROWS = "SELECT l.*, s.client, s.key_id FROM locks l LEFT JOIN sessions s ON s.id = l.session_id"


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
    return tx.all(f"{_ROWS} WHERE l.filespace_id = ? AND l.path = ? ORDER BY l.ticket", (filespace_id, path))


def _grantable(rows: list[Row], me: Row) -> bool:
    for other in rows:
        if other["id"] == me["id"]:
            continue
        ahead = other["state"] == "held" or other["ticket"] < me["ticket"]
        if ahead and not (other["mode"] == "shared" and me["mode"] == "shared"):
            return False
    return True


def holders_json(rows: list[Row], key_id: str) -> list[dict[str, Any]]:
    """Who holds and who waits, as the token ``key_id`` may see it.

    The lock and session ids of other tokens' sessions are ``None``: with them a
    request could pass for the holder's.
    """
    out = []
    for r in rows:
        mine = r["key_id"] is not None and r["key_id"] == key_id
        out.append({
            "lock_id": r["id"] if mine else None, "session_id": r["session_id"] if mine else None,
            "client": r["client"], "mode": r["mode"], "state": r["state"], "since": r["created"],
            "expires": r["expires"], "token": r["ticket"],
        })
    return out


def request(tx: Tx, filespace_id: str, path: str, mode: str, session_id: str, key_id: str, lease: float,
            lock_id: str | None, must_exist: bool, waiter_ttl: float) -> dict[str, Any]:
    """Ask for (or re-poll) a lock; returns its state: ``held`` or ``waiting``."""
    if mode not in MODES:
        raise BadRequestError(f"lock mode {mode!r} must be 'shared' or 'exclusive'")
    node = tree.lookup(tx, filespace_id, path)
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
    # granted, or keep alive) a request whose id it learnt somehow.
    me = next((r for r in rows if r["id"] == lock_id and r["session_id"] == session_id), None) if lock_id else None
    if me is None:
        # A new id the client chose is kept, so a retried first request finds its row
        # instead of queueing a second one (it may be retried on another hub); one that
        # names another request (another session's, say) gets a request of its own.
        if lock_id is None or tx.one("SELECT 1 AS x FROM locks WHERE id = ?", (lock_id,)):
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
    ranged = range_locks.blocks_whole(tx, filespace_id, path, mode, session_id)
    if _grantable(rows, me) and not ranged:
        expires = now + int(lease * 1e9)
        tx.execute("UPDATE locks SET state = 'held', expires = ? WHERE id = ?", (expires, me["id"]))
        return {"lock_id": me["id"], "state": "held", "token": me["ticket"], "expires": expires}
    tx.execute("UPDATE locks SET expires = ? WHERE id = ?", (now + int(waiter_ttl * 1e9), me["id"]))
    return {"lock_id": me["id"], "state": "waiting",
            "holders": holders_json([r for r in rows if r["state"] == "held"], key_id)}


def give_up(tx: Tx, filespace_id: str, path: str, lock_id: str, session_id: str, key_id: str) -> LockTimeoutError:
    """Drop a waiting request whose caller stopped waiting; the error names the holders."""
    tx.execute("DELETE FROM locks WHERE id = ? AND filespace_id = ? AND session_id = ? AND state = 'waiting'",
               (lock_id, filespace_id, session_id))
    holders = [r for r in _live(tx, filespace_id, path, time.time_ns()) if r["state"] == "held"]
    names = ", ".join(f"{r['mode']} by {_holder(r)}" for r in holders) or "nobody now"
    return LockTimeoutError(
        f"timed out waiting for a lock on {path}; held: {names}. Retry, or pass a longer lock_timeout "
        "(None waits for ever)", path=path, holders=holders_json(holders, key_id),
    )


def _holder(row: Row) -> str:
    return str(row["client"] or "a session that gave no client name")


def release(tx: Tx, filespace_id: str, lock_id: str, session_id: str) -> bool:
    """Release a lock (or withdraw a request); ``False`` if it was already gone."""
    return tx.execute(
        "DELETE FROM locks WHERE id = ? AND filespace_id = ? AND session_id = ?", (lock_id, filespace_id, session_id)
    ) > 0


def renew(tx: Tx, session_id: str, expires: int) -> None:
    """Extend every held lock of a session (called with its heartbeat)."""
    tx.execute("UPDATE locks SET expires = ? WHERE session_id = ? AND state = 'held' AND expires >= ?",
               (expires, session_id, time.time_ns()))
    range_locks.renew(tx, session_id, expires)


def list_locks(tx: Tx, filespace_id: str, path: str | None, key_id: str) -> list[dict[str, Any]]:
    """Live locks and requests of a filespace, or of one path, as the token ``key_id`` may see them.

    A read: expired rows are skipped here and deleted by the next write on their path.
    """
    now = time.time_ns()
    if path is not None:
        rows = tx.all(f"{_ROWS} WHERE l.filespace_id = ? AND l.path = ? AND l.expires >= ? ORDER BY l.ticket",
                      (filespace_id, path, now))
    else:
        rows = tx.all(f"{_ROWS} WHERE l.filespace_id = ? AND l.expires >= ? ORDER BY l.path, l.ticket",
                      (filespace_id, now))
    return [{**h, "path": r["path"]} for h, r in zip(holders_json(rows, key_id), rows, strict=True)]


# -- what locks refuse ---------------------------------------------------------------------


def _scope(path: str, below: bool, alias: str = "l") -> tuple[str, list[Any]]:
    """SQL (and its parameters) matching lock paths at ``path``, and under it when ``below``."""
    if not below:
        return f"{alias}.path = ?", [path]
    prefix = path.rstrip("/") + "/"
    # substr, not LIKE: '%' and '_' are ordinary characters in paths.
    return (f"({alias}.path = ? OR substr({alias}.path, 1, CAST(? AS INTEGER)) = ?)",
            [path, len(prefix), prefix])


def _held_by_others(tx: Tx, filespace_id: str, where: str, params: list[Any],
                    session_id: str | None) -> Row | None:
    sql = f"{_ROWS} WHERE l.filespace_id = ? AND l.state = 'held' AND l.expires >= ? AND {where}"
    args: list[Any] = [filespace_id, time.time_ns(), *params]
    if session_id is not None:
        sql += " AND l.session_id <> ?"
        args.append(session_id)
    return tx.one(sql + " ORDER BY l.path, l.ticket LIMIT 1", args)


def _conflict(row: Row, action: str) -> LockConflictError:
    return LockConflictError(
        f"{row['path']} is locked by another session ({row['mode']} lock held by {_holder(row)}), so "
        f"{action} was refused; nothing was changed. Retry once the lock is released (fs.get_locks lists "
        f"who holds it), or open {row['path']} with lock_type='exclusive', which waits for your turn, and "
        "make the change while you hold the lock",
        path=row["path"],
    )


def check_free(tx: Tx, filespace_id: str, path: str, session_id: str | None, action: str, *,
               below: bool = False, ranges: bool = True) -> None:
    """Refuse a change to ``path`` (and, with ``below``, to anything under it) that a held
    lock of another session covers. ``action`` names the change: ``"deleting /a"``.

    With ``ranges``, another session's exclusive byte range anywhere in the file refuses
    it too (a commit checks its own footprint instead: :func:`range_locks.check_change`)."""
    where, params = _scope(path, below)
    row = _held_by_others(tx, filespace_id, where, params, session_id)
    if row is not None:
        raise _conflict(row, action)
    if ranges:
        range_locks.check_whole(tx, filespace_id, *_scope(path, below, "r"), session_id, action)


def check_free_paths(tx: Tx, filespace_id: str, paths: Iterable[str], session_id: str | None, action: str) -> None:
    """:func:`check_free` for many paths, one statement per :data:`INSERT_CHUNK` of them."""
    ordered = sorted(set(paths))
    for start in range(0, len(ordered), INSERT_CHUNK):
        chunk = ordered[start:start + INSERT_CHUNK]
        row = _held_by_others(tx, filespace_id, f"l.path IN ({','.join('?' * len(chunk))})", chunk, session_id)
        if row is not None:
            raise _conflict(row, action)
        marks = ",".join("?" * len(chunk))
        range_locks.check_whole(tx, filespace_id, f"r.path IN ({marks})", chunk, session_id, action)


def forget(tx: Tx, filespace_id: str, path: str, *, below: bool = False) -> None:
    """End the held locks on a file (or a tree) that was deleted or replaced."""
    where, params = _scope(path, below)
    tx.execute(f"DELETE FROM locks WHERE id IN (SELECT l.id FROM locks l WHERE l.filespace_id = ? "
               f"AND l.state = 'held' AND {where})", [filespace_id, *params])
    range_locks.forget(tx, filespace_id, *_scope(path, below, "r"))


def forget_paths(tx: Tx, filespace_id: str, paths: Iterable[str]) -> None:
    """:func:`forget` for many files, one statement per :data:`INSERT_CHUNK` of them."""
    ordered = sorted(set(paths))
    for start in range(0, len(ordered), INSERT_CHUNK):
        chunk = ordered[start:start + INSERT_CHUNK]
        tx.execute(f"DELETE FROM locks WHERE filespace_id = ? AND state = 'held' AND path IN "
                   f"({','.join('?' * len(chunk))})", [filespace_id, *chunk])
        marks = ",".join("?" * len(chunk))
        range_locks.forget(tx, filespace_id, f"r.path IN ({marks})", list(chunk))


def follow(tx: Tx, filespace_id: str, src: str, dst: str, session_id: str | None, *, below: bool = False) -> None:
    """Move the session's held locks on ``src`` (and under it, with ``below``) to ``dst``.

    Called after :func:`check_free` let the move through, so no other session holds
    one there; the locks of what ``dst`` replaced end first.
    """
    forget(tx, filespace_id, dst, below=below)
    where, params = _scope(src, below, "r")
    # A range lock belongs to the file, whoever holds it (others' exclusive ones refused the move).
    tx.execute(
        "UPDATE range_locks SET path = CAST(? AS TEXT) || substr(path, CAST(? AS INTEGER)) "
        f"WHERE id IN (SELECT r.id FROM range_locks r WHERE r.filespace_id = ? AND {where})",
        [dst, len(src) + 1, filespace_id, *params],
    )
    if session_id is None:
        return
    where, params = _scope(src, below)
    tx.execute(
        f"UPDATE locks SET path = CAST(? AS TEXT) || substr(path, CAST(? AS INTEGER)) WHERE id IN (SELECT l.id FROM locks l "
        f"WHERE l.filespace_id = ? AND l.state = 'held' AND l.session_id = ? AND {where})",
        [dst, len(src) + 1, filespace_id, session_id, *params],
    )


def check_commit(tx: Tx, filespace_id: str, path: str, session_id: str | None, lock_id: str | None) -> None:
    """Fencing: refuse a change made under a lost lease, or one another session's lock covers.

    A change that names a lock must name a live exclusive lock of the same session on
    this very file (a holder that moved the file took the lock along).
    """
    now = time.time_ns()
    if lock_id is not None:
        row = tx.one(
            "SELECT l.session_id, l.path, l.mode, l.state, l.expires, s.expires AS session_expires FROM locks l "
            "LEFT JOIN sessions s ON s.id = l.session_id WHERE l.id = ? AND l.filespace_id = ?",
            (lock_id, filespace_id),
        )
        if (row is None or row["state"] != "held" or row["expires"] < now
                or (row["session_id"] != session_id
                    and (row["session_expires"] is None or row["session_expires"] < now))):
            raise LeaseExpiredError(
                f"the lock on {path} this change was made under has expired or was released; the change "
                "was refused and the file keeps its last committed contents. Lock the file again and redo it",
                path=path,
            )
        if row["session_id"] != session_id:
            raise LockConflictError(
                f"the lock this change to {path} names belongs to another session; the change was refused "
                f"and nothing was changed. Open {path} with lock_type='exclusive' in this daemon and redo it",
                path=path,
            )
        if row["path"] != path:
            raise LockConflictError(
                f"the lock this change to {path} names is on another file (was it moved while open?); the "
                f"change was refused and nothing was changed. Open {path} with lock_type='exclusive' and "
                "redo it",
                path=path,
            )
        if row["mode"] != "exclusive":
            raise LockConflictError(
                f"this change to {path} was made under a shared lock, which only protects reading; the change "
                f"was refused and nothing was changed. Open {path} with lock_type='exclusive' to change it",
                path=path,
            )
    check_free(tx, filespace_id, path, session_id, f"changing {path}", ranges=False)
