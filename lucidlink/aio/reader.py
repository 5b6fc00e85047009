"""The read path of :class:`lucidlink.aio.file.AsyncFile`: slices of verified blocks,
sequential detection and read-ahead.

A read within one block returns a slice of it; a large read across blocks has each
block received straight into its place in the result, or copied there once when it is
already at hand (see :meth:`ReadPath._gather`). A read that asks
for several blocks at once opens the read-ahead window fully: those blocks are wanted
now, so they are downloaded in parallel (up to ``fs.readahead.max_blocks``).

A small read that does not continue the previous one (random access) of a block that is
not at hand (current, read ahead, or cached) fetches only the chunks it needs, verified
(:mod:`lucidlink.aio.pages`); a read that continues the previous one goes back to whole
blocks and read-ahead.
"""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from lucidlink.aio import pages, urlbatch
from lucidlink.prefault import Prefault

if TYPE_CHECKING:
    from lucidlink.aio.blockref import BlockRef
    from lucidlink.aio.link import FilespaceLink

_CACHED_AHEAD = 2
_GATHER_MIN = 1 << 20
"""Reads across blocks this large are built in one buffer, each block received into its
place (see :meth:`ReadPath._gather`)."""
_URL_SPAN = 512
_PREFAULT_MIN = 8 << 20
"""Large reads' results from this size on are faulted in ahead (:mod:`lucidlink.prefault`)."""
_SIGN_SPAN = 64
"""Block URLs signed per hub call while a large read fetches its blocks."""
_PAGE_MIN_BLOCK = 128 * 1024
"""Blocks this small are read whole (at most two chunks anyway)."""


