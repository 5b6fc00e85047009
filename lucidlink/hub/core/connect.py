"""Connect: data stores of a filespace, and files linked from their objects.

Transactional functions over a :class:`Tx` (portable SQL, like the rest of the hub).
The S3 calls and the sealing of secrets happen in :mod:`lucidlink.hub.api.connect`,
outside any transaction; these functions only read and write the metadata.

Tables (``store/sqlite.py``):

* ``data_stores``: ``id``, ``filespace_id``, ``name`` (unique per filespace), ``kind``
  (``s3``), ``access_key``, ``secret_sealed`` (see :mod:`lucidlink.hub.secrets_box`),
  ``config`` (JSON: bucket_name, region, endpoint, url_expiration_minutes,
  use_virtual_addressing), ``key_id``, ``rekey_state``, ``created``, ``updated``.
* ``external_files``: one row per linked file, keyed by its node (``ON DELETE
  CASCADE``, so deleting or replacing the entry drops the link and never touches the
  object): ``store_id`` (a store with links cannot be deleted), ``object_id``,
  ``size``, ``etag`` (from HeadObject, or the caller's checksum when it is an ETag),
  ``checksum`` (the caller's), ``object_mtime``, ``linked``.

A linked file is a node of type ``external`` whose ``size`` is the object's, so
statistics count it as an external file.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from typing import Any

from lucidlink.exceptions import (
    DataStoreInUseError,
    IsADirectoryFilespaceError,
    NotADirectoryFilespaceError,
    NotFoundError,
    NotLinkedError,
    PathExistsError,
)
from lucidlink.hub.core import journal, locks, namespace, tree
from lucidlink.hub.store.base import INSERT_CHUNK, Row, Tx, insert_rows
from lucidlink.paths import parent_and_name

STORE_COLUMNS = (
    "id, filespace_id, name, kind, access_key, secret_sealed, config, key_id, rekey_state, created, updated"
)
"""Rows per multi-row statement (and ids per ``IN (...)`` list)."""
CONFIG_FIELDS = ("bucket_name", "region", "endpoint", "url_expiration_minutes", "use_virtual_addressing")


def new_key_id() -> str:
    """An id for a set of credentials (public; it changes with every rekey)."""
    return secrets.token_hex(8)


def store_json(row: Row, secret_key: str = "") -> dict[str, Any]:
    """The wire form of a data store; the secret only when the caller passes it in."""
    config = json.loads(row["config"])
    return {
        "name": row["name"],
        "kind": row["kind"],
        "access_key": row["access_key"],
        "secret_key": secret_key,
        **{k: config[k] for k in CONFIG_FIELDS},
        "key_id": row["key_id"],
        "rekey_state": row["rekey_state"],
        "created": row["created"],
        "updated": row["updated"],
    }


def _names(tx: Tx, filespace_id: str) -> list[str]:
    return [r["name"] for r in tx.all("SELECT name FROM data_stores WHERE filespace_id = ? ORDER BY name",
                                      (filespace_id,))]


def store_by_name(tx: Tx, filespace_id: str, name: str) -> Row:
    """The data store ``name`` of the filespace; ``NotFoundError`` naming the existing ones."""
    row = tx.one(f"SELECT {STORE_COLUMNS} FROM data_stores WHERE filespace_id = ? AND name = ?",
                 (filespace_id, name))
    if row is None:
        names = _names(tx, filespace_id)
        raise NotFoundError(
            f"no data store named {name!r} in this filespace; existing data stores: "
            f"{', '.join(repr(n) for n in names) if names else 'none'} (add one with add_data_store)",
            reason="store_not_found", store=name,
        )
    return row


def stores_by_names(tx: Tx, filespace_id: str, names: Iterable[str]) -> dict[str, Row]:
    """Several data stores by name (each must exist)."""
    return {name: store_by_name(tx, filespace_id, name) for name in sorted(set(names))}


def list_stores(tx: Tx, filespace_id: str) -> list[Row]:
    """The filespace's data stores, by name."""
    return tx.all(f"SELECT {STORE_COLUMNS} FROM data_stores WHERE filespace_id = ? ORDER BY name", (filespace_id,))


