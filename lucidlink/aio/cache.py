"""The daemon's bounded on-disk block cache (LRU), in its root dir.

Blocks are content-addressed, so a cached block is never stale. Only verified bytes
are cached; files are written to a temporary name and renamed, so a crash never
leaves a partial block under a real name. A cached block is verified again (length
and SHA-256) every time it is read, in the same thread trip as the read: a damaged
entry is dropped and fetched again, never served. All disk work runs in threads.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections import OrderedDict
from pathlib import Path

import anyio.to_thread

from lucidlink._log import get_logger

log = get_logger("lucidlink")


class BlockCache:
    """At most ``max_bytes`` of blocks under ``root``, least recently used evicted first."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._index: OrderedDict[str, int] = OrderedDict()
        self._bytes = 0

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

        With ``digest`` (content-addressed blocks) the bytes must hash to it; entries
        without one (Connect ranges, guarded by the object's ETag when fetched) are
        checked by length only.
        """
        entry = self._key(filespace_id, key)
        size = self._index.get(entry)
        if size is None:
            return None
        self._index.move_to_end(entry)
        path = self._path(entry)

        def read() -> bytes | None:
            # One pread of the known size (no buffered-reader probing for EOF), then
            # the check, in one trip to a thread (hashlib frees the GIL).
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                return None
            try:
                data = os.pread(fd, size, 0) if os.fstat(fd).st_size == size else b""
            finally:
                os.close(fd)
            if len(data) != size or (digest is not None and hashlib.sha256(data).hexdigest() != digest):
                path.unlink(missing_ok=True)
                return None
            return data

        data = await anyio.to_thread.run_sync(read)
        if data is None:
            log.warning("lucidlink.cache.damaged", entry=entry)
            if self._index.get(entry) == size:
                self._bytes -= self._index.pop(entry)
            return None
        return data

    def contains(self, filespace_id: str, digest: str) -> bool:
        """Whether a block is cached."""
        return self._key(filespace_id, digest) in self._index

    async def put(self, filespace_id: str, digest: str, data: bytes) -> None:
        """Cache verified bytes of a block."""
        if len(data) > self.max_bytes:
            return
        key = self._key(filespace_id, digest)
        if key in self._index:
            self._index.move_to_end(key)
            return
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{uuid.uuid4().hex}")
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)

        await anyio.to_thread.run_sync(write)
        if key not in self._index:
            self._index[key] = len(data)
            self._bytes += len(data)
        await self._evict()

    async def _evict(self) -> None:
        victims = []
        while self._bytes > self.max_bytes and self._index:
            key, size = self._index.popitem(last=False)
            self._bytes -= size
            victims.append(self._path(key))
        if victims:
            await anyio.to_thread.run_sync(lambda: [p.unlink(missing_ok=True) for p in victims])

    @property
    def size(self) -> int:
        """Bytes currently cached."""
        return self._bytes
