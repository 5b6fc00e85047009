"""Small async helpers of the core."""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine, Generator
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T", bound="_AsyncContext")


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
