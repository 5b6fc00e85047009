"""URL signing shared by concurrent readers: one call for many, errors left to each download."""

from __future__ import annotations

import asyncio

import pytest

from lucidlink.aio import urlbatch

pytestmark = pytest.mark.asyncio


class Source:
    """A block source whose URL calls are recorded and held until released."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.release = asyncio.Event()
        self.fail = False

    async def prepare_get_urls(self, hashes: list[str]) -> None:
        self.calls.append(hashes)
        await self.release.wait()
        if self.fail:
            raise ConnectionError("the hub is down")


async def test_concurrent_requests_share_calls() -> None:
    source = Source()
    first = [asyncio.create_task(urlbatch.prepare_get_urls(source, [f"h{i}"])) for i in range(5)]
    await asyncio.sleep(0.01)
    assert source.calls == [["h0", "h1", "h2", "h3", "h4"]]  # one call for the five
    later = [asyncio.create_task(urlbatch.prepare_get_urls(source, [f"k{i}", "h0"]))
             for i in range(3)]
    await asyncio.sleep(0.01)
    assert len(source.calls) == 1  # they wait for the call in flight to end
    source.release.set()
    await asyncio.gather(*first, *later)
    assert source.calls[1] == ["k0", "h0", "k1", "k2"]


async def test_a_failed_call_is_left_to_the_downloads_and_a_cancelled_reader_to_itself() -> None:
    source = Source()
    source.fail = True
    a = asyncio.create_task(urlbatch.prepare_get_urls(source, ["a"]))
    b = asyncio.create_task(urlbatch.prepare_get_urls(source, ["b"]))
    await asyncio.sleep(0.01)
    a.cancel()
    source.release.set()
    await b  # no error here: the download asks for its URL again and reports its own
    assert a.cancelled()
    source.fail = False
    await urlbatch.prepare_get_urls(source, ["c"])
    assert source.calls == [["a", "b"], ["c"]]
