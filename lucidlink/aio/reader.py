"""The read path of :class:`lucidlink.aio.file.AsyncFile`: slices of verified blocks,
sequential detection and read-ahead.

A read within one block returns a slice of it; a read across blocks copies each piece
once into its result, as it arrives (see :meth:`ReadPath._gather`). A read that asks
for several blocks at once opens the read-ahead window fully: those blocks are wanted
now, so they are downloaded in parallel (up to ``fs.readahead.max_blocks``).
"""

from __future__ import annotations

import asyncio
import io
import os
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from lucidlink.aio import urlbatch

if TYPE_CHECKING:
    from lucidlink.aio.file import BlockRef
    from lucidlink.aio.link import FilespaceLink

_CACHED_AHEAD = 2
_GATHER_MIN = 1 << 20
"""Reads across blocks this large are copied block by block into one buffer."""
_URL_SPAN = 512


class ReadPath:
    """Reading for :class:`AsyncFile` (a mixin: it uses the handle's block list and state)."""

    _link: FilespaceLink
    _io: Any
    _bs: int
    _size: int
    _pos: int
    _base: dict[int, BlockRef]
    _loaded: set[int]
    _fd: int | None
    _readable: bool
    _cur: tuple[int, bytes | bytearray] | None
    _ahead: dict[int, asyncio.Task[bytes | bytearray]]
    _last_slot: int
    _window: int
    _signed: range

    def _check_open(self) -> None:
        raise NotImplementedError

    async def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (all that is left when negative)."""
        self._check_open()
        if not self._readable:
            raise io.UnsupportedOperation("read: the file was not opened for reading")
        if size is None or size < 0:
            size = max(0, self._size - self._pos)
        size = min(size, max(0, self._size - self._pos))
        if size == 0:
            return b""
        first, off = divmod(self._pos, self._bs)
        last = (self._pos + size - 1) // self._bs
        if last > first + 1 and self._last_slot not in (first - 1, first):
            # The caller wants these blocks now: a sequential run, read ahead from its start.
            self._last_slot = first - 1
            self._window = max(self._window, self._link.config.readahead_max_blocks // 2)
        if last > first and size >= _GATHER_MIN:
            return await self._gather(size)
        pieces: list[bytes | bytearray | memoryview] = []
        done = 0
        while done < size:
            slot, off = divmod(self._pos, self._bs)
            take = min(size - done, self._bs - off)
            pieces.append(await self._piece(slot, off, take))
            done += take
            self._pos += take
        if len(pieces) == 1 and isinstance(pieces[0], bytes):
            return pieces[0]
        return b"".join(pieces)

    async def _gather(self, size: int) -> bytes:
        """A large read across blocks: each block copied into the result as it arrives.

        The result grows in a BytesIO, whose ``getvalue`` hands over its buffer without a
        copy. Each block is released as soon as it is copied (not kept until one join at
        the end), so block buffers are recycled by the allocator instead of every block
        and the result faulting in fresh memory: one copy per byte, overlapped with the
        downloads of the blocks read ahead.
        """
        out = io.BytesIO()
        done = 0
        while done < size:
            slot, off = divmod(self._pos, self._bs)
            take = min(size - done, self._bs - off)
            out.write(await self._piece(slot, off, take))
            done += take
            self._pos += take
        return out.getvalue()

    async def readinto(self, buffer: Any) -> int:
        """Read into a writable buffer; return the number of bytes read (0 at end of file)."""
        self._check_open()
        if not self._readable:
            raise io.UnsupportedOperation("read: the file was not opened for reading")
        out = memoryview(buffer).cast("B")
        want = min(len(out), max(0, self._size - self._pos))
        done = 0
        while done < want:
            slot, off = divmod(self._pos, self._bs)
            take = min(want - done, self._bs - off)
            out[done:done + take] = await self._piece(slot, off, take)
            done += take
            self._pos += take
        return done

    async def _piece(self, slot: int, off: int, take: int) -> bytes | bytearray | memoryview:
        """Exactly ``take`` bytes of ``slot`` from ``off`` (zeros past what it holds)."""
        if slot in self._loaded:
            assert self._fd is not None
            data = await anyio.to_thread.run_sync(os.pread, self._fd, take, slot * self._bs + off)
            return data if len(data) == take else data + bytes(take - len(data))
        ref = self._base.get(slot)
        if ref is None:
            return bytes(take)
        block = await self._block(slot, ref)
        n = max(0, min(take, min(ref.used, len(block)) - off))
        if n == take:
            return block if (off == 0 and take == len(block)) else memoryview(block)[off:off + take]
        return bytes(memoryview(block)[off:off + n]) + bytes(take - n)

    async def _block(self, slot: int, ref: BlockRef) -> bytes | bytearray:
        if self._cur is not None and self._cur[0] == slot:
            return self._cur[1]
        sequential = slot in (self._last_slot, self._last_slot + 1)
        self._last_slot = slot
        task = self._ahead.pop(slot, None)
        for stale in [s for s in self._ahead if s < slot]:
            self._ahead.pop(stale).cancel()
        if sequential:
            self._window = min(self._link.config.readahead_max_blocks, max(2, self._window * 2))
            await self._read_ahead(slot)
        else:
            self._window = 0
            for t in self._ahead.values():
                t.cancel()
            self._ahead.clear()
            if task is None and slot not in self._signed:
                # Random access: one hub call signs the URLs of the blocks around (up to
                # _URL_SPAN of them), so the next random reads go straight to the store.
                lo = max(0, slot - _URL_SPAN // 2)
                self._signed = range(lo, lo + _URL_SPAN)
                await urlbatch.prepare_get_urls(
                    self._io, [self._base[s].hash for s in self._signed if s in self._base])
        data = await task if task is not None else await self._io.get(ref.hash, ref.length)
        self._cur = (slot, data)
        return data

    async def _read_ahead(self, slot: int) -> None:
        is_cached = getattr(self._io, "is_cached", None)
        wanted = [
            s for s in range(slot + 1, slot + 1 + self._window)
            if s in self._base and s not in self._ahead and s not in self._loaded
            # Blocks already in the local cache need no deep pipeline: reading two
            # ahead hides the disk, and fewer live buffers mean less allocator churn.
            and (s <= slot + _CACHED_AHEAD or is_cached is None
                 or not is_cached(self._base[s].hash))
        ]
        if not wanted:
            return
        # One hub call signs the URLs of a long stretch ahead, not just this window.
        horizon = [self._base[s].hash for s in range(slot, slot + 64) if s in self._base]
        await self._io.prepare_get_urls(horizon)
        for s in wanted:
            ref = self._base[s]
            self._ahead[s] = asyncio.create_task(self._io.get(ref.hash, ref.length))
