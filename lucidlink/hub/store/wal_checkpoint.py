"""Checkpoints of a SQLite WAL on a thread of their own, off the writer's path.

By default (``wal_autocheckpoint``) the connection whose commit takes the WAL past 1,000
pages copies the WAL into the database file and fsyncs it, inside that commit: the hub's
single writer waited for it. Writing small files, the checkpoints were about a third of
the time the writer spent in ``COMMIT`` (16,384 files in commits of 64: 1.13 s of
``COMMIT``, 0.80 s with no checkpoint at all). Here the writer only signals after each
commit; this thread runs a ``PASSIVE`` checkpoint, which never waits for the writer or a
reader and copies what no reader still needs, at most once per ``interval``. The writer
keeps its own autocheckpoint, set far higher, as the bound on the WAL's size should this
thread fall behind (a long reader, a slow disk).

Durability does not depend on checkpoints: a commit is durable once its WAL frames are
(``synchronous=FULL``); a checkpoint only moves them into the database file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger("lucidlink.hub")

WRITER_AUTOCHECKPOINT_PAGES = 16_000
"""The writer's own ``wal_autocheckpoint`` (64 MiB of 4 KiB pages): reached only when the
background checkpoints fall behind."""

CHECKPOINT_INTERVAL = 0.5
"""Seconds between two checkpoints, at least. Each copies every page the commits since the
last one dirtied, so a page several commits touch (an index's inner pages, its last
leaves) is written once per checkpoint, not once per commit: after every commit (at most
every 50 ms) a run of small-file commits copied more than it had to."""


class WalCheckpointer:
    """A thread that checkpoints the WAL after commits, at most once per ``interval`` seconds.

    ``connect`` opens the thread's own connection (in the thread); the caller closes it
    after :meth:`stop`.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection],
                 interval: float = CHECKPOINT_INTERVAL) -> None:
        self._connect = connect
        self._interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lucidhub-sqlite-checkpoint",
                                            daemon=True)
            self._thread.start()

    def poke(self) -> None:
        """A transaction committed: checkpoint soon (cheap; callable from any thread)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread, after the checkpoint it may be running."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        try:
            conn = self._connect()
        except sqlite3.Error as exc:  # the writer's autocheckpoint still bounds the WAL
            log.warning("lucidhub.sqlite.checkpoint_unavailable", error=str(exc))
            return
        while True:
            self._wake.wait()
            if self._stopping.is_set():
                return
            self._wake.clear()
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:  # the writer's autocheckpoint still bounds the WAL
                log.warning("lucidhub.sqlite.checkpoint_failed", error=str(exc))
            if self._stopping.wait(self._interval):
                return
