"""File contents: block lists, change-based atomic commits, truncate and server-side copy.

A file version is an ordered list of fixed-size slots; slot ``i`` covers bytes
``[i*block_size, (i+1)*block_size)`` and holds at most one block ``(hash, length,
used)``. ``used`` is how many of the block's bytes are visible; from ``used`` to the
end of the slot (bounded by the file size) the file reads as zeros. A missing slot is
a hole of zeros. This lets ``truncate`` shrink or extend a file without moving bytes,
and lets two writers that touch different slots both land.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from lucidlink.exceptions import (
    BadRequestError,
    BlockMissingError,
    HubUnavailableError,
    IsADirectoryFilespaceError,
    PathExistsError,
    PathNotFoundError,
    ReadOnlyError,
)
from lucidlink.hub.core import (
    connect,
    gc,
    idempotency,
    inline_blocks,
    journal,
    locks,
    range_locks,
    tree,
    versions,
)
from lucidlink.hub.core.commit_batch import SLOTS_SQL, CommitBatch
from lucidlink.hub.identifiers import HASH_RE
from lucidlink.hub.store.base import MAX_INT64, Row, Tx

COMMIT_MODES = ("create", "exclusive", "existing")


def block_size_of(tx: Tx, filespace_id: str) -> int:
    """The filespace's block size."""
    row = tx.one("SELECT block_size FROM filespaces WHERE id = ?", (filespace_id,))
    assert row is not None
    return int(row["block_size"])


def blocks_of(tx: Tx, node_id: int, *, with_data: bool = False) -> list[dict[str, Any]]:
    """The block list of a file, by slot; ``with_data``: inline blocks carry ``"data"`` (base64)."""
    if not with_data:
        return [
            dict(r)
            for r in tx.all(
                "SELECT idx AS \"index\", hash, length, used FROM file_blocks "
                "WHERE node_id = ? ORDER BY idx",
                (node_id,),
            )
        ]
    out = []
    for r in tx.all(
        "SELECT f.idx AS \"index\", f.hash, f.length, f.used, d.data FROM file_blocks f "
        "LEFT JOIN block_data d ON d.filespace_id = f.filespace_id AND d.hash = f.hash "
        "WHERE f.node_id = ? ORDER BY f.idx",
        (node_id,),
    ):
        block = {"index": r["index"], "hash": r["hash"], "length": r["length"], "used": r["used"]}
        if r["data"] is not None:
            block["data"] = inline_blocks.encode(bytes(r["data"]))
        out.append(block)
    return out


def read_file(tx: Tx, filespace_id: str, path: str, *, with_data: bool = False) -> dict[str, Any]:
    """A file's entry, its block size and its block list (one consistent version).

    ``with_data``: blocks kept inline (:mod:`lucidlink.hub.core.inline_blocks`) carry
    their bytes as ``"data"`` (base64), so reading the file needs no other request.
    """
    node = tree.get(tx, filespace_id, path)
    return file_answer(tx, filespace_id, node, path, block_size_of(tx, filespace_id), with_data)


def file_answer(tx: Tx, filespace_id: str, node: Row, path: str, block_size: int,
                with_data: bool) -> dict[str, Any]:
    """:func:`read_file`'s answer for a node already looked up."""
    if node["type"] == "dir":
        raise IsADirectoryFilespaceError(f"{path} is a directory, not a file", path=path)
    if node["type"] == "external":  # Connect: no blocks; the client reads the object (aio/external.py)
        external = connect.external_of(tx, int(node["id"]))
        return {"entry": tree.entry_json(node, path, external), "block_size": block_size,
                "blocks": [], "external": external}
    return {
        "entry": tree.entry_json(node, path),
        "block_size": block_size,
        "blocks": blocks_of(tx, node["id"], with_data=with_data),
    }


