"""Symbolic links: creating, resolving and copying them, as transaction functions.

A link is a node of type ``link`` whose target text is in ``symlinks``. The target is
kept as given (POSIX ``symlink``): an absolute filespace path (``/a/b``) or one relative
to the link's directory (``../b``, ``./c``). A target that would climb above the root
is refused when the link is created. The hub resolves links (:func:`resolve`), in one
read transaction whatever the chain's length: a consistent snapshot, one round trip for
the client, and the same rules (40 hops at most, ``ELOOP`` beyond) for every client.

Operations on the namespace (stat, list, delete, move, copy: :mod:`.copies`) act on the
link itself;
only :func:`resolve` follows links, and the SDK calls it for ``open``, ``read_file`` and
the ``*_exists`` checks.
"""

from __future__ import annotations

import time
from typing import Any

from lucidlink.exceptions import (
    InvalidPathError,
    IsADirectoryFilespaceError,
    LinkOutsideFilespaceError,
    NotADirectoryFilespaceError,
    PathExistsError,
    PathNotFoundError,
    TooManyLinksError,
)
from lucidlink.hub.core import journal, locks, tree
from lucidlink.hub.store.base import Row, Tx
from lucidlink.paths import MAX_PATH_BYTES, parent_and_name, split_path

MAX_HOPS = 40
"""Links followed in one resolution before ``ELOOP`` (Linux's ``MAXSYMLINKS``)."""


