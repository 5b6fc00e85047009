"""A ``wb`` file the async core has not opened yet: small writes with no trip to the loop.

``with fs.open(path, "wb") as f: f.write(data)`` made two calls into the event-loop
thread (open, then close), each about 60 µs of CPU on a small VM: more than the rest of
a small file's cost. When the metadata cache vouches that ``path`` may be written
(``AsyncFilesystem.can_write_nowait``), the blocking ``open`` hands its raw file a
:class:`DeferredWrite` instead of an open async file. Every write waits in the raw file
(its held writes, :meth:`lucidlink._fileio.RawFile.hold_writes`); at ``close`` the whole
content is queued as one small write from the calling thread
(``AsyncFilesystem.write_file_nowait``).

Anything else (content too large to hold, a ``seek``, ``truncate``, ``flush``, an
unbuffered stream, a queue with no room) opens the file on the loop as the ordinary
``open`` would, replays what was written, and carries on there. Nothing is decided
here: what is queued is exactly what ``write_file`` queues, and the ordinary path
raises what is wrong.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from lucidlink._fileio import AsyncFileLike


class DeferredWrite:
    """An :class:`~lucidlink._fileio.AsyncFileLike` in mode ``wb`` that opens its file
    only when it must (see the module docstring)."""

    mode = "wb"
    private_until_close = True
    """No one sees the file's bytes before it closes (so the raw file may hold writes)."""

    def __init__(self, name: str, opener: Callable[[], Awaitable[AsyncFileLike]],
                 queue_nowait: Callable[[bytes], bool]) -> None:
        """``opener()`` opens the file on the loop; ``queue_nowait(content)`` queues the
        whole content from the calling thread, or answers ``False``."""
        self.name = name
        self.closed = False
        self._opener = opener
        self._queue_nowait = queue_nowait
        self._file: AsyncFileLike | None = None

    def readable(self) -> bool:
        """False: a ``wb`` file."""
        return False

    def writable(self) -> bool:
        """True."""
        return True

    def seekable(self) -> bool:
        """True, as the opened file is."""
        return True

    def tell(self) -> int:
        """The opened file's position; 0 before (the raw file adds what it holds)."""
        return 0 if self._file is None else self._file.tell()

    def close_nowait(self, content: bytes) -> bool:
        """Queue ``content`` as the file's whole content from the calling thread, when
        nothing opened the file yet; ``False`` (nothing done) otherwise: then ``close``."""
        if self._file is not None or self.closed or not self._queue_nowait(content):
            return False
        self.closed = True
        return True

    async def opened(self) -> AsyncFileLike:
        """The file, opened on the loop now if it was not yet."""
        if self._file is None:
            self._file = await self._opener()
        return self._file

    async def read(self, size: int = -1) -> bytes:
        """As the opened file's (which refuses: ``wb``)."""
        return await (await self.opened()).read(size)

    async def readinto(self, buf: Any) -> int:
        """As the opened file's (which refuses: ``wb``)."""
        return await (await self.opened()).readinto(buf)

    async def write(self, data: bytes | memoryview) -> int:
        """Write to the opened file."""
        return await (await self.opened()).write(data)

    async def seek(self, offset: int, whence: int = 0) -> int:
        """Seek in the opened file."""
        return await (await self.opened()).seek(offset, whence)

    async def truncate(self, size: int | None = None) -> int:
        """Truncate the opened file."""
        return await (await self.opened()).truncate(size)

    async def flush(self) -> None:
        """Flush the opened file."""
        await (await self.opened()).flush()

    async def close(self) -> None:
        """Close the file, opening it first if it was not (an empty file is still made)."""
        if self.closed:
            return
        try:
            await (await self.opened()).close()
        finally:
            self.closed = True
