"""A client that kills itself (SIGKILL) at a chosen point of the write path, and its resumer.

    python tests/support/crashworker.py '{"hub_url": ..., "token": ..., "root": ..., "log": ..., ...}'

The argument is one JSON object:

* ``hub_url``, ``token``, ``root`` (the physical daemon's ``root_path``; the daemon runs
  with ``persist_files=True``), ``filespace`` (default ``small``), ``config`` (daemon
  settings), ``log`` (the path of the progress log);
* ``files``: the plan, ``[{"path", "size", "seed"}, ...]``, written in order with
  ``open(path, "wb")`` in writes of ``chunk`` bytes; a file's bytes are
  :func:`file_bytes` of its seed and size, so the test can recompute them. With
  ``prefix`` the worker first creates that directory;
* ``sync_after``: after closing the file of this index the worker calls ``sync_all()``
  (it always does once more at the end);
* ``point`` and ``nth``: the crash point (one of :data:`POINTS`) and at which hit of it
  the process kills itself. Without ``point`` nothing is hooked: the worker just
  writes the plan (usually none: then it resumes what a previous run left, by linking
  the filespace and calling ``sync_all()``).

A hooked worker also counts its staging writes that went past the page cache
(``O_DIRECT``: :mod:`lucidlink.aio.staging`), logged as ``direct <n>`` after ``hits``.

The log gets one line per event, each fsync'd before the worker goes on, so a line in
it happened before any later kill: ``closed <path> <sha256>`` once a file's ``close()``
returned, ``synced`` once a ``sync_all()`` returned, ``hits <json>`` (how often each
point was reached) and ``done`` when the worker finished without being killed.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import lucidlink
from lucidlink.aio import blocks as aio_blocks
from lucidlink.aio import file as aio_file
from lucidlink.aio import pending as aio_pending
from lucidlink.aio import writeback as aio_writeback
from lucidlink.directio import DirectWriter

POINTS = (
    "staging_write",
    "block_put",
    "record_tmp",
    "record_written",
    "before_post",
    "after_post",
    "resolve_partial",
)
"""Where the worker can kill itself, in the order a file's bytes pass them:

* ``staging_write``: an ``AsyncFile._pwrite`` returned (bytes are in the staging file);
* ``block_put``: a ``BlockIO._put`` returned (a block is in the block store);
* ``record_tmp``: the pending record's temporary file is written and fsync'd, its
  rename to ``<id>.json`` not done (``close()`` has not returned);
* ``record_written``: ``pending.write_record`` returned (the record is durable);
* ``before_post``: ``WriteBack._post`` was called, the commit POST not sent;
* ``after_post``: ``WriteBack._post`` returned: the hub committed and answered, the
  daemon has not dropped the record (the resumed retry must not land twice);