def check_target(target: object) -> str:
    """Validate a link target's text: 1 to 4096 bytes of UTF-8, no NUL.

    As POSIX ``symlink``, only the whole is bounded: a name too long to exist makes the
    link dangle, it does not make it invalid.
    """
    if not isinstance(target, str) or not target:
        raise InvalidPathError("a link target must be a non-empty string (a filespace path)")
    shown = target if len(target) <= 200 else target[:200] + "..."
    if "\x00" in target:
        raise InvalidPathError(f"link target {shown!r} contains a NUL byte; remove it", path=shown)
    try:
        size = len(target.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidPathError(
            f"link target {shown!r} is not valid UTF-8; pass text", path=shown
        ) from None
    if size > MAX_PATH_BYTES:
        raise InvalidPathError(
            f"link target {shown!r} is {size} bytes long; the limit is {MAX_PATH_BYTES}", path=shown
        )
    return target


def target_parts(link_dir: list[str], target: str) -> list[str] | None:
    """The components a target names, seen from the link's directory (``link_dir``);
    ``None`` if it climbs above ``/``."""
    parts = [] if target.startswith("/") else list(link_dir)
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return parts


def create(
    tx: Tx, filespace_id: str, path: str, target: str, *, session_id: str | None
) -> dict[str, Any]:
    """Create the link ``path`` pointing to ``target`` (which need not exist)."""
    check_target(target)
    parent_path, _ = parent_and_name(path)
    if target_parts(split_path(parent_path), target) is None:
        raise LinkOutsideFilespaceError(
            f"the link target {target!r} of {path} is outside the filespace (it climbs above /); "
            "point it at a path inside the filespace",
            path=path,
        )
    parent, name = tree.parent_dir(tx, filespace_id, path)
    locks.check_free(tx, filespace_id, path, session_id, f"creating the link {path}")
    if tree.child(tx, parent["id"], name) is not None:
        raise PathExistsError(
            f"{path} already exists; delete it first or pick another name", path=path
        )
    node = _insert(tx, filespace_id, int(parent["id"]), name, target)
    journal.append(
        tx,
        filespace_id,
        "create",
        path,
        node_id=node["id"],
        type="link",
        size=node["size"],
        version=1,
        session_id=session_id,
    )
    return tree.entry_json(node, path, target=target)


def _insert(tx: Tx, filespace_id: str, parent_id: int, name: str, target: str) -> Row:
    now = time.time_ns()
    node = tx.one(
        "INSERT INTO nodes (filespace_id, parent_id, name, type, size, mtime, ctime, version) "
        f"VALUES (?, ?, ?, 'link', ?, ?, ?, 1) RETURNING {tree.NODE_COLUMNS}",
        (filespace_id, parent_id, name, len(target.encode("utf-8")), now, now),
    )
    assert node is not None
    tx.execute(
        "INSERT INTO symlinks (node_id, filespace_id, target) VALUES (?, ?, ?)",
        (node["id"], filespace_id, target),
    )
    tree.touch_dir(tx, parent_id, now)
    return node


def resolve(tx: Tx, filespace_id: str, path: str) -> tuple[Row, str] | None:
    """The node ``path`` leads to once every link on the way (the last name's too) is
    followed, and its canonical path; ``None`` when ``path`` has no link on the way and
    does not exist.

    A dangling link is ``FileNotFoundError`` naming the link and its target; more than
    :data:`MAX_HOPS` links (a loop) ``TooManyLinksError`` (``ELOOP``).
    """
    pending = split_path(path)
    node = tree.root(tx, filespace_id)
    walked: list[str] = []
    hops = 0
    last: tuple[str, str] | None = None  # (link path, its target): the one a missing path came from
    while pending:
        part = pending.pop(0)
        if node["type"] != "dir":
            raise NotADirectoryFilespaceError(
                f"/{'/'.join(walked)} is a file, so {path} cannot exist; "
                "use a path under a directory",
                path=path,
            )
        found = tree.child(tx, node["id"], part)
        if found is None:
            if last is None:
                return None
            raise PathNotFoundError(
                f"{path} leads through the link {last[0]} to {last[1]!r}, which does not exist "
                f"(/{'/'.join([*walked, part])} is missing); create the target or fix the link",
                path=path,
                link=last[0],
                target=last[1],
            )
        if found["type"] != "link":
            node = found
            walked.append(part)
            continue
        hops += 1
        link_path = "/" + "/".join([*walked, part])
        if hops > MAX_HOPS:
            raise TooManyLinksError(
                f"resolving {path} followed more than {MAX_HOPS} symbolic links (a loop, "
                f"or a chain too long; the last was {link_path}); fix the links",
                path=path,
            )
        row = tx.one("SELECT target FROM symlinks WHERE node_id = ?", (found["id"],))
        if row is None:  # a link node always has its target row; a torn store is a bug
            raise RuntimeError(f"symbolic link {link_path} has no target row")
        target = str(row["target"])
        parts = target_parts(walked, target)
        if parts is None:  # a relative target moved with its link until it climbed above /
            raise PathNotFoundError(
                f"the link {link_path} points to {target!r}, which is outside the filespace; "
                "fix the link",
                path=path,
                link=link_path,
                target=target,
            )
        last = (link_path, target)
        pending = parts + pending
        node = tree.root(tx, filespace_id)
        walked = []
    return node, "/" + "/".join(walked)


def copy_link(
    tx: Tx,
    filespace_id: str,
    node: Row,
    src: str,
    dst: str,
    *,
    overwrite: bool,
    session_id: str | None,
) -> dict[str, Any]:
    """Copy the link ``node`` (at ``src``) as a link with the same target text to ``dst``."""
    target = tree.link_targets(tx, [node])[int(node["id"])]
    locks.check_free(tx, filespace_id, dst, session_id, f"copying {src} onto {dst}")
    parent, name = tree.parent_dir(tx, filespace_id, dst)
    existing = tree.child(tx, parent["id"], name)
    if existing is not None:
        if existing["id"] == node["id"]:
            raise PathExistsError(
                f"{src} cannot be copied onto itself; pick another destination", path=dst
            )
        if not overwrite:
            raise PathExistsError(
                f"{dst} already exists; pass overwrite=True to replace it", path=dst
            )
        if existing["type"] == "dir":
            raise IsADirectoryFilespaceError(
                f"{dst} is a directory and cannot be replaced by the link {src}", path=dst
            )
        tree.drop_nodes(tx, [int(existing["id"])])
        locks.forget(tx, filespace_id, dst)
    created = _insert(tx, filespace_id, int(parent["id"]), name, target)
    seq = journal.append(
        tx,
        filespace_id,
        "create",
        dst,
        node_id=created["id"],
        type="link",
        size=created["size"],
        version=1,
        session_id=session_id,
    )
    return {
        "entry": tree.entry_json(created, dst, target=target),
        "seq": seq,
        "created": existing is None,
    }
