"""Blocking file objects over the async core's files.

The async core opens files in binary modes only and returns objects satisfying
:class:`AsyncFileLike`. :class:`RawFile` adapts one to :class:`io.RawIOBase` by running
each coroutine on the background loop (:func:`lucidlink._loop.run`), and
:func:`open_blocking` stacks the standard :mod:`io` buffering and text layers on top,
exactly as the builtin :func:`open` does over :class:`io.FileIO`. The result is a real
:class:`io.BufferedReader` / :class:`io.TextIOWrapper` / ..., so ``readline``,
iteration, encodings and newline translation behave like local files.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import io
import warnings
from collections.abc import Awaitable, Callable
from typing import IO, Any, Protocol, TypeVar, runtime_checkable

from lucidlink import _loop
from lucidlink.shared import BINARY_MODES

__all__ = [
    "BINARY_MODES", "DEFAULT_BUFFER_SIZE", "AsyncFileLike", "HandoffBufferedWriter", "RawFile",
    "open_blocking", "unchangeable",
]

#: Buffer size used when ``buffering`` is negative (the default). Larger than
#: :data:`io.DEFAULT_BUFFER_SIZE` because every raw read or write is a round trip
#: through the event-loop thread and usually the network.
DEFAULT_BUFFER_SIZE = 1 << 20

_HELD_MAX = DEFAULT_BUFFER_SIZE
"""Bytes of writes a buffered write-only file holds back for its next loop call, at most."""

T = TypeVar("T")


def unchangeable(data: Any) -> bytes | memoryview | None:
    """``data`` as a byte view when no one can change its bytes (``bytes``, or a read-only,
    contiguous :class:`memoryview` of ``bytes``), else ``None``.

    Such data may be kept after the call that received it returns (queued for upload,
    held until close) without a copy: a writable buffer would have to be copied, since
    its owner may reuse it.
    """
    if type(data) is bytes:
        return data
    if (type(data) is memoryview and type(data.obj) is bytes and data.readonly
            and data.c_contiguous):
        return data if data.format == "B" and data.ndim == 1 else data.cast("B")
    return None


@runtime_checkable
class AsyncFileLike(Protocol):
    """What the async core's file objects provide to the blocking layer.

    ``mode`` is one of :data:`BINARY_MODES`. ``tell`` and the ``*able`` predicates are
    synchronous (they must not do I/O); everything else is a coroutine. The semantics are
    those of :class:`io.FileIO`: in append modes ``tell`` starts at the end of the file
    and every write goes to the end, ``truncate`` does not move the position, ``read``
    returns ``b""`` at end of file, ``read(-1)`` reads to the end, ``close`` flushes.
    """

    name: str
    mode: str
    closed: bool

    def readable(self) -> bool:
        """Return True if the file was opened for reading."""
        ...

    def writable(self) -> bool:
        """Return True if the file was opened for writing."""
        ...

    def seekable(self) -> bool:
        """Return True if the file supports random access."""
        ...

    def tell(self) -> int:
        """Return the current position."""
        ...

    async def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (all remaining bytes if negative)."""
        ...

    async def readinto(self, buf: Any) -> int:
        """Read into the writable buffer ``buf`` and return the number of bytes read."""
        ...

    async def write(self, data: bytes | memoryview) -> int:
        """Write ``data`` and return the number of bytes written."""
        ...

    async def seek(self, offset: int, whence: int = 0) -> int:
        """Move to ``offset`` relative to ``whence`` (0, 1 or 2); return the new position."""
        ...

    async def truncate(self, size: int | None = None) -> int:
        """Resize to ``size`` bytes (the current position if None); return the new size."""
        ...

    async def flush(self) -> None:
        """Push written data to the filespace."""
        ...

    async def close(self) -> None:
        """Flush and release the file; further operations fail."""
        ...


# The loop only keeps weak references to tasks.
_closing_tasks: set[asyncio.Task[None]] = set()

# FileIO reports 'w+b' and 'r+b' both as 'rb+' (the truncation already happened, only the
# access remains); RawFile.mode follows it so code comparing modes sees the same values.
_FILEIO_MODES = {
    "rb": "rb",
    "wb": "wb",
    "ab": "ab",
    "xb": "xb",
    "r+b": "rb+",
    "w+b": "rb+",
    "a+b": "ab+",
    "x+b": "xb+",
}


