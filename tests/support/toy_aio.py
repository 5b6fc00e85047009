"""A toy async core for the generator tests: the shapes lucidlink.aio uses, in miniature.

``AsyncThing`` is built by the user (like ``AsyncClient``), ``AsyncChild`` is returned
(like ``AsyncFilespace``); ``ThingFacade`` is a hand-written base overriding ``open``
(like ``lucidlink._facade.FilesystemFacade``).
"""

from __future__ import annotations

import asyncio
import enum
import io
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Generator, Mapping
from types import TracebackType
from typing import IO, Any, Generic, TypeVar

from lucidlink._facade import Facade
from lucidlink._fileio import open_blocking

T = TypeVar("T")


class Color(enum.Enum):
    """A toy enum used as a default value."""

    RED = "red"
    BLUE = "blue"


def loop_thread() -> str:
    """Name of the thread the current coroutine runs in (checks we run on the loop)."""
    asyncio.get_running_loop()
    return threading.current_thread().name


class AwaitableContext(Generic[T]):
    """Awaitable giving a T, and an async context manager entering/closing it."""

    def __init__(self, make: Awaitable[T]) -> None:
        self._make = make
        self._value: Any = None

    def __await__(self) -> Generator[Any, None, T]:
        return self._make.__await__()

    async def __aenter__(self) -> T:
        self._value = await self._make
        return await self._value.__aenter__()  # type: ignore[no-any-return]

    async def __aexit__(self, *exc_info: object) -> None:
        await self._value.__aexit__(*exc_info)


class AsyncFile:
    """An async file over a local io.FileIO (satisfies lucidlink._fileio.AsyncFileLike)."""

    def __init__(self, path: str, mode: str) -> None:
        self._raw = io.FileIO(path, mode.replace("b", ""))
        self.name = path
        self.mode = mode

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def readable(self) -> bool:
        return self._raw.readable()

    def writable(self) -> bool:
        return self._raw.writable()

    def seekable(self) -> bool:
        return self._raw.seekable()

    def tell(self) -> int:
        return self._raw.tell()

    async def read(self, size: int = -1) -> bytes:
        return self._raw.read(size) or b""

    async def readinto(self, buf: Any) -> int:
        return self._raw.readinto(buf) or 0

    async def write(self, data: bytes) -> int:
        return self._raw.write(data) or 0

    async def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    async def truncate(self, size: int | None = None) -> int:
        return self._raw.truncate(size)

    async def flush(self) -> None:
        pass

    async def close(self) -> None:
        self._raw.close()


class AsyncChild:
    """A child object. AsyncChild instances come from an AsyncThing."""

    def __init__(self, name: str) -> None:
        self.name_ = name
        self.entered = 0
        self.closed = False

    def __repr__(self) -> str:
        return f"AsyncChild(name={self.name_!r})"

    async def __aenter__(self) -> AsyncChild:
        """Enter: nothing to do, the child is ready."""
        self.entered += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the child."""
        self.closed = True

    @property
    def name(self) -> str:
        """The child's name."""
        return self.name_

    async def where(self) -> str:
        """Return the name of the thread this coroutine ran in."""
        return loop_thread()


class AsyncThing:
    """A thing holding AsyncChild objects: ``async with AsyncThing(root) as thing``.

    Multi-line docstring, with a ``literal`` and a backslash \\ in it.
    """

    def __init__(self, root: str, *, label: str = "toy") -> None:
        """Make a thing under ``root``."""
        self.root = root
        self.label = label
        self.events: list[str] = []
        self._children: dict[str, AsyncChild] = {}

    def __repr__(self) -> str:
        return f"<AsyncThing label={self.label!r} first=AsyncChild>"

    async def __aenter__(self) -> AsyncThing:
        self.events.append("enter")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.events.append(f"exit:{exc_type.__name__ if exc_type else None}")

    @property
    def size(self) -> int:
        """Number of children."""
        return len(self._children)

    @property
    def children(self) -> list[AsyncChild]:
        """All children, as AsyncChild objects."""
        return list(self._children.values())

    async def add(self, name: str, count: int = 1, *, tag: str | None = None) -> AsyncChild:
        """Add a child called ``name``: ``child = await thing.add(name)``."""
        self.events.append(f"add:{name}:{count}:{tag}:{loop_thread()}")
        child = AsyncChild(name)
        self._children[name] = child
        return child

    async def names(self) -> list[str]:
        """The children's names."""
        return list(self._children)

    async def fail(self, exc: BaseException) -> None:
        """Raise ``exc``."""
        raise exc

    async def echo(
        self, text: str, color: Color = Color.RED, *, extra: Mapping[str, Any] | None = None
    ) -> str:
        """Echo the arguments."""
        return f"{text}|{color.name}|{sorted(extra or {})}"

    def connect(self, name: str) -> AwaitableContext[AsyncChild]:
        """Connect a child: ``await thing.connect(name)``, or ``async with`` it."""

        async def make() -> AsyncChild:
            self.events.append(f"connect:{name}:{loop_thread()}")
            return AsyncChild(name)

        return AwaitableContext(make())

    def describe(self, verbose: bool = False) -> str:
        """A plain (non-async) method, run in the calling thread."""
        return f"{self.label}:{self.size}:{verbose}:{threading.current_thread().name}"

    async def walk(self, limit: int = 3) -> AsyncIterator[AsyncChild]:
        """Yield up to ``limit`` children: ``async for child in thing.walk()``."""
        for child in list(self._children.values())[:limit]:
            yield child

    def open(
        self, path: str, mode: str = "rb", *, exclusive: bool = False
    ) -> AwaitableContext[AsyncFile]:
        """Open ``path`` under the root in a binary mode."""

        async def make() -> AsyncFile:
            self.events.append(f"open:{path}:{mode}:{exclusive}:{loop_thread()}")
            return AsyncFile(os.path.join(self.root, path), mode)

        return AwaitableContext(make())


def make_child(name: str) -> AsyncChild:
    """Create an AsyncChild (plain factory, run on the loop thread)."""
    asyncio.get_running_loop()
    return AsyncChild(name)


class ThingFacade(Facade):
    """The hand-written base of the blocking ``Thing``: a builtin-like ``open``."""

    __slots__ = ()
    _async: AsyncThing

    def open(
        self,
        path: str,
        mode: str = "rb",
        buffering: int = -1,
        encoding: str | None = None,
        *,
        exclusive: bool = False,
    ) -> IO[Any]:
        """Open ``path`` like the builtin ``open``."""
        return open_blocking(
            lambda binary_mode: self._async.open(path, binary_mode, exclusive=exclusive),
            mode,
            buffering,
            encoding,
        )
