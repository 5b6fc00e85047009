"""Byte-range locks: shared/exclusive locks on ``[start, end)`` of a file, held by a handle.

A range lock is a row of ``range_locks`` held by one handle (a name the daemon chose) of
one session. It lives as long as its lease, which the session's heartbeats renew
(:func:`renew`), and ends on unlock, when its handle closes, or when its session ends
(a row whose session is gone is dead: :data:`_LIVE`). Overlapping ranges of two
handles conflict unless both are shared; a whole-file lock acts as a range over every
byte with its mode, against the range locks of *other* sessions (one daemon does not
lock itself out). A conflicting request is not queued: the caller waits by asking
again (the route long-polls, waking on releases), so waiters are served in no order.

Each row keeps the client's request id: the same session asking again with the same
id is answered with the first grant instead of taking a second lock, so a request may
be retried on another hub. Changes are checked against the exclusive ranges of other
sessions, at block granularity (:func:`check_change`): a commit whose footprint touches
a block that holds a byte of such a range is refused.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from lucidlink.exceptions import BadRequestError, LockConflictError
from lucidlink.hub.store.base import Row, Tx

MODES = ("shared", "exclusive")
TO_END = 1 << 62
"""The end of a range of length 0 (to the end of the file, however long it grows)."""

_LIVE = (
    "r.expires >= ? AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = r.session_id "
    "AND s.expires >= ?)"
)


def _end(offset: int, length: int) -> int:
    # A range reaching past the largest offset a file can have covers the rest of the file:
    # the same range as length 0, not an error (the API's schema bounds each number alone).
    return TO_END if length == 0 else min(offset + length, TO_END)


def check_range(offset: Any, length: Any) -> None:
    """Refuse an offset or length that is not a non-negative integer below :data:`TO_END`."""
    for name, value in (("offset", offset), ("length", length)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < TO_END:
            raise BadRequestError(f"'{name}' must be an integer between 0 and {TO_END - 1}")


def _describe(row: Row) -> str:
    end = "the end" if row["end_at"] >= TO_END else f"byte {row['end_at']}"
    return f"{row['mode']} range [{row['start_at']}, {end}) held by {row['client'] or 'a session'}"


def _conflicts(
    tx: Tx,
    filespace_id: str,
    path: str,
    start: int,
    end: int,
    exclusive: bool,
    session_id: str,
    handle: str | None,
    now: int,
) -> Row | None:
    """A live range of another holder overlapping ``[start, end)`` that the mode conflicts with."""
    sql = (
        f"SELECT r.*, s.client FROM range_locks r LEFT JOIN sessions s ON s.id = r.session_id "
        f"WHERE r.filespace_id = ? AND r.path = ? AND {_LIVE} AND r.start_at < ? AND r.end_at > ?"
    )
    args: list[Any] = [filespace_id, path, now, now, end, start]
    if handle is None:  # a whole-file lock or a change: other sessions only
        sql += " AND r.session_id <> ?"
        args.append(session_id)
    else:
        sql += " AND NOT (r.session_id = ? AND r.handle = ?)"
        args += [session_id, handle]
    if not exclusive:
        sql += " AND r.mode = 'exclusive'"
    return tx.one(sql + " ORDER BY r.created LIMIT 1", args)


def _whole_file_holder(
    tx: Tx, filespace_id: str, path: str, exclusive: bool, session_id: str, now: int
) -> Row | None:
    sql = (
        "SELECT l.mode, s.client FROM locks l LEFT JOIN sessions s ON s.id = l.session_id "
        "WHERE l.filespace_id = ? AND l.path = ? AND l.state = 'held' AND l.expires >= ? "
        "AND l.session_id <> ?"
    )
    if not exclusive:
        sql += " AND l.mode = 'exclusive'"
    return tx.one(sql + " LIMIT 1", (filespace_id, path, now, session_id))


def lock(
    tx: Tx,
    filespace_id: str,
    path: str,
    handle: str,
    offset: int,
    length: int,
    mode: str,
    session_id: str,
    request_id: str,
    lease: float,
) -> dict[str, Any]:
    """Take a range lock if nothing conflicts: ``{"granted": bool, "held_by": str | None}``."""
    if mode not in MODES:
        raise BadRequestError(f"lock mode {mode!r} must be 'shared' or 'exclusive'")
    check_range(offset, length)
    now = time.time_ns()
    # Dead rows (lapsed, or of a session gone) go with the next request on their file.
    tx.execute(
        f"DELETE FROM range_locks WHERE id IN (SELECT r.id FROM range_locks r WHERE "
        f"r.filespace_id = ? AND r.path = ? AND NOT ({_LIVE}))",
        (filespace_id, path, now, now),
    )
    mine = tx.one(
        "SELECT 1 AS x FROM range_locks WHERE session_id = ? AND request_id = ?",
        (session_id, request_id),
    )
    if mine is not None:  # a retried request: the first grant answers it
        return {"granted": True, "held_by": None}
    start, end = offset, _end(offset, length)
    exclusive = mode == "exclusive"
    other = _conflicts(tx, filespace_id, path, start, end, exclusive, session_id, handle, now)
    if other is not None:
        return {"granted": False, "held_by": _describe(other)}
    whole = _whole_file_holder(tx, filespace_id, path, exclusive, session_id, now)
    if whole is not None:
        return {
            "granted": False,
            "held_by": f"a whole-file {whole['mode']} lock held by "
            f"{whole['client'] or 'a session'}",
        }
    tx.execute(
        "INSERT INTO range_locks (id, request_id, filespace_id, path, session_id, handle, mode, "
        "start_at, end_at, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            uuid.uuid4().hex,
            request_id,
            filespace_id,
            path,
            session_id,
            handle,
            mode,
            start,
            end,
            now,
            now + int(lease * 1e9),
        ),
    )
    return {"granted": True, "held_by": None}


def unlock(
    tx: Tx, filespace_id: str, session_id: str, handle: str, offset: int | None, length: int | None
) -> int:
    """Release the handle's ranges lying within ``[offset, offset+length)`` (all: ``None``)."""
    sql = "DELETE FROM range_locks WHERE filespace_id = ? AND session_id = ? AND handle = ?"
    args: list[Any] = [filespace_id, session_id, handle]
    if offset is not None and length is not None:
        check_range(offset, length)
        sql += " AND start_at >= ? AND end_at <= ?"
        args += [offset, _end(offset, length)]
    return tx.execute(sql, args)


