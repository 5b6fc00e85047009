"""Writing for :class:`lucidlink.aio.file.AsyncFile`: the staging file and the uploads
of finished slots (a mixin, like :class:`lucidlink.aio.reader.ReadPath`: it uses the
handle's state).

Writes land in a sparse staging file in the daemon's root dir, created on the first
write that needs it; a slot written whole from immutable bytes is *held* instead (see
:meth:`StagingPath._whole_slots`). Slots the writer has moved past are hashed and
uploaded in the background while it keeps writing, at most twice the daemon's upload
concurrency at once.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

import anyio.to_thread

from lucidlink.aio._util import run_in_thread_on
from lucidlink.aio.blockref import BlockRef
from lucidlink.aio.blocks import sha256_hex
from lucidlink.aio.reader import ReadPath


def _zeros(n: int) -> bytes:
    return bytes(n)


class StagingPath(ReadPath):
    """The staging file and background uploads of an :class:`AsyncFile`."""

    _staging_path: Path | None
    _dirty: set[int]
    _gen: dict[int, int]
    _uploaded: dict[int, tuple[str, int, int]]
    _uploads: dict[int, asyncio.Task[None]]

    async def _ensure_staging(self) -> int:
        if self._fd is None:
            await anyio.to_thread.run_sync(self._open_staging)
        assert self._fd is not None
        return self._fd

    def _open_staging(self) -> int:
        """Create the staging file (call in a worker thread)."""
        if self._fd is None:
            self._staging_path = self._link.services.staging_dir / uuid.uuid4().hex
            self._fd = os.open(self._staging_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        return self._fd

    async def _pwrite(self, data: memoryview, pos: int) -> None:
        # Creating the staging file and the first write share one trip to a thread, on a
        # view the thread releases: the caller may resize its bytearray once this returns.
        await run_in_thread_on(data, lambda view: self._write_staging(view, pos))

    def _write_staging(self, data: memoryview, pos: int) -> None:
        """Write into the staging file, created first if need be (call in a worker thread)."""
        fd = self._open_staging()
        assert self._staging_path is not None
        self._link.services.direct.pwrite(fd, self._staging_path, data, pos)

    def _slot_extent(self, slot: int) -> int:
        return max(0, min(self._bs, self._size - slot * self._bs))

    def _whole_slots(self, view: memoryview) -> dict[int, memoryview]:
        """The slots a write of ``view`` at the position covers whole, in bytes nobody can
        change (``bytes``, or a view of them), each with its part of ``view``.

        Such a slot is *held*: it is uploaded from those bytes and never written to
        staging. Once the hub has it, the slot reads (and is patched) from there like a
        committed block; if its upload fails, its bytes go to staging then. Not for a
        daemon that journals its changes: a resume may come after the hub's GC grace.
        """
        if not isinstance(view.obj, bytes) or self._link.services.durable:
            return {}
        first = -(-self._pos // self._bs)
        end = (self._pos + len(view)) // self._bs
        return {slot: view[slot * self._bs - self._pos:(slot + 1) * self._bs - self._pos]
                for slot in range(first, end)}

    async def _stage_held(self, slots: Iterable[int]) -> None:
        """Write held slots' bytes to staging, where what comes next needs them."""
        for slot in list(slots):
            held = self._written.get(slot)
            if held is not None:
                await self._pwrite(held[1], slot * self._bs)
                if self._written.get(slot) is held:
                    del self._written[slot]

    async def _load_slot(self, slot: int, off: int, take: int) -> None:
        """Bring a committed slot into staging before a partial overwrite of it."""
        await self._ensure_staging()
        ref = self._base.get(slot)
        extent = self._slot_extent(slot)
        if ref is not None and not (off == 0 and take >= extent):
            block = await self._io.get(ref.hash, ref.length)
            visible = memoryview(block)[: min(ref.used, extent)]
            await anyio.to_thread.run_sync(self._write_staging, visible, slot * self._bs)
        self._loaded.add(slot)

    async def _upload_finished_slots(self, before: int) -> None:
        """Start uploading dirty slots the writer has moved past (sequential writing)."""
        for slot in sorted(self._dirty):
            if slot >= before:
                break
            if slot in self._uploaded or slot in self._uploads:
                continue
            self._uploads[slot] = asyncio.create_task(self._upload_slot(slot, self._gen[slot]))
        # Bound the work (and memory) in flight: wait for the oldest uploads.
        limit = 2 * self._link.config.upload_concurrency
        while len(self._uploads) > limit:
            oldest = min(self._uploads)
            await self._finish_upload(oldest)

    async def _finish_upload(self, slot: int) -> None:
        task = self._uploads.pop(slot)
        try:
            await task
        except Exception:
            # A one-try upload while writing: the flusher uploads the slot from staging
            # (retrying what is transient, reporting what the hub refuses) after close.
            await self._stage_held([slot])

    async def _read_staged(self, slot: int) -> bytes:
        assert self._fd is not None
        length = self._slot_extent(slot)
        data = await anyio.to_thread.run_sync(os.pread, self._fd, length, slot * self._bs)
        return data + _zeros(length - len(data))

    async def _upload_slot(self, slot: int, gen: int) -> None:
        written = self._written.get(slot)
        data: bytes | memoryview
        if written is not None and written[0] == gen:
            data = written[1]
        else:
            data = await self._read_staged(slot)
        digest = await sha256_hex(data)
        await self._io.upload({digest: data}, best_effort=True)
        if self._gen.get(slot) == gen and slot in self._dirty and len(data) == self._slot_extent(slot):
            self._uploaded[slot] = (digest, len(data), gen)
            if self._written.get(slot) is written is not None:
                # The hub has the held bytes now: the slot reads from there, like a committed one.
                del self._written[slot]
                self._loaded.discard(slot)
                self._base[slot] = BlockRef(digest, len(data), len(data))