def check_name_free(tx: Tx, filespace_id: str, name: str) -> None:
    """``PathExistsError`` when the filespace already has a data store of that name."""
    if tx.one("SELECT 1 AS x FROM data_stores WHERE filespace_id = ? AND name = ?", (filespace_id, name)):
        raise PathExistsError(
            f"a data store named {name!r} already exists in this filespace; pick another name, or remove it "
            "first (remove_data_store)",
            reason="store_exists", store=name,
        )


def insert_store(tx: Tx, filespace_id: str, store_id: str, name: str, kind: str, access_key: str,
                 secret_sealed: str, config: dict[str, Any]) -> Row:
    """Add a data store (the caller checked the bucket and sealed the secret)."""
    check_name_free(tx, filespace_id, name)
    now = time.time_ns()
    tx.execute(
        f"INSERT INTO data_stores ({STORE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'none', ?, ?)",
        (store_id, filespace_id, name, kind, access_key, secret_sealed,
         json.dumps({k: config[k] for k in CONFIG_FIELDS}, sort_keys=True), new_key_id(), now, now),
    )
    return store_by_name(tx, filespace_id, name)


def rekey_store(tx: Tx, filespace_id: str, store_id: str, name: str, access_key: str, secret_sealed: str) -> Row:
    """Replace a store's credentials (checked by the caller against the bucket)."""
    row = store_by_name(tx, filespace_id, name)
    if row["id"] != store_id:
        raise NotFoundError(f"the data store {name!r} was replaced while it was being rekeyed; try again",
                            reason="store_not_found", store=name)
    tx.execute(
        "UPDATE data_stores SET access_key = ?, secret_sealed = ?, key_id = ?, rekey_state = 'rekeyed', "
        "updated = ? WHERE id = ?",
        (access_key, secret_sealed, new_key_id(), time.time_ns(), store_id),
    )
    return store_by_name(tx, filespace_id, name)


def remove_store(tx: Tx, filespace_id: str, name: str, *, force: bool, session_id: str | None) -> dict[str, Any]:
    """Remove a data store; refused while files are linked to it unless ``force`` (which unlinks them)."""
    row = store_by_name(tx, filespace_id, name)
    count = _count(tx, row["id"])
    unlinked = 0
    if count and not force:
        raise DataStoreInUseError(
            f"the data store {name!r} still has {count} linked file{'s' if count != 1 else ''}; unlink "
            f"{'them' if count != 1 else 'it'} first (unlink_file), or pass force=True to unlink "
            f"{'them' if count != 1 else 'it'} with the store (the objects in S3 are never touched)",
            reason="store_in_use", store=name, linked_files=count,
        )
    if count:
        while True:
            ids = [int(r["node_id"]) for r in tx.all(
                "SELECT node_id FROM external_files WHERE store_id = ? ORDER BY node_id LIMIT 5000", (row["id"],))]
            if not ids:
                break
            paths = paths_of(tx, ids)
            locks.check_free_paths(tx, filespace_id, paths.values(), session_id,
                                   f"removing the data store {name!r} (which unlinks it)")
            parents: set[int] = set()
            for start in range(0, len(ids), INSERT_CHUNK):
                chunk = ids[start:start + INSERT_CHUNK]
                parents |= {int(r["parent_id"]) for r in tx.all(
                    f"SELECT parent_id FROM nodes WHERE id IN ({','.join('?' * len(chunk))})", chunk)}
            tree.drop_nodes(tx, ids)  # their external_files rows go with them (ON DELETE CASCADE)
            locks.forget_paths(tx, filespace_id, paths.values())
            now = time.time_ns()
            for parent_id in parents:
                tree.touch_dir(tx, parent_id, now)
            journal.append_many(tx, filespace_id, [
                {"op": "delete", "node_id": node_id, "type": "external", "path": paths[node_id]} for node_id in ids
            ], session_id)
            unlinked += len(ids)
    tx.execute("DELETE FROM data_stores WHERE id = ?", (row["id"],))
    return {"removed": True, "unlinked": unlinked}


