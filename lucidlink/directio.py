"""Write-once files (staging, the block cache, the hub's blocks): large writes skip the page cache.

Two kinds of file are written once and read back rarely, if at all:

* a staging file: read back by an upload that failed, a partial overwrite, or a read
  of a slot the handle changed;
* a block cache file: read back only when the block is read again.

Copying every byte into fresh page-cache pages that nobody may read again was the
daemon's largest CPU cost in a large write and in a cold read. On a 2-vCPU VM, 256 MiB
of new pages cost 0.6-0.9 s of system time, about as much as the hub spent on the
same bytes. It also evicts the user's own page cache while a large file streams through.

So a write of at least :data:`DIRECT_MIN` bytes, at an offset and of a length that are
multiples of :data:`ALIGN`, is copied into an aligned buffer and written with
``O_DIRECT``, straight to the device. The buffer is reused, so its pages stay warm.
What remains of a write goes through the page cache as before.

Coherence is the kernel's: a direct write first writes back and drops the cached pages
of its range, so a buffered read of the file afterwards sees its bytes. Durability does
not change: fsync is per file, whichever descriptor wrote. Where the OS or the file
system refuses ``O_DIRECT`` (macOS has no such flag; tmpfs and some network file
systems answer ``EINVAL``), every write goes through the page cache, and the refusal is
remembered.

:class:`DirectReader` reads such a file back whole (the hub serving a block) past the
page cache too, into the same kind of reused aligned buffer. On this project's 2-vCPU
VM the first touch of the fresh page-cache pages a buffered read fills cost 0.3-0.5 s of
system time per 256 MiB, paid by whoever copied them first: the client's receive, when
the hub answered with ``sendfile``.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

ALIGN = 4096
"""Offset, length and memory alignment of direct writes (a page: enough for 512-byte and
4Kn devices)."""
DIRECT_MIN = 1024 * 1024
"""Smaller writes go through the page cache (their copy costs little; a direct write waits
for the device)."""
_PIECE = 4 * 1024 * 1024
"""Size of one aligned buffer: a direct write goes out in pieces of at most this."""
_IDLE_BUFFERS = 4
Buffer = bytes | bytearray | memoryview
"""What a write takes: bytes, or a view of them."""
_O_DIRECT = getattr(os, "O_DIRECT", 0)
_IOV_MAX = 1024
"""Pieces per ``pwritev`` call (POSIX guarantees at least 16; Linux and macOS take 1024)."""


class _PastThePageCache:
    """What :class:`DirectWriter` and :class:`DirectReader` share: the switch, remembered
    refusals and the aligned buffers."""

    def __init__(self, *, direct: bool = True, buffers: AlignedBuffers | None = None) -> None:
        self._direct = direct and _O_DIRECT != 0
        self._buffers = buffers or AlignedBuffers()

    @property
    def direct(self) -> bool:
        """Whether large aligned transfers still go past the page cache (no refusal seen)."""
        return self._direct

    def _open_direct(self, path: Path, flags: int) -> int:
        """An ``O_DIRECT`` descriptor of ``path``; ``-1`` when the file system refuses it
        (remembered: no later transfer tries again)."""
        try:
            return os.open(path, flags | _O_DIRECT)
        except OSError as exc:
            if not self._refused(exc):
                raise
            return -1

    def _refused(self, exc: OSError) -> bool:
        """Whether ``exc`` is the file system refusing ``O_DIRECT`` or its alignment
        (``EINVAL``); if so, remembered."""
        if exc.errno != errno.EINVAL:
            return False
        self._direct = False
        return True

    def close(self) -> None:
        """Free the idle buffers."""
        self._buffers.close()


class DirectWriter(_PastThePageCache):
    """Writes into write-once files, directly where it can (one per daemon; thread-safe)."""

    def pwrite(self, fd: int, path: Path, data: Buffer | Sequence[Buffer], pos: int) -> None:
        """Write all of ``data`` at ``pos`` of the file open as ``fd`` (at ``path``).

        ``data`` is the bytes, or the pieces they are in, in order (an upload as it was
        received: never joined). Call in a worker thread. The aligned middle of a large
        write goes through a second, ``O_DIRECT`` descriptor of ``path``; the rest
        through ``fd``.
        """
        pieces = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
        views = [memoryview(p).cast("B") for p in pieces if len(p)]
        total = sum(len(v) for v in views)
        start = -pos % ALIGN
        end = start + max(0, total - start) // ALIGN * ALIGN
        if not self._direct or end - start < DIRECT_MIN:
            _pwrite_pieces(fd, views, pos)
            return
        _pwrite_pieces(fd, _cut(views, 0, start), pos)
        middle = _cut(views, start, end)
        if not self._write_direct(path, middle, pos + start):
            _pwrite_pieces(fd, middle, pos + start)
        _pwrite_pieces(fd, _cut(views, end, total), pos + end)

    def _write_direct(self, path: Path, views: list[memoryview], pos: int) -> bool:
        """Write ``views`` (aligned in all) at aligned ``pos`` with ``O_DIRECT``; ``False``
        when the file system refuses it."""
        dfd = self._open_direct(path, os.O_WRONLY)
        if dfd < 0:
            return False
        buffer = self._buffers.take()
        try:
            with memoryview(buffer) as out:
                filled = written = 0
                for view in views:
                    while view:
                        take = min(len(view), _PIECE - filled)
                        out[filled:filled + take] = view[:take]
                        filled += take
                        view = view[take:]
                        if filled == _PIECE:
                            _pwrite_pieces(dfd, [out], pos + written)
                            written += filled
                            filled = 0
                if filled:  # aligned too: the whole is, and so was every full buffer
                    _pwrite_pieces(dfd, [out[:filled]], pos + written)
            return True
        except OSError as exc:
            # EINVAL: the file system wants another alignment. The caller writes the whole
            # range through the page cache, over whatever got here.
            if not self._refused(exc):
                raise
            return False
        finally:
            self._buffers.give(buffer)
            os.close(dfd)


class AlignedBuffers:
    """Page-aligned buffers of :data:`_PIECE` bytes, reused (their pages stay warm); thread-safe.

    At most ``idle`` of them are kept while unused; the others are unmapped when given back.
    """

    def __init__(self, idle: int = _IDLE_BUFFERS) -> None:
        self._keep = idle
        self._idle: list[mmap.mmap] = []
        self._lock = threading.Lock()
        self.mapped = 0
        """Buffers mapped so far (each new one is fresh memory; tests count reuse)."""

    def take(self) -> mmap.mmap:
        """An idle buffer, or a new one."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self.mapped += 1
        return mmap.mmap(-1, _PIECE)  # anonymous: page-aligned, as O_DIRECT needs

    def give(self, buffer: mmap.mmap) -> None:
        """Take back a buffer from :meth:`take` (no view of it may be left)."""
        with self._lock:
            if len(self._idle) < self._keep:
                self._idle.append(buffer)
                return
        _unmap(buffer)

    def close(self) -> None:
        """Free the idle buffers."""
        with self._lock:
            idle, self._idle = self._idle, []
        for buffer in idle:
            _unmap(buffer)


