"""The inode tree of a filespace: node lookups, inserts and drops, as transaction functions.

The primitives the namespace operations (:mod:`lucidlink.hub.core.namespace`), file
commits, locks and Connect build on. A node is a row of ``nodes``; paths are canonical
(see :mod:`lucidlink.paths`). Nothing here records a change in the journal: the
operation that changes the tree does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lucidlink.exceptions import (
    InvalidPathError,
    NotADirectoryFilespaceError,
    PathNotFoundError,
)
from lucidlink.hub.core import gc
from lucidlink.hub.store.base import Row, Tx
from lucidlink.paths import split_path

NODE_COLUMNS = "id, parent_id, name, type, size, mtime, ctime, version"


def entry_json(
    row: Row, path: str, external: dict[str, Any] | None = None, target: str | None = None
) -> dict[str, Any]:
    """The wire form of a node (a linked file's also names its data store and object, a
    symbolic link's its ``target``)."""
    out = {
        "id": row["id"],
        "path": path,
        "name": "" if path == "/" else row["name"],
        "type": row["type"],
        "size": row["size"],
        "mtime": row["mtime"],
        "ctime": row["ctime"],
        "version": row["version"],
    }
    if external is not None:  # Connect
        out["external"] = {"store": external["store"], "object_id": external["object_id"]}
    if target is not None:
        out["target"] = target
    return out


def row_extras(tx: Tx, rows: Sequence[tuple[Any, ...]]) -> dict[str, dict[str, Any]]:
    """``{name: fields}``: what :func:`entry_json` adds for the linked files (``external``)
    and symbolic links (``target``) among the children of one directory, given as
    :data:`~lucidlink.shared.LIST_ROW_COLUMNS` tuples (one query for each kind present;
    ``{}`` when there is none)."""
    special = [{"id": r[0], "name": r[1], "type": r[2]} for r in rows
               if r[2] in ("external", "link")]
    if not special:
        return {}
    linked, targets = externals(tx, special), link_targets(tx, special)
    out: dict[str, dict[str, Any]] = {}
    for r in special:
        fields = out.setdefault(str(r["name"]), {})
        if r["id"] in linked:
            fields["external"] = linked[r["id"]]
        if r["id"] in targets:
            fields["target"] = targets[r["id"]]
    return out


def link_targets(tx: Tx, rows: Sequence[Row]) -> dict[int, str]:
    """``{node id: target}`` for the symbolic links among ``rows``."""
    ids = [int(r["id"]) for r in rows if r["type"] == "link"]
    if not ids:
        return {}
    found = tx.all(
        f"SELECT node_id, target FROM symlinks WHERE node_id IN ({','.join('?' * len(ids))})", ids
    )
    return {int(r["node_id"]): str(r["target"]) for r in found}


def entry_of(tx: Tx, row: Row, path: str) -> dict[str, Any]:
    """:func:`entry_json` of one node, with its Connect object or link target looked up."""
    return entry_json(row, path, externals(tx, [row]).get(int(row["id"])),
                      link_targets(tx, [row]).get(int(row["id"])))


def externals(tx: Tx, rows: Sequence[Row]) -> dict[int, dict[str, Any]]:
    """Connect: ``{node id: {"store", "object_id"}}`` for the linked files among ``rows``."""
    ids = [int(r["id"]) for r in rows if r["type"] == "external"]
    if not ids:
        return {}
    found = tx.all(
        "SELECT e.node_id, s.name AS store, e.object_id FROM external_files e "
        f"JOIN data_stores s ON s.id = e.store_id WHERE e.node_id IN ({','.join('?' * len(ids))})",
        ids,
    )
    return {int(r["node_id"]): {"store": r["store"], "object_id": r["object_id"]} for r in found}


def root(tx: Tx, filespace_id: str) -> Row:
    """The root directory node of a filespace."""
    row = tx.one(
        f"SELECT {NODE_COLUMNS} FROM nodes WHERE id = "
        "(SELECT root_id FROM filespaces WHERE id = ?)",
        (filespace_id,),
    )
    assert row is not None, filespace_id
    return row


def child(tx: Tx, parent_id: int, name: str) -> Row | None:
    """The entry ``name`` of directory ``parent_id``, or ``None``."""
    return tx.one(
        f"SELECT {NODE_COLUMNS} FROM nodes WHERE parent_id = ? AND name = ?", (parent_id, name)
    )


JOINED_DEPTH = 8
"""Path components found in one statement; a deeper path takes one statement per 8."""
_ROOT_ID = "(SELECT root_id FROM filespaces WHERE id = ?)"
_CHAIN_SQL: dict[tuple[int, bool], str] = {}


def _chain_sql(depth: int, from_root: bool) -> str:
    """The statement finding the node ``depth`` names below a start: the filespace's root
    (its id the first parameter) or a node id, the names the parameters after it. Every
    node on the way must be a directory; no row when any is missing or is not one."""
    key = (depth, from_root)
    sql = _CHAIN_SQL.get(key)
    if sql is None:
        where = [f"n0.parent_id = {_ROOT_ID if from_root else '?'}", "n0.name = ?"]
        for i in range(1, depth):
            where += [f"n{i - 1}.type = 'dir'", f"n{i}.parent_id = n{i - 1}.id", f"n{i}.name = ?"]
        columns = ", ".join(f"n{depth - 1}.{c}" for c in NODE_COLUMNS.split(", "))
        tables = ", ".join(f"nodes n{i}" for i in range(depth))
        sql = _CHAIN_SQL[key] = f"SELECT {columns} FROM {tables} WHERE {' AND '.join(where)}"
    return sql


def lookup(tx: Tx, filespace_id: str, path: str) -> Row | None:
    """The node at ``path``, or ``None`` if it (or a parent) is missing.

    Raises ``NotADirectoryError`` when a file stands where a parent directory should.
    A path found is one statement per :data:`JOINED_DEPTH` components (a stat is one
    index probe per component either way; the statements are what cost); one that is
    not is walked again a name at a time to say why.
    """
    parts = split_path(path)
    if not parts:
        return root(tx, filespace_id)
    node: Row | None = None
    for start in range(0, len(parts), JOINED_DEPTH):
        chunk = parts[start:start + JOINED_DEPTH]
        node = tx.one(_chain_sql(len(chunk), node is None),
                      (filespace_id if node is None else node["id"], *chunk))
        if node is None:
            return _walk(tx, filespace_id, path, parts)
    return node


def _walk(tx: Tx, filespace_id: str, path: str, parts: list[str]) -> Row | None:
    """:func:`lookup` a name at a time: ``None`` at the first missing name, or the error
    for a file or link standing where a directory should."""
    # The root is a directory: its child comes in the same statement as its id.
    node = tx.one(f"SELECT {NODE_COLUMNS} FROM nodes WHERE parent_id = {_ROOT_ID} AND name = ?",
                  (filespace_id, parts[0]))
    if node is None:
        return None
    walked = "/" + parts[0]
    for part in parts[1:]:
        if node["type"] != "dir":
            raise NotADirectoryFilespaceError(
                f"{walked} is {what(node)}, so {path} cannot exist; use a path under a directory",
                path=path,
            )
        found = child(tx, node["id"], part)
        if found is None:
            return None
        node = found
        walked += "/" + part
    return node


def get(tx: Tx, filespace_id: str, path: str) -> Row:
    """The node at ``path``; ``FileNotFoundError`` when missing."""
    node = lookup(tx, filespace_id, path)
    if node is None:
        raise PathNotFoundError(f"{path} does not exist in this filespace", path=path)
    return node


def what(node: Row) -> str:
    """``a file`` or ``a symbolic link``, for messages about a node that is not a directory
    (paths through a link are not followed here)."""
    return "a symbolic link" if node["type"] == "link" else "a file"


def get_dir(tx: Tx, filespace_id: str, path: str) -> Row:
    """The directory at ``path`` (a link to one is not followed)."""
    node = get(tx, filespace_id, path)
    if node["type"] != "dir":
        raise NotADirectoryFilespaceError(f"{path} is {what(node)}, not a directory", path=path)
    return node


def parent_dir(tx: Tx, filespace_id: str, path: str) -> tuple[Row, str]:
    """The existing parent directory of ``path`` and the last name of ``path``."""
    parts = split_path(path)
    if not parts:
        raise InvalidPathError("the root directory has no parent; name a path under it", path=path)
    parent_path = "/" + "/".join(parts[:-1])
    node = lookup(tx, filespace_id, parent_path)
    if node is None:
        raise PathNotFoundError(
            f"the parent directory {parent_path} of {path} does not exist; create it first",
            path=path,
        )
    if node["type"] != "dir":
        raise NotADirectoryFilespaceError(
            f"{parent_path} is {what(node)}, so {path} cannot be created under it", path=path
        )
    return node, parts[-1]


def insert_node(tx: Tx, filespace_id: str, parent_id: int, name: str, type_: str, now: int, *,
                size: int = 0, mtime: int | None = None) -> Row:
    """Insert a new node (version 1; ``size``, ``mtime`` default 0 and ``now``) under
    ``parent_id``; returns its row."""
    row = tx.one(
        "INSERT INTO nodes (filespace_id, parent_id, name, type, size, mtime, ctime, version) "
        f"VALUES (?, ?, ?, ?, ?, ?, ?, 1) RETURNING {NODE_COLUMNS}",
        (filespace_id, parent_id, name, type_, size, now if mtime is None else mtime, now),
    )
    assert row is not None
    return row


def touch_dir(tx: Tx, node_id: int, now: int) -> None:
    """Set a directory's mtime (its entries changed)."""
    tx.execute("UPDATE nodes SET mtime = ? WHERE id = ?", (now, node_id))


def subtree_ids(tx: Tx, node_id: int) -> list[int]:
    """The ids of ``node_id`` and every node below it."""
    rows = tx.all(
        "WITH RECURSIVE sub(id) AS (SELECT id FROM nodes WHERE id = ? UNION ALL "
        "SELECT n.id FROM nodes n JOIN sub ON n.parent_id = sub.id) SELECT id FROM sub",
        (node_id,),
    )
    return [int(r["id"]) for r in rows]


def drop_nodes(tx: Tx, ids: list[int]) -> None:
    """Delete nodes and their block references.

    Their blocks become garbage for the GC once unreferenced for its grace period,
    counted from now (:func:`lucidlink.hub.core.gc.release_nodes`): a reader of a deleted
    file can still fetch what it had opened.
    """
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        gc.release_nodes(tx, chunk)
        tx.execute(f"DELETE FROM file_blocks WHERE node_id IN ({marks})", chunk)
        tx.execute(f"DELETE FROM symlinks WHERE node_id IN ({marks})", chunk)
        tx.execute(f"DELETE FROM nodes WHERE id IN ({marks})", chunk)


def has_children(tx: Tx, node_id: int) -> bool:
    """Whether directory ``node_id`` has any entry."""
    return tx.one("SELECT 1 AS x FROM nodes WHERE parent_id = ? LIMIT 1", (node_id,)) is not None


def is_ancestor(tx: Tx, ancestor_id: int, node_id: int) -> bool:
    """Whether ``ancestor_id`` is ``node_id`` or one of its parents."""
    row = tx.one(
        "WITH RECURSIVE up(id, parent_id) AS ("
        "SELECT id, parent_id FROM nodes WHERE id = ? UNION ALL "
        "SELECT n.id, n.parent_id FROM nodes n JOIN up ON n.id = up.parent_id) "
        "SELECT 1 AS x FROM up WHERE id = ? LIMIT 1",
        (node_id, ancestor_id),
    )
    return row is not None
