"""Write-back: closed files' changes, journalled on disk and committed in the background.

``close`` turns a written handle into a :class:`PendingCommit` and hands it here. The
record is written to ``<root>/pending/`` first (fsync'd when the daemon persists its
files), so a daemon that dies before the commit resumes it on its next start. The
flusher gathers what is queued for at most ``fs.flush.delay_ms``, uploads the blocks
the hub does not have (reading them from staging), and commits the whole batch in one
hub call. ``flush()`` is the barrier ``sync_all`` stands on.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import attrs

from lucidlink._log import get_logger
from lucidlink.exceptions import BlockMissingError, FilespaceError, LucidLinkError

if TYPE_CHECKING:
    from lucidlink.aio.blocks import BlockIO
    from lucidlink.aio.transport import Transport

log = get_logger("lucidlink")
_BATCH = 256
_UPLOAD_GROUP_BYTES = 64 * 1024 * 1024


@attrs.define
class PendingCommit:
    """A closed file's change, waiting to be committed."""

    id: str
    filespace_id: str
    path: str
    size: int
    mode: str
    replace: bool
    truncate_to: int | None
    blocks: list[dict[str, Any]]
    to_upload: dict[str, tuple[int, int]]
    """hash -> (offset, length) in the staging file, for blocks not uploaded yet."""
    staging: str | None
    mtime: int
    created: float
    block_size: int
    lock_id: str | None = None
    """The lock the change was made under; the hub refuses it once that lease is lost."""

    def change(self) -> dict[str, Any]:
        """The hub's commit body."""
        body: dict[str, Any] = {"path": self.path, "size": self.size, "mode": self.mode, "blocks": self.blocks,
                                "replace": self.replace, "mtime": self.mtime}
        if self.truncate_to is not None:
            body["truncate_to"] = self.truncate_to
        if self.lock_id is not None:
            body["lock_id"] = self.lock_id
        return body