def renew(tx: Tx, session_id: str, expires: int) -> None:
    """Extend every live range lock of a session (with its heartbeat)."""
    tx.execute(
        "UPDATE range_locks SET expires = ? WHERE session_id = ? AND expires >= ?",
        (expires, session_id, time.time_ns()),
    )


def list_ranges(tx: Tx, filespace_id: str, path: str) -> list[dict[str, Any]]:
    """The live range locks on ``path`` (no ids: those are the holders')."""
    now = time.time_ns()
    rows = tx.all(
        f"SELECT r.*, s.client FROM range_locks r LEFT JOIN sessions s ON s.id = r.session_id "
        f"WHERE r.filespace_id = ? AND r.path = ? AND {_LIVE} ORDER BY r.start_at, r.created",
        (filespace_id, path, now, now),
    )
    return [
        {
            "mode": r["mode"],
            "offset": r["start_at"],
            "length": 0 if r["end_at"] >= TO_END else r["end_at"] - r["start_at"],
            "client": r["client"],
            "expires": r["expires"],
        }
        for r in rows
    ]


# -- what range locks refuse -----------------------------------------------------------------


def _refused(path: str, row: Row, action: str) -> LockConflictError:
    return LockConflictError(
        f"{path} has a byte range locked by another session ({_describe(row)}), so {action} was "
        "refused; nothing was changed. Retry once it is unlocked, or lock the range yourself "
        "(fs.lock_byte_range waits for it) and make the change while you hold it",
        path=path,
    )


def check_change(
    tx: Tx,
    filespace_id: str,
    path: str,
    session_id: str | None,
    slots: tuple[tuple[int, int], ...] | None,
    block_size: int,
    action: str,
) -> None:
    """Refuse a change to the blocks ``slots`` (inclusive index ranges; ``None``: the whole
    file) of ``path`` when another session holds an exclusive range in one of them."""
    spans = (
        [(0, TO_END)]
        if slots is None
        else [(a * block_size, (b + 1) * block_size) for a, b in slots]
    )
    now = time.time_ns()
    for start, end in spans:
        row = _conflicts(tx, filespace_id, path, start, end, False, session_id or "", None, now)
        if row is not None:
            raise _refused(path, row, action)


def check_whole(
    tx: Tx,
    filespace_id: str,
    where: str,
    params: list[Any],
    session_id: str | None,
    action: str,
    *,
    exclusive_only: bool = True,
) -> None:
    """Refuse a change to the files matching ``where`` (SQL on ``r.path``) when another
    session holds a range on one (an exclusive one, with ``exclusive_only``)."""
    now = time.time_ns()
    sql = (
        f"SELECT r.*, s.client FROM range_locks r LEFT JOIN sessions s ON s.id = r.session_id "
        f"WHERE r.filespace_id = ? AND {_LIVE} AND {where}"
    )
    args: list[Any] = [filespace_id, now, now, *params]
    if session_id is not None:
        sql += " AND r.session_id <> ?"
        args.append(session_id)
    if exclusive_only:
        sql += " AND r.mode = 'exclusive'"
    row = tx.one(sql + " ORDER BY r.path LIMIT 1", args)
    if row is not None:
        raise _refused(row["path"], row, action)


def forget(tx: Tx, filespace_id: str, where: str, params: list[Any]) -> None:
    """End the range locks on files that were deleted or replaced (``where`` on ``r.path``)."""
    tx.execute(
        f"DELETE FROM range_locks WHERE id IN (SELECT r.id FROM range_locks r "
        f"WHERE r.filespace_id = ? AND {where})",
        [filespace_id, *params],
    )


def blocks_whole(tx: Tx, filespace_id: str, path: str, mode: str, session_id: str) -> bool:
    """Whether another session's range lock keeps a whole-file ``mode`` lock from being granted."""
    return (
        _conflicts(
            tx, filespace_id, path, 0, TO_END, mode == "exclusive", session_id, None, time.time_ns()
        )
        is not None
    )


def drop(tx: Tx, filespace_id: str, session_id: str, request_id: str) -> None:
    """Give back the lock granted to ``request_id`` (its caller went away before the answer)."""
    tx.execute(
        "DELETE FROM range_locks WHERE request_id = ? AND filespace_id = ? AND session_id = ?",
        (request_id, filespace_id, session_id),
    )
