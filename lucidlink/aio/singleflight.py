"""Single-flight: concurrent calls for one key share one in-flight task.

Used wherever several readers may want the same bytes at once (a block of the block
store, a slot of a Connect object): the first call starts the work as its own task,
later ones join it, and all of them get its result.

The rules, which every user relies on:

* A caller's cancellation cancels only its own wait (a read-ahead dropped on a seek
  never fails another reader of the same block).
* The shared task is cancelled only when no waiter remains, so work nobody wants any
  more stops; a later call for the key then starts afresh.
* The task's result, or its exception, reaches every waiter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Flight(Generic[V]):
    """One in-flight task and how many callers wait for it."""

    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Future[V]) -> None:
        self.task = task
        self.waiters = 0


class SingleFlight(Generic[K, V]):
    """De-duplicates concurrent work by key (see the module docstring for the rules)."""

    def __init__(self) -> None:
        self._flights: dict[K, _Flight[V]] = {}

    def __len__(self) -> int:
        """How many keys have work in flight."""
        return len(self._flights)

    def __contains__(self, key: object) -> bool:
        """Whether work for ``key`` is in flight."""
        return key in self._flights

    async def run(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        """The result of ``work()`` for ``key``: joins the call in flight, or starts one."""
        flight = self._flights.get(key)
        if flight is None:
            flight = _Flight(asyncio.ensure_future(work()))
            self._flights[key] = flight
            flight.task.add_done_callback(lambda task: self._landed(key, task))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                # The last waiter gave up: stop the work, and let the next call start anew.
                self._forget(key, flight.task)
                flight.task.cancel()

    def _landed(self, key: K, task: asyncio.Future[V]) -> None:
        self._forget(key, task)
        if not task.cancelled():
            task.exception()  # retrieved here; every waiter re-raises it itself

    def _forget(self, key: K, task: asyncio.Future[V]) -> None:
        flight = self._flights.get(key)
        if flight is not None and flight.task is task:
            del self._flights[key]