class HandoffBufferedWriter(io.BufferedWriter):
    """An :class:`io.BufferedWriter` that hands a large write of unchangeable bytes (see
    :func:`unchangeable`) to its raw file as it is.

    The standard writer passes a write larger than its buffer to the raw file as a view
    of the caller's memory, which the raw file must copy, not knowing whether the caller
    will change it: writing a 256 MiB ``bytes`` object cost a 256 MiB copy. Here such a
    write flushes what is buffered, as the standard writer does, then goes to the raw
    file as the object itself (a :class:`RawFile` keeps ``bytes`` without copying them).
    Smaller writes, and any writable buffer, take the standard path.
    """

    buffer_size: int

    def __init__(self, raw: io.RawIOBase, buffer_size: int = io.DEFAULT_BUFFER_SIZE) -> None:
        """As :class:`io.BufferedWriter` (``buffer_size`` bytes are buffered)."""
        super().__init__(raw, buffer_size)
        self.buffer_size = buffer_size

    def write(self, data: Any) -> int:
        """Write ``data``; return the number of bytes written (all of them)."""
        view = unchangeable(data)
        if view is None or len(view) <= self.buffer_size:
            return super().write(data)
        # What the standard writer does with a write larger than its buffer: flush, then
        # the whole write to the raw file (so positions and appends behave the same).
        self.flush()
        done = 0
        while done < len(view):
            n: int | None = self.raw.write(view[done:] if done else view)
            if n is None:
                raise BlockingIOError(errno.EAGAIN, "the raw file would block", done)
            done += n
        return done


