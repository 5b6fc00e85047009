"""The file objects of :class:`~lucidlink.fsspec.LucidLinkFileSystem`.

``open`` returns the standard :mod:`io` stack over the core's own file:
:class:`io.BufferedReader` / :class:`io.BufferedWriter` / :class:`io.BufferedRandom`
(subclassed here to carry ``fs``/``path``/``size`` and transaction hooks) over
:class:`lucidlink._fileio.RawFile`, the SDK's ``io.RawIOBase`` adapter of an async
file. ``open_async`` returns that async file, :class:`LucidLinkAsyncFile`: the core's
:class:`~lucidlink.aio.AsyncFile` plus the commit and cache invalidation fsspec
expects when a written file closes.
"""

from __future__ import annotations

import io
from types import TracebackType
from typing import TYPE_CHECKING, Any

from lucidlink._fileio import HandoffBufferedWriter, RawFile
from lucidlink.aio.file import AsyncFile
from lucidlink.aio.filespace import AsyncFilespace

if TYPE_CHECKING:
    from lucidlink.fsspec.filesystem import LucidLinkFileSystem

#: Bytes moved per step by put/get and cross-filespace copies.
CHUNK = 4 * 1024 * 1024


async def next_chunk(afile: AsyncFile) -> bytes:
    """The next :data:`CHUNK` bytes of a file being streamed (``b""`` at the end)."""
    buffer = bytearray(min(CHUNK, max(0, afile.size - afile.tell())))
    if buffer:
        del buffer[await afile.readinto(buffer) :]
    return bytes(buffer)


class LucidLinkAsyncFile:
    """An open file of a filespace for fsspec: the core's :class:`AsyncFile`, plus the
    commit and cache invalidation fsspec expects when a written file closes.

    Returned by ``await fs.open_async(path, mode)``; ``fs.open`` wraps it for blocking
    use. Methods are those of :class:`~lucidlink.aio.AsyncFile`.
    """

    def __init__(
        self, fs: LucidLinkFileSystem, filespace: AsyncFilespace, path: str, afile: AsyncFile
    ) -> None:
        self.fs = fs
        self.filespace = filespace
        self.path = path
        self.afile = afile

    @property
    def name(self) -> str:
        """The fsspec path, ``<workspace>/<filespace>/<path>``."""
        return self.path

    @property
    def mode(self) -> str:
        """The binary mode the file was opened with."""
        return self.afile.mode

    @property
    def closed(self) -> bool:
        """Whether the file is closed."""
        return self.afile.closed

    @property
    def size(self) -> int:
        """The file's size as this handle sees it."""
        return self.afile.size

    def readable(self) -> bool:
        """Whether the file was opened for reading."""
        return self.afile.readable()

    def writable(self) -> bool:
        """Whether the file was opened for writing."""
        return self.afile.writable()

    def seekable(self) -> bool:
        """Always ``True``."""
        return self.afile.seekable()

    def tell(self) -> int:
        """The current position."""
        return self.afile.tell()

    async def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (the rest of the file when negative)."""
        return await self.afile.read(size)

    async def readinto(self, buffer: Any) -> int:
        """Read into a writable buffer; return the count (0 at end of file)."""
        return await self.afile.readinto(buffer)

    async def write(self, data: Any) -> int:
        """Write bytes; return how many."""
        return await self.afile.write(data)

    async def seek(self, offset: int, whence: int = 0) -> int:
        """Move the position (whence 0, 1 or 2); return it."""
        return await self.afile.seek(offset, whence)

    async def truncate(self, size: int | None = None) -> int:
        """Resize the file (default: to the position)."""
        return await self.afile.truncate(size)

    async def flush(self) -> None:
        """Nothing to do: written bytes are staged at once; ``close`` commits them."""
        await self.afile.flush()

    async def close(self) -> None:
        """Close; a written file is committed before this returns (``commit_on_close``)."""
        if self.afile.closed:
            return
        writable = self.afile.writable()
        try:
            await self.afile.close(wait=writable and self.fs.commit_on_close)
        finally:
            if writable:
                self.fs.invalidate_cache(self.path)

    async def abort(self) -> None:
        """Close without committing anything this handle wrote (a failed put or copy)."""
        await self.afile.abort()

    async def __aenter__(self) -> LucidLinkAsyncFile:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<LucidLinkAsyncFile {self.path!r} mode={self.mode!r}{state}>"


class _FileMixin:
    """fsspec's file attributes on the :mod:`io` buffered classes."""

    def __init__(
        self,
        raw: RawFile,
        buffer_size: int,
        *,
        fs: LucidLinkFileSystem,
        path: str,
        transaction_path: str | None = None,
    ) -> None:
        super().__init__(raw, buffer_size)  # type: ignore[call-arg]  # the io class's
        self.fs = fs
        self.path = path
        self._transaction_path = transaction_path

    @property
    def size(self) -> int:
        """The file's size as this handle sees it (before buffered writes are flushed)."""
        raw: RawFile = getattr(self, "raw")  # noqa: B009  # the io class's, typed there
        afile = raw.async_file
        assert isinstance(afile, LucidLinkAsyncFile)
        return afile.size

    def info(self) -> dict[str, Any]:
        """``fs.info`` of the file."""
        return self.fs.info(self.path)  # type: ignore[no-any-return]

    def commit(self) -> None:
        """End of an fsspec transaction: move the written file into place (one rename)."""
        if self._transaction_path is not None:
            self.fs.mv_file(self._transaction_path, self.path)
            self._transaction_path = None

    def discard(self) -> None:
        """End of a failed fsspec transaction: drop the written file."""
        if self._transaction_path is not None:
            try:
                self.fs.rm_file(self._transaction_path)
            except FileNotFoundError:
                pass
            self._transaction_path = None


class LucidLinkBufferedReader(_FileMixin, io.BufferedReader):
    """A file of a filespace opened with ``rb``."""


class LucidLinkBufferedWriter(_FileMixin, HandoffBufferedWriter):
    """A file of a filespace opened with ``wb``, ``xb`` or ``ab``."""


class LucidLinkBufferedRandom(_FileMixin, io.BufferedRandom):
    """A file of a filespace opened with a ``+`` mode."""
