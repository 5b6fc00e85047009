"""The namespace: an inode tree per filespace. Transactional functions over a :class:`Tx`.

Every function takes canonical paths (see :mod:`lucidlink.paths`), does its checks and
its change in one transaction, and records the change in the journal.
"""

from __future__ import annotations

import time
from typing import Any

from lucidlink.exceptions import (
    DirectoryNotEmptyError,
    InvalidMoveError,
    InvalidPathError,
    IsADirectoryFilespaceError,
    NotADirectoryFilespaceError,
    PathExistsError,
    PathNotFoundError,
)
from lucidlink.hub import gc, journal, locks
from lucidlink.hub.store.base import Row, Tx
from lucidlink.paths import join_path, parent_and_name, split_path

NODE_COLUMNS = "id, parent_id, name, type, size, mtime, ctime, version"


def entry_json(row: Row, path: str, external: dict[str, Any] | None = None) -> dict[str, Any]:
    """The wire form of a node (a linked file's also names its data store and object)."""
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
    return out


def externals(tx: Tx, rows: list[Row]) -> dict[int, dict[str, Any]]:
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


def lookup(tx: Tx, filespace_id: str, path: str) -> Row | None:
    """The node at ``path``, or ``None`` if it (or a parent) is missing.

    Raises ``NotADirectoryError`` when a file stands where a parent directory should.
    """
    node = root(tx, filespace_id)
    parts = split_path(path)
    walked = ""
    for part in parts:
        if node["type"] != "dir":
            raise NotADirectoryFilespaceError(
                f"{walked} is a file, so {path} cannot exist; use a path under a directory",
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


def get_dir(tx: Tx, filespace_id: str, path: str) -> Row:
    """The directory at ``path``."""
    node = get(tx, filespace_id, path)
    if node["type"] != "dir":
        raise NotADirectoryFilespaceError(f"{path} is a file, not a directory", path=path)
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
            f"{parent_path} is a file, so {path} cannot be created under it", path=path
        )
    return node, parts[-1]


def stat(tx: Tx, filespace_id: str, path: str) -> dict[str, Any]:
    """The entry at ``path``.

    When it is missing, the error's ``details.parent`` says whether its parent is a
    ``dir`` (so the path can be created), ``file`` or ``missing``: a client about to
    create a file learns all it needs in this one call.
    """
    node = lookup(tx, filespace_id, path)
    if node is None:
        parent_path, _ = parent_and_name(path)
        parent = lookup(tx, filespace_id, parent_path)
        state = "missing" if parent is None else ("dir" if parent["type"] == "dir" else "file")
        raise PathNotFoundError(f"{path} does not exist in this filespace", path=path, parent=state)
    return entry_json(node, path, externals(tx, [node]).get(int(node["id"])))


