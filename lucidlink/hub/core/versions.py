"""File version footprints and the merge rule for partial overwrites.

Every commit records which slots it touched (``file_changes``). A partial change
(``r+b``, ``a``, ``truncate`` on a handle) carries ``base_version``, the version it was
built on. When another commit landed in between, the hub compares footprints:

* the changes are merged when the slots they touch are disjoint and at most one of
  them changed the file's size (a size change touches every slot between the old
  and the new end, and the slot holding the end);
* otherwise the change is refused with ``VersionConflictError`` and nothing changes.

A whole-file replace (``w``, a copy onto the file) touches every slot. History is kept
for the last :data:`KEPT_VERSIONS` versions of a file; a change built on an older
version is refused, never merged blindly.
"""

from __future__ import annotations

import json

import attrs

from lucidlink.exceptions import VersionConflictError
from lucidlink.hub.store.base import Tx

KEPT_VERSIONS = 256
"""Footprints kept per file; a change built on an older version conflicts."""

Ranges = tuple[tuple[int, int], ...]
"""Inclusive slot ranges ``(first, last)``, sorted and coalesced."""


def coalesce(slots: list[int]) -> Ranges:
    """Sorted, coalesced inclusive ranges of the given slot numbers."""
    out: list[list[int]] = []
    for slot in sorted(set(slots)):
        if out and slot == out[-1][1] + 1:
            out[-1][1] = slot
        else:
            out.append([slot, slot])
    return tuple((a, b) for a, b in out)


def _overlap(a: Ranges, b: Ranges) -> bool:
    return any(x0 <= y1 and y0 <= x1 for x0, x1 in a for y0, y1 in b)


@attrs.frozen
class Footprint:
    """What one commit touched: slot ranges (``None``: everything) and whether it resized."""

    ranges: Ranges | None
    resized: bool

    def overlaps(self, other: Footprint) -> bool:
        """Whether the two changes cannot both be kept."""
        if self.ranges is None or other.ranges is None:
            return True
        if self.resized and other.resized:
            return True
        return _overlap(self.ranges, other.ranges)


def footprint(*, block_size: int, slots: list[int], replace: bool, old_size: int, new_size: int,
              truncate_to: int | None) -> Footprint:
    """The footprint of a change that writes ``slots`` and takes the size from ``old_size``."""
    if replace:
        return Footprint(None, True)
    low = min(old_size, new_size, truncate_to if truncate_to is not None else old_size)
    resized = low != old_size or new_size != old_size
    ranges = coalesce(slots)
    if resized:
        # The slot holding each end changes (its visible length), and so does
        # everything between the two ends.
        end = max(old_size, new_size)
        span = ((low // block_size, max(low, end - 1) // block_size),)
        ranges = _merge_ranges(ranges + span)
    return Footprint(ranges, resized)


def _merge_ranges(ranges: Ranges) -> Ranges:
    out: list[list[int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return tuple((a, b) for a, b in out)


RECORD_SQL = (
    "INSERT INTO file_changes (node_id, version, slots, resized, size) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (node_id, version) DO UPDATE SET slots = excluded.slots, "
    "resized = excluded.resized, size = excluded.size")
"""The statement :func:`record` runs, with :func:`record_row`'s parameters (also in bulk)."""


def record_row(node_id: int, version: int, fp: Footprint, size: int) -> tuple[int, int, str, int, int]:
    """The ``file_changes`` row of ``version`` (for :data:`RECORD_SQL`)."""
    slots = "*" if fp.ranges is None else json.dumps([list(r) for r in fp.ranges])
    return node_id, version, slots, int(fp.resized), size


def record(tx: Tx, node_id: int, version: int, fp: Footprint, size: int) -> None:
    """Keep the footprint of ``version`` (and forget those too old to matter)."""
    tx.execute(RECORD_SQL, record_row(node_id, version, fp, size))
    if version > KEPT_VERSIONS:
        tx.execute("DELETE FROM file_changes WHERE node_id = ? AND version <= ?",
                   (node_id, version - KEPT_VERSIONS))


def base_size(tx: Tx, node_id: int, base_version: int) -> int | None:
    """The file's size at ``base_version`` (0 before it existed), or ``None`` if forgotten."""
    if base_version == 0:
        return 0
    row = tx.one("SELECT size FROM file_changes WHERE node_id = ? AND version = ?", (node_id, base_version))
    return None if row is None else int(row["size"])


def check_merge(tx: Tx, path: str, node_id: int, current: int, base_version: int, ours: Footprint) -> None:
    """Refuse a change built on ``base_version`` that collides with what landed since."""
    rows = tx.all(
        "SELECT version, slots, resized FROM file_changes WHERE node_id = ? AND version > ? ORDER BY version",
        (node_id, base_version),
    )
    if base_version > current or len(rows) != current - base_version:
        raise VersionConflictError(
            f"{path} changed since it was opened (now version {current}, opened at {base_version}) and its "
            "history is too old to merge; the change was refused. Re-open the file and write again",
            path=path,
        )
    for row in rows:
        theirs = Footprint(
            None if row["slots"] == "*" else tuple((a, b) for a, b in json.loads(row["slots"])),
            bool(row["resized"]),
        )
        if ours.overlaps(theirs):
            raise VersionConflictError(
                f"{path} was changed by another writer after version {base_version} this change was built "
                f"on (version {row['version']} touched the same blocks or also changed the size; now version "
                f"{current}); the change was refused and the file keeps the other writer's contents. "
                "Re-open the file and write again, or lock it (lock_type='exclusive') to serialise writers",
                path=path,
            )
