"""The namespace operations: stat, list, mkdir, delete and move, as transaction functions.

Each acts on a symbolic link itself, never on its target (``stat(follow=True)`` resolves
links: :mod:`lucidlink.hub.core.links`).

Every function takes canonical paths (see :mod:`lucidlink.paths`), does its checks and
its change in one transaction, and records the change in the journal. The inode tree
they work on is :mod:`lucidlink.hub.core.tree`.
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
from lucidlink.hub.core import journal, links, locks, tree
from lucidlink.hub.store.base import Tx
from lucidlink.paths import parent_and_name, split_path
from lucidlink.shared import LIST_ROW_COLUMNS, entries_from_rows


def stat(tx: Tx, filespace_id: str, path: str, *, follow: bool = False) -> dict[str, Any]:
    """The entry at ``path`` (a symbolic link's own, with its ``target``).

    With ``follow``, the entry of what ``path`` resolves to once every link on the way is
    followed, at its canonical ``path`` (:func:`lucidlink.hub.core.links.resolve`).
    When it is missing, the error's ``details.parent`` says whether its parent is a
    ``dir`` (so the path can be created), ``file`` or ``missing``: a client about to
    create a file learns all it needs in this one call.
    """
    if follow:
        found = links.resolve(tx, filespace_id, path)
        if found is not None:
            return tree.entry_of(tx, found[0], found[1])
    node = tree.lookup(tx, filespace_id, path)
    if node is None:
        parent_path, _ = parent_and_name(path)
        parent = tree.lookup(tx, filespace_id, parent_path)
        state = "missing" if parent is None else ("dir" if parent["type"] == "dir" else "file")
        raise PathNotFoundError(f"{path} does not exist in this filespace", path=path, parent=state)
    return tree.entry_of(tx, node, path)


def _page(tx: Tx, filespace_id: str, path: str, limit: int,
          after: str | None) -> tuple[list[tuple[Any, ...]], str | None]:
    """One page of a directory's children as :data:`~lucidlink.shared.LIST_ROW_COLUMNS`
    tuples, by name, and the cursor: the last name returned when more follow, else ``None``.

    Keyset pagination: each page is one index range scan however deep into a 100,000
    entry directory it starts, and entries added or removed between pages never make
    another entry appear twice or vanish.
    """
    node = tree.get_dir(tx, filespace_id, path)
    rows = tx.rows(
        f"SELECT {', '.join(LIST_ROW_COLUMNS)} FROM nodes WHERE parent_id = ? AND name > ? "
        "ORDER BY name LIMIT ?",
        (node["id"], after or "", limit + 1),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1][1] if more else None)


def list_dir(
    tx: Tx, filespace_id: str, path: str, limit: int, after: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a directory's entries by name; the cursor is the last name returned
    (see :func:`_page`)."""
    rows, cursor = _page(tx, filespace_id, path, limit, after)
    return entries_from_rows(path, rows, tree.row_extras(tx, rows)), cursor


def list_rows(
    tx: Tx, filespace_id: str, path: str, limit: int, after: str | None
) -> tuple[list[tuple[Any, ...]], dict[str, dict[str, Any]], str | None]:
    """:func:`list_dir` in its compact form: ``(rows, extra, cursor)``.

    Each row holds the :data:`~lucidlink.shared.LIST_ROW_COLUMNS` of one entry, as the
    database returned it; ``extra`` holds, by name, the fields that linked files and
    symbolic links add (``external``, ``target``). The same entries as :func:`list_dir`
    without a dict per entry: a page of 1,000 entries is half the JSON and no per-entry
    work here.
    """
    rows, cursor = _page(tx, filespace_id, path, limit, after)
    return rows, tree.row_extras(tx, rows), cursor


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
    node = tree.root(tx, filespace_id)
    walked = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        here = walked + "/" + part
        found = tree.child(tx, node["id"], part)
        if found is None:
            if not last and not parents:
                raise PathNotFoundError(
                    f"the parent directory {here} of {path} does not exist; "
                    "pass parents=True or create it first",
                    path=path,
                )
            parent_id = node["id"]
            node = tree.insert_node(tx, filespace_id, parent_id, part, "dir", now)
            tree.touch_dir(tx, parent_id, now)
            journal.append(tx, filespace_id, "mkdir", here, node_id=node["id"], type="dir", session_id=session_id)
        elif found["type"] != "dir":
            raise (PathExistsError if last else NotADirectoryFilespaceError)(
                f"{here} is {tree.what(found)}, so the directory {path} cannot be created",
                path=path,
            )
        elif last and not exist_ok:
            raise PathExistsError(f"the directory {path} already exists", path=path)
        else:
            node = found
        walked = here
    return tree.entry_json(node, path)


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
    node = tree.get(tx, filespace_id, path)
    if expect == "file" and node["type"] == "dir":
        raise IsADirectoryFilespaceError(
            f"{path} is a directory; delete it with delete_dir", path=path
        )
    if expect == "dir" and node["type"] != "dir":
        raise NotADirectoryFilespaceError(
            f"{path} is {tree.what(node)}; delete it with delete", path=path
        )
    ids = [int(node["id"])]
    if node["type"] == "dir" and tree.has_children(tx, node["id"]):
        if not recursive:
            raise DirectoryNotEmptyError(
                f"the directory {path} is not empty; pass recursive=True to delete it "
                "with everything in it",
                path=path,
            )
        ids = tree.subtree_ids(tx, node["id"])
    below = node["type"] == "dir"
    locks.check_free(tx, filespace_id, path, session_id, f"deleting {path}", below=below)
    tree.drop_nodes(tx, ids)
    locks.forget(tx, filespace_id, path, below=below)
    tree.touch_dir(tx, node["parent_id"], time.time_ns())
    seq = journal.append(
        tx, filespace_id, "delete", path, node_id=node["id"], type=node["type"], session_id=session_id
    )
    return {"deleted": len(ids), "seq": seq}


def move(
    tx: Tx, filespace_id: str, src: str, dst: str, *, overwrite: bool, session_id: str | None
) -> dict[str, Any]:
    """Rename/move ``src`` to ``dst``: one row update, whatever the subtree's size.

    Overwrite rules (POSIX ``rename`` when ``overwrite``): a file may replace a file, a
    directory may replace an empty directory; a file never replaces a directory nor
    the reverse; without ``overwrite`` an existing ``dst`` is ``FileExistsError``.
    """
    node = tree.get(tx, filespace_id, src)
    if not split_path(src):
        raise InvalidMoveError("the root directory cannot be moved", path=src)
    new_parent, new_name = tree.parent_dir(tx, filespace_id, dst)
    if node["type"] == "dir" and (
        new_parent["id"] == node["id"] or tree.is_ancestor(tx, node["id"], new_parent["id"])
    ):
        raise InvalidMoveError(
            f"cannot move the directory {src} into itself ({dst}); pick a destination outside it",
            path=src,
        )
    existing = tree.child(tx, new_parent["id"], new_name)
    if existing is not None and existing["id"] == node["id"]:
        return tree.entry_of(tx, node, dst)
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
                f"{dst} is {tree.what(existing)} and cannot be replaced by the directory {src}",
                path=dst,
            )
        if existing["type"] == "dir" and tree.has_children(tx, existing["id"]):
            raise DirectoryNotEmptyError(
                f"{dst} is a directory that is not empty; it cannot be replaced", path=dst
            )
        tree.drop_nodes(tx, [int(existing["id"])])
    now = time.time_ns()
    tx.execute(
        "UPDATE nodes SET parent_id = ?, name = ?, ctime = ? WHERE id = ?",
        (new_parent["id"], new_name, now, node["id"]),
    )
    tree.touch_dir(tx, node["parent_id"], now)
    tree.touch_dir(tx, new_parent["id"], now)
    locks.follow(tx, filespace_id, src, dst, session_id, below=below)
    journal.append(
        tx, filespace_id, "move", src, node_id=node["id"], type=node["type"], new_path=dst,
        session_id=session_id,
    )
    moved = tx.one(f"SELECT {tree.NODE_COLUMNS} FROM nodes WHERE id = ?", (node["id"],))
    assert moved is not None
    return tree.entry_of(tx, moved, dst)
