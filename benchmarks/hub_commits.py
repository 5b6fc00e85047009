"""The hub's metadata store committing small files, as it grows.

Run by hand (not in CI)::

    .venv/bin/python benchmarks/hub_commits.py [--files 16384] [--batch 64] [--ids sorted,random]

Starts an :class:`~lucidlink.hub.embedded.EmbeddedHub` (SQLite, local blocks) in a
temporary data dir for each kind of commit id and commits ``--files`` new 4 KiB files,
``--batch`` per transaction, each carrying its bytes inline (``"data"``, base64), through
:func:`lucidlink.hub.core.files.commit_many` on the hub's store: the transaction a
``POST .../commits`` runs, without HTTP, so what is measured is the store alone. Fresh
random bytes for every file. ``sorted`` ids are the SDK's (:func:`lucidlink.aio.writeback.
new_commit_id`: creation time, then 64 random bits); ``random`` ids are uuid4-like.

Prints, per window of 2,048 files, the median and mean microseconds per file (the mean
carries the occasional checkpoint), then files/s over the whole run and the sizes of the
database and its WAL. No thresholds: it measures.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

from lucidlink.aio.pending import new_commit_id
from lucidlink.hub.core import files, inline_blocks, namespace
from lucidlink.hub.embedded import EmbeddedHub

FILE_SIZE = 4096
WINDOW = 2048


def _changes(first: int, count: int, ids: str) -> list[dict[str, Any]]:
    out = []
    for n in range(first, first + count):
        data = os.urandom(FILE_SIZE)
        out.append({
            "path": f"/d/f{n:07d}", "size": FILE_SIZE, "mode": "create", "replace": True,
            "mtime": time.time_ns(),
            "change_id": new_commit_id() if ids == "sorted" else os.urandom(16).hex(),
            "blocks": [{"index": 0, "hash": hashlib.sha256(data).hexdigest(), "length": FILE_SIZE,
                        "data": base64.b64encode(data).decode("ascii")}],
        })
    return out


def run(files_total: int, batch: int, ids: str) -> None:
    """Commit ``files_total`` small files on a fresh hub and print the figures."""
    with tempfile.TemporaryDirectory() as root, EmbeddedHub(root, gc_interval_seconds=3600) as hub:
        hub.init("bench", ["data"], admin=True)
        fs_id = hub.write(lambda tx: tx.one("SELECT id FROM filespaces")["id"])
        hub.write(namespace.mkdir, fs_id, "/d", parents=True, exist_ok=True, session_id=None)
        limit = hub.settings.inline_block_max
        print(f"\n{ids} commit ids, {files_total} files of {FILE_SIZE} bytes, "
              f"{batch} per transaction")
        window: list[float] = []
        started = time.perf_counter()
        done = 0
        while done < files_total:
            changes = _changes(done, min(batch, files_total - done), ids)
            t0 = time.perf_counter()
            inline = inline_blocks.decode(changes, limit)
            hub.write(files.commit_many, fs_id, changes, None, inline=inline)
            window.append((time.perf_counter() - t0) / len(changes))
            done += len(changes)
            if done % WINDOW == 0 or done == files_total:
                print(f"  {done:7d} files: {statistics.median(window) * 1e6:6.1f} us/file median, "
                      f"{statistics.fmean(window) * 1e6:6.1f} mean")
                window = []
        elapsed = time.perf_counter() - started
        sizes = {p.name: p.stat().st_size for p in Path(root).glob("metadata.sqlite3*")}
        print(f"  {files_total / elapsed:,.0f} files/s; " + ", ".join(
            f"{name} {size / 2**20:.1f} MiB" for name, size in sorted(sizes.items())))


def main() -> None:
    """Parse the arguments and run one hub per kind of id."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=16384, help="files to commit (default 16384)")
    parser.add_argument("--batch", type=int, default=64, help="files per transaction (default 64)")
    parser.add_argument("--ids", default="sorted,random",
                        help="kinds of commit id, comma-separated: sorted, random")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    for ids in args.ids.split(","):
        if ids not in ("sorted", "random"):
            parser.error(f"--ids: {ids!r} is neither 'sorted' nor 'random'")
        run(args.files, args.batch, ids)


if __name__ == "__main__":
    main()
