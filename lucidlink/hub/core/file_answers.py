"""Many files in one answer: a file with the ones that follow it (``prefetch``), or a list.

Both read in one transaction, so every answer is of the same moment, and carry the bytes
of inline blocks (:mod:`lucidlink.hub.core.inline_blocks`): a client reading through a
directory of small files needs one request for many of them.
"""

from __future__ import annotations

from typing import Any

from lucidlink.exceptions import InvalidPathError, LucidLinkError
from lucidlink.hub.core import files, tree
from lucidlink.hub.store.base import Tx
from lucidlink.paths import normalize_path

MAX_PREFETCH = 256
"""At most this many following files in one ``GET .../file?prefetch=N`` answer."""
PREFETCH_INLINE_BYTES = 4 * 1024 * 1024
"""A prefetch answer stops adding files once its inline bytes pass this."""


def read_file_prefetch(tx: Tx, filespace_id: str, path: str, prefetch: int) -> dict[str, Any]:
    """:func:`files.read_file` with inline bytes, plus ``"prefetched"``: the answers of up to ``prefetch``
    regular files that follow ``path`` in its directory, in name (code-point) order.

    Directories, links and linked (Connect) files are skipped; the list stops once the
    inline bytes of the answer pass :data:`PREFETCH_INLINE_BYTES`. One read transaction:
    every answer is of the same moment.
    """
    node = tree.get(tx, filespace_id, path)
    block_size = files.block_size_of(tx, filespace_id)
    answer = files.file_answer(tx, filespace_id, node, path, block_size, True)
    prefetched: list[dict[str, Any]] = []
    if prefetch > 0 and node["parent_id"] is not None:
        budget = PREFETCH_INLINE_BYTES - _inline_size(answer)
        parent = path.rsplit("/", 1)[0] or "/"
        rows = tx.all(
            f"SELECT {tree.NODE_COLUMNS} FROM nodes WHERE parent_id = ? AND name > ? AND type = 'file' "
            "ORDER BY name LIMIT ?",
            (node["parent_id"], node["name"], prefetch),
        )
        for row in rows:
            if budget < 0:
                break
            child = parent.rstrip("/") + "/" + str(row["name"])
            one = files.file_answer(tx, filespace_id, row, child, block_size, True)
            budget -= _inline_size(one)
            prefetched.append(one)
    answer["prefetched"] = prefetched
    return answer


def _inline_size(answer: dict[str, Any]) -> int:
    return sum(int(b["length"]) for b in answer["blocks"] if "data" in b)


def read_files(tx: Tx, filespace_id: str, paths: list[str]) -> list[dict[str, Any]]:
    """:func:`files.read_file` (with inline bytes) of each of ``paths``, in order, in one read
    transaction, each as ``{"path": canonical path, "file": answer}``.

    A path that cannot be read (missing, a directory, not a valid path) answers
    ``{"path": as given, "error": {"code", "message"}}`` in place.
    """
    block_size = files.block_size_of(tx, filespace_id)
    out: list[dict[str, Any]] = []
    for given in paths:
        path = given
        try:
            if not given.startswith("/"):
                raise InvalidPathError(
                    f"{given[:200]!r} is not an absolute path: filespace paths start with '/' (the root)",
                    path=given[:200])
            path = normalize_path(given)
            node = tree.get(tx, filespace_id, path)
            out.append({"path": path,
                        "file": files.file_answer(tx, filespace_id, node, path, block_size, True)})
        except LucidLinkError as err:
            out.append({"path": path, "error": {"code": err.code, "message": err.message}})
    return out