def _validate_blocks(blocks: Any, size: int, block_size: int) -> list[tuple[int, str, int, int]]:
    if not isinstance(blocks, list):
        raise BadRequestError("'blocks' must be a list of {index, hash, length} objects")
    out: dict[int, tuple[int, str, int, int]] = {}
    for item in blocks:
        if not isinstance(item, dict):
            raise BadRequestError("each block must be an object {index, hash, length}")
        idx, digest, length = item.get("index"), item.get("hash"), item.get("length")
        if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
            raise BadRequestError(f"block index {idx!r} must be a non-negative integer")
        if not isinstance(digest, str) or not HASH_RE.fullmatch(digest):
            raise BadRequestError(f"block hash {digest!r} must be 64 lowercase hex digits (SHA-256)")
        if not isinstance(length, int) or isinstance(length, bool) or not 0 < length <= block_size:
            raise BadRequestError(f"block length {length!r} must be between 1 and {block_size}")
        if idx * block_size >= size:
            raise BadRequestError(
                f"block {idx} starts at byte {idx * block_size}, beyond the new size {size}"
            )
        if idx in out:
            raise BadRequestError(f"block index {idx} appears twice in one commit")
        used = min(length, size - idx * block_size)
        out[idx] = (idx, digest, length, used)
    return [out[i] for i in sorted(out)]


def _check_blocks_present(tx: Tx, filespace_id: str, blocks: Iterable[tuple[str, int]]) -> None:
    """Refuse a commit unless every ``(hash, length)`` it names is live, with that length.

    Live means durable in the block store (see :mod:`lucidlink.hub.core.gc`); the length
    must be the one the block had when it was uploaded, so a file's size and its
    blocks never disagree. Changes nothing.
    """
    missing: dict[str, None] = {}
    for digest, length in sorted(set(blocks)):
        row = tx.one(
            "SELECT state, length FROM blocks WHERE filespace_id = ? AND hash = ?",
            (filespace_id, digest),
        )
        if row is None or row["state"] != "live":
            missing[digest] = None
        elif int(row["length"]) != length:
            raise BadRequestError(
                f"block {digest} was uploaded with {row['length']} bytes, but this commit gives "
                f"its length as {length}; nothing was changed. Commit the block with its "
                "uploaded length",
                block=digest, length=int(row["length"]),
            )
    if missing:
        raise BlockMissingError(
            f"{len(missing)} block(s) of this commit are not in the block store; upload them "
            "and commit again",
            missing=list(missing),
        )


def _shrink(tx: Tx, filespace_id: str, node_id: int, size: int, block_size: int) -> None:
    """Drop slots past ``size`` and clip the ``used`` of the new last slot."""
    last_slot = (size - 1) // block_size if size > 0 else -1
    gc.release_blocks(tx, filespace_id, node_id, after=last_slot)
    tx.execute("DELETE FROM file_blocks WHERE node_id = ? AND idx > ?", (node_id, last_slot))
    if size > 0:
        tx.execute(
            "UPDATE file_blocks SET used = ? WHERE node_id = ? AND idx = ? AND used > ?",
            (size - last_slot * block_size, node_id, last_slot, size - last_slot * block_size),
        )


def check_change(tx: Tx, filespace_id: str, change: dict[str, Any],
                 block_size: int | None = None) -> tuple[Any, ...]:
    """Validate one change of :func:`commit` (changes nothing); its fields, with their defaults,
    and the filespace's block size.

    Also run before a retried change is answered from :mod:`lucidlink.hub.core.idempotency`:
    a malformed request is refused even when its change id was seen before.
    """
    path = change.get("path")
    size = change.get("size")
    mode = change.get("mode", "create")
    if not isinstance(path, str):
        raise BadRequestError("'path' must be a string")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_INT64:
        raise BadRequestError(f"'size' must be an integer from 0 to {MAX_INT64}, not {size!r}")
    if mode not in COMMIT_MODES:
        raise BadRequestError(f"'mode' must be one of {', '.join(COMMIT_MODES)}, not {mode!r}")
    mtime = change.get("mtime")
    if mtime is not None and (
        not isinstance(mtime, int) or isinstance(mtime, bool) or not -MAX_INT64 <= mtime <= MAX_INT64
    ):
        raise BadRequestError("'mtime' must be an integer of nanoseconds since the epoch")
    base_version = change.get("base_version")
    if base_version is not None and (
        not isinstance(base_version, int) or isinstance(base_version, bool) or not 0 <= base_version <= MAX_INT64
    ):
        raise BadRequestError(f"'base_version' must be a non-negative integer, not {base_version!r}")
    replace = change.get("replace", False)
    if not isinstance(replace, bool):
        raise BadRequestError(f"'replace' must be a boolean, not {replace!r}")
    truncate_to = change.get("truncate_to")
    if truncate_to is not None and (
        not isinstance(truncate_to, int) or isinstance(truncate_to, bool) or not 0 <= truncate_to <= MAX_INT64
    ):
        raise BadRequestError(f"'truncate_to' must be an integer from 0 to {MAX_INT64}, not {truncate_to!r}")
    if block_size is None:
        block_size = block_size_of(tx, filespace_id)
    blocks = _validate_blocks(change.get("blocks", []), size, block_size)

    lock_id = change.get("lock_id")
    if lock_id is not None and not isinstance(lock_id, str):
        raise BadRequestError("'lock_id' must be a string")
    return path, size, mode, mtime, base_version, replace, truncate_to, blocks, lock_id, block_size


