"""The hand-written runtime of the blocking API, which ``lucidlink/_generated*.py`` use.

``tools/generate_sync.py`` writes one class per async class of :mod:`lucidlink.aio`,
each a subclass of :class:`Facade` (or of a hand-written base below) whose methods run
their async twins on the background loop (:mod:`lucidlink._loop`). What is not a
one-line delegation lives here, typed and tested like any other code: the base class,
the blocking iterator, the converters of returned values, and the methods whose
blocking form differs from "run the coroutine" (:meth:`FilesystemFacade.open`, which
adds the builtin ``open``'s text layers). The generator skips every public method a
base defines, so an override here replaces the generated one.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from typing import IO, Any, ClassVar, TypeVar, overload

from lucidlink import _loop
from lucidlink._fileio import open_blocking
from lucidlink._smallwrite import DeferredWrite
from lucidlink.aio.filesystem import AsyncFilesystem
from lucidlink.aio.locks import DEFAULT_LOCK_TIMEOUT
from lucidlink.stream import FileHandle, LucidFileStream

__all__ = ["Facade", "FilesystemFacade", "iterate", "wrap_each"]

T = TypeVar("T")
W = TypeVar("W")
F = TypeVar("F", bound="Facade")

# Async class name -> blocking class name, filled as the blocking classes are defined;
# their reprs show the blocking names of every wrapped class they mention.
_renames: dict[str, str] = {}
_rename_pattern = re.compile(r"(?!)")


class Facade:
    """Base of the blocking classes: wraps one instance of ``_async_class`` in ``_async``.

    Equality and hashing are the wrapped object's, so two wrappers of one filespace are
    equal; the repr is the wrapped object's with the blocking class names.
    """

    __slots__ = ("__weakref__", "_async")
    _async_class: ClassVar[type] = object
    _async: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        global _rename_pattern
        if cls._async_class is not object:
            _renames[cls._async_class.__name__] = cls.__name__
            names = "|".join(map(re.escape, sorted(_renames, key=len, reverse=True)))
            _rename_pattern = re.compile(rf"\b(?:{names})\b")

    def __init__(self, async_obj: object) -> None:
        """Wrap ``async_obj``, an instance of the matching ``Async`` class."""
        if not isinstance(async_obj, self._async_class):
            raise TypeError(
                f"{type(self).__name__} wraps an existing {self._async_class.__name__}, "
                f"not {type(async_obj).__name__}"
            )
        self._async = async_obj

    @classmethod
    def wrap(cls: type[F], async_obj: object) -> F:
        """Wrap an existing async object without the class's own constructor.

        A constructible facade's ``__init__`` builds a new async object from the user's
        arguments; objects the API returns are wrapped through this instead.
        """
        facade = cls.__new__(cls)
        Facade.__init__(facade, async_obj)
        return facade

    def __repr__(self) -> str:
        """The wrapped object's repr, with blocking class names."""
        return _rename_pattern.sub(lambda match: _renames[match[0]], repr(self._async))

    def __eq__(self, other: object) -> bool:
        """Wrappers are equal when their wrapped objects are."""
        if isinstance(other, Facade):
            return bool(self._async == other._async)
        return NotImplemented

    def __hash__(self) -> int:
        """The wrapped object's hash."""
        return hash(self._async)


def wrap_each(wrap: Callable[[T], W], items: Iterable[T]) -> list[W]:
    """A list of ``wrap(item)`` for the returned async objects ``items``."""
    return [wrap(item) for item in items]


