"""The blocking file streams of LucidLink's documented API, over :mod:`lucidlink._fileio`.

:class:`LucidFileStream` is the raw stream (an :class:`io.RawIOBase`) that
``fs.open(path, "rb", buffering=0)`` returns; :func:`open_buffered` and :func:`open_text`
are LucidLink's helpers for the buffered and text layers over it, and :class:`FileHandle`
its deprecated positional-I/O handle (``fs.open_legacy``). All of them open files through
the filesystem's public ``open``, so there is one implementation of file I/O: the async
core's files, adapted by :mod:`lucidlink._fileio`.
"""

from __future__ import annotations

import io
from types import TracebackType
from typing import Any, Protocol

from lucidlink._fileio import DEFAULT_BUFFER_SIZE, AsyncFileLike, RawFile
from lucidlink.aio.filesystem import LEGACY_MODES

__all__ = ["FileHandle", "LucidFileStream", "open_buffered", "open_text"]


class Opener(Protocol):
    """What the helpers take as ``fs_wrapper``: a blocking ``Filesystem`` (``filespace.fs``)."""

    def open(
        self,
        path: str,
        mode: str = "rb",
        buffering: int = -1,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
        lock_type: str = "",
    ) -> Any:
        """Open ``path`` like the builtin ``open`` (plus ``lock_type``)."""
        ...


def _binary(mode: str) -> str:
    """LucidLink's raw and buffered modes (``r``, ``w``, ``r+``..., ``b`` or not) as binary."""
    if not isinstance(mode, str) or "t" in mode:
        raise ValueError(
            f"invalid mode: {mode!r} (a binary stream takes rb, wb, ab, xb, r+b, w+b, a+b)"
        )
    return mode if "b" in mode else mode + "b"


class LucidFileStream(RawFile):
    """A raw, unbuffered stream over one file of a filespace (an :class:`io.RawIOBase`).

    ``LucidFileStream(filespace.fs, path, mode="rb", lock_type="")`` opens ``path``
    (modes ``r rb w wb a ab x xb r+ r+b w+ w+b a+ a+b``, all binary); so does
    ``filespace.fs.open(path, mode, buffering=0)``. ``lock_type`` ``"shared"`` or
    ``"exclusive"`` holds a whole-file lock until ``close``. Each ``read``/``write`` is
    one call into the filespace: wrap it in :func:`open_buffered` for small reads.
    """

    def __init__(
        self, fs_wrapper: Opener, path: str, mode: str = "rb", lock_type: str = ""
    ) -> None:
        """Open ``path`` of the filesystem ``fs_wrapper`` (``filespace.fs``)."""
        opened = fs_wrapper.open(path, _binary(mode), buffering=0, lock_type=lock_type)
        if not isinstance(opened, RawFile):
            opened.close()
            raise TypeError(
                f"{type(fs_wrapper).__name__}.open(buffering=0) returned "
                f"{type(opened).__name__}, not a raw stream; pass filespace.fs"
            )
        super().__init__(opened.hand_over())

    @classmethod
    def from_async(cls, afile: AsyncFileLike) -> LucidFileStream:
        """The stream of an async file already open (closing the stream closes it)."""
        stream = cls.__new__(cls)
        RawFile.__init__(stream, afile)
        return stream


def open_buffered(
    fs_wrapper: Opener,
    path: str,
    mode: str = "rb",
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    lock_type: str = "",
) -> io.BufferedIOBase:
    """Open ``path`` as a buffered binary stream (:class:`io.BufferedReader`, ``BufferedWriter``
    or ``BufferedRandom`` for ``+`` modes) over a :class:`LucidFileStream`.

    ``fs_wrapper`` is ``filespace.fs``; ``buffer_size`` bytes (default 1 MiB) are read or
    written per call into the filespace; ``lock_type`` as for ``fs.open``.
    """
    if not isinstance(buffer_size, int) or buffer_size <= 1:
        raise ValueError(f"buffer_size must be an integer above 1 (bytes), not {buffer_size!r}")
    opened: io.BufferedIOBase = fs_wrapper.open(
        path, _binary(mode), buffering=buffer_size, lock_type=lock_type
    )
    return opened


def open_text(
    fs_wrapper: Opener,
    path: str,
    mode: str = "r",
    encoding: str = "utf-8",
    errors: str = "strict",
    newline: str | None = None,
    lock_type: str = "",
) -> io.TextIOWrapper:
    """Open ``path`` as text (an :class:`io.TextIOWrapper` over a buffered stream).

    ``fs_wrapper`` is ``filespace.fs``; ``mode`` is a text mode (``r w a x`` with an
    optional ``+`` or ``t``); ``encoding``, ``errors`` and ``newline`` as for the builtin
    ``open``; ``lock_type`` as for ``fs.open``.
    """
    if not isinstance(mode, str) or "b" in mode:
        raise ValueError(
            f"invalid mode: {mode!r} (open_text takes a text mode such as r, w, a, r+)"
        )
    opened: io.TextIOWrapper = fs_wrapper.open(
        path, mode, encoding=encoding, errors=errors, newline=newline, lock_type=lock_type
    )
    return opened


class FileHandle:
    """LucidLink's legacy file handle: reads and writes at explicit offsets (deprecated).

    Returned by ``fs.open_legacy(path, mode)``; use ``fs.open`` in new code. Modes:
    ``"r"`` (read), ``"w"`` (create or truncate, then read and write), ``"a"`` (append:
    every write goes to the end, whatever its offset). ``with`` closes it.
    """

    def __init__(self, filesystem: Opener, path: str, mode: str = "r") -> None:
        """Open ``path`` of ``filesystem`` (``filespace.fs``)."""
        key = mode.replace("b", "").replace("t", "") if isinstance(mode, str) else mode
        if key not in LEGACY_MODES:
            raise ValueError(f"invalid mode: {mode!r} (open_legacy takes 'r', 'w' or 'a')")
        self._path, self._mode = path, key
        self._stream: RawFile = filesystem.open(path, LEGACY_MODES[key], buffering=0)

    @property
    def path(self) -> str:
        """The file's path in the filespace."""
        return self._path

    @property
    def mode(self) -> str:
        """The mode the handle was opened with (``"r"``, ``"w"`` or ``"a"``)."""
        return self._mode

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return bool(self._stream.closed)

    def read(self, size: int = -1, offset: int = 0) -> bytes:
        """Up to ``size`` bytes from ``offset`` (everything from there if ``size`` < 0)."""
        self._stream.seek(offset)
        if size < 0:
            return self._stream.readall()
        chunks, left = [], size
        while left > 0:
            chunk = self._stream.read(left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def write(self, data: bytes, offset: int = 0) -> None:
        """Write all of ``data`` at ``offset`` (at the end in mode ``"a"``)."""
        self._stream.seek(offset)
        view = memoryview(data).cast("B")
        while view:
            view = view[self._stream.write(view) :]

    def close(self) -> None:
        """Close the handle (its changes are committed as for ``fs.open``). Idempotent."""
        self._stream.close()

    def __enter__(self) -> FileHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " [closed]" if self.closed else ""
        return f"<FileHandle {self._path!r} mode={self._mode!r}{state}>"