def commit(tx: Tx, filespace_id: str, change: dict[str, Any], session_id: str | None,
           batch: CommitBatch | None = None) -> dict[str, Any]:
    """Apply one change to a file atomically and bump its version.

    ``change``: ``path``; ``size`` (new size); ``blocks`` (the slots this change
    replaces); ``replace`` (true: the file's old slots are all dropped first, as for a
    file opened with ``w``); ``truncate_to`` (the file was cut to this size before the
    new blocks were written, so slots past it are dropped first); ``mode`` (``create``
    makes the file if missing, ``exclusive`` requires that it is missing, ``existing``
    that it exists); ``base_version`` (the version a partial change was built on: when
    others committed since, the change is merged or refused by
    :mod:`lucidlink.hub.core.versions`' rule); ``mtime`` (ns, optional).

    ``batch``: the lookups and deferred writes shared by the commits of one transaction
    (:func:`commit_many`); the result's ``seq`` is then filled in by ``batch.finish``.
    """
    path, size, mode, mtime, base_version, replace, truncate_to, blocks, lock_id, block_size = check_change(
        tx, filespace_id, change, None if batch is None else batch.block_size)
    if batch is None:
        parent, name = tree.parent_dir(tx, filespace_id, path)
    else:
        parent, name = batch.parent_dir(tx, path)
    if batch is None or batch.locks_possible or lock_id is not None:
        locks.check_commit(tx, filespace_id, path, session_id, lock_id)
    if batch is None:
        node = tree.child(tx, parent["id"], name)
    else:
        node = batch.child(tx, path.rpartition("/")[0], parent["id"], name)
    now = time.time_ns()
    created = node is None
    if node is None:
        if mode == "existing":
            raise PathNotFoundError(f"{path} does not exist; create it first", path=path)
        if batch is None:
            node = tree.insert_node(tx, filespace_id, parent["id"], name, "file", now)
            tree.touch_dir(tx, parent["id"], now)
        else:  # the new node has its final size and mtime at once (below: no update)
            node = batch.take_created(int(parent["id"]), name) or tree.insert_node(
                tx, filespace_id, parent["id"], name, "file", now, size=size, mtime=mtime)
            batch.touch_dir(parent["id"], now)
    elif node["type"] == "dir":
        raise IsADirectoryFilespaceError(f"{path} is a directory; it cannot be written", path=path)
    elif node["type"] == "external":  # Connect
        raise ReadOnlyError(
            f"{path} is linked from a Connect data store and is read-only: it cannot be written or truncated. "
            "Write to another path, or unlink it first", path=path,
        )
    elif node["type"] != "file":
        raise IsADirectoryFilespaceError(f"{path} is read-only ({node['type']})", path=path)
    elif mode == "exclusive":
        raise PathExistsError(f"{path} already exists (opened with 'x')", path=path)
    if batch is not None and not created:
        batch.flush(tx)  # the rows of files created earlier in the batch, before rules read them
    old_size = 0 if created else int(node["size"])
    if base_version is not None and not created and base_version != node["version"]:
        # Built on an older version: merge at block granularity, or refuse.
        start = versions.base_size(tx, int(node["id"]), base_version)
        ours = versions.footprint(block_size=block_size, slots=[b[0] for b in blocks], replace=replace,
                                  old_size=old_size if start is None else start, new_size=size,
                                  truncate_to=truncate_to)
        versions.check_merge(tx, path, int(node["id"]), int(node["version"]), base_version, ours)
        if not ours.resized:
            size = old_size  # the other writer's size stands; this change kept the one it saw
    if batch is None:
        _check_blocks_present(tx, filespace_id, [(b[1], b[2]) for b in blocks])
    else:
        batch.check_present((b[1], b[2]) for b in blocks)
    node_id = int(node["id"])
    # Blocks this change unreferences start their GC grace period now (gc.py). A file
    # created by this change has no slots yet: nothing to release, drop or clip.
    if replace and not created:
        gc.release_blocks(tx, filespace_id, node_id)
        tx.execute("DELETE FROM file_blocks WHERE node_id = ?", (node_id,))
    elif truncate_to is not None and not created:
        _shrink(tx, filespace_id, node_id, truncate_to, block_size)
    if not created:
        _shrink(tx, filespace_id, node_id, size, block_size)
    slots = [(node_id, i, filespace_id, h, n, u) for i, h, n, u in blocks]
    if blocks and not replace and not created:
        gc.release_blocks(tx, filespace_id, node_id, [b[0] for b in blocks])
    if slots and (batch is None or not created):
        tx.executemany(SLOTS_SQL, slots)
    version = (0 if created else int(node["version"])) + 1
    changed = versions.footprint(
        block_size=block_size, slots=[b[0] for b in blocks], replace=replace or created,
        old_size=old_size, new_size=size, truncate_to=truncate_to)
    if batch is None or batch.ranges_possible:
        range_locks.check_change(tx, filespace_id, path, session_id, changed.ranges, block_size,
                                 f"changing {path}")
    if batch is not None and created:  # a new file's rows: written in bulk with the batch's
        batch.new_file(slots, versions.record_row(node_id, version, changed, size))
    else:
        versions.record(tx, node_id, version, changed, size)
    new_mtime = mtime if mtime is not None else now
    if batch is None or not created:
        tx.execute("UPDATE nodes SET size = ?, mtime = ?, version = ? WHERE id = ?",
                   (size, new_mtime, version, node_id))
    op = "create" if created else "modify"
    if batch is None:
        seq: int | None = journal.append(tx, filespace_id, op, path, node_id=node_id, type="file",
                                         size=size, version=version, session_id=session_id)
        updated = tx.one(f"SELECT {tree.NODE_COLUMNS} FROM nodes WHERE id = ?", (node_id,))
        assert updated is not None
        return {"entry": tree.entry_json(updated, path), "seq": seq, "created": created}
    row = {"id": node_id, "parent_id": parent["id"], "name": name, "type": "file", "size": size,
           "mtime": node["mtime"] if created else new_mtime, "ctime": node["ctime"], "version": version}
    batch.record_child(parent["id"], name, row)
    result: dict[str, Any] = {"entry": tree.entry_json(row, path), "seq": None, "created": created}
    batch.journal(result, op=op, node_id=node_id, type="file", path=path, size=size, version=version)
    return result


