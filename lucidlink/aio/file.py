"""Async file objects: streaming reads with read-ahead, writes through a staging file.

A handle sees one version of the file: the block list as it was at ``open`` (readers
never see a mix of versions), plus its own writes. Writes land in a sparse staging
file in the daemon's root dir, so memory stays bounded whatever the file's size;
slots the writer has finished are hashed and uploaded in the background while it
keeps writing; ``close`` hands the change to the daemon's write-back queue, which
commits it (see :mod:`lucidlink.aio.writeback`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import attrs

from lucidlink.aio.blockref import BlockRef
from lucidlink.aio.pending import PendingCommit, whole_block
from lucidlink.aio.staging import StagingPath

MEM_WRITE_MAX = 64 * 1024
"""Largest whole-file write kept in memory until close (see ``AsyncFile._mem``)."""

if TYPE_CHECKING:
    from lucidlink.aio.link import FilespaceLink
    from lucidlink.aio.locks import HeldLock

class AsyncFile(StagingPath):
    """A binary file of a filespace, opened by :meth:`AsyncFilesystem.open`.

    Supports ``read``/``readinto``/``write``/``seek``/``tell``/``truncate``/``flush``/
    ``close``, ``async with`` and ``async for`` (lines, as bytes).
    """

    def __init__(self, link: FilespaceLink, path: str, mode: str, *, size: int, version: int | None,
                 block_size: int, blocks: dict[int, BlockRef], exists: bool,
                 lock: HeldLock | None = None, source: Any = None) -> None:
        self._link = link
        # Where slots come from: the block store, or (Connect) ranges of an S3 object.
        self._io = link.blocks if source is None else source
        self.name = path
        self.mode = mode
        self.closed = False
        self._closing: asyncio.Future[None] | None = None  # set while (and after) closing
        self._writes = 0  # writes suspended in flight
        self._writes_done = asyncio.Event()
        self._readable = mode.startswith("r") or "+" in mode
        self._writable = not mode.startswith("r") or "+" in mode
        self._append = mode.startswith("a")
        self._bs = block_size
        self._size = size
        self._version = version
        self._base = blocks
        self._pos = size if self._append else 0  # as the builtin: append handles start at the end
        self._exists = exists
        self._lock = lock
        # Write state.
        self._staging_path: Path | None = None
        self._fd: int | None = None
        self._loaded: set[int] = set()
        self._dirty: set[int] = set()
        self._gen: dict[int, int] = {}
        self._uploaded: dict[int, tuple[str, int, int]] = {}  # slot -> (hash, length, gen)
        self._uploads: dict[int, asyncio.Task[None]] = {}
        # Held slots: slot -> (gen, its bytes in the caller's immutable buffer), never
        # staged unless something needs them there (see _whole_slots).
        self._written: dict[int, tuple[int, memoryview]] = {}
        self._truncated_to: int | None = 0 if mode.startswith("w") else None
        self._changed = mode.startswith(("w", "x")) or (self._append and not exists)
        # A small whole-file write of a daemon that keeps no journal stays in memory:
        # no staging file, no thread trips (written out if it grows or seeks).
        self._mem: bytearray | None = (
            bytearray() if mode in ("wb", "xb") and not link.services.durable else None)
        # Read state.
        self._cur: tuple[int, bytes | bytearray] | None = None
        self._ahead: dict[int, asyncio.Task[bytes | bytearray]] = {}
        self._last_slot = -2
        self._window = 0
        self._signed = range(0)  # slots whose URLs a random read had signed

    # -- io-like predicates ----------------------------------------------------------

    def readable(self) -> bool:
        """Whether the handle was opened for reading."""
        return self._readable

    def writable(self) -> bool:
        """Whether the handle was opened for writing."""
        return self._writable

    def seekable(self) -> bool:
        """Always ``True``."""
        return True

    def tell(self) -> int:
        """The current position."""
        self._check_open()
        return self._pos

    @property
    def size(self) -> int:
        """The file's size as this handle sees it."""
        return self._size

    @property
    def private_until_close(self) -> bool:
        """Whether no one else can see this handle's writes before it closes: true of a
        handle opened for writing only, whose change its close commits (close-to-open)."""
        return self._writable and not self._readable

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"I/O operation on closed file {self.name}")
        if self._lock is not None:
            self._lock.check()

    @property
    def lock_token(self) -> int | None:
        """The fencing token of this handle's lock, if it holds one."""
        return self._lock.token if self._lock is not None else None

    def __repr__(self) -> str:
        return f"<AsyncFile {self.name!r} mode={self.mode!r}{' closed' if self.closed else ''}>"

    # -- one version, many readers ---------------------------------------------------

    def reopen(self) -> AsyncFile:
        """Another ``rb`` handle, at position 0, on the version this reader opened.

        No hub call: several handles then read one version concurrently, whatever is
        committed meanwhile (fsspec's ``cat_ranges``). Each is closed on its own.
        """
        self._check_open()
        if self._writable:
            raise io.UnsupportedOperation("reopen: only a handle opened with 'rb' can be reopened")
        handle = AsyncFile(
            self._link, self.name, "rb", size=self._size, version=self._version,
            block_size=self._bs, blocks=self._base, exists=self._exists, source=self._io,
        )
        self._link.open_files.add(handle)
        return handle

    async def prepare_ranges(self, ranges: Iterable[tuple[int, int]]) -> None:
        """Get ready to read the byte ranges ``[start, end)``: one batch of hub calls signs
        the URLs of every block they need (instead of one call per read-ahead window)."""
        self._check_open()
        keys: dict[str, None] = {}
        for start, end in ranges:
            if end <= start:
                continue
            for slot in range(start // self._bs, (end - 1) // self._bs + 1):
                ref = self._base.get(slot)
                if ref is not None and slot not in self._loaded:
                    keys[ref.hash] = None
        if keys:
            await self._io.prepare_get_urls(list(keys))

    def fingerprint(self) -> str:
        """A hex digest of the version this reader opened: equal for equal blocks,
        different whenever the content differs (a Connect file: its object's version)."""
        digest = hashlib.sha256(f"{self._size}:{self._bs}".encode())
        identity = getattr(self._io, "identity", None)
        if identity is not None:  # a Connect file: the object's version names its content
            digest.update(str(identity).encode())
        else:
            for index in sorted(self._base):
                ref = self._base[index]
                digest.update(f";{index}:{ref.hash}:{ref.used}".encode())
        return digest.hexdigest()

    # -- reading: read, readinto, readline are lucidlink.aio.reader's ----------------
    # -- writing ---------------------------------------------------------------------

    async def write(self, data: Any) -> int:
        """Write bytes at the position (at the end in append modes); return how many."""
        self._check_open()
        if not self._writable:
            raise io.UnsupportedOperation("write: the file was not opened for writing")
        view = memoryview(data).cast("B")
        n = len(view)
        if n == 0:
            return 0
        if self._append:
            self._pos = self._size
        if self._mem is not None:
            if self._pos == len(self._mem) and self._pos + n <= min(self._bs, MEM_WRITE_MAX):
                self._mem += view
                self._pos += n
                self._size = max(self._size, self._pos)
                return n
        # A write that suspends is waited for by a close begun meanwhile (another task's,
        # or the filespace's unlink): once it returns, its bytes are in the change.
        self._writes += 1
        try:
            await self._spill()
            await self._write_view(view)
        finally:
            self._writes -= 1
            if not self._writes:
                self._writes_done.set()
        return n

    async def _write_view(self, view: memoryview) -> None:
        """Write ``view`` at the position through staging (the checks are the caller's:
        a closing handle spills its in-memory bytes through here)."""
        n = len(view)
        first, last = self._pos // self._bs, (self._pos + n - 1) // self._bs
        held = self._whole_slots(view)
        for slot in range(first, last + 1):
            # Before any await: an upload of the slot's former bytes that lands meanwhile
            # no longer counts.
            self._gen[slot] = self._gen.get(slot, 0) + 1
            self._uploaded.pop(slot, None)
            if slot in held:
                self._written.pop(slot, None)
        # A held slot rewritten in part: its former bytes go to staging first.
        await self._stage_held(s for s in range(first, last + 1) if s not in held)
        for slot in range(first, last + 1):
            if slot not in self._loaded:
                start = max(self._pos, slot * self._bs)
                end = min(self._pos + n, (slot + 1) * self._bs)
                await self._load_slot(slot, start - slot * self._bs, end - start)
        if not held:
            await self._pwrite(view, self._pos)
        else:  # only the ends around the held slots go to staging
            head, tail = min(held) * self._bs - self._pos, (max(held) + 1) * self._bs - self._pos
            if head > 0:
                await self._pwrite(view[:head], self._pos)
            if tail < n:
                await self._pwrite(view[tail:], self._pos + tail)
        for slot in range(first, last + 1):
            self._dirty.add(slot)
            if slot in held:
                self._written[slot] = (self._gen[slot], held[slot])
        if self._cur is not None and first <= self._cur[0] <= last:
            self._cur = None
        self._pos += n
        self._size = max(self._size, self._pos)
        self._changed = True
        await self._upload_finished_slots(before=self._pos // self._bs)

    async def seek(self, offset: int, whence: int = 0) -> int:
        """Move the position; whence 0 (start), 1 (current) or 2 (end). Past the end is allowed."""
        return self.seek_nowait(offset, whence)

    def seek_nowait(self, offset: int, whence: int = 0) -> int:
        """:meth:`seek`, as a plain call: moving the position never waits.

        The blocking file calls it from its own thread instead of a trip through the
        event loop (a random read is a seek then a read). Not while another operation
        of this handle runs, as for any handle.
        """
        self._check_open()
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        if pos < 0:
            raise OSError(22, f"Invalid argument: negative seek position {pos} in {self.name}")
        self._pos = pos
        return pos

    async def truncate(self, size: int | None = None) -> int:
        """Cut or extend the file to ``size`` (default: the position); the position is kept."""
        self._check_open()
        if not self._writable:
            raise io.UnsupportedOperation("truncate: the file was not opened for writing")
        size = self._pos if size is None else size
        if size < 0:
            raise OSError(22, f"Invalid argument: negative size {size} for {self.name}")
        await self._spill()
        await self._stage_held(self._written)  # uploads after a truncate read what staging holds
        for slot in {size // self._bs, (self._size - 1) // self._bs}:
            # A slot uploaded from held bytes is not in staging: fetched back, then cut.
            if slot in self._dirty and slot not in self._loaded and slot * self._bs < min(size, self._size):
                await self._load_slot(slot, 0, 0)
        if size < self._size:
            last = (size - 1) // self._bs if size > 0 else -1
            for slot in [s for s in self._base if s > last]:
                del self._base[slot]
            if last in self._base:
                ref = self._base[last]
                self._base[last] = attrs.evolve(ref, used=min(ref.used, size - last * self._bs))
            for slot in [s for s in self._loaded | self._dirty if s > last]:
                self._loaded.discard(slot)
                self._dirty.discard(slot)
                self._uploaded.pop(slot, None)
            self._truncated_to = size if self._truncated_to is None else min(self._truncated_to, size)
            self._cur = None
        if self._fd is not None:
            await anyio.to_thread.run_sync(os.ftruncate, self._fd, min(size, self._size))
        for slot in (size // self._bs, (self._size - 1) // self._bs if self._size else 0):
            if slot in self._dirty:
                self._gen[slot] = self._gen.get(slot, 0) + 1
                self._uploaded.pop(slot, None)
        self._size = size
        self._changed = True
        return size

    async def flush(self) -> None:
        """Nothing to do: written bytes are in staging, uploaded, or held until their upload
        lands; ``close`` (or sync) commits them."""
        self._check_open()

    # -- closing ---------------------------------------------------------------------

    async def close(self, *, wait: bool = False) -> None:
        """Close the handle; a written file's change is queued for commit (see ``sync_all``).

        A whole-file write (``w``, ``x``) returns at once and is committed in the
        background, unless ``wait`` is true: then, as always for a locked handle and a
        partial overwrite (``r+``, ``a``, a ``truncate``), ``close`` returns once the
        change is committed in the hub. Waiting raises what the hub refused (for a
        partial overwrite ``VersionConflictError`` when another writer changed the
        same blocks since the file was opened; disjoint changes are merged), or
        ``SyncTimeoutError`` when the hub does not answer within ``fs.sync.timeout``
        (the change stays queued).

        A second ``close`` while the first runs returns once the first is done (its
        error is the first caller's): whoever waits for a close, such as the filespace's
        ``unlink``, knows the change is queued when it returns.
        """
        if self._closing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._closing)
            return
        if self.closed:
            return
        self._closing = asyncio.get_running_loop().create_future()
        try:
            await self._close(wait)
        finally:
            self._closing.set_result(None)

    async def _close(self, wait: bool) -> None:
        self.closed = True
        while self._writes:  # writes in flight finish first (no new one starts now)
            self._writes_done.clear()
            await self._writes_done.wait()
        for task in self._ahead.values():
            task.cancel()
        self._ahead.clear()
        self._cur = None
        try:
            if self._writable and self._changed:
                if self._lock is not None and self._lock.lost():
                    # The hub would refuse this change; drop it here rather than queue
                    # an error that would surface in some later, unrelated flush.
                    await self._discard_staging()
                    self._lock.check()
                commit = await self._hand_over()
                if wait or self._lock is not None or commit.base_version is not None:
                    # A locked change lands before the lock is given back, so the next
                    # holder reads it; a partial overwrite learns here whether it
                    # collided with another writer's change (VersionConflictError).
                    await self._link.writeback.flush(only={commit.id})
            elif self._lock is not None and self._lock.lost():
                self._lock.check()
        finally:
            if self._lock is not None:
                await self._lock.release()
            self._link.open_files.discard(self)
            if self._fd is not None:
                fd, self._fd = self._fd, None
                await anyio.to_thread.run_sync(os.close, fd)

    async def abort(self) -> None:
        """Close without committing what this handle wrote (its uploads are cancelled,
        its staging file removed): the file stays as it was. A lock is released."""
        if self.closed:
            return
        for task in self._uploads.values():
            task.cancel()
        await asyncio.gather(*self._uploads.values(), return_exceptions=True)
        self._uploads.clear()
        self._changed = False  # close() then hands nothing to the write-back queue
        await self._discard_staging()
        await self.close()

    async def _discard_staging(self) -> None:
        fd, path = self._fd, self._staging_path
        self._fd = None

        def discard() -> None:
            if fd is not None:
                os.close(fd)
            if path is not None:
                path.unlink(missing_ok=True)

        await anyio.to_thread.run_sync(discard)

    async def _spill(self) -> None:
        """Move an in-memory write to the staging file (the ordinary write path)."""
        if self._mem is None:
            return
        data, self._mem = self._mem, None
        if data:
            pos, self._pos = self._pos, 0
            await self._write_view(memoryview(data).cast("B"))
            self._pos = pos

    async def _hand_over(self) -> PendingCommit:
        if self._mem is not None and not self._link.writeback.inline_room(len(self._mem)):
            await self._spill()
        if self._mem is not None:
            data, self._mem = bytes(self._mem), None
            if not data:
                return await self._enqueue([], {}, None)
            return await self._enqueue(*whole_block(data), data)
        # Uploads still running finish, unless one fails: then the hub is unreachable
        # or refusing, and close must not wait out every upload's retries; the rest are
        # cancelled and the flusher uploads those slots from staging (retrying as long
        # as it takes). Slots changed after their upload are redone the same way.
        if self._uploads:
            _, unfinished = await asyncio.wait(self._uploads.values(), return_when=asyncio.FIRST_EXCEPTION)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*self._uploads.values(), return_exceptions=True)
        self._uploads.clear()
        blocks: list[dict[str, Any]] = []
        to_upload: dict[str, tuple[int, int]] = {}
        todo: list[tuple[int, int]] = []
        for slot in sorted(self._dirty):
            length = self._slot_extent(slot)
            if length == 0:
                continue
            done = self._uploaded.get(slot)
            if done is not None and done[2] == self._gen.get(slot) and done[1] == length:
                blocks.append({"index": slot, "hash": done[0], "length": length})
            else:
                todo.append((slot, length))
        await self._stage_held(slot for slot, _ in todo)
        fd = self._fd
        durable = self._link.services.durable
        staging = self._staging_path

        def hash_and_close() -> list[str]:
            # One trip to a thread reads and hashes what is left, then closes staging.
            digests = []
            for slot, length in todo:
                assert fd is not None
                data = os.pread(fd, length, slot * self._bs)
                digests.append(hashlib.sha256(data + bytes(length - len(data))).hexdigest())
            if fd is not None:
                if durable:
                    # The pending record written next names these bytes: they (and
                    # the staging file's name) must be on disk first.
                    os.fsync(fd)
                    if staging is not None:
                        dir_fd = os.open(staging.parent, os.O_RDONLY)
                        try:
                            os.fsync(dir_fd)
                        finally:
                            os.close(dir_fd)
                os.close(fd)
            return digests

        self._fd = None
        for (slot, length), digest in zip(todo, await anyio.to_thread.run_sync(hash_and_close)):
            to_upload[digest] = (slot * self._bs, length)
            blocks.append({"index": slot, "hash": digest, "length": length})
        blocks.sort(key=lambda b: b["index"])
        return await self._enqueue(blocks, to_upload, None)

    async def _enqueue(self, blocks: list[dict[str, Any]], to_upload: dict[str, tuple[int, int]],
                       inline: bytes | None) -> PendingCommit:
        mode = "exclusive" if self.mode.startswith("x") else ("existing" if self.mode.startswith("r") else "create")
        replace = self.mode.startswith("w")
        # A partial change names the version it was built on, so the hub can merge it
        # with others' changes or refuse it (never a silent lost update).
        base_version = None if replace or mode == "exclusive" else (self._version if self._exists else 0)
        commit = PendingCommit.new(
            filespace_id=self._link.id,
            path=self.name,
            size=self._size,
            mode=mode,
            replace=replace,
            truncate_to=self._truncated_to,
            blocks=blocks,
            to_upload=to_upload,
            staging=str(self._staging_path) if self._staging_path else None,
            block_size=self._bs,
            lock_id=self._lock.lock_id if self._lock is not None else None,
            base_version=base_version,
            inline=inline,
        )
        await self._link.writeback.enqueue(commit)
        return commit

    async def __aenter__(self) -> AsyncFile:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
