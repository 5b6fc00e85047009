"""Write-back: closed files' changes, journalled on disk and committed in the background.

Invariants:

* A closed file's change (a :class:`PendingCommit`) leaves the queue only when the hub
  has acknowledged its commit, or refused it for good. Transient failures (the hub
  unreachable, reset, timed out, restarting; a 5xx) keep it queued: the flusher
  retries with capped exponential backoff and jitter for as long as the daemon runs.
* A refusal (lock conflict, lost lease, read-only token, invalid path, file deleted
  under it, version conflict) drops the change and its staging bytes, logs it, and is
  reported once, by the next :meth:`WriteBack.flush` (``sync_all``, a locked
  ``close``, ``unlink``).
* Every commit carries its record id as ``change_id``: the hub answers a retried
  commit whose first attempt landed with the first result, so nothing lands twice.
* With ``persist_files`` the record is written to ``<state>/pending/`` (fsync'd, after
  the staging bytes it names were fsync'd by the file that closed) before it is
  queued, and removed only after the acknowledgement or the refusal; a daemon killed
  at any moment resumes it on its next start (:mod:`lucidlink.aio.pending`).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
import pybase64

from lucidlink._log import get_logger
from lucidlink.aio.commitparts import (
    UNSTATED_REQUEST_BYTES,
    all_left,
    encode_request,
    next_part,
    related,
    request_bytes,
)
from lucidlink.aio.pending import PendingCommit, record_path, write_record
from lucidlink.aio.retry import backoff_delay, is_transient
from lucidlink.exceptions import BlockMissingError, FilespaceError, LucidLinkError, SyncTimeoutError

if TYPE_CHECKING:
    from lucidlink.aio.blocks import BlockIO
    from lucidlink.aio.transport import Transport

log = get_logger("lucidlink")
_IN_FLIGHT = 3
"""Commit requests in flight at once: the hub parses the next ones while it applies one."""
_EARLY = 64
"""Queued changes that start a commit without waiting out ``fs.flush.delay_ms``: that many
already share one request, and the hub works while the program writes the next ones."""
_HANDOFF_WAIT = 0.05
"""Seconds a caller queueing small files waits at most for the loop to take its changes."""
_UPLOAD_GROUP_BYTES = 64 * 1024 * 1024
_INLINE_MAX = 64 * 1024 * 1024
"""Bytes of small files waiting in memory for their commit, at most (then staging files)."""
_BACKOFF_CAP = 5.0
"""Longest wait between two attempts of a commit while the hub is unreachable."""


class WriteBack:
    """The queue of pending commits of one linked filespace, and its flusher task."""

    def __init__(self, transport: Transport, blocks: BlockIO, filespace_id: str,
                 session: Callable[[], str | None], journal_dir: Path, *,
                 durable: bool, delay: float, sync_timeout: float) -> None:
        self._transport = transport
        self._blocks = blocks
        self._filespace_id = filespace_id
        self._session = session
        self._dir = journal_dir
        self._durable = durable
        self._delay = delay
        self._sync_timeout = sync_timeout
        self._queue: dict[str, PendingCommit] = {}
        """Every change not yet acknowledged or refused, by id, in order, in flight included
        (a dict: a resolved batch leaves it, and a flush checks it, without a scan)."""
        self._wake = asyncio.Event()
        self._hurry = asyncio.Event()
        self._grown = asyncio.Event()
        self._grow_at: int | None = None
        """Queue length at which ``_grown`` is set (while the flusher waits for company)."""
        self._resolved = asyncio.Condition()
        self._urgent = False
        self._flushing = 0
        """How many :meth:`flush` calls wait: while any does, nothing queued waits for company."""
        self._task: asyncio.Task[None] | None = None
        self._failures: list[tuple[PendingCommit, LucidLinkError]] = []
        self._attempt = 0
        self._inline_bytes = 0
        self._inline_limit: int | None = None
        self._request_bytes = UNSTATED_REQUEST_BYTES
        self._paths: Counter[str] = Counter()
        """How many queued changes each path has (what :meth:`affects` looks up)."""
        # Changes queued from other threads (enqueue_nowait), until the loop takes them.
        self._inbox: list[PendingCommit] = []
        self._inbox_bytes = 0
        self._inbox_lock = threading.Lock()
        self._taken = threading.Event()
        """Set when the loop has taken the inbox; cleared when a change enters an empty one."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._closed = False
        self._stopped = False

    # -- queue -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the flusher on the running loop."""
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        self._task = asyncio.create_task(self._run(), name=f"lucidlink-flusher-{self._filespace_id[:8]}")

    def close_inbox(self) -> None:
        """From now on :meth:`enqueue_nowait` queues nothing (it returns ``False``); what
        it queued before is in the queue at the next :meth:`flush`."""
        with self._inbox_lock:
            self._closed = True

    async def stop(self) -> None:
        """Stop the flusher (pending records stay on disk). Later :meth:`enqueue_nowait`
        calls queue nothing, and :meth:`enqueue` raises."""
        self.close_inbox()
        self._stopped = True
        self._take_inbox()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    @property
    def sync_timeout(self) -> float:
        """``fs.sync.timeout``: how long ``flush`` (and ``sync_all``) waits, in seconds."""
        return self._sync_timeout

    @property
    def pending_paths(self) -> set[str]:
        """Paths with a change not committed yet."""
        return set(self._paths)

    def affects(self, path: str, scope: str) -> bool:
        """Whether an operation on ``path`` must wait for pending commits.

        A pending file matters when it is the path itself or stands where one of its
        ancestor directories would be (the hub must learn of it before it can answer
        "not a directory"), and, by ``scope``, when it is an entry of the path
        (``children``) or anywhere under it (``subtree``); ``all`` waits for any.
        """
        if not self._queue:
            return False
        if scope == "all":
            return True
        if path in self._paths:
            return True
        if scope == "exact":  # the path, or a pending file where one of its directories would be
            parent = path.rpartition("/")[0]
            while parent:
                if parent in self._paths:
                    return True
                parent = parent.rpartition("/")[0]
            return False
        prefix = path.rstrip("/") + "/"
        for p in self._paths:
            if p == path or path.startswith(p + "/"):
                return True
            if scope == "children" and p.startswith(prefix) and "/" not in p[len(prefix):]:
                return True
            if scope == "subtree" and p.startswith(prefix):
                return True
        return False

    def set_inline_limit(self, limit: int) -> None:
        """The hub's ``inline_block_max``: blocks up to it are committed with their bytes
        instead of being uploaded (0: never). Unset, the flusher asks the hub once."""
        self._inline_limit = max(0, int(limit))

    async def _limit(self) -> int:
        if self._inline_limit is None:
            try:
                body = await self._transport.call("GET", f"/v1/filespaces/{self._filespace_id}",
                                                  idempotent=True)
            except LucidLinkError as err:
                if is_transient(err):
                    raise
                body = {}  # refused (the filespace gone?): the commits will say why
            # A hub that does not say keeps nothing inline: every block is uploaded.
            self._inline_limit = max(0, int(body.get("inline_block_max") or 0))
            self._request_bytes = request_bytes(body.get("max_request_bytes"))
        return self._inline_limit

    def inline_room(self, size: int) -> bool:
        """Whether a change of ``size`` bytes may wait in memory (bounded in all)."""
        return not self._durable and self._inline_bytes + size <= _INLINE_MAX

    async def enqueue(self, commit: PendingCommit) -> None:
        """Journal a change on disk (when the daemon persists its files), then queue it.

        Once the queue is stopped (the filespace unlinked) nothing here would commit
        the change: a persisting daemon keeps its record for the next daemon on this
        root to resume; any other raises ``FilespaceError``, so that the ``close`` does
        not say the change is queued.
        """
        if self._stopped and not self._durable:
            raise FilespaceError(
                f"{commit.path} was closed after its filespace was unlinked, so it is not "
                "committed; link the filespace again and write it again", path=commit.path)
        if self._durable:
            await anyio.to_thread.run_sync(write_record, self._dir, commit)
            if self._stopped:
                return
        self._take_inbox()  # in order after the changes other threads queued before
        self._accept(commit)

    def enqueue_nowait(self, commit: PendingCommit) -> bool:
        """Queue a change held in memory (``commit.inline``) from any thread, without
        waiting for the event loop.

        ``False`` (nothing queued) when the daemon journals its changes (a change must be
        on disk before its file's close returns: use :meth:`enqueue`), when the queue's
        memory for small files is full, or once the queue is stopped. Otherwise the
        change is queued before anything scheduled on the loop after this call runs (on
        the loop's own thread: at once), so the calling thread's next call sees it.
        """
        if self._durable or commit.inline is None or self._loop is None:
            return False
        with self._inbox_lock:
            size = len(commit.inline)
            if self._closed or self._inline_bytes + self._inbox_bytes + size > _INLINE_MAX:
                return False
            if threading.get_ident() == self._loop_thread:
                self._take_inbox_locked()
                self._accept(commit)
                return True
            self._inbox.append(commit)
            self._inbox_bytes += size
            waiting = len(self._inbox)
            if waiting == 1:  # else the call that queued the first one takes it too
                self._taken.clear()
                try:
                    # After the append: the loop may run the call before the lock is free.
                    self._loop.call_soon_threadsafe(self._take_inbox)
                except RuntimeError:  # the loop is closed: nothing would ever take it
                    self._inbox.pop()
                    self._inbox_bytes -= size
                    return False
        if waiting % _EARLY == 0:
            # The loop thread has not taken the last _EARLY changes: a caller writing
            # small files in a tight loop holds the GIL, and the loop thread, which gives
            # it up at every turn, waits up to the switch interval (5 ms) to get it back
            # each time, so the flusher's request went out tens of ms late. Wait until
            # the loop has taken them: that turn is the loop's, with whatever else it has
            # ready. time.sleep(0) here did not hand the GIL over reliably (the caller
            # could take it back at once). Bounded: a loop that does not answer in
            # _HANDOFF_WAIT gets the caller back.
            self._taken.wait(_HANDOFF_WAIT)
        return True

    def _take_inbox(self) -> None:
        """Queue the changes :meth:`enqueue_nowait` received from other threads (loop thread)."""
        if self._inbox:
            with self._inbox_lock:
                self._take_inbox_locked()

    def _take_inbox_locked(self) -> None:
        self._taken.set()
        inbox, self._inbox, self._inbox_bytes = self._inbox, [], 0
        for commit in inbox:
            self._accept(commit)

    def _accept(self, commit: PendingCommit) -> None:
        """Put a change in the queue and wake the flusher (on the loop thread)."""
        if commit.inline is not None:
            self._inline_bytes += len(commit.inline)
        self._queue[commit.id] = commit
        self._paths[commit.path] += 1
        self._wake.set()
        if len(self._queue) >= _EARLY:
            self._hurry.set()
        if self._grow_at is not None and len(self._queue) >= self._grow_at:
            self._grown.set()

    def resume(self, records: list[PendingCommit]) -> int:
        """Queue the records a previous run of the daemon left for this filespace."""
        self._queue = {**{c.id: c for c in records}, **self._queue}
        self._paths.update(c.path for c in records)
        if records:
            self._urgent = True
            self._wake.set()
            log.info("lucidlink.writeback.resumed", commits=len(records))
        return len(records)

    async def flush(self, timeout: float | None = None, only: set[str] | None = None) -> None:
        """Wait until every change queued now (or those of ``only``) is committed; raise refusals.

        Raises :class:`~lucidlink.exceptions.SyncTimeoutError` naming the files still
        pending when ``timeout`` (default ``fs.sync.timeout``) runs out; they stay
        queued and are retried. Without ``only`` every refusal not yet reported is
        raised; with it, only those of its changes.
        """
        self._take_inbox()
        targets = list(self._queue) if only is None else [i for i in only if i in self._queue]
        if targets:
            self._urgent = True
            self._wake.set()
            self._hurry.set()
            self._grown.set()
            limit = self._sync_timeout if timeout is None else timeout
            self._flushing += 1
            try:
                async with self._resolved:
                    await asyncio.wait_for(
                        self._resolved.wait_for(all_left(targets, self._queue)), limit
                    )
            except asyncio.TimeoutError:
                pending = [self._queue[i].path for i in targets if i in self._queue]
                if pending:
                    names = ", ".join(pending[:5]) + (f" and {len(pending) - 5} more" if len(pending) > 5 else "")
                    raise SyncTimeoutError(
                        f"{len(pending)} closed file(s) are not committed after {limit:g} s ({names}): the hub "
                        f"at {self._transport.hub_url} did not acknowledge them. They stay queued and are "
                        "retried; call sync_all() again once the hub answers, or raise 'fs.sync.timeout'",
                        path=pending[0], pending=pending,
                    ) from None
            finally:
                self._flushing -= 1
        self._report_failures(only)

    def _report_failures(self, only: set[str] | None = None) -> None:
        failures = [f for f in self._failures if only is None or f[0].id in only]
        if not failures:
            return
        self._failures = [f for f in self._failures if only is not None and f[0].id not in only]
        first = failures[0][1]
        if len(failures) == 1:
            raise first
        names = ", ".join(c.path for c, _ in failures[:5])
        raise FilespaceError(
            f"{len(failures)} closed file(s) were refused by the hub and not committed ({names}): {first}",
            path=failures[0][0].path,
        ) from first

    # -- flusher ---------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._pressed() and len(self._queue) < _EARLY:
                # Let more closes arrive so they share one commit call, until the oldest
                # has waited fs.flush.delay_ms; a flush() or enough queued changes cut
                # the wait short.
                self._hurry.clear()
                try:
                    await asyncio.wait_for(self._hurry.wait(), self._wait_left())
                except asyncio.TimeoutError:
                    pass
            self._urgent = False
            while self._queue:
                try:
                    if not await self._drain():
                        # Fewer than _EARLY changes left, closed while commits ran: they
                        # wait for company too, or a program closing files one by one
                        # gets a commit call for every few files (an open/write/close
                        # loop got one per 11).
                        self._wake.set()
                        break
                    self._attempt = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # transient, or a bug: the changes stay queued
                    self._attempt += 1
                    delay = backoff_delay(self._attempt, base=0.1, cap=_BACKOFF_CAP)
                    log.warning("lucidlink.writeback.retry", files=len(self._queue),
                                attempt=self._attempt,
                                retry_in=round(delay, 2), error=f"{type(exc).__name__}: {exc}")
                    await asyncio.sleep(delay)

    def _pressed(self) -> bool:
        """Whether what is queued goes to the hub now, without waiting for company: a
        flush was asked since the flusher last woke, or one still waits for its changes.
        ``_urgent`` alone would not do: the flusher clears it when it wakes, so the last
        request of a flush (fewer than ``_EARLY`` changes, after those in flight) waited
        for ``fs.flush.delay_ms``, counted from the oldest change, while sync_all waited."""
        return self._urgent or self._flushing > 0

    def _wait_left(self) -> float:
        """Seconds until the oldest queued change has waited ``fs.flush.delay_ms``."""
        if not self._queue:
            return self._delay
        waited = time.time() - next(iter(self._queue.values())).created
        return min(self._delay, max(0.0, self._delay - waited))

    async def _resolve(self, done: list[PendingCommit], refused: LucidLinkError | None = None) -> None:
        """Take acknowledged (or refused) changes off the queue and out of the journal."""
        ids = {c.id for c in done}
        leaving = [self._queue.pop(i) for i in ids if i in self._queue]
        self._inline_bytes -= sum(len(c.inline or b"") for c in leaving)
        self._paths.subtract(c.path for c in leaving)
        for commit in leaving:
            if self._paths[commit.path] <= 0:
                del self._paths[commit.path]
        if refused is not None:
            for commit in done:
                log.warning("lucidlink.writeback.refused", path=commit.path, code=refused.code,
                            error=str(refused))
                self._failures.append((commit, refused))

        def remove() -> None:
            for commit in done:
                if self._durable:
                    record_path(self._dir, commit.id).unlink(missing_ok=True)
                if commit.staging:
                    Path(commit.staging).unlink(missing_ok=True)

        # Small files kept in memory of a daemon without a journal leave nothing on disk.
        if self._durable or any(c.staging for c in done):
            await anyio.to_thread.run_sync(remove)
        async with self._resolved:
            self._resolved.notify_all()

    async def _upload(self, batch: list[PendingCommit], everything: bool = False, *,
                      inline_max: int = 0) -> tuple[list[PendingCommit], dict[str, bytes]]:
        """Upload the batch's blocks the hub lacks, read from staging; return what can be
        committed, and the bytes of the blocks of at most ``inline_max`` bytes, which are
        not uploaded: the commit carries them (the hub keeps them with the metadata).

        Reads go to a thread in groups of at most :data:`_UPLOAD_GROUP_BYTES`, so many
        small files cost few thread trips and large ones never sit in memory whole. A
        change whose staging bytes are gone can never land: it is refused here.
        """
        wanted: list[tuple[PendingCommit, str, int, int]] = []
        for commit in batch:
            if commit.staging is None and commit.inline is None:
                continue
            parts = dict(commit.to_upload)
            if everything:
                for b in commit.blocks:
                    parts.setdefault(b["hash"], (b["index"] * commit.block_size, b["length"]))
            wanted.extend((commit, digest, off, n) for digest, (off, n) in parts.items())
        carried: dict[str, bytes] = {}
        if inline_max > 0:
            small = [w for w in wanted if w[3] <= inline_max]
            wanted = [w for w in wanted if w[3] > inline_max]
            memory = [w for w in small if w[0].inline is not None]
            for commit, digest, offset, length in memory:
                assert commit.inline is not None
                carried[digest] = commit.inline[offset:offset + length]
            small = [w for w in small if w[0].inline is None]
        else:
            small = []

        lost: dict[str, PendingCommit] = {}

        def read(
            group: list[tuple[PendingCommit, str, int, int]],
        ) -> dict[str, bytes]:
            out: dict[str, bytes] = {}
            for commit, digest, offset, length in group:
                if commit.inline is not None:
                    out[digest] = commit.inline[offset:offset + length]
                    continue
                try:
                    with open(str(commit.staging), "rb") as f:
                        data = os.pread(f.fileno(), length, offset)
                except OSError:
                    lost[commit.id] = commit
                    continue
                out[digest] = data + bytes(length - len(data))
            return out

        if small:  # one trip to a thread reads them all (a batch's inline bytes are bounded)
            carried.update(await anyio.to_thread.run_sync(read, small))
        group: list[tuple[PendingCommit, str, int, int]] = []
        size = 0
        for item in [*wanted, None]:
            if group and (item is None or size + item[3] > _UPLOAD_GROUP_BYTES):
                await self._blocks.upload(dict(await anyio.to_thread.run_sync(read, group)))
                group, size = [], 0
            if item is not None:
                group.append(item)
                size += item[3]
        if lost:
            await self._resolve(list(lost.values()), FilespaceError(
                "the staging bytes of this closed file are gone from the daemon's root dir, so it cannot "
                "be committed; write the file again"))
        return [c for c in batch if c.id not in lost], carried

    async def _post(self, batch: list[PendingCommit], carried: dict[str, bytes] | None = None) -> None:
        changes = []
        for commit in batch:
            change = commit.change()
            if carried and any(b["hash"] in carried for b in commit.blocks):
                change["blocks"] = [
                    {**b, "data": pybase64.b64encode_as_string(carried[b["hash"]])}
                    if b["hash"] in carried else b for b in commit.blocks]
            changes.append(change)
        await self._transport.call("POST", f"/v1/filespaces/{self._filespace_id}/commits",
                                   encoded=encode_request(changes),
                                   session_id=self._session(), idempotent=True)

    async def _drain(self) -> bool:
        """Commit the queue from its head, a request at a time, up to :data:`_IN_FLIGHT`
        requests in flight; ``False`` when it stopped early to let changes gather.

        Each request is cut from the queue when it is sent (:func:`~lucidlink.aio.commitparts.next_part`), so the
        hub always has the next one waiting while it works, whatever the program is still
        closing. A request touching a path of one in flight (the same path, or one above
        or under it) first waits for it, so one path's changes land in queue order. When
        one fails, none after it is sent: the requests in flight are seen to their end
        (they may land, and their changes then leave the queue), then the error goes to
        the flusher's retry, which starts again from the head.
        """
        limit = await self._limit()
        tasks: deque[tuple[asyncio.Task[None], set[str]]] = deque()
        sent: set[str] = set()
        first = True
        try:
            while True:
                part, rest = next_part(self._queue, sent, limit, self._request_bytes)
                if not part or not (first or rest or self._pressed() or len(part) >= _EARLY):
                    # Nothing left to send, or only a few changes closed while commits
                    # run: they wait for company (or the requests in flight) before a
                    # request of their own.
                    if not tasks:
                        if part:
                            return False
                        break
                    await self._more_or(tasks[0][0], len(self._queue) + _EARLY - len(part))
                    if tasks[0][0].done():
                        await tasks.popleft()[0]
                    continue
                first = False
                paths = {c.path for c in part}
                while tasks and any(related(p, paths) for _, p in tasks):
                    await tasks.popleft()[0]
                tasks.append((asyncio.create_task(self._commit_part(part, limit)), paths))
                sent.update(c.id for c in part)
                while len(tasks) >= _IN_FLIGHT or (tasks and tasks[0][0].done()):
                    await tasks.popleft()[0]
            while tasks:
                await tasks.popleft()[0]
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                for task, _ in tasks:
                    task.cancel()
            await asyncio.gather(*(t for t, _ in tasks), return_exceptions=True)
            raise
        return not self._queue or self._pressed() or len(self._queue) >= _EARLY

    async def _more_or(self, task: asyncio.Task[None], queued: int) -> None:
        """Wait until ``task`` ends, the queue holds ``queued`` changes, or a flush hurries."""
        self._grown.clear()
        self._grow_at = queued
        waiter = asyncio.ensure_future(self._grown.wait())
        try:
            await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._grow_at = None
            waiter.cancel()

    async def _commit_part(self, batch: list[PendingCommit], inline_max: int) -> None:
        """Commit changes in one request: acknowledged ones and refusals leave the queue; a
        transient error raises."""
        batch, carried = await self._upload(batch, inline_max=inline_max)
        if not batch:
            return
        try:
            try:
                await self._post(batch, carried)
            except BlockMissingError:
                # Blocks vanished (GC) between upload and commit: upload all again.
                batch, _ = await self._upload(batch, everything=True)
                await self._post(batch)
        except LucidLinkError as err:
            if is_transient(err):
                raise
            if len(batch) == 1:
                await self._resolve(batch, err)
                return
            # One change was refused: commit one by one so the others still land.
            for commit in batch:
                try:
                    await self._post([commit], carried)
                except LucidLinkError as one:
                    if is_transient(one):
                        raise
                    await self._resolve([commit], one)
                else:
                    await self._resolve([commit])
            return
        await self._resolve(batch)