def commit_many(
    tx: Tx, filespace_id: str, changes: list[dict[str, Any]], session_id: str | None,
    inline: dict[str, bytes] | None = None,
) -> list[dict[str, Any]]:
    """Apply several commits in this one transaction: all land or none do.

    A change that names a ``change_id`` already applied is answered with its first
    result, never applied twice (:mod:`lucidlink.hub.core.idempotency`). Paths must be
    canonical already. ``inline``: verified bytes of small blocks the changes carried
    (:func:`lucidlink.hub.core.inline_blocks.decode`), stored first, in this transaction.
    The commits share their lookups and bulk writes (:class:`CommitBatch`).
    """
    if inline:
        inline_blocks.store(tx, filespace_id, inline)  # live now, or it raised
    batch = CommitBatch(tx, filespace_id, changes, block_size_of(tx, filespace_id),
                        live={h: len(data) for h, data in (inline or {}).items()})
    ids = [idempotency.change_id_of(change) for change in changes]
    done_before = batch.applied(tx, [i for i in ids if i])
    batch.create_files(tx, changes, {n for n, i in enumerate(ids) if i and i in done_before})
    results: list[dict[str, Any]] = []
    repeats: list[int] = []
    for change, change_id in zip(changes, ids, strict=True):
        done = done_before.get(change_id) if change_id else None
        if done is not None:
            check_change(tx, filespace_id, change, batch.block_size)  # a replay answers only a well-formed request
            if "replayed" not in done:  # applied earlier in this very batch
                repeats.append(len(results))
        else:
            done = commit(tx, filespace_id, change, session_id, batch)  # validates it
            if change_id:
                batch.remember(change_id, done)
                done_before[change_id] = done
        results.append(done)
    batch.finish(tx, session_id)
    for i in repeats:
        results[i] = dict(results[i], replayed=True)
    return results


