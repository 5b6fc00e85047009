"""Small async helpers of the core."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Generator
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

import anyio.to_thread

from lucidlink import _anyio_backend  # noqa: F401 (imported now, not on a loop)

T = TypeVar("T", bound="_AsyncContext")
R = TypeVar("R")


class _AsyncContext(Protocol):
    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any: ...


class AwaitableContext(Generic[T]):
    """Both ``await x`` (gives the object) and ``async with x as obj`` (enters and exits it).

    So ``f = await fs.open(p)`` and ``async with fs.open(p) as f`` both work, as with
    ``aiofiles`` and aiohttp's ``session.get``.
    """

    __slots__ = ("_coro", "_obj")

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro
        self._obj: T | None = None

    def __await__(self) -> Generator[Any, None, T]:
        return self._coro.__await__()

    async def __aenter__(self) -> T:
        self._obj = await self._coro
        return await self._obj.__aenter__()  # type: ignore[no-any-return]

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> Any:
        assert self._obj is not None
        return await self._obj.__aexit__(exc_type, exc, tb)

    def close(self) -> None:
        """Close the underlying coroutine if it was never awaited (avoids a warning)."""
        self._coro.close()


async def gather_limited(coros: list[Awaitable[Any]], limit: int) -> list[Any]:
    """Run awaitables with at most ``limit`` at once; results in order; first error wins."""
    import asyncio

    sem = asyncio.Semaphore(limit)

    async def one(aw: Awaitable[Any]) -> Any:
        async with sem:
            return await aw

    return list(await asyncio.gather(*(one(c) for c in coros)))


async def run_in_thread_on(buffer: bytes | bytearray | memoryview,
                           fn: Callable[[memoryview], R]) -> R:
    """``fn(view)`` in a worker thread, ``view`` being a view of ``buffer`` that the thread
    itself releases before it reports the result.

    A worker thread lets go of its job's function and arguments only after the result is
    reported, and the loop may run on before it does. A view of a caller's buffer held
    there a moment too long keeps that buffer exported: a large read's ``BytesIO`` then
    copies its whole result in ``getvalue`` instead of handing it over (seen under load
    in half of 256 MiB reads: twice the memory, half the speed). Through this helper the
    worker holds only a released view. ``fn`` must neither keep nor return ``view`` or a
    slice of it.
    """
    view = memoryview(buffer)

    def call() -> R:
        with view:
            return fn(view)

    return await anyio.to_thread.run_sync(call)