# -- links -------------------------------------------------------------------------------


def link(tx: Tx, filespace_id: str, links: list[dict[str, Any]], session_id: str | None) -> list[dict[str, Any]]:
    """Create linked files (one transaction: all or none), with missing parent directories.

    Each link: ``path``, ``store`` (name), ``store_id`` (as resolved before the S3
    calls: a store replaced meanwhile fails the link), ``object_id``, ``size``, ``etag``,
    ``checksum``, ``mtime`` (ns or None). Made for bulk: a few statements per batch
    (parents, existence checks and inserts in chunks), not per link.
    """
    now = time.time_ns()
    stores = {name: str(store_by_name(tx, filespace_id, name)["id"]) for name in sorted({i["store"] for i in links})}
    dirs: dict[str, int] = {}
    placed: list[tuple[int, str, dict[str, Any]]] = []
    seen: set[str] = set()
    for item in links:
        path, store = item["path"], item["store"]
        if stores[store] != item["store_id"]:
            raise NotFoundError(f"the data store {store!r} was replaced while {path} was being linked; try again",
                                reason="store_not_found", store=store)
        if path in seen:
            raise PathExistsError(f"{path} is named twice in this batch of links; nothing was linked", path=path)
        seen.add(path)
        parent_path, name = parent_and_name(path)
        parent_id = dirs.get(parent_path)
        if parent_id is None:
            found = tree.lookup(tx, filespace_id, parent_path)  # NotADirectoryError above it
            if found is not None and found["type"] != "dir":
                raise NotADirectoryFilespaceError(
                    f"{parent_path} is a file, so {path} cannot be linked under it; nothing was linked", path=path,
                )
            parent_id = int(found["id"]) if found is not None else int(namespace.mkdir(
                tx, filespace_id, parent_path, parents=True, exist_ok=True, session_id=session_id)["id"])
            dirs[parent_path] = parent_id
        placed.append((parent_id, name, item))
    # A lock on a path not created yet reserves it for its holder.
    locks.check_free_paths(tx, filespace_id, seen, session_id, "linking objects at these paths")
    # Anything already at one of the paths fails the whole batch.
    by_parent: dict[int, list[str]] = {}
    for parent_id, name, _ in placed:
        by_parent.setdefault(parent_id, []).append(name)
    taken: dict[tuple[int, str], str] = {}
    for parent_id, names in by_parent.items():
        for start in range(0, len(names), INSERT_CHUNK):
            chunk = names[start:start + INSERT_CHUNK]
            for r in tx.all(f"SELECT name, type FROM nodes WHERE parent_id = ? AND name IN "
                            f"({','.join('?' * len(chunk))})", [parent_id, *chunk]):
                taken[(parent_id, r["name"])] = r["type"]
    for parent_id, name, item in placed:
        kind = taken.get((parent_id, name))
        if kind is not None:
            what = {"dir": "a directory", "external": "a linked file"}.get(kind, "a file")
            raise PathExistsError(
                f"{item['path']} already exists ({what}); nothing was linked. Link to another path, or delete or "
                "unlink it first", path=item["path"],
            )
    # Insert the nodes (multi-row INSERT ... RETURNING, matched back by parent and name).
    rows = insert_rows(
        tx, "INSERT INTO nodes (filespace_id, parent_id, name, type, size, mtime, ctime, version) VALUES ",
        "(?, ?, ?, 'external', ?, ?, ?, 1)",
        [(filespace_id, p, n, i["size"], i.get("mtime") or now, now) for p, n, i in placed],
        " RETURNING id, parent_id, name",
    )
    ids = {(int(r["parent_id"]), r["name"]): int(r["id"]) for r in rows}
    insert_rows(
        tx, "INSERT INTO external_files (node_id, filespace_id, store_id, object_id, size, etag, checksum, "
        "object_mtime, linked) VALUES ", "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(ids[(p, n)], filespace_id, stores[i["store"]], i["object_id"], i["size"], i.get("etag"), i.get("checksum"),
          i.get("mtime"), now) for p, n, i in placed],
    )
    parents = sorted(by_parent)
    for start in range(0, len(parents), INSERT_CHUNK):
        chunk_ids = parents[start:start + INSERT_CHUNK]
        tx.execute(f"UPDATE nodes SET mtime = ? WHERE id IN ({','.join('?' * len(chunk_ids))})", [now, *chunk_ids])
    journal.append_many(tx, filespace_id, [
        {"op": "create", "node_id": ids[(p, n)], "type": "external", "path": i["path"], "size": i["size"],
         "version": 1} for p, n, i in placed], session_id)
    return [
        tree.entry_json(
            {"id": ids[(p, n)], "parent_id": p, "name": n, "type": "external", "size": i["size"],
             "mtime": i.get("mtime") or now, "ctime": now, "version": 1},
            i["path"], {"store": i["store"], "object_id": i["object_id"]})
        for p, n, i in placed
    ]