def truncate(tx: Tx, filespace_id: str, path: str, size: int, session_id: str | None) -> dict[str, Any]:
    """Shrink or extend a file to ``size`` without moving any bytes."""
    locks.check_free(tx, filespace_id, path, session_id, f"truncating {path}")
    return commit(tx, filespace_id, {"path": path, "size": size, "mode": "existing"}, session_id)


def copy(
    tx: Tx, filespace_id: str, src: str, dst: str, *, overwrite: bool, session_id: str | None
) -> dict[str, Any]:
    """Server-side copy of a file: the new file references the same blocks."""
    info = read_file(tx, filespace_id, src)
    locks.check_free(tx, filespace_id, dst, session_id, f"copying {src} onto {dst}")
    if "external" in info:  # Connect: the copy is another link to the same object
        src_node = tree.get(tx, filespace_id, src)
        return connect.copy_link(tx, filespace_id, src_node, dst, overwrite=overwrite, session_id=session_id)
    parent, name = tree.parent_dir(tx, filespace_id, dst)
    existing = tree.child(tx, parent["id"], name)
    if existing is not None and not overwrite:
        raise PathExistsError(f"{dst} already exists; pass overwrite=True to replace it", path=dst)
    change = {
        "path": dst,
        "size": info["entry"]["size"],
        "blocks": [{"index": b["index"], "hash": b["hash"], "length": b["length"]} for b in info["blocks"]],
        "replace": True,
        "mode": "create",
    }
    result = commit(tx, filespace_id, change, session_id)
    # Carry the visible lengths across exactly (holes inside blocks stay holes).
    for b in info["blocks"]:
        tx.execute(
            "UPDATE file_blocks SET used = ? WHERE node_id = ? AND idx = ?",
            (b["used"], result["entry"]["id"], b["index"]),
        )
    return result


def known_blocks(tx: Tx, filespace_id: str, hashes: list[str]) -> set[str]:
    """Which of ``hashes`` the block store holds durably (``live``) for this filespace.

    A block still being uploaded (``uploading``) is not known: its bytes may not be on
    disk yet. Refreshes the known blocks' ``last_seen`` (in a write transaction): a
    client told a block is present commits it without uploading, so the GC must not
    mark it meanwhile.
    """
    found = set()
    for digest in hashes:
        row = tx.one(
            "SELECT state FROM blocks WHERE filespace_id = ? AND hash = ?", (filespace_id, digest)
        )
        if row is not None and row["state"] == "live":
            found.add(digest)
    if found:
        now = time.time_ns()
        tx.executemany(
            "UPDATE blocks SET last_seen = ? WHERE filespace_id = ? AND hash = ? AND state = 'live'",
            [(now, filespace_id, digest) for digest in sorted(found)],
        )
    return found


def statistics(tx: Tx, filespace_id: str) -> dict[str, Any]:
    """Counts and byte totals of a filespace."""
    counts = {
        r["type"]: (int(r["n"]), int(r["total"] or 0))
        for r in tx.all(
            "SELECT type, COUNT(*) AS n, SUM(size) AS total FROM nodes "
            "WHERE filespace_id = ? GROUP BY type",
            (filespace_id,),
        )
    }
    storage = tx.one(
        "SELECT COUNT(*) AS n, SUM(length) AS total FROM blocks b WHERE b.filespace_id = ? "
        "AND b.state = 'live' AND EXISTS (SELECT 1 FROM file_blocks f "
        "WHERE f.filespace_id = b.filespace_id AND f.hash = b.hash)",
        (filespace_id,),
    )
    files, data = counts.get("file", (0, 0))
    dirs, _ = counts.get("dir", (0, 0))
    external, external_size = counts.get("external", (0, 0))
    links, _ = counts.get("link", (0, 0))
    dirs = max(dirs - 1, 0)  # the root is not counted
    return {
        "file_count": files,
        "directory_count": dirs,
        "symlink_count": links,
        "entries": files + dirs + external + links,
        "entries_size": data + external_size,
        "data_size": data,
        "storage_size": int(storage["total"] or 0) if storage else 0,
        "block_count": int(storage["n"] or 0) if storage else 0,
        "external_files_size": external_size,
        "external_files_count": external,
    }


def node_row(tx: Tx, node_id: int) -> Row | None:
    """A node by id."""
    return tx.one(f"SELECT {tree.NODE_COLUMNS} FROM nodes WHERE id = ?", (node_id,))


