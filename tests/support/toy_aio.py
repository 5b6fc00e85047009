"""A toy async core for the generator tests: the shapes lucidlink.aio uses, in miniature."""

from __future__ import annotations

import asyncio
import enum
import io
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from pathlib import Path
from typing import Any, Generic, Literal, Optional, TypeVar

T = TypeVar("T")

_UNSET: Any = type("_Unset", (), {"__repr__": lambda self: "<unset>"})()


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
        self.thread_names: list[str] = []

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
        self.thread_names.append(loop_thread())
        return self._raw.read(size) or b""

    async def readinto(self, buf: Any) -> int:
        return self._raw.readinto(buf) or 0

    async def write(self, data: bytes) -> int:
        self.thread_names.append(loop_thread())
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
    """A child object. AsyncChild instances come from AsyncThing."""

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

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """Close the child."""
        self.closed = True

    @property
    def name(self) -> str:
        """The child's name."""
        return self.name_

    async def where(self) -> str:
        """Return the name of the thread this coroutine ran in."""
        return loop_thread()

    async def sibling(self, name: str) -> AsyncChild:
        """Return a new AsyncChild called ``name``."""
        return AsyncChild(name)


class AsyncThing:
    """A thing holding AsyncChild objects.

    Multi-line docstring, with a ``literal`` and a backslash \\ in it.
    """

    KIND = "thing"

    label: str

    def __init__(self, root: str, label: str = "toy") -> None:
        self.root = root
        self.label = label
        self.events: list[str] = []
        self._children: dict[str, AsyncChild] = {}

    def __repr__(self) -> str:
        return f"<AsyncThing label={self.label!r} first=AsyncChild>"

    async def __aenter__(self) -> AsyncThing:
        self.events.append("enter")
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        """Record the exit and the exception type seen."""
        self.events.append(f"exit:{exc_type.__name__ if exc_type else None}")
        return False

    @property
    def size(self) -> int:
        """Number of children."""
        return len(self._children)

    @property
    def first(self) -> AsyncChild | None:
        """The first child, if any."""
        return next(iter(self._children.values()), None)

    @property
    def title(self) -> str:
        """A writable title."""
        return self.label

    @title.setter
    def title(self, value: str) -> None:
        self.label = value

    async def add(self, name: str, /, count: int = 1, *, tag: str | None = None) -> AsyncChild:
        """Add a child called ``name`` and return it."""
        self.events.append(f"add:{name}:{count}:{tag}:{loop_thread()}")
        child = AsyncChild(name)
        self._children[name] = child
        return child

    async def children(self) -> list[AsyncChild]:
        """All children, as AsyncChild objects."""
        return list(self._children.values())

    async def find(self, name: str) -> Optional[AsyncChild]:
        """The child called ``name`` or None."""
        return self._children.get(name)

    async def pair(self) -> tuple[AsyncChild, int]:
        """The first child and the count."""
        return next(iter(self._children.values())), len(self._children)

    async def by_name(self) -> dict[str, AsyncChild]:
        """Children by name."""
        return dict(self._children)

    async def adopt(self, child: AsyncChild, others: list[AsyncChild] | None = None) -> int:
        """Adopt ``child`` (and ``others``); return how many children there are."""
        assert isinstance(child, AsyncChild), child
        for item in [child, *(others or [])]:
            assert isinstance(item, AsyncChild), item
            self._children[item.name] = item
        return len(self._children)

    async def fail(self, exc: BaseException) -> None:
        """Raise ``exc``."""
        raise exc

    async def echo(
        self,
        *args: int,
        sep: str = ", ",
        color: Color = Color.RED,
        marker: Any = _UNSET,
        path: Path | None = None,
        **extra: Any,
    ) -> str:
        """Echo the arguments."""
        return f"{sep.join(map(str, args))}|{color.name}|{marker!r}|{path}|{sorted(extra)}"

    def connect(self, name: str) -> AwaitableContext[AsyncChild]:
        """Open a child connection; await it or use it with ``async with``."""

        async def make() -> AsyncChild:
            self.events.append(f"connect:{name}:{loop_thread()}")
            return AsyncChild(name)

        return AwaitableContext(make())

    async def rename_all(
        self, fn: Callable[[str], str], how: Literal["keep", "drop"] = "keep"
    ) -> Callable[..., list[str]]:
        """Names of the children passed through ``fn``, as a callable."""
        names = [fn(name) for name in self._children]
        return lambda *args: names if how == "keep" else []

    def describe(self, verbose: bool = False) -> str:
        """A plain (non-async) method."""
        return f"{self.label}:{self.size}:{verbose}"

    def child_now(self, name: str) -> AsyncChild | None:
        """A plain method returning an optional async object."""
        return self._children.get(name)

    async def walk(self, limit: int = 3) -> AsyncIterator[AsyncChild]:
        """Yield up to ``limit`` children."""
        for child in list(self._children.values())[:limit]:
            yield child

    async def noop(self):  # type: ignore[no-untyped-def]
        """An unannotated coroutine."""
        return 42

    @classmethod
    async def create(cls, root: str) -> AsyncThing:
        """Make a thing (async class method)."""
        return cls(root)

    @staticmethod
    def version() -> str:
        """A static method."""
        return "1.0"

    def open(
        self, path: str, mode: str = "rb", *, exclusive_lock: bool = False
    ) -> AwaitableContext[AsyncFile]:
        """Open ``path`` under the root in a binary mode."""

        async def make() -> AsyncFile:
            self.events.append(f"open:{path}:{mode}:{exclusive_lock}:{loop_thread()}")
            return AsyncFile(os.path.join(self.root, path), mode)

        return AwaitableContext(make())


async def create_thing(root: str, *, label: str = "toy") -> AsyncThing:
    """Create an AsyncThing (coroutine factory)."""
    await asyncio.sleep(0)
    return AsyncThing(root, label)


def make_child(name: str) -> AsyncChild:
    """Create an AsyncChild (plain factory)."""
    asyncio.get_running_loop()  # plain factories run on the loop thread
    return AsyncChild(name)