def unlink(tx: Tx, filespace_id: str, path: str, session_id: str | None) -> dict[str, Any]:
    """Remove a linked file's entry (the object in S3 is not touched)."""
    node = tree.get(tx, filespace_id, path)
    if node["type"] != "external":
        what = "a directory" if node["type"] == "dir" else "a regular file"
        raise NotLinkedError(f"{path} is {what}, not a file linked from a data store; delete it with "
                              "fs.delete / fs.delete_dir instead", path=path)
    return namespace.delete(tx, filespace_id, path, expect="file", recursive=False, session_id=session_id)


def copy_link(tx: Tx, filespace_id: str, src_node: Row, dst: str, *, overwrite: bool,
              session_id: str | None) -> dict[str, Any]:
    """Server-side copy of a linked file: a second link to the same object (no bytes move)."""
    ext = tx.one("SELECT * FROM external_files WHERE node_id = ?", (src_node["id"],))
    assert ext is not None
    parent, name = tree.parent_dir(tx, filespace_id, dst)
    existing = tree.child(tx, parent["id"], name)
    if existing is not None:
        if existing["id"] == src_node["id"]:
            return {"entry": tree.entry_json(src_node, dst, external_of(tx, src_node["id"])), "seq": None,
                    "created": False}
        if not overwrite:
            raise PathExistsError(f"{dst} already exists; pass overwrite=True to replace it", path=dst)
        if existing["type"] == "dir":
            raise IsADirectoryFilespaceError(f"{dst} is a directory and cannot be replaced by a file", path=dst)
        tree.drop_nodes(tx, [int(existing["id"])])
    now = time.time_ns()
    node = tx.one(
        "INSERT INTO nodes (filespace_id, parent_id, name, type, size, mtime, ctime, version) "
        f"VALUES (?, ?, ?, 'external', ?, ?, ?, 1) RETURNING {tree.NODE_COLUMNS}",
        (filespace_id, parent["id"], name, src_node["size"], src_node["mtime"], now),
    )
    assert node is not None
    tx.execute(
        "INSERT INTO external_files (node_id, filespace_id, store_id, object_id, size, etag, checksum, "
        "object_mtime, linked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (node["id"], filespace_id, ext["store_id"], ext["object_id"], ext["size"], ext["etag"], ext["checksum"],
         ext["object_mtime"], now),
    )
    tree.touch_dir(tx, parent["id"], now)
    seq = journal.append(tx, filespace_id, "create", dst, node_id=node["id"], type="external", size=node["size"],
                         version=1, session_id=session_id)
    return {"entry": tree.entry_json(node, dst, external_of(tx, node["id"])), "seq": seq,
            "created": existing is None}


