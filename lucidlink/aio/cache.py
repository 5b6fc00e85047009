"""The daemon's bounded on-disk block cache (LRU), in its root dir.

Blocks are content-addressed, so a cached block is never stale. Only verified bytes
are cached; files are written to a temporary name and renamed, so a crash never
leaves a partial block under a real name. All disk work runs in threads.

Writes are off the reader's critical path: :meth:`BlockCache.put` indexes the bytes at
once and writes them in the background (at most ``_PENDING_MAX`` bytes waiting; a
pending entry is served from memory). :meth:`BlockCache.put_later` does the same for
the blocks of a large read, as views of its immutable result, once that read has
returned. A block file is written past the page cache
(:mod:`lucidlink.directio`): a cold read no longer copies every byte into fresh
page-cache pages, and the first re-read of a block reads it from the disk.

A content-addressed entry is checked against its SHA-256 on the first read of this
process (and after every change to the file); the check is remembered with the file's
identity: inode, size, mtime and ctime. A later read whose ``fstat`` matches skips the
full hash and checks a sample instead (a keyed BLAKE2b of ``_SAMPLES`` windows at random
offsets chosen at verification). Any write to the file through the OS changes its ctime
(which user space cannot set back), so a file rewritten, truncated, or damaged by a
program is fully re-verified; damage below the file system (bit rot) is caught when it
touches a sampled window, and in any case on the first read of the next process. A
damaged entry is dropped and fetched again, never served.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import anyio.to_thread
import attrs

from lucidlink._log import get_logger
from lucidlink.aio._util import run_in_thread_on
from lucidlink.directio import DirectWriter

log = get_logger("lucidlink")

_PENDING_MAX = 64 * 1024 * 1024
"""Bytes of cache writes waiting for the disk before ``put`` waits for them."""
_SAMPLES = 8
_SAMPLE_BYTES = 4096
_KEY = os.urandom(16)  # per process: a sample digest cannot be forged from outside
_RNG = random.Random(os.urandom(16))  # its own: the global one belongs to the application


@attrs.frozen
class _Verified:
    """A cache file whose bytes hashed to their digest, and how to recognise it again."""

    ident: tuple[int, int, int, int]  # inode, size, mtime_ns, ctime_ns
    offsets: tuple[int, ...]
    sample: bytes


def _ident(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _sample(data: bytes | bytearray | memoryview, offsets: tuple[int, ...]) -> bytes:
    view = memoryview(data)
    h = hashlib.blake2b(key=_KEY, digest_size=16)
    for off in offsets:
        h.update(view[off:off + _SAMPLE_BYTES])
    return h.digest()


def _remember(st: os.stat_result, data: bytes | bytearray | memoryview) -> _Verified:
    """What a later read compares with (call with bytes known to be good)."""
    top = max(0, len(data) - _SAMPLE_BYTES)
    offsets = tuple(sorted({0, top, *(_RNG.randint(0, top) for _ in range(_SAMPLES - 2))}))
    return _Verified(_ident(st), offsets, _sample(data, offsets))


class BlockCache:
    """At most ``max_bytes`` of blocks under ``root``, least recently used evicted first."""

    def __init__(self, root: Path, max_bytes: int, writer: DirectWriter | None = None) -> None:
        self.root = root
        self.max_bytes = max_bytes
        # Block files are written once and read again only by a re-read: the daemon's
        # writer puts them past the page cache (without one, writes are buffered).
        self._writer = writer or DirectWriter(direct=False)
        self._index: OrderedDict[str, int] = OrderedDict()
        self._bytes = 0
        self._verified: dict[str, _Verified] = {}
        self._pending: dict[str, bytes | bytearray | memoryview] = {}  # indexed, not yet on disk
        self._pending_bytes = 0
        self._writers: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()

    def _key(self, filespace_id: str, digest: str) -> str:
        return f"{filespace_id}/{digest}"

    def _path(self, key: str) -> Path:
        return self.root / key

    async def open(self) -> None:
        """Index what a previous run left (oldest access first)."""

        def scan() -> list[tuple[float, str, int]]:
            self.root.mkdir(parents=True, exist_ok=True)
            found = []
            for fs_dir in self.root.iterdir():
                if not fs_dir.is_dir():
                    continue
                for f in fs_dir.iterdir():
                    if f.name.startswith("."):
                        f.unlink(missing_ok=True)
                        continue
                    st = f.stat()
                    found.append((st.st_atime, f"{fs_dir.name}/{f.name}", st.st_size))
            return sorted(found)

        for _, key, size in await anyio.to_thread.run_sync(scan):
            self._index[key] = size
            self._bytes += size
        await self._evict()

    async def get(self, filespace_id: str, key: str, *, digest: str | None = None) -> bytes | None:
        """The cached bytes under ``key``, or ``None``.

        With ``digest`` (content-addressed blocks) the bytes must hash to it (fully once,
        then a sample while the file is unchanged: see the module's docstring); entries
        without one (Connect ranges, guarded by the object's ETag when fetched) are
        checked by length only.
        """
        data = await self._read(filespace_id, key, digest, None)
        assert data is None or isinstance(data, bytes)
        return data

    async def get_into(self, filespace_id: str, key: str, into: memoryview, *,
                       digest: str | None = None) -> bool:
        """Read the cached bytes under ``key`` straight into ``into``, checked as
        :meth:`get` checks them; ``False`` (and ``into`` undefined) when the entry is not
        cached, not ``len(into)`` bytes long, or damaged."""
        return await self._read(filespace_id, key, digest, into) is not None

    async def _read(self, filespace_id: str, key: str, digest: str | None,
                    into: memoryview | None) -> bytes | memoryview | None:
        entry = self._key(filespace_id, key)
        size = self._index.get(entry)
        if size is None or (into is not None and len(into) != size):
            return None
        self._index.move_to_end(entry)
        pending = self._pending.get(entry)
        if pending is not None:
            if into is not None:
                into[:] = pending
                return into
            # A copy, as a read of the file would be: a downloaded block is a bytearray
            # shared with its readers, and what the cache gives out is immutable.
            return pending if isinstance(pending, bytes) else bytes(pending)
        path = self._path(entry)
        known = self._verified.get(entry)

        def read(dst: memoryview | None) -> tuple[bool, bytes | None, _Verified | None]:
            # One pread of the known size (no buffered-reader probing for EOF), then
            # the check, in one trip to a thread (hashlib frees the GIL): whether the
            # bytes are good, and those bytes unless they were read into ``dst`` (the
            # thread returns no view of a caller's buffer).
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                return False, None, None
            data: bytes | memoryview = b""
            try:
                st = os.fstat(fd)
                if st.st_size == size:
                    if dst is None:
                        data = os.pread(fd, size, 0)
                    elif os.preadv(fd, [dst], 0) == size:
                        data = dst
            finally:
                os.close(fd)
            if len(data) != size:
                path.unlink(missing_ok=True)
                return False, None, None
            read_bytes = data if isinstance(data, bytes) else None
            if digest is None:
                return True, read_bytes, None
            if known is not None and known.ident == _ident(st):
                if _sample(data, known.offsets) == known.sample:
                    return True, read_bytes, known
            elif hashlib.sha256(data).hexdigest() == digest:
                return True, read_bytes, _remember(st, data)
            path.unlink(missing_ok=True)
            return False, None, None

        if into is None:
            good, read_bytes, verified = await anyio.to_thread.run_sync(read, None)
        else:
            good, read_bytes, verified = await run_in_thread_on(into, read)
        if not good:
            log.warning("lucidlink.cache.damaged", entry=entry)
            self._verified.pop(entry, None)
            if self._index.get(entry) == size:
                self._bytes -= self._index.pop(entry)
            return None
        if verified is not None:
            self._verified[entry] = verified
        return into if into is not None else read_bytes

    def contains(self, filespace_id: str, digest: str) -> bool:
        """Whether a block is cached."""
        return self._key(filespace_id, digest) in self._index

    async def put(self, filespace_id: str, digest: str, data: bytes | bytearray | memoryview, *,
                  wait: bool = False) -> None:
        """Cache verified bytes of a block: indexed at once, written in the background.

        With ``wait``, return only once the write is over (or failed): the cache then no
        longer holds ``data``, so the caller may hand that memory on.
        """
        if len(data) > self.max_bytes:
            return
        key = self._key(filespace_id, digest)
        if key in self._index:
            self._index.move_to_end(key)
            return
        while self._pending_bytes and self._pending_bytes + len(data) > _PENDING_MAX:
            self._room.clear()
            await self._room.wait()
            if key in self._index:
                return
        self._index[key] = len(data)
        self._bytes += len(data)
        self._pending[key] = data
        self._pending_bytes += len(data)
        task = asyncio.create_task(self._write(key, data))
        self._writers.add(task)
        task.add_done_callback(self._writers.discard)
        await self._evict()
        if wait:
            await asyncio.shield(task)

    async def room_for_later(self) -> None:
        """Wait while more than ``_PENDING_MAX`` bytes wait for the disk: the backpressure
        of :meth:`put_later`, taken before each download whose block it will cache."""
        while self._pending_bytes > _PENDING_MAX:
            self._room.clear()
            await self._room.wait()

    def put_later(self, filespace_id: str, blocks: Sequence[tuple[str, memoryview]]) -> None:
        """Cache verified blocks held in immutable memory (views of a ``bytes`` object: a
        large read's result, once it is returned), without waiting for the disk.

        Each block is indexed at once and served from that memory until its file is
        written; the files are written one after the other in the background
        (:meth:`drain` waits for them). Each download they come from should have waited
        for :meth:`room_for_later`, so that a stream of large reads cannot outrun the
        disk without bound.
        """
        queued: list[tuple[str, memoryview]] = []
        for digest, data in blocks:
            key = self._key(filespace_id, digest)
            if len(data) > self.max_bytes or key in self._index or key in self._pending:
                continue
            self._index[key] = len(data)
            self._bytes += len(data)
            self._pending[key] = data
            self._pending_bytes += len(data)
            queued.append((key, data))
        if queued:
            task = asyncio.create_task(self._write_all(queued))
            self._writers.add(task)
            task.add_done_callback(self._writers.discard)

    async def _write_all(self, queued: list[tuple[str, memoryview]]) -> None:
        await self._evict()
        for key, data in queued:
            await self._write(key, data)

    async def _write(self, key: str, data: bytes | bytearray | memoryview) -> None:
        path = self._path(key)

        def write(view: memoryview) -> _Verified | None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{uuid.uuid4().hex}")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    self._writer.pwrite(fd, tmp, view, 0)
                    os.replace(tmp, path)
                    # After the rename, which moves the ctime: the identity a read compares.
                    st = os.fstat(fd)
                finally:
                    os.close(fd)
            except OSError as exc:  # a full disk costs a later download, nothing more
                log.warning("lucidlink.cache.write_failed", entry=key, error=str(exc))
                return None
            return _remember(st, view)  # the bytes were verified before they came here

        try:
            verified = await run_in_thread_on(data, write)
        finally:
            self._pending.pop(key, None)
            self._pending_bytes -= len(data)
            self._room.set()
        if verified is None:
            if self._index.get(key) == len(data):
                self._bytes -= self._index.pop(key)
        elif key in self._index:
            self._verified[key] = verified
        else:  # evicted while it was being written
            await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))

    async def drain(self) -> None:
        """Wait for the background cache writes (tests, orderly shutdown)."""
        while self._writers:
            await asyncio.gather(*list(self._writers), return_exceptions=True)

    async def _evict(self) -> None:
        victims = []
        while self._bytes > self.max_bytes and self._index:
            key, size = self._index.popitem(last=False)
            self._bytes -= size
            self._verified.pop(key, None)
            if self._pending.get(key) is None:
                victims.append(self._path(key))
        if victims:
            await anyio.to_thread.run_sync(_unlink_all, victims)

    @property
    def size(self) -> int:
        """Bytes currently cached."""
        return self._bytes


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