class ReadPath:
    """Reading for :class:`AsyncFile` (a mixin: it uses the handle's block list and state)."""

    _link: FilespaceLink
    _io: Any
    _bs: int
    _size: int
    _pos: int
    _base: dict[int, BlockRef]
    _loaded: set[int]
    _written: dict[int, tuple[int, memoryview]]
    _fd: int | None
    _readable: bool
    _cur: tuple[int, bytes | bytearray] | None
    _ahead: dict[int, asyncio.Task[bytes | bytearray]]
    _last_slot: int
    _window: int
    _signed: range
    _filling: range = range(0)
    """The slots a large read is fetching straight into its result (not read ahead)."""
    _read_end: int = 0
    """Where the previous read ended: a read starting elsewhere is random access."""
    _random_read: bool = False

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
        self._random_read = self._pos != self._read_end
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
        self._read_end = self._pos
        if len(pieces) == 1 and isinstance(pieces[0], bytes):
            return pieces[0]
        return b"".join(pieces)

    async def _gather(self, size: int) -> bytes:
        """A large read across blocks, each block written once into its place in the result.

        The result is a ``BytesIO`` over ``bytes(size)``: zero pages that the kernel maps
        only when they are first written, and ``getvalue`` hands that buffer over without
        a copy once no view of it is left. A whole block that is not at hand (not the
        current block, not read ahead, not written by this handle) is received straight
        into its place (:meth:`BlockIO.get_into`), up to ``fs.readahead.max_blocks`` at
        once; every other piece is copied in from where it is. The position moves only
        when the whole read succeeded.
        """
        out = io.BytesIO(bytes(size))
        view = out.getbuffer()
        faults: asyncio.Future[int] | None = None
        if size >= _PREFAULT_MIN:  # its pages faulted in by another thread, ahead of the bytes
            prefault = Prefault(view)
            faults = asyncio.ensure_future(anyio.to_thread.run_sync(prefault.run))
        downloaded: list[tuple[str, int, int]] = []
        try:
            await self._fill(view, downloaded)
        finally:
            if faults is not None:
                prefault.stop()
                await asyncio.wait([faults])
            view.release()
        self._read_end = self._pos
        result = out.getvalue()
        if downloaded:  # only a BlockIO downloads in place (see _fill), and it caches later
            # Cached from the returned bytes, which nothing can change any more: the disk
            # writes are not waited for, and no view of the buffer outlived getvalue.
            whole = memoryview(result)
            self._io.cache_later([(digest, whole[at:at + n]) for digest, at, n in downloaded])
        return result

    async def _fill(self, view: memoryview, downloaded: list[tuple[str, int, int]]) -> None:
        """Fill ``view`` (a buffer this handle owns) from the current position on; the blocks
        downloaded into it, uncached, are added to ``downloaded`` as ``(hash, offset, length)``
        in ``view``."""
        get_into = getattr(self._io, "get_into", None)
        start = self._pos
        first_slot, last_slot = start // self._bs, (start + len(view) - 1) // self._bs
        room = asyncio.Semaphore(max(1, self._link.config.readahead_max_blocks))
        tasks: list[asyncio.Task[None]] = []
        placed: dict[str, memoryview] = {}  # a block's first place in the result, by hash
        repeats: list[tuple[memoryview, memoryview]] = []
        failed: list[BaseException] = []  # the first fetch to fail stops the read
        signed_to = first_slot

        async def fetch(digest: str, dst: memoryview, at: int) -> None:
            assert get_into is not None
            try:
                if await get_into(digest, dst, cache=False):
                    downloaded.append((digest, at, len(dst)))
            except BaseException as exc:
                failed.append(exc)
                raise
            finally:
                room.release()

        self._filling = range(first_slot, last_slot + 1)
        try:
            done = 0
            while done < len(view):
                slot, off = divmod(start + done, self._bs)
                take = min(len(view) - done, self._bs - off)
                dst = view[done:done + take]
                done += take
                ref = self._base.get(slot)
                if (get_into is None or ref is None or off or not take == ref.length == ref.used
                        or slot in self._loaded or slot in self._ahead
                        or (self._cur is not None and self._cur[0] == slot)):
                    dst[:] = await self._piece(slot, off, take)
                    continue
                if ref.hash in placed:  # the same block again (dedup): copied once it is in
                    repeats.append((dst, placed[ref.hash]))
                    continue
                placed[ref.hash] = dst
                if slot >= signed_to:  # one hub call signs the URLs of the next stretch
                    signed_to = slot + _SIGN_SPAN
                    await urlbatch.prepare_get_urls(self._io, [
                        self._base[s].hash for s in range(slot, min(signed_to, last_slot + 1))
                        if s in self._base])
                await room.acquire()
                if failed:
                    room.release()
                    raise failed[0]
                tasks.append(asyncio.create_task(fetch(ref.hash, dst, done - take)))
            await asyncio.gather(*tasks)
            for dst, src in repeats:
                dst[:] = src
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            self._filling = range(0)
        self._pos = start + len(view)
        # Keep a sequential stream's read-ahead going past this read.
        self._last_slot = last_slot
        if last_slot + 1 in self._base:
            await self._read_ahead(last_slot)

    async def readinto(self, buffer: Any) -> int:
        """Read into a writable buffer; return the number of bytes read (0 at end of file)."""
        self._check_open()
        if not self._readable:
            raise io.UnsupportedOperation("read: the file was not opened for reading")
        out = memoryview(buffer).cast("B")
        want = min(len(out), max(0, self._size - self._pos))
        self._random_read = self._pos != self._read_end
        done = 0
        while done < want:
            slot, off = divmod(self._pos, self._bs)
            take = min(want - done, self._bs - off)
            out[done:done + take] = await self._piece(slot, off, take)
            done += take
            self._pos += take
        self._read_end = self._pos
        return done

    async def readinto1(self, buffer: Any) -> int:
        """Read into a writable buffer as a raw file does: up to ``len(buffer)`` bytes, fewer
        for a random read (one that does not continue the previous read): then only up
        to the end of the page (:data:`lucidlink.aio.pages.PAGE_SIZE`) that holds the byte
        ``pages.PAGE_MIN`` on, so a small random read through a buffered reader (``open``
        of the blocking API: 1 MiB buffers) fetches a page, not the whole buffer. Returns
        0 only at end of file.
        """
        view = memoryview(buffer).cast("B")
        if self._pos != self._read_end:
            page_end = ((self._pos + pages.PAGE_MIN) // pages.PAGE_SIZE + 1) * pages.PAGE_SIZE
            view = view[:page_end - self._pos]
        return await self.readinto(view)

    async def _piece(self, slot: int, off: int, take: int) -> bytes | bytearray | memoryview:
        """Exactly ``take`` bytes of ``slot`` from ``off`` (zeros past what it holds)."""
        held = self._written.get(slot)
        if held is not None:  # written whole, its upload not landed yet (AsyncFile.write)
            return held[1][off:off + take]
        if slot in self._loaded:
            assert self._fd is not None
            data = await anyio.to_thread.run_sync(os.pread, self._fd, take, slot * self._bs + off)
            return data if len(data) == take else data + bytes(take - len(data))
        ref = self._base.get(slot)
        if ref is None:
            return bytes(take)
        if self._random_read and take <= self._bs // 4 and ref.length >= _PAGE_MIN_BLOCK:
            page = await self._page(slot, ref, off, take)
            if page is not None:
                return page
        block = await self._block(slot, ref)
        n = max(0, min(take, min(ref.used, len(block)) - off))
        if n == take:
            return block if (off == 0 and take == len(block)) else memoryview(block)[off:off + take]
        return bytes(memoryview(block)[off:off + n]) + bytes(take - n)

    async def _page(self, slot: int, ref: BlockRef, off: int, take: int) -> bytes | None:
        """A random small read of a block not at hand: its verified chunks, or ``None``."""
        reader = pages.reader_for(self._io)
        if (reader is None or (self._cur is not None and self._cur[0] == slot)
                or slot in self._ahead or self._io.is_cached(ref.hash)):
            return None
        n = min(take, ref.used - off)
        if n <= 0:
            return bytes(take)

        def around() -> list[str]:
            lo = max(0, slot - pages.DIGEST_BATCH // 2)
            return [self._base[s].hash for s in range(lo, lo + pages.DIGEST_BATCH)
                    if s in self._base and self._base[s].length >= _PAGE_MIN_BLOCK]

        if slot in self._signed:
            info = await reader.lookup(ref.hash, around)
        else:  # the URLs and the digests of the blocks around: two hub calls at once
            _, info = await asyncio.gather(self._sign_around(slot), reader.lookup(ref.hash, around))
        data = None if info is None else await reader.read(ref.hash, ref.length, off, n, info)
        if data is None:
            return None
        # Random access, as in _block: read-ahead stops; a next read that continues this
        # one counts as sequential from this slot.
        self._last_slot = slot
        self._window = 0
        for t in self._ahead.values():
            t.cancel()
        self._ahead.clear()
        return data if n == take else data + bytes(take - n)

    async def _sign_around(self, slot: int) -> None:
        """Have the URLs of up to _URL_SPAN blocks around ``slot`` signed in one hub call, so
        the next random reads go straight to the store."""
        if slot in self._signed:
            return
        lo = max(0, slot - _URL_SPAN // 2)
        self._signed = range(lo, lo + _URL_SPAN)
        await urlbatch.prepare_get_urls(
            self._io, [self._base[s].hash for s in self._signed if s in self._base])

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
            if task is None:
                await self._sign_around(slot)
        data = await task if task is not None else await self._io.get(ref.hash, ref.length)
        self._cur = (slot, data)
        return data

    async def _read_ahead(self, slot: int) -> None:
        is_cached = getattr(self._io, "is_cached", None)
        wanted = [
            s for s in range(slot + 1, slot + 1 + self._window)
            if s in self._base and s not in self._ahead and s not in self._loaded
            and s not in self._filling  # a large read is fetching it into its result
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

    async def readline(self, size: int = -1) -> bytes:
        """Read one line (up to and including ``b"\\n"``)."""
        line = bytearray()
        while size < 0 or len(line) < size:
            chunk_size = 8192 if size < 0 else min(8192, size - len(line))
            start = self._pos
            chunk = await self.read(chunk_size)
            if not chunk:
                break
            nl = chunk.find(b"\n")
            if nl >= 0:
                line += chunk[: nl + 1]
                self._pos = start + nl + 1
                break
            line += chunk
        return bytes(line)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[bytes]:
        while True:
            line = await self.readline()
            if not line:
                return
            yield line
