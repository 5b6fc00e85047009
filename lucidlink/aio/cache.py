"""The daemon's bounded on-disk block cache (LRU), in its root dir.

Blocks are content-addressed, so a cached block is never stale. Only verified bytes
are cached; files are written to a temporary name and renamed, so a crash never
leaves a partial block under a real name. All disk work runs in threads.
"""

from __future__ import annotations

import os
import uuid
from collections import OrderedDict
from pathlib import Path

import anyio.to_thread


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

    async def get(self, filespace_id: str, digest: str) -> bytes | None:
        """The cached bytes of a block, or ``None``."""
        key = self._key(filespace_id, digest)
        size = self._index.get(key)
        if size is None:
            return None
        self._index.move_to_end(key)
        path = self._path(key)

        def read() -> bytes:
            # One pread of the known size: no buffered-reader probing for EOF and no
            # resize of an over-allocated buffer.
            fd = os.open(path, os.O_RDONLY)
            try:
                return os.pread(fd, size, 0)
            finally:
                os.close(fd)

        try:
            data = await anyio.to_thread.run_sync(read)
        except FileNotFoundError:
            data = b""
        if len(data) != size:
            self._bytes -= self._index.pop(key, 0)
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