# -- uploads ---------------------------------------------------------------------------
# An upload is two transactions around a durable write (see lucidlink/hub/core/gc.py):
# begin_upload, LocalBlockStore.write_verified, finish_upload; abort_upload on failure.


def _gc_in_progress(digest: str) -> HubUnavailableError:
    return HubUnavailableError(
        f"block {digest[:12]}... is being garbage-collected; retry the upload in a moment"
    )


def _block_state(tx: Tx, filespace_id: str, digest: str) -> str | None:
    row = tx.one(
        "SELECT state FROM blocks WHERE filespace_id = ? AND hash = ?", (filespace_id, digest)
    )
    return None if row is None else str(row["state"])


def begin_upload(tx: Tx, filespace_id: str, digest: str, length: int) -> None:
    """Announce an upload before its bytes are written: the row says ``uploading``, not present.

    A ``live`` block only has its ``last_seen`` refreshed; a ``deleting`` one refuses
    (HTTP 503, retry). The ``uploading`` row keeps the GC from forgetting the block
    while the bytes are written, yet no commit and no "present" answer counts on it.
    """
    state = _block_state(tx, filespace_id, digest)
    now = time.time_ns()
    if state is None:
        tx.execute(
            "INSERT INTO blocks (filespace_id, hash, length, state, last_seen) "
            "VALUES (?, ?, ?, 'uploading', ?)",
            (filespace_id, digest, length, now),
        )
    elif state == "deleting":
        raise _gc_in_progress(digest)
    else:
        tx.execute(
            "UPDATE blocks SET last_seen = ? WHERE filespace_id = ? AND hash = ?",
            (now, filespace_id, digest),
        )


def finish_upload(tx: Tx, filespace_id: str, digest: str, length: int | None = None) -> None:
    """Make a block ``live`` once its bytes are durable; refuse (503, retry) if the GC took it.

    The row is gone or ``deleting`` only when the upload stalled for longer than the
    GC's grace period after :func:`begin_upload`; the GC may then have deleted the
    bytes just written, so the block must not become live: the client uploads again.
    ``length``: the verified length, for an upload begun with none known (0).
    """
    if _block_state(tx, filespace_id, digest) in (None, "deleting"):
        raise _gc_in_progress(digest)
    tx.execute(
        "UPDATE blocks SET state = 'live', last_seen = ?, length = COALESCE(?, length) "
        "WHERE filespace_id = ? AND hash = ?",
        (time.time_ns(), length, filespace_id, digest),
    )


# -- uploads straight to the block store (S3) ---------------------------------------------
# The client PUTs to a presigned URL the hub never sees used: begin_direct_uploads records
# each block as uploading (length 0: unknown) when its URL is issued, so the GC's grace
# covers the upload; a commit naming it has the hub verify the object (outside any
# transaction: lucidlink/hub/uploads.py) and finish_direct_uploads make it live.


def begin_direct_uploads(tx: Tx, filespace_id: str, hashes: list[str]) -> set[str]:
    """The ``live`` blocks of ``hashes`` (as :func:`known_blocks`); the others become ``uploading``.

    Raises 503 (retry) if one of them is being garbage-collected.
    """
    known = known_blocks(tx, filespace_id, hashes)
    for digest in dict.fromkeys(hashes):
        if digest not in known:
            begin_upload(tx, filespace_id, digest, 0)
    return known


def uploading_blocks(tx: Tx, filespace_id: str, hashes: list[str]) -> list[str]:
    """Which of ``hashes`` are ``uploading`` (URL issued, bytes not yet checked)."""
    return [d for d in dict.fromkeys(hashes) if _block_state(tx, filespace_id, d) == "uploading"]


def finish_direct_uploads(tx: Tx, filespace_id: str, verified: list[tuple[str, int]]) -> None:
    """Make ``live`` the uploading blocks the hub found in the store with these lengths.

    A block the GC marked meanwhile stays as it is: the commit then answers
    ``block_missing`` and the client uploads it again.
    """
    for digest, length in verified:
        if _block_state(tx, filespace_id, digest) == "uploading":
            finish_upload(tx, filespace_id, digest, length)


def abort_upload(tx: Tx, filespace_id: str, digest: str) -> None:
    """Forget an upload whose write failed: the block stays unknown (a live one stays live)."""
    tx.execute(
        "DELETE FROM blocks WHERE filespace_id = ? AND hash = ? AND state = 'uploading'",
        (filespace_id, digest),
    )
