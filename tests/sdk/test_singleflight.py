"""The single-flight rule: shared work, private cancellation, shared errors."""

from __future__ import annotations

import asyncio

import pytest

from lucidlink.aio.singleflight import SingleFlight

pytestmark = pytest.mark.asyncio


class Work:
    """A call that runs until released, counting how often it started and was cancelled."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0
        self.release = asyncio.Event()
        self.error: Exception | None = None

    async def __call__(self) -> bytes:
        self.started += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.error is not None:
            raise self.error
        return b"block"


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_concurrent_callers_share_one_call() -> None:
    flights: SingleFlight[str, bytes] = SingleFlight()
    work = Work()
    waiters = [asyncio.create_task(flights.run("k", work)) for _ in range(3)]
    await _settle()
    work.release.set()
    assert await asyncio.gather(*waiters) == [b"block"] * 3
    assert work.started == 1
    assert "k" not in flights and len(flights) == 0


async def test_first_callers_cancellation_reaches_no_other_waiter() -> None:
    flights: SingleFlight[str, bytes] = SingleFlight()
    work = Work()
    first = asyncio.create_task(flights.run("k", work))  # the one that started the call
    await _settle()
    second = asyncio.create_task(flights.run("k", work))
    await _settle()
    first.cancel()
    await _settle()
    assert first.cancelled()
    assert not second.done() and work.cancelled == 0  # the shared call goes on
    work.release.set()
    assert await second == b"block"
    assert work.started == 1


async def test_shared_call_is_cancelled_when_the_last_waiter_leaves() -> None:
    flights: SingleFlight[str, bytes] = SingleFlight()
    work = Work()
    waiters = [asyncio.create_task(flights.run("k", work)) for _ in range(2)]
    await _settle()
    waiters[0].cancel()
    await _settle()
    assert work.cancelled == 0
    waiters[1].cancel()
    await _settle()
    assert work.cancelled == 1 and "k" not in flights
    # The next caller starts afresh rather than joining the cancelled call.
    again = asyncio.create_task(flights.run("k", work))
    await _settle()
    work.release.set()
    assert await again == b"block"
    assert work.started == 2


async def test_the_calls_exception_reaches_every_waiter() -> None:
    flights: SingleFlight[str, bytes] = SingleFlight()
    work = Work()
    work.error = OSError("store unreachable")
    waiters = [asyncio.create_task(flights.run("k", work)) for _ in range(3)]
    await _settle()
    work.release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, OSError) and str(r) == "store unreachable" for r in results)
    assert work.started == 1 and "k" not in flights


async def test_keys_are_independent() -> None:
    flights: SingleFlight[str, bytes] = SingleFlight()
    a, b = Work(), Work()
    ta = asyncio.create_task(flights.run("a", a))
    tb = asyncio.create_task(flights.run("b", b))
    await _settle()
    ta.cancel()
    await _settle()
    assert a.cancelled == 1 and b.cancelled == 0
    b.release.set()
    assert await tb == b"block"
    with pytest.raises(asyncio.CancelledError):
        await ta