class WriteBack:
    """The queue of pending commits of one linked filespace, and its flusher task."""

    def __init__(self, transport: Transport, blocks: BlockIO, filespace_id: str,
                 session: Callable[[], str | None], journal_dir: Path, *,
                 durable: bool, delay: float) -> None:
        self._transport = transport
        self._blocks = blocks
        self._filespace_id = filespace_id
        self._session = session
        self._dir = journal_dir
        self._durable = durable
        self._delay = delay
        self._queue: list[PendingCommit] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._hurry = asyncio.Event()
        self._idle.set()
        self._urgent = False
        self._task: asyncio.Task[None] | None = None
        self._failures: list[tuple[PendingCommit, LucidLinkError]] = []
        self._inflight_paths: set[str] = set()

    # -- queue -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the flusher on the running loop."""
        self._task = asyncio.create_task(self._run(), name=f"lucidlink-flusher-{self._filespace_id[:8]}")

    async def stop(self) -> None:
        """Stop the flusher (pending records stay on disk)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    @property
    def pending_paths(self) -> set[str]:
        """Paths with a change not committed yet."""
        return {c.path for c in self._queue}

    def affects(self, path: str, scope: str) -> bool:
        """Whether an operation on ``path`` must wait for pending commits.

        A pending file matters when it is the path itself or stands where one of its
        ancestor directories would be (the hub must learn of it before it can answer
        "not a directory"), and, by ``scope``, when it is an entry of the path
        (``children``) or anywhere under it (``subtree``); ``all`` waits for any.
        """
        if not self._queue and self._idle.is_set():
            return False
        if scope == "all":
            return True
        prefix = path.rstrip("/") + "/"
        for p in self.pending_paths | self._inflight_paths:
            if p == path or path.startswith(p + "/"):
                return True
            if scope == "children" and p.startswith(prefix) and "/" not in p[len(prefix):]:
                return True
            if scope == "subtree" and p.startswith(prefix):
                return True
        return False

    async def enqueue(self, commit: PendingCommit) -> None:
        """Journal a change on disk (when the daemon persists its files), then queue it."""
        if self._durable:
            await anyio.to_thread.run_sync(self._write_record, commit)
        self._queue.append(commit)
        self._idle.clear()
        self._wake.set()

    def _record_path(self, commit_id: str) -> Path:
        return self._dir / f"{commit_id}.json"

    def _write_record(self, commit: PendingCommit) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        path = self._record_path(commit.id)
        tmp = path.with_suffix(".tmp")
        data = json.dumps(attrs.asdict(commit)).encode()
        with open(tmp, "wb") as f:
            f.write(data)
            if self._durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if self._durable:
            dir_fd = os.open(self._dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    async def resume(self) -> int:
        """Queue the records a previous run of the daemon left (oldest first)."""

        def load() -> list[PendingCommit]:
            if not self._dir.exists():
                return []
            found = []
            for f in self._dir.glob("*.json"):
                try:
                    data = json.loads(f.read_text())
                    data["to_upload"] = {k: tuple(v) for k, v in data["to_upload"].items()}
                    commit = PendingCommit(**data)
                except (ValueError, TypeError, KeyError):
                    log.warning("lucidlink.writeback.bad_record", record=str(f))
                    continue
                if commit.filespace_id == self._filespace_id:
                    found.append(commit)
            return sorted(found, key=lambda c: c.created)

        found = await anyio.to_thread.run_sync(load)
        for commit in found:
            self._queue.append(commit)
        if found:
            self._idle.clear()
            self._urgent = True
            self._wake.set()
            log.info("lucidlink.writeback.resumed", commits=len(found))
        return len(found)

    async def flush(self) -> None:
        """Commit everything queued now; raise if any of it was refused by the hub."""
        if self._queue or not self._idle.is_set():
            self._urgent = True
            self._wake.set()
            self._hurry.set()
            await self._idle.wait()
        if self._failures:
            failures, self._failures = self._failures, []
            first = failures[0][1]
            if len(failures) == 1:
                raise first
            names = ", ".join(c.path for c, _ in failures[:5])
            raise FilespaceError(
                f"{len(failures)} closed file(s) could not be committed ({names}): {first}", path=failures[0][0].path
            ) from first

    # -- flusher ---------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._urgent:
                # Let more closes arrive so they share one commit call; a flush() cuts
                # the wait short.
                self._hurry.clear()
                try:
                    await asyncio.wait_for(self._hurry.wait(), self._delay)
                except asyncio.TimeoutError:
                    pass
            self._urgent = False
            while self._queue:
                batch, self._queue = self._queue[:_BATCH], self._queue[_BATCH:]
                self._inflight_paths = {c.path for c in batch}
                try:
                    await self._commit_batch(batch)
                except asyncio.CancelledError:
                    self._queue = batch + self._queue
                    raise
                except Exception as exc:  # keep the flusher alive; the error surfaces in flush()
                    log.warning("lucidlink.writeback.failed", error=str(exc))
                    err = exc if isinstance(exc, LucidLinkError) else FilespaceError(str(exc))
                    self._failures.extend((c, err) for c in batch)
                    await self._drop(batch)
                finally:
                    self._inflight_paths = set()
            if not self._queue:
                self._idle.set()

    async def _upload(self, batch: Iterable[PendingCommit], everything: bool = False) -> None:
        """Upload the batch's blocks the hub lacks, read from staging.

        Reads go to a thread in groups of at most :data:`_UPLOAD_GROUP_BYTES`, so many
        small files cost few thread trips and large ones never sit in memory whole.
        """
        wanted: list[tuple[str, str, int, int]] = []
        for commit in batch:
            if commit.staging is None:
                continue
            parts = dict(commit.to_upload)
            if everything:
                for b in commit.blocks:
                    parts.setdefault(b["hash"], (b["index"] * commit.block_size, b["length"]))
            wanted.extend((commit.staging, digest, off, n) for digest, (off, n) in parts.items())

        def read(group: list[tuple[str, str, int, int]]) -> dict[str, bytes]:
            out: dict[str, bytes] = {}
            for staging, digest, offset, length in group:
                with open(staging, "rb") as f:
                    data = os.pread(f.fileno(), length, offset)
                out[digest] = data + bytes(length - len(data))
            return out

        group: list[tuple[str, str, int, int]] = []
        size = 0
        for item in wanted + [("", "", 0, -1)]:
            if group and (item[3] < 0 or size + item[3] > _UPLOAD_GROUP_BYTES):
                await self._blocks.upload(await anyio.to_thread.run_sync(read, group))
                group, size = [], 0
            if item[3] >= 0:
                group.append(item)
                size += item[3]

    async def _commit_batch(self, batch: list[PendingCommit]) -> None:
        await self._upload(batch)
        api = f"/v1/filespaces/{self._filespace_id}/commits"
        try:
            await self._transport.call("POST", api, json={"commits": [c.change() for c in batch]},
                                       session_id=self._session())
            await self._drop(batch)
            return
        except BlockMissingError:
            # Blocks vanished (GC) between upload and commit: upload all again, retry once.
            await self._upload(batch, everything=True)
        except LucidLinkError:
            if len(batch) == 1:
                raise
        # One change was refused: commit one by one so the others still land.
        for commit in batch:
            try:
                await self._transport.call("POST", api, json={"commits": [commit.change()]},
                                           session_id=self._session())
            except LucidLinkError as err:
                log.warning("lucidlink.writeback.refused", path=commit.path, code=err.code)
                self._failures.append((commit, err))
            await self._drop([commit])

    async def _drop(self, batch: list[PendingCommit]) -> None:
        def remove() -> None:
            for commit in batch:
                self._record_path(commit.id).unlink(missing_ok=True)
                if commit.staging:
                    Path(commit.staging).unlink(missing_ok=True)

        await anyio.to_thread.run_sync(remove)
