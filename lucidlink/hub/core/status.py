"""What ``lucidlink hub status`` reports from the metadata store: every workspace's
filespaces with their sizes, live sessions and held locks."""

from __future__ import annotations

from typing import Any

from lucidlink.hub.core.files import statistics
from lucidlink.hub.store.base import Tx


def hub_status(tx: Tx, now_ns: int) -> list[dict[str, Any]]:
    """One record per workspace: its filespaces, each with its statistics, live sessions
    (lease not expired at ``now_ns``) and locks (held and waiting)."""
    out: list[dict[str, Any]] = []
    for ws in tx.all("SELECT id, name FROM workspaces ORDER BY name"):
        spaces = []
        for fs in tx.all(
            "SELECT id, name, block_size FROM filespaces WHERE workspace_id = ? ORDER BY name",
            (ws["id"],),
        ):
            sessions = tx.one(
                "SELECT COUNT(*) AS n FROM sessions WHERE filespace_id = ? AND expires > ?",
                (fs["id"], now_ns),
            )
            locks = {
                str(r["state"]): int(r["n"])
                for r in tx.all(
                    "SELECT state, COUNT(*) AS n FROM locks WHERE filespace_id = ? "
                    "AND expires > ? GROUP BY state",
                    (fs["id"], now_ns),
                )
            }
            spaces.append({
                "name": fs["name"], "id": fs["id"], "block_size": int(fs["block_size"]),
                "statistics": statistics(tx, fs["id"]),
                "sessions": int(sessions["n"]) if sessions else 0,
                "locks": locks,
            })
        out.append({"name": ws["name"], "id": ws["id"], "filespaces": spaces})
    return out