def list_dir(
    tx: Tx, filespace_id: str, path: str, limit: int, after: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a directory's entries by name; the cursor is the last name returned.

    Keyset pagination: each page is one index range scan however deep into a 100,000
    entry directory it starts, and entries added or removed between pages never make
    another entry appear twice or vanish.
    """
    node = get_dir(tx, filespace_id, path)
    rows = tx.all(
        f"SELECT {NODE_COLUMNS} FROM nodes WHERE parent_id = ? AND name > ? "
        "ORDER BY name LIMIT ?",
        (node["id"], after or "", limit + 1),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    linked = externals(tx, rows)
    entries = [entry_json(r, join_path(path, r["name"]), linked.get(int(r["id"]))) for r in rows]
    return entries, (rows[-1]["name"] if more else None)


def _insert_node(tx: Tx, filespace_id: str, parent_id: int, name: str, type_: str, now: int) -> Row:
    row = tx.one(
        "INSERT INTO nodes (filespace_id, parent_id, name, type, size, mtime, ctime, version) "
        f"VALUES (?, ?, ?, ?, 0, ?, ?, 1) RETURNING {NODE_COLUMNS}",
        (filespace_id, parent_id, name, type_, now, now),
    )
    assert row is not None
    return row


def _touch_dir(tx: Tx, node_id: int, now: int) -> None:
    tx.execute("UPDATE nodes SET mtime = ? WHERE id = ?", (now, node_id))


def mkdir(
    tx: Tx, filespace_id: str, path: str, *, parents: bool, exist_ok: bool, session_id: str | None
) -> dict[str, Any]:
    """Create a directory (and its parents when ``parents``)."""
    parts = split_path(path)
    if not parts:
        if exist_ok:
            return stat(tx, filespace_id, "/")
        raise PathExistsError("the root directory always exists", path="/")
    now = time.time_ns()
    node = root(tx, filespace_id)
    walked = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        here = walked + "/" + part
        found = child(tx, node["id"], part)
        if found is None:
            if not last and not parents:
                raise PathNotFoundError(
                    f"the parent directory {here} of {path} does not exist; "
                    "pass parents=True or create it first",
                    path=path,
                )
            parent_id = node["id"]
            node = _insert_node(tx, filespace_id, parent_id, part, "dir", now)
            _touch_dir(tx, parent_id, now)
            journal.append(tx, filespace_id, "mkdir", here, node_id=node["id"], type="dir", session_id=session_id)
        elif found["type"] != "dir":
            raise (PathExistsError if last else NotADirectoryFilespaceError)(
                f"{here} is a file, so the directory {path} cannot be created", path=path
            )
        elif last and not exist_ok:
            raise PathExistsError(f"the directory {path} already exists", path=path)
        else:
            node = found
        walked = here
    return entry_json(node, path)


def _subtree_ids(tx: Tx, node_id: int) -> list[int]:
    rows = tx.all(
        "WITH RECURSIVE sub(id) AS (SELECT id FROM nodes WHERE id = ? UNION ALL "
        "SELECT n.id FROM nodes n JOIN sub ON n.parent_id = sub.id) SELECT id FROM sub",
        (node_id,),
    )
    return [int(r["id"]) for r in rows]


def _drop_nodes(tx: Tx, ids: list[int]) -> None:
    """Delete nodes and their block references.

    Their blocks become garbage for the GC once unreferenced for its grace period,
    counted from now (:func:`lucidlink.hub.gc.release_nodes`): a reader of a deleted
    file can still fetch what it had opened.
    """
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        gc.release_nodes(tx, chunk)
        tx.execute(f"DELETE FROM file_blocks WHERE node_id IN ({marks})", chunk)
        tx.execute(f"DELETE FROM nodes WHERE id IN ({marks})", chunk)


def _has_children(tx: Tx, node_id: int) -> bool:
    return tx.one("SELECT 1 AS x FROM nodes WHERE parent_id = ? LIMIT 1", (node_id,)) is not None


def delete(
    tx: Tx,
    filespace_id: str,
    path: str,
    *,
    expect: str | None,
    recursive: bool,
    session_id: str | None,
) -> dict[str, Any]:
    """Delete a file (``expect='file'``), a directory (``'dir'``) or either (``None``).

    A directory with entries needs ``recursive``; then the whole subtree goes in this
    one transaction.
    """
    if not split_path(path):
        raise InvalidPathError("the root directory cannot be deleted", path=path)
    node = get(tx, filespace_id, path)
    if expect == "file" and node["type"] == "dir":
        raise IsADirectoryFilespaceError(
            f"{path} is a directory; delete it with delete_dir", path=path
        )
    if expect == "dir" and node["type"] != "dir":
        raise NotADirectoryFilespaceError(f"{path} is a file; delete it with delete", path=path)
    ids = [int(node["id"])]
    if node["type"] == "dir" and _has_children(tx, node["id"]):
        if not recursive:
            raise DirectoryNotEmptyError(
                f"the directory {path} is not empty; pass recursive=True to delete it "
                "with everything in it",
                path=path,
            )
        ids = _subtree_ids(tx, node["id"])
    below = node["type"] == "dir"
    locks.check_free(tx, filespace_id, path, session_id, f"deleting {path}", below=below)
    _drop_nodes(tx, ids)
    locks.forget(tx, filespace_id, path, below=below)
    _touch_dir(tx, node["parent_id"], time.time_ns())
    seq = journal.append(
        tx, filespace_id, "delete", path, node_id=node["id"], type=node["type"], session_id=session_id
    )
    return {"deleted": len(ids), "seq": seq}


def _is_ancestor(tx: Tx, ancestor_id: int, node_id: int) -> bool:
    row = tx.one(
        "WITH RECURSIVE up(id, parent_id) AS ("
        "SELECT id, parent_id FROM nodes WHERE id = ? UNION ALL "
        "SELECT n.id, n.parent_id FROM nodes n JOIN up ON n.id = up.parent_id) "
        "SELECT 1 AS x FROM up WHERE id = ? LIMIT 1",
        (node_id, ancestor_id),
    )
    return row is not None


def move(
    tx: Tx, filespace_id: str, src: str, dst: str, *, overwrite: bool, session_id: str | None
) -> dict[str, Any]:
    """Rename/move ``src`` to ``dst``: one row update, whatever the subtree's size.

    Overwrite rules (POSIX ``rename`` when ``overwrite``): a file may replace a file, a
    directory may replace an empty directory; a file never replaces a directory nor
    the reverse; without ``overwrite`` an existing ``dst`` is ``FileExistsError``.
    """
    node = get(tx, filespace_id, src)
    if not split_path(src):
        raise InvalidMoveError("the root directory cannot be moved", path=src)
    new_parent, new_name = parent_dir(tx, filespace_id, dst)
    if node["type"] == "dir" and (
        new_parent["id"] == node["id"] or _is_ancestor(tx, node["id"], new_parent["id"])
    ):
        raise InvalidMoveError(
            f"cannot move the directory {src} into itself ({dst}); pick a destination outside it",
            path=src,
        )
    existing = child(tx, new_parent["id"], new_name)
    if existing is not None and existing["id"] == node["id"]:
        return entry_json(node, dst, externals(tx, [node]).get(int(node["id"])))
    # A path another session locks (or reserves: a lock on a file not created yet) is
    # neither moved away, nor moved onto, nor filled by a moved directory's entries.
    below = node["type"] == "dir"
    locks.check_free(tx, filespace_id, src, session_id, f"moving {src} to {dst}", below=below)
    locks.check_free(tx, filespace_id, dst, session_id, f"moving {src} onto {dst}", below=below)
    if existing is not None:
        if not overwrite:
            raise PathExistsError(
                f"{dst} already exists; delete it first or pass overwrite=True", path=dst
            )
        if existing["type"] == "dir" and node["type"] != "dir":
            raise IsADirectoryFilespaceError(
                f"{dst} is a directory and cannot be replaced by the file {src}", path=dst
            )
        if existing["type"] != "dir" and node["type"] == "dir":
            raise NotADirectoryFilespaceError(
                f"{dst} is a file and cannot be replaced by the directory {src}", path=dst
            )
        if existing["type"] == "dir" and _has_children(tx, existing["id"]):
            raise DirectoryNotEmptyError(
                f"{dst} is a directory that is not empty; it cannot be replaced", path=dst
            )
        _drop_nodes(tx, [int(existing["id"])])
    now = time.time_ns()
    tx.execute(
        "UPDATE nodes SET parent_id = ?, name = ?, ctime = ? WHERE id = ?",
        (new_parent["id"], new_name, now, node["id"]),
    )
    _touch_dir(tx, node["parent_id"], now)
    _touch_dir(tx, new_parent["id"], now)
    locks.follow(tx, filespace_id, src, dst, session_id, below=below)
    journal.append(
        tx, filespace_id, "move", src, node_id=node["id"], type=node["type"], new_path=dst,
        session_id=session_id,
    )
    moved = tx.one(f"SELECT {NODE_COLUMNS} FROM nodes WHERE id = ?", (node["id"],))
    assert moved is not None
    return entry_json(moved, dst, externals(tx, [moved]).get(int(moved["id"])))
