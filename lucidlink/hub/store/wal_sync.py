"""Group commit for SQLite: the WAL is fsynced on a thread of its own, once for many commits.

With ``synchronous=FULL`` SQLite fsyncs the WAL inside every ``COMMIT``, on the hub's one
writer thread: a 4 KiB-file commit of 163 files spent a third of its writer time there,
and the next transaction waited for it. Here the connections run ``synchronous=NORMAL``
(a ``COMMIT`` writes its WAL frames and returns) and :class:`WalSyncer` makes them
durable before anyone is told:

* the writer numbers each commit (:meth:`WalSyncer.begin_commit` before ``COMMIT``,
  :meth:`WalSyncer.end_commit` after it); this thread fsyncs the WAL file after commits
  end, and one fsync covers every commit written before it started;
* a write is answered only once an fsync that started after its ``COMMIT`` ended has
  succeeded (:meth:`WalSyncer.durable`), so nothing is acknowledged before it is on disk;
* a read is answered only once every commit it could have seen is durable: its caller
  takes :meth:`WalSyncer.mark` after the read's transaction ended and waits for it. No
  client ever sees a change that a power loss could still take back.

Meanwhile the writer runs the next transaction, so the fsync no longer holds it up, and
concurrent writes share fsyncs. Why fsyncing the WAL file ourselves is as durable as
``FULL``: ``fsync`` flushes every byte written to the file before it, the commit frame
included, and SQLite's ``NORMAL`` still syncs the WAL before each checkpoint copies it
into the database, the database after it, and the WAL header when the WAL is reused.

The counts are this process's: a commit made by another process on the same database
(``lucidlink hub token revoke`` beside a running hub) is fsynced by that process's own
syncer before its command returns, but a read here may see it a moment before that.

A failed fsync is final (the kernel may have dropped the dirty pages it could not
write, so a later fsync would succeed without them): every waiting and later write
and read raises :class:`~lucidlink.exceptions.HubUnavailableError` until the hub is
restarted, which replays the WAL from what the disk holds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
import threading
from collections.abc import Callable
from pathlib import Path

import structlog

from lucidlink.exceptions import HubUnavailableError

log = structlog.get_logger("lucidlink.hub")


class WalSyncer:
    """Fsyncs a SQLite database's WAL after commits and tells waiters when theirs is durable.

    ``fsync`` is the call that makes a file descriptor's bytes durable (``os.fsync``;
    tests count and delay it). Counters are plain ints, read without a lock: one writer
    thread moves them, and an int read is atomic.
    """

    def __init__(self, database: Path, fsync: Callable[[int], None] = os.fsync) -> None:
        self._database = database
        self._wal = database.with_name(database.name + "-wal")
        self._fsync = fsync
        self._cond = threading.Condition()
        self._begun = 0
        """Commits started (counted before ``COMMIT``): what a read may have seen, at most."""
        self._ended = 0
        """Commits whose ``COMMIT`` returned (or failed): what the next fsync covers."""
        self._durable = 0
        """Every commit up to this one is on disk."""
        self._error: OSError | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    # -- the writer thread -------------------------------------------------------------

    def begin_commit(self) -> int:
        """Number the commit about to run (call just before ``COMMIT``, on the writer)."""
        self._begun += 1
        return self._begun

    def end_commit(self, number: int) -> None:
        """The commit ``number`` has returned or failed: the next fsync covers it."""
        with self._cond:
            self._ended = number
            self._cond.notify()

    # -- the event loop ----------------------------------------------------------------

    def start(self) -> None:
        """Start the fsync thread; waiters are woken on the running loop."""
        self._loop = asyncio.get_running_loop()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lucidhub-sqlite-fsync",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread after a last fsync of what has been committed (blocking)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def mark(self) -> int:
        """The last commit a transaction that has just ended may have seen."""
        return self._begun

    def sync_now(self) -> None:
        """Fsync the WAL and the directory now, on the calling thread (at open, before
        any waiter: the schema's first commit)."""
        self._sync_file(self._wal)
        self._sync_file(self._database.parent)
        self._durable = max(self._durable, self._ended)

    async def durable(self, number: int) -> None:
        """Return once commit ``number`` (and every one before it) is on disk."""
        if self._error is not None:
            raise self._failure()
        if self._durable >= number:
            return
        assert self._loop is not None, "WalSyncer.start() was not called"
        future: asyncio.Future[None] = self._loop.create_future()
        heapq.heappush(self._waiters, (number, next(self._order), future))
        if self._durable >= number or self._error is not None:  # moved while we queued
            self._release()
        await future

    # -- the fsync thread --------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._ended <= self._durable and not self._stopping:
                    self._cond.wait()
                if self._ended <= self._durable:
                    return
                target = self._ended
            try:
                self._sync_file(self._wal)
            except OSError as exc:
                log.critical("lucidhub.sqlite.fsync_failed", path=str(self._wal), error=str(exc))
                self._error = exc
            else:
                self._durable = target
            self._wake_loop()
            if self._error is not None:
                return

    def _sync_file(self, path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # no WAL (yet, or any more): the database holds it all
            fd = os.open(self._database, os.O_RDONLY)
        try:
            self._fsync(fd)
        finally:
            os.close(fd)

    def _wake_loop(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._release)
            except RuntimeError:  # the loop closed meanwhile: nobody is waiting
                pass

    def _release(self) -> None:
        """Resolve the waiters whose commits are durable, or fail them all (loop thread)."""
        while self._waiters and (self._error is not None or self._waiters[0][0] <= self._durable):
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                if self._error is not None:
                    future.set_exception(self._failure())
                else:
                    future.set_result(None)

    def _failure(self) -> HubUnavailableError:
        return HubUnavailableError(
            f"the metadata store could not fsync {self._wal} ({self._error}); what it "
            "acknowledged before is on disk, what it did not may be lost. Check the disk, "
            "then restart the hub")