def external_of(tx: Tx, node_id: int) -> dict[str, Any]:
    """What a client needs to read a linked file: store, object, and what identifies its version."""
    row = tx.one(
        "SELECT e.object_id, e.size, e.etag, e.checksum, e.object_mtime, e.store_id, s.name AS store "
        "FROM external_files e JOIN data_stores s ON s.id = e.store_id WHERE e.node_id = ?",
        (node_id,),
    )
    assert row is not None, node_id
    return {"store": row["store"], "store_id": row["store_id"], "object_id": row["object_id"], "size": row["size"],
            "etag": row["etag"], "checksum": row["checksum"], "object_mtime": row["object_mtime"]}


def links_by_ids(tx: Tx, filespace_id: str, ids: list[int]) -> tuple[list[Row], dict[str, Row]]:
    """The links among ``ids`` (of this filespace) and their stores, for presigning."""
    rows: list[Row] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        rows += tx.all(
            "SELECT node_id, store_id, object_id, size, etag FROM external_files "
            f"WHERE filespace_id = ? AND node_id IN ({','.join('?' * len(chunk))})",
            [filespace_id, *chunk],
        )
    store_ids = sorted({r["store_id"] for r in rows})
    stores = {r["id"]: r for r in tx.all(
        f"SELECT {STORE_COLUMNS} FROM data_stores WHERE id IN ({','.join('?' * len(store_ids))})", store_ids)
    } if store_ids else {}
    return rows, stores


def paths_of(tx: Tx, ids: list[int]) -> dict[int, str]:
    """The current paths of nodes, in one recursive query per 500 of them."""
    out: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        rows = tx.all(
            "WITH RECURSIVE up(start, id, parent_id, name, depth) AS ("
            f"SELECT id, id, parent_id, name, 0 FROM nodes WHERE id IN ({','.join('?' * len(chunk))}) "
            "UNION ALL SELECT up.start, n.id, n.parent_id, n.name, up.depth + 1 FROM nodes n "
            "JOIN up ON n.id = up.parent_id) SELECT start, name, depth, parent_id FROM up",
            chunk,
        )
        parts: dict[int, list[tuple[int, str]]] = {}
        for r in rows:
            if r["parent_id"] is not None:  # the root's name is not part of paths
                parts.setdefault(int(r["start"]), []).append((int(r["depth"]), r["name"]))
        for node_id in chunk:
            names = [name for _, name in sorted(parts.get(node_id, []), reverse=True)]
            out[node_id] = "/" + "/".join(names)
    return out


def _count(tx: Tx, store_id: str) -> int:
    row = tx.one("SELECT COUNT(*) AS n FROM external_files WHERE store_id = ?", (store_id,))
    return int(row["n"]) if row else 0


def count_external(tx: Tx, filespace_id: str, name: str) -> int:
    """How many files are linked to a data store: one query."""
    row = tx.one(
        "SELECT s.id, COUNT(e.node_id) AS n FROM data_stores s LEFT JOIN external_files e ON e.store_id = s.id "
        "WHERE s.filespace_id = ? AND s.name = ? GROUP BY s.id",
        (filespace_id, name),
    )
    if row is None:
        store_by_name(tx, filespace_id, name)  # raises, naming the existing stores
    assert row is not None
    return int(row["n"])


def list_external(tx: Tx, filespace_id: str, name: str, limit: int,
                  after: int | None) -> tuple[list[dict[str, Any]], int | None]:
    """One page of a store's linked files, by node id (keyset: an immutable, increasing id).

    Links added or removed between pages never make another one repeat or vanish; a
    moved file keeps its id, so it is listed once, at its current path.
    """
    store = store_by_name(tx, filespace_id, name)
    rows = tx.all(
        "SELECT node_id, object_id FROM external_files WHERE store_id = ? AND node_id > ? "
        "ORDER BY node_id LIMIT ?",
        (store["id"], after if after is not None else -1, limit + 1),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    paths = paths_of(tx, [int(r["node_id"]) for r in rows])
    files = [{"id": int(r["node_id"]), "path": paths[int(r["node_id"])], "object_id": r["object_id"]} for r in rows]
    return files, (files[-1]["id"] if more else None)