class LentBuffer:
    """A file's bytes in a pooled aligned buffer, lent by :meth:`DirectReader.lend` until
    :meth:`give_back`: sent from there, they are never copied out."""

    def __init__(self, pool: AlignedBuffers, buffer: mmap.mmap, size: int) -> None:
        self._pool: AlignedBuffers | None = pool
        self._buffer = buffer
        self._whole = memoryview(buffer)
        self.view = self._whole[:size]
        """The bytes (valid until :meth:`give_back`)."""

    def give_back(self, reuse: bool) -> None:
        """End the loan (once). ``reuse``: no one holds a view of :attr:`view` any more, so
        the buffer may serve the next reader; otherwise it is dropped, and unmapped once
        the last view of it goes."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        self.view.release()
        self._whole.release()
        if reuse:
            pool.give(self._buffer)
        else:
            _unmap(self._buffer)


class DirectReader(_PastThePageCache):
    """Reads whole write-once files past the page cache.

    One per owner (the hub's local block store); thread-safe. :meth:`read` blocks on the
    disk: call it in a worker thread.
    """

    def read(self, path: Path, limit: int) -> bytes | None:
        """The whole file at ``path``; ``None`` when it is missing or longer than ``limit``.

        A file of at least :data:`DIRECT_MIN` bytes is read with ``O_DIRECT``, in pieces
        of :data:`_PIECE` bytes, into a reused aligned buffer: no fresh page-cache page
        is filled. A smaller one, or where the file system refuses, goes through the
        page cache. (``preadv2`` with ``RWF_NOWAIT`` cannot tell first whether the page
        cache holds a file: on a miss it still starts the readahead that fills it.)
        """
        with _opened(path) as (fd, size):
            if fd < 0 or size > limit:
                return None
            return self._read_opened(fd, path, size)

    def _read_opened(self, fd: int, path: Path, size: int) -> bytes:
        if not self._direct or size < DIRECT_MIN:
            return _pread_all(fd, size)
        return self._read_pieces(fd, path, size)

    def lend(self, path: Path, limit: int) -> LentBuffer | bytes | None:
        """Like :meth:`read`, but a file of one aligned piece read past the page cache
        (at least :data:`DIRECT_MIN` bytes, at most :data:`_PIECE`) comes back in the
        pooled buffer it was read into, not copied out: the caller sends it from there
        and gives it back (:meth:`LentBuffer.give_back`). Anything else is ``bytes``."""
        with _opened(path) as (fd, size):
            if fd < 0 or size > limit:
                return None
            if not self._direct or not DIRECT_MIN <= size <= _PIECE:
                return self._read_opened(fd, path, size)
            dfd = self._open_direct(path, os.O_RDONLY)
            if dfd < 0:
                return _pread_all(fd, size)
            buffer = self._buffers.take()
            lent = LentBuffer(self._buffers, buffer, size)
            try:
                with memoryview(buffer) as out:
                    done = self._direct_piece(dfd, path, out, 0, size)
            except BaseException:
                lent.give_back(reuse=True)
                raise
            finally:
                os.close(dfd)
            if not done:
                lent.give_back(reuse=True)
                return _pread_all(fd, size)
            return lent

    def read_range(self, path: Path, ranges: slice, limit: int) -> tuple[slice, int, bytes] | None:
        """``(ranges, file size, the bytes of the range)`` of the file at ``path``, through
        the page cache (a small range: a page or a chunk); ``None`` when the file is
        missing, the range is open at its start or empty, or longer than ``limit``."""
        with _opened(path) as (fd, size):
            if fd < 0:
                return None
            start, stop, _ = ranges.indices(size)
            if ranges.start is None or start >= stop or stop - start > limit:
                return None
            return ranges, size, _pread_all(fd, stop - start, start)

    def _read_pieces(self, fd: int, path: Path, size: int) -> bytes:
        pieces: list[bytes] = []
        dfd = -1
        buffer = self._buffers.take()
        try:
            with memoryview(buffer) as out:
                for pos in range(0, size, _PIECE):
                    want = min(_PIECE, size - pos)
                    if dfd < 0 and self._direct:
                        dfd = self._open_direct(path, os.O_RDONLY)
                    if dfd < 0 or not self._direct_piece(dfd, path, out, pos, want):
                        pieces.append(_pread_all(fd, want, pos))
                    else:
                        pieces.append(out[:want].tobytes())
        finally:
            self._buffers.give(buffer)
            if dfd >= 0:
                os.close(dfd)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _direct_piece(self, dfd: int, path: Path, out: memoryview, pos: int, want: int) -> bool:
        """Read ``want`` bytes at aligned ``pos`` into ``out`` past the page cache; ``False``
        when the file system refuses (the caller reads them through the page cache)."""
        rounded = -(-want // ALIGN) * ALIGN  # whole pages: the end of the file stops it short
        done = 0
        try:
            while done < want:
                got = os.preadv(dfd, [out[done:rounded]], pos + done)
                if got == 0:
                    raise OSError(errno.EIO,
                                  f"{path} ended {want - done} bytes early; it changed while read")
                done += got
                if done < want and done % ALIGN:  # resuming off alignment is not allowed
                    return False
        except OSError as exc:
            if not self._refused(exc):
                raise
            return False
        return True


def _unmap(buffer: mmap.mmap) -> None:
    # A view of it may still be alive (held by an exception's traceback): then the
    # collector unmaps it with the view, and this close must not mask that exception.
    with contextlib.suppress(BufferError):
        buffer.close()


def _cut(views: list[memoryview], start: int, end: int) -> list[memoryview]:
    """The views covering bytes ``[start, end)`` of ``views`` one after the other."""
    out = []
    at = 0
    for view in views:
        lo, hi = max(start - at, 0), min(end - at, len(view))
        if lo < hi:
            out.append(view[lo:hi])
        at += len(view)
        if at >= end:
            break
    return out


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[tuple[int, int]]:
    """``(descriptor, size)`` of the file at ``path`` for reading, closed on exit;
    ``(-1, 0)`` when there is no such file."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield -1, 0
        return
    try:
        yield fd, os.fstat(fd).st_size
    finally:
        os.close(fd)


def _pread_all(fd: int, size: int, pos: int = 0) -> bytes:
    """``size`` bytes at ``pos`` of ``fd`` through the page cache (a short read is resumed)."""
    data = os.pread(fd, size, pos)
    if len(data) == size:
        return data
    pieces = [data]
    done = len(data)
    while done < size:
        more = os.pread(fd, size - done, pos + done)
        if not more:
            raise OSError(errno.EIO,
                          f"the file ended {size - done} bytes early; it changed while read")
        pieces.append(more)
        done += len(more)
    return b"".join(pieces)


def _pwrite_pieces(fd: int, views: list[memoryview], pos: int) -> None:
    """Write ``views`` one after the other from ``pos``, with as few system calls as
    ``pwritev`` allows (it may write fewer bytes than asked: the rest goes again)."""
    views = [v for v in views if len(v)]
    while views:
        batch = views[:_IOV_MAX]
        written = os.pwrite(fd, batch[0], pos) if len(batch) == 1 else os.pwritev(fd, batch, pos)
        pos += written
        done = 0
        while done < len(batch) and written >= len(batch[done]):
            written -= len(batch[done])
            done += 1
        views = views[done:]
        if written:  # a short write ended inside this piece
            views[0] = views[0][written:]
