"""What the commits of one ``POST .../commits`` share inside their one transaction.

A batch of many small files repeated the same lookups once per file (the filespace's
block size, the parent directory, the states of blocks, whether any lock exists) and
made a journal row, an id record, a directory update, a slot row and a version footprint
each its own statement.
:class:`CommitBatch` looks each of those up once per batch and writes the rest in bulk at
the end, so a batch of new small files costs a few statements in all, whatever its size: their
names are looked up per directory, their nodes inserted in one statement
(:meth:`CommitBatch.create_files`; one round trip on PostgreSQL instead of one per file). The rules are the ones of
:func:`lucidlink.hub.core.files.commit`, unchanged; what is cached cannot change inside
the transaction except through the batch itself, which keeps its caches current:

* a parent directory's row: commits never create, move or delete directories;
* block states: only the batch's own inline blocks change them, stored before;
* "no lock of any kind in this filespace": commits take no locks;
* entries (``parent_id``, ``name``): each commit records the row it leaves.

A file the batch creates has its slots and version footprint written in bulk
(:meth:`CommitBatch.flush`) before any later commit of the batch on an existing file,
whose rules read them. Journal rows get their ``seq`` numbers in one update at :meth:`CommitBatch.finish`, in
the order of the changes, so the sequence stays gap-free and in commit order; the
results (and the ids of applied changes, with them) are completed then.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from lucidlink.exceptions import BadRequestError, BlockMissingError, LucidLinkError
from lucidlink.hub.core import journal, tree, versions
from lucidlink.hub.store.base import MAX_INT64, Row, Tx, insert_rows, rows_in

SLOTS_SQL = (
    "INSERT INTO file_blocks (node_id, idx, filespace_id, hash, length, used) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (node_id, idx) DO UPDATE SET "
    "hash = excluded.hash, length = excluded.length, used = excluded.used")
"""How a commit writes the slots it names (one parameter row per slot)."""


def _int64(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_INT64


class CommitBatch:
    """Caches and deferred writes of the commits of one transaction (see the module docstring)."""

    def __init__(self, tx: Tx, filespace_id: str, changes: Sequence[Any], block_size: int,
                 live: dict[str, int] | None = None) -> None:
        """``live``: blocks known live in this transaction already, with their lengths
        (the inline blocks the commit just stored): not looked up again."""
        self.filespace_id = filespace_id
        self.block_size = block_size
        self._parents: dict[str, tuple[Row, str]] = {}
        self._children: dict[tuple[int, str], Row | None] = {}
        self._wanted: dict[str, set[str]] = {}
        for change in changes:
            path = change.get("path") if isinstance(change, dict) else None
            if isinstance(path, str) and path.count("/") >= 1 and path != "/":
                parent, _, name = path.rpartition("/")
                self._wanted.setdefault(parent or "/", set()).add(name)
        self.locks_possible = tx.one(
            "SELECT 1 AS x FROM locks WHERE filespace_id = ? LIMIT 1", (filespace_id,)) is not None
        self.ranges_possible = tx.one(
            "SELECT 1 AS x FROM range_locks WHERE filespace_id = ? LIMIT 1", (filespace_id,)) is not None
        self._states: dict[str, tuple[str, int]] = {h: ("live", n) for h, n in (live or {}).items()}
        named: set[str] = set()
        for change in changes:
            blocks = change.get("blocks") if isinstance(change, dict) else None
            for block in blocks if isinstance(blocks, list) else ():
                if isinstance(block, dict) and isinstance(block.get("hash"), str):
                    named.add(block["hash"])
        hashes = sorted(named.difference(self._states))
        for row in rows_in(tx, "SELECT hash, state, length FROM blocks WHERE filespace_id = ? "
                              "AND hash IN ({marks})", (filespace_id,), hashes):
            self._states[str(row["hash"])] = (str(row["state"]), int(row["length"]))
        self._touched: dict[int, int] = {}
        self._journal: list[dict[str, Any]] = []
        self._results: list[dict[str, Any]] = []
        self._remember: list[tuple[str, dict[str, Any]]] = []
        self._slots: list[tuple[Any, ...]] = []
        self._created: dict[tuple[int, str], Row] = {}
        self._footprints: list[tuple[Any, ...]] = []

    # -- lookups -----------------------------------------------------------------------

    def applied(self, tx: Tx, change_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored results of the changes already applied, by id (one query)."""
        ids = sorted(set(change_ids))
        return {str(r["change_id"]): dict(json.loads(r["result"]), replayed=True)
                for r in rows_in(tx, "SELECT change_id, result FROM applied_changes WHERE "
                                    "filespace_id = ? AND change_id IN ({marks})", (self.filespace_id,), ids)}

    def parent_dir(self, tx: Tx, path: str) -> tuple[Row, str]:
        """:func:`tree.parent_dir`, resolved once per directory."""
        parent_path, _, name = path.rpartition("/")
        found = self._parents.get(parent_path)
        if found is None:
            found = tree.parent_dir(tx, self.filespace_id, path)
            self._parents[parent_path] = found
        return found[0], name

    def child(self, tx: Tx, parent_path: str, parent_id: int, name: str) -> Row | None:
        """:func:`tree.child`; the batch's names in one directory are looked up together."""
        key = (parent_id, name)
        if key not in self._children:
            names = sorted(self._wanted.pop(parent_path or "/", set()) | {name})
            for n in names:
                self._children.setdefault((parent_id, n), None)
            for row in rows_in(tx, f"SELECT {tree.NODE_COLUMNS} FROM nodes WHERE parent_id = ? "
                                  "AND name IN ({marks})", (parent_id,), names):
                self._children[(parent_id, str(row["name"]))] = row
        return self._children[key]

    def create_files(self, tx: Tx, changes: Sequence[Any], skip: set[int]) -> None:
        """Insert, in one statement, the files the changes will create (those not in ``skip``).

        A change qualifies when it is the first of its path in the batch, its mode creates,
        its size and mtime are integers the store holds, its parent resolves and it names no
        existing entry. Anything doubtful is left to :func:`files.commit`, which then
        inserts (or refuses) it itself; a refusal anywhere rolls the whole batch back,
        these rows with it. :meth:`take_created` hands each row to its commit.
        """
        now = time.time_ns()
        seen: set[str] = set()
        rows: list[tuple[Any, ...]] = []
        for i, change in enumerate(changes):
            path = change.get("path") if isinstance(change, dict) else None
            if not isinstance(path, str) or path in seen:
                continue
            seen.add(path)
            size, mtime = change.get("size"), change.get("mtime")
            mtime = now if mtime is None else mtime
            if (i in skip or change.get("mode", "create") not in ("create", "exclusive")
                    or not _int64(size, 0) or not _int64(mtime, -MAX_INT64)):
                continue
            try:
                parent, name = self.parent_dir(tx, path)
            except LucidLinkError:
                continue
            if self.child(tx, path.rpartition("/")[0], int(parent["id"]), name) is None:
                rows.append((self.filespace_id, parent["id"], name, size, mtime, now))
        for row in insert_rows(
                tx, "INSERT INTO nodes (filespace_id, parent_id, name, type, size, mtime, ctime, version) "
                "VALUES ", "(?, ?, ?, 'file', ?, ?, ?, 1)", rows, f" RETURNING {tree.NODE_COLUMNS}"):
            self._created[(int(row["parent_id"]), str(row["name"]))] = row

    def take_created(self, parent_id: int, name: str) -> Row | None:
        """The row :meth:`create_files` inserted for this entry (once), else ``None``."""
        return self._created.pop((parent_id, name), None)

    def record_child(self, parent_id: int, name: str, row: Row) -> None:
        """The row an entry has now (after a commit changed or created it)."""
        self._children[(parent_id, name)] = row

    def check_present(self, blocks: Iterable[tuple[str, int]]) -> None:
        """:func:`files._check_blocks_present` against the states read once for the batch."""
        missing: dict[str, None] = {}
        for digest, length in sorted(set(blocks)):
            state = self._states.get(digest)
            if state is None or state[0] != "live":
                missing[digest] = None
            elif state[1] != length:
                raise BadRequestError(
                    f"block {digest} was uploaded with {state[1]} bytes, but this commit gives "
                    f"its length as {length}; nothing was changed. Commit the block with its "
                    "uploaded length",
                    block=digest, length=state[1],
                )
        if missing:
            raise BlockMissingError(
                f"{len(missing)} block(s) of this commit are not in the block store; upload them "
                "and commit again",
                missing=list(missing),
            )

    # -- deferred writes ---------------------------------------------------------------

    def new_file(self, slots: list[tuple[Any, ...]], footprint: tuple[Any, ...]) -> None:
        """The ``file_blocks`` rows and version footprint of a file this batch created, written
        in bulk by :meth:`flush` (before any commit of the batch on an existing file)."""
        self._slots += slots
        self._footprints.append(footprint)

    def flush(self, tx: Tx) -> None:
        """Write the rows :meth:`new_file` deferred."""
        if self._slots:
            tx.executemany(SLOTS_SQL, self._slots)
            self._slots = []
        if self._footprints:
            tx.executemany(versions.RECORD_SQL, self._footprints)
            self._footprints = []

    def touch_dir(self, dir_id: int, now: int) -> None:
        """:func:`tree.touch_dir`, once per directory at :meth:`finish`."""
        self._touched[dir_id] = now

    def journal(self, result: dict[str, Any], **change: Any) -> None:
        """Queue the journal row of a commit; its ``seq`` goes into ``result`` at :meth:`finish`."""
        self._journal.append(change)
        self._results.append(result)

    def remember(self, change_id: str, result: dict[str, Any]) -> None:
        """:func:`idempotency.remember`, at :meth:`finish` (once the result has its ``seq``)."""
        self._remember.append((change_id, result))

    def finish(self, tx: Tx, session_id: str | None) -> None:
        """Write what was deferred: new files' rows, directory times, journal rows, applied ids."""
        self.flush(tx)
        if self._touched:
            tx.executemany("UPDATE nodes SET mtime = ? WHERE id = ?",
                           [(now, dir_id) for dir_id, now in self._touched.items()])
        if self._journal:
            last = journal.append_many(tx, self.filespace_id, self._journal, session_id)
            first = last - len(self._journal) + 1
            for i, result in enumerate(self._results):
                result["seq"] = first + i
        if self._remember:
            now = time.time_ns()
            # orjson: a tenth of json.dumps' time per result; standard JSON all the same
            # (read back with json.loads by applied())
            # executemany, not one long multi-row statement: psycopg parses a long query in Python
            tx.executemany("INSERT INTO applied_changes (filespace_id, change_id, result, created) "
                           "VALUES (?, ?, ?, ?)",
                           [(self.filespace_id, cid, orjson.dumps(result).decode(), now)
                            for cid, result in self._remember])