* ``resolve_partial``: ``_resolve`` deleted a pending record (its staging file and the
  batch's other records are still there).
"""


def file_bytes(seed: int, size: int) -> bytes:
    """The reproducible, random-looking content of a planned file."""
    return random.Random(seed).randbytes(size)


class Log:
    """An append-only log whose every line is on disk before :meth:`line` returns."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        """Append one line and fsync it."""
        with self._lock:
            os.write(self._fd, (text + "\n").encode())
            os.fsync(self._fd)


class CrashPoint:
    """Counts the hits of every point; kills the process at the ``nth`` hit of ``name``."""

    def __init__(self, name: str, nth: int) -> None:
        if name not in POINTS:
            raise SystemExit(f"unknown crash point {name!r}; known: {', '.join(POINTS)}")
        self.name = name
        self.nth = nth
        self.hits = dict.fromkeys(POINTS, 0)
        self.direct_writes = 0
        # Hooks run on the SDK's loop thread and on its worker threads.
        self._lock = threading.Lock()

    def hit(self, point: str) -> None:
        """Count a hit of ``point``; at the chosen one, SIGKILL this whole process."""
        with self._lock:
            self.hits[point] += 1
            fire = point == self.name and self.hits[point] == self.nth
        if fire:
            os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(30)  # never reached: the signal kills every thread first
            os._exit(99)


def install(crash: CrashPoint) -> None:
    """Hook every point by monkeypatching the SDK's classes (in this process only)."""
    AsyncFile = aio_file.AsyncFile
    BlockIO = aio_blocks.BlockIO
    WriteBack = aio_writeback.WriteBack

    orig_pwrite = AsyncFile._pwrite

    async def _pwrite(self: Any, data: Any, pos: int) -> None:
        await orig_pwrite(self, data, pos)
        crash.hit("staging_write")

    orig_put = BlockIO._put

    async def _put(self: Any, *args: Any, **kwargs: Any) -> None:
        await orig_put(self, *args, **kwargs)
        crash.hit("block_put")

    orig_write_record = aio_pending.write_record

    def write_record(journal_dir: Any, commit: Any) -> None:
        orig_write_record(journal_dir, commit)
        crash.hit("record_written")

    orig_post = WriteBack._post

    async def _post(self: Any, batch: Any, *args: Any, **kwargs: Any) -> None:
        crash.hit("before_post")
        await orig_post(self, batch, *args, **kwargs)
        crash.hit("after_post")

    class _Os:
        """``os`` for the pending-records module, with a hook before a record's rename."""

        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        @staticmethod
        def replace(src: Any, dst: Any) -> None:
            if str(dst).endswith(".json"):
                crash.hit("record_tmp")
            os.replace(src, dst)

    orig_unlink: Callable[..., None] = pathlib.Path.unlink

    def unlink(self: pathlib.Path, missing_ok: bool = False) -> None:
        orig_unlink(self, missing_ok=missing_ok)
        # Only _resolve deletes pending records (load_records deletes *.tmp only).
        if self.suffix == ".json" and self.parent.name == "pending":
            crash.hit("resolve_partial")

    orig_direct = DirectWriter._write_direct

    def _write_direct(self: Any, *args: Any) -> bool:
        went = orig_direct(self, *args)
        crash.direct_writes += went
        return went

    AsyncFile._pwrite = _pwrite  # type: ignore[method-assign]
    DirectWriter._write_direct = _write_direct  # type: ignore[method-assign,assignment]
    BlockIO._put = _put  # type: ignore[method-assign]
    aio_writeback.write_record = write_record  # type: ignore[attr-defined]  # what WriteBack calls
    WriteBack._post = _post  # type: ignore[method-assign]
    aio_pending.os = _Os()  # type: ignore[attr-defined,assignment]
    pathlib.Path.unlink = unlink  # type: ignore[method-assign]


def main() -> int:
    args = json.loads(sys.argv[1])
    crash = None
    if args.get("point"):
        crash = CrashPoint(args["point"], int(args["nth"]))
        install(crash)
    log = Log(args["log"])
    daemon = lucidlink.create_daemon(
        sandboxed=False, persist_files=True, root_path=args["root"], hub_url=args["hub_url"],
        config=args.get("config"),
    )
    daemon.start()
    workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=args["token"]))
    filespace = workspace.link_filespace(name=args.get("filespace", "small"))
    fs = filespace.fs
    if args.get("prefix"):
        fs.create_dir(args["prefix"])
    chunk = int(args.get("chunk", 64 * 1024))
    sync_after = args.get("sync_after")
    for index, spec in enumerate(args.get("files", [])):
        data = memoryview(file_bytes(spec["seed"], spec["size"]))
        # Unbuffered: every write reaches the SDK as it is (one staging write each).
        with fs.open(spec["path"], "wb", buffering=0) as f:
            for start in range(0, len(data), chunk):
                piece = data[start:start + chunk]
                assert f.write(piece) == len(piece)
        log.line(f"closed {spec['path']} {hashlib.sha256(data).hexdigest()}")
        if index == sync_after:
            filespace.sync_all()
            log.line("synced")
    filespace.sync_all()
    log.line("synced")
    daemon.stop()
    if crash is not None:
        log.line("hits " + json.dumps(crash.hits))
        log.line(f"direct {crash.direct_writes}")
    log.line("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
