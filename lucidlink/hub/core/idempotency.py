"""Commits made idempotent by their client-generated change id.

A client that lost the answer to a commit (connection reset, hub killed after the
transaction) retries it with the same ``change_id``. The first application stores its
result in the same transaction; a retry finds it and gets that result back, so a
change is never applied twice. Ids are kept for :data:`KEEP_SECONDS`.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from lucidlink.exceptions import BadRequestError
from lucidlink.hub.store.base import Tx

CHANGE_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
KEEP_SECONDS = 7 * 86400
"""How long applied change ids are remembered (the longest a client may retry)."""


def change_id_of(change: dict[str, Any]) -> str | None:
    """The change's id, validated (8 to 64 of ``A-Za-z0-9_-``), or ``None``."""
    change_id = change.get("change_id")
    if change_id is None:
        return None
    if not isinstance(change_id, str) or not CHANGE_ID_RE.fullmatch(change_id):
        raise BadRequestError("'change_id' must be 8 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")
    return change_id


def applied(tx: Tx, filespace_id: str, change_id: str) -> dict[str, Any] | None:
    """The stored result of a change already applied, or ``None``."""
    row = tx.one("SELECT result FROM applied_changes WHERE filespace_id = ? AND change_id = ?",
                 (filespace_id, change_id))
    return None if row is None else dict(json.loads(row["result"]), replayed=True)


def remember(tx: Tx, filespace_id: str, change_id: str, result: dict[str, Any]) -> None:
    """Store a change's result under its id (same transaction as the change)."""
    tx.execute(
        "INSERT INTO applied_changes (filespace_id, change_id, result, created) VALUES (?, ?, ?, ?)",
        (filespace_id, change_id, json.dumps(result), time.time_ns()),
    )


def forget_older_than(tx: Tx, seconds: float = KEEP_SECONDS) -> int:
    """Drop ids older than ``seconds``; returns how many."""
    return tx.execute("DELETE FROM applied_changes WHERE created < ?", (time.time_ns() - int(seconds * 1e9),))