class RawFile(io.RawIOBase):
    """An :class:`io.RawIOBase` over an :class:`AsyncFileLike`, blocking on the loop thread."""

    def __init__(self, afile: AsyncFileLike) -> None:
        """Wrap an open async file; closing this object closes it."""
        super().__init__()
        self._afile = afile
        self._closing = False
        self._hold = False
        self._held: list[bytes | memoryview] = []
        self._held_size = 0

    # -- helpers ---------------------------------------------------------------------

    def hold_writes(self) -> None:
        """Let the writes of a ``wb`` or ``xb`` file wait for the next call into the loop.

        :func:`open_blocking` asks this of the file under a buffered writer. It takes
        effect only for an async file that says no one can see its bytes before it
        closes (``private_until_close``, as :class:`lucidlink.aio.AsyncFile` of a
        write-only handle does): there a write waiting here or in the async file is
        the same to every observer, and the last flush travels with the close, so a
        small file costs two calls into the loop thread (open, close) instead of three.
        At most :data:`_HELD_MAX` bytes wait; an error of a held write is raised by the
        call that carries it (a later write, ``seek``, ``flush`` of this raw file, or
        ``close``).
        """
        # Not "ab": there a write lands at the end wherever the position is, which a
        # held write would have to know to answer tell().
        if self._afile.mode in ("wb", "xb") and getattr(self._afile, "private_until_close", False):
            self._hold = True

    def _carrying(self, op: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        """``op()``, after the held writes (which leave this object)."""
        if not self._held:
            return op()
        held, self._held, self._held_size = self._held, [], 0

        async def carried() -> T:
            for piece in held:
                await self._afile.write(piece)
            return await op()

        return carried()

    def _run(self, op: Callable[[], Awaitable[T]]) -> T:
        return _loop.run(self._carrying(op))

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def _check_readable(self) -> None:
        self._check_open()
        if not self._afile.readable():
            raise io.UnsupportedOperation("File not open for reading")

    def _check_writable(self) -> None:
        self._check_open()
        if not self._afile.writable():
            raise io.UnsupportedOperation("File not open for writing")

    def _check_seekable(self) -> None:
        self._check_open()
        if not self._afile.seekable():
            raise io.UnsupportedOperation("File or stream is not seekable.")

    # -- attributes ------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The file's path in the filespace."""
        return self._afile.name

    @property
    def mode(self) -> str:
        """The access mode, spelt as :class:`io.FileIO` does (``'rb'``, ``'rb+'``, ``'ab'``...)."""
        return _FILEIO_MODES.get(self._afile.mode, self._afile.mode)

    @property
    def async_file(self) -> AsyncFileLike:
        """The wrapped async file object."""
        return self._afile

    def __repr__(self) -> str:
        """Describe the file like :class:`io.FileIO` does."""
        if self.closed:
            return f"<{type(self).__name__} [closed]>"
        return f"<{type(self).__name__} name={self.name!r} mode={self.mode!r}>"

    def hand_over(self) -> AsyncFileLike:
        """Give the open async file to a new owner: this object is closed, the file is not."""
        self._check_open()
        if self._held:
            self._run(_nothing)
        afile = self._afile
        self._closing = True
        io.RawIOBase.close(self)
        return afile

    def fileno(self) -> int:
        """Raise :class:`io.UnsupportedOperation`: a filespace file has no descriptor."""
        raise io.UnsupportedOperation("fileno")

    def isatty(self) -> bool:
        """Return False: a filespace file is never a terminal."""
        self._check_open()
        return False

    def readable(self) -> bool:
        """Return True if the file was opened for reading."""
        self._check_open()
        return self._afile.readable()

    def writable(self) -> bool:
        """Return True if the file was opened for writing."""
        self._check_open()
        return self._afile.writable()

    def seekable(self) -> bool:
        """Return True if the file supports random access."""
        self._check_open()
        return self._afile.seekable()

    # -- I/O -------------------------------------------------------------------------

    def readinto(self, buffer: Any) -> int:
        """Read up to ``len(buffer)`` bytes into ``buffer``; return the count (0 at EOF)."""
        self._check_readable()
        view = memoryview(buffer).cast("B")
        if not view:
            return 0
        # A raw read may return fewer bytes: an async file that says how many a random
        # read should fetch (lucidlink.aio.file.AsyncFile.readinto1) is asked that way.
        # Not for a handle that also writes: io.BufferedRandom's one buffer then holds
        # less read-ahead, and after a write in append mode it answers differently from
        # the builtin over io.FileIO (which never reads short).
        readinto = self._afile.readinto
        if not self._afile.writable():
            readinto = getattr(self._afile, "readinto1", None) or readinto
        return int(self._run(lambda: readinto(view)))

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes with a single call (everything left if negative)."""
        if size is None or size < 0:
            return self.readall()
        self._check_readable()
        if size == 0:
            return b""
        return self._run(lambda: self._afile.read(size))

    def readall(self) -> bytes:
        """Read until end of file with a single call to the async file."""
        self._check_readable()
        return self._run(lambda: self._afile.read(-1))

    def write(self, data: Any) -> int:
        """Write ``data`` (any bytes-like object); return the number of bytes written."""
        self._check_writable()
        # A copy unless no one can change the bytes: the buffered layer reuses its buffer
        # after we return, and the async core may keep the data queued for a while.
        payload = unchangeable(data)
        if payload is None:
            payload = memoryview(data).tobytes()
        if not payload:
            return 0
        if self._hold and self._held_size + len(payload) <= _HELD_MAX:
            self._held.append(payload)
            self._held_size += len(payload)
            return len(payload)
        return self._run(lambda: self._afile.write(payload))

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to ``offset`` relative to ``whence`` (SEEK_SET, SEEK_CUR or SEEK_END)."""
        self._check_seekable()
        if whence not in (io.SEEK_SET, io.SEEK_CUR, io.SEEK_END):
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        seek_nowait = getattr(self._afile, "seek_nowait", None)
        if seek_nowait is not None and not self._held:
            # Held writes must land first; otherwise no trip to the loop thread.
            return int(seek_nowait(offset, whence))
        return self._run(lambda: self._afile.seek(offset, whence))

    def tell(self) -> int:
        """Return the current position."""
        self._check_open()
        return self._afile.tell() + self._held_size

    def truncate(self, size: int | None = None) -> int:
        """Resize the file to ``size`` bytes (default: the current position)."""
        self._check_writable()
        return self._run(lambda: self._afile.truncate(size))

    def flush(self) -> None:
        """Push written data to the filespace."""
        self._check_open()
        if self._closing or self._afile.closed:
            return
        if self._afile.writable():
            self._run(self._afile.flush)

    def close(self) -> None:
        """Close the async file (once; later calls do nothing)."""
        if self.closed:
            return
        try:
            close_nowait = getattr(self._afile, "close_nowait", None)
            if self._afile.closed and not self._held:  # held writes raise, not vanish
                pass
            elif close_nowait is not None and close_nowait(b"".join(self._held)):
                # Everything written was held here: queued with no trip to the loop.
                self._held, self._held_size = [], 0
            elif _loop.in_loop_thread():
                # Typically a finalizer run by the garbage collector on the loop thread,
                # where blocking would deadlock: let the loop close the file later.
                task = _loop.get_loop().create_task(_awaited(self._carrying(self._afile.close)))
                _closing_tasks.add(task)
                task.add_done_callback(_closing_tasks.discard)
            else:
                self._run(self._afile.close)
        finally:
            # IOBase.close flushes first; the async close has done that already.
            self._closing = True
            super().close()


async def _nothing() -> None:
    """An operation that does nothing (carries held writes alone)."""


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _open_async(
    opener: Callable[[str], Awaitable[AsyncFileLike] | AsyncFileLike], binary_mode: str
) -> AsyncFileLike:
    result = opener(binary_mode)
    if inspect.isawaitable(result):
        return await result
    return result


def _parse_mode(
    mode: str, buffering: int, encoding: str | None, errors: str | None, newline: str | None
) -> tuple[str, bool]:
    """Validate ``open()`` arguments like the builtin; return (binary mode, is_text)."""
    if not isinstance(mode, str):
        raise TypeError(f"open() argument 'mode' must be str, not {type(mode).__name__}")
    if not isinstance(buffering, int):
        raise TypeError(f"'{type(buffering).__name__}' object cannot be interpreted as an integer")
    for arg_name, value in (("encoding", encoding), ("errors", errors), ("newline", newline)):
        if value is not None and not isinstance(value, str):
            raise TypeError(
                f"open() argument '{arg_name}' must be str or None, not {type(value).__name__}"
            )
    for i, char in enumerate(mode):
        if char not in "xrwa+tb" or char in mode[i + 1 :]:
            raise ValueError(f"invalid mode: '{mode}'")
    text = "t" in mode
    binary = "b" in mode
    kinds = [c for c in "xrwa" if c in mode]
    if text and binary:
        raise ValueError("can't have text and binary mode at once")
    if len(kinds) > 1:
        raise ValueError("must have exactly one of create/read/write/append mode")
    if binary and encoding is not None:
        raise ValueError("binary mode doesn't take an encoding argument")
    if binary and errors is not None:
        raise ValueError("binary mode doesn't take an errors argument")
    if binary and newline is not None:
        raise ValueError("binary mode doesn't take a newline argument")
    if not kinds:
        raise ValueError(
            "Must have exactly one of create/read/write/append mode and at most one plus"
        )
    if buffering == 0 and not binary:
        raise ValueError("can't have unbuffered text I/O")
    return kinds[0] + ("+" if "+" in mode else "") + "b", not binary


def open_blocking(
    opener: Callable[[str], Awaitable[AsyncFileLike] | AsyncFileLike],
    mode: str = "r",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    *,
    raw_type: Callable[[AsyncFileLike], RawFile] = RawFile,
    unopened: Callable[[str], AsyncFileLike | None] | None = None,
) -> IO[Any]:
    """Open a file like the builtin :func:`open`, through an async opener.

    ``opener(binary_mode)`` is called on the background loop with one of
    :data:`BINARY_MODES` and returns an :class:`AsyncFileLike` or an awaitable of one
    (its exceptions, e.g. :class:`FileExistsError` for ``'x'``, propagate unchanged).
    Arguments are validated as the builtin does, with the same exception types, but
    before the opener runs, so an invalid combination never creates or truncates a file.
    Differences from the builtin: ``encoding`` defaults to UTF-8 rather than the locale,
    and a negative ``buffering`` means :data:`DEFAULT_BUFFER_SIZE` (1 MiB).

    Returns ``raw_type(async_file)`` (a :class:`RawFile`) for binary ``buffering=0``, else
    :class:`io.BufferedReader`, :class:`HandoffBufferedWriter` (an :class:`io.BufferedWriter`) or
    :class:`io.BufferedRandom` (``'+'`` modes), wrapped in
    :class:`io.TextIOWrapper` for text modes (line-buffered when ``buffering == 1``).

    ``unopened(binary_mode)``, called in this thread once the arguments are valid, may
    answer a file that opens itself later (:class:`lucidlink._smallwrite.DeferredWrite`)
    instead of making the call into the loop; ``None``: the opener runs as always.
    """
    binary_mode, text = _parse_mode(mode, buffering, encoding, errors, newline)
    if not text and buffering == 1:
        warnings.warn(
            "line buffering (buffering=1) isn't supported in binary mode, "
            "the default buffer size will be used",
            RuntimeWarning,
            stacklevel=2,
        )
    afile = None if unopened is None else unopened(binary_mode)
    raw = raw_type(afile if afile is not None else _loop.run(_open_async(opener, binary_mode)))
    result: IO[Any] = raw  # type: ignore[assignment]
    try:
        line_buffering = buffering == 1
        if buffering < 0 or buffering == 1:
            buffering = DEFAULT_BUFFER_SIZE
        if buffering == 0:
            return result
        buffer: io.BufferedIOBase
        if "+" in binary_mode:
            buffer = io.BufferedRandom(raw, buffering)
        elif binary_mode == "rb":
            buffer = io.BufferedReader(raw, buffering)
        else:
            raw.hold_writes()
            buffer = HandoffBufferedWriter(raw, buffering)
        result = buffer
        if not text:
            return result
        wrapper = io.TextIOWrapper(
            buffer,
            encoding if encoding is not None else "utf-8",
            errors,
            newline,
            line_buffering=line_buffering,
        )
        result = wrapper
        wrapper.mode = mode  # type: ignore[misc]
        return result
    except BaseException:
        result.close()
        raise