@overload
def iterate(aiterable: AsyncIterable[T], wrap: None = None) -> Iterator[T]: ...
@overload
def iterate(aiterable: AsyncIterable[T], wrap: Callable[[T], W]) -> Iterator[W]: ...
def iterate(
    aiterable: AsyncIterable[Any], wrap: Callable[[Any], Any] | None = None
) -> Iterator[Any]:
    """Iterate an async iterable from blocking code, one ``__anext__`` on the loop per item.

    Items are passed through ``wrap`` when given. Leaving the loop early (``break``, an
    exception, the iterator collected) closes the async iterator (``aclose``) on the loop.
    """
    iterator = aiterable.__aiter__()
    exhausted = False
    try:
        while True:
            try:
                item = _loop.run(iterator.__anext__)
            except StopAsyncIteration:
                exhausted = True
                return
            yield item if wrap is None else wrap(item)
    finally:
        aclose = getattr(iterator, "aclose", None)
        if not exhausted and aclose is not None:
            _loop.run(aclose)


class FilesystemFacade(Facade):
    """The hand-written part of the blocking ``Filesystem``: the builtin-like ``open`` (whose
    raw streams are :class:`~lucidlink.stream.LucidFileStream`), ``open_legacy``, and
    ``write_file``, which queues small files without a trip to the event loop."""

    __slots__ = ()
    _async: AsyncFilesystem

    def open(
        self,
        path: str,
        mode: str = "rb",
        buffering: int = -1,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
        lock_type: str = "",
        lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    ) -> IO[Any]:
        """Open a file, like the builtin ``open``.

        Blocking: ``with fs.open(p, "w") as f`` with every builtin mode, text ones
        included, and ``buffering``/``encoding``/``errors``/``newline``. Async:
        ``async with fs.open(p, "rb") as f`` (or ``f = await fs.open(...)``) with the
        binary modes ``rb wb ab xb r+b w+b a+b x+b``. A written file is committed
        after ``close`` (within ``fs.flush.delay_ms``); ``filespace.sync_all()`` waits
        for it.

        ``lock_type`` ``"shared"`` or ``"exclusive"`` takes a whole-file lock, held
        until the handle closes, waiting up to ``lock_timeout`` seconds (``None``: for
        ever, ``0``: not at all) before raising ``LockTimeoutError`` (a
        ``TimeoutError``). A locked handle's changes are committed before ``close``
        returns and the lock is released.
        """
        def unopened(binary_mode: str) -> DeferredWrite | None:
            # A plain "wb" the metadata cache vouches for opens only if it must (see
            # lucidlink/_smallwrite.py); anything doubtful takes the ordinary path.
            if (binary_mode != "wb" or lock_type or _loop.in_loop_thread()
                    or not (lock_timeout is None or (isinstance(lock_timeout, (int, float))
                                                     and lock_timeout >= 0))
                    or not isinstance(path, str) or not self._async.can_write_nowait(path)):
                return None
            return DeferredWrite(
                path,
                lambda: self._async.open(path, "wb", lock_timeout=lock_timeout),
                lambda content: self._async.write_file_nowait(path, content),
            )

        return open_blocking(
            lambda binary_mode: self._async.open(
                path, binary_mode, lock_type=lock_type, lock_timeout=lock_timeout
            ),
            mode,
            buffering,
            encoding,
            errors,
            newline,
            raw_type=LucidFileStream.from_async,
            unopened=unopened,
        )

    def write_file(self, path: str, data: bytes) -> None:
        """Create or replace a file with ``data``.

        A small file is queued from the calling thread when the metadata cache can vouch
        for it (:meth:`write_file_nowait`), without a trip to the SDK's event loop.
        """
        if _loop.in_loop_thread() or not self._async.write_file_nowait(path, data):
            _loop.run(self._async.write_file(path, data))

    def open_legacy(self, path: str, mode: str = "r") -> FileHandle:
        """Deprecated (``DeprecationWarning``): use :meth:`open`.

        LucidLink's legacy open: a :class:`~lucidlink.stream.FileHandle` reading and
        writing at explicit offsets; ``"r"`` reads, ``"w"`` creates or truncates (and
        reads), ``"a"`` appends (and reads).
        """
        warnings.warn(
            "fs.open_legacy() is deprecated; use fs.open()", DeprecationWarning, stacklevel=2
        )
        return FileHandle(self, path, mode)
