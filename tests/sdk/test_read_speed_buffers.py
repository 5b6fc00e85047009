"""Block body buffers reused by lucidlink/aio/rawget.py: a buffer anyone still refers to
(a reader, a memoryview of it) is never handed out again, and never changes under its
holder; one every holder dropped is received into again instead of a fresh allocation.
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web

from lucidlink.aio import rawget

pytestmark = pytest.mark.asyncio
SIZE = (1 << 20) + 4097
"""A block-sized body (small answers are not pooled)."""


class Store:
    """``/n`` answers a body of SIZE bytes, each one different (its first byte counts)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{name}", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = bytes([len(self.bodies) % 256]) + os.urandom(SIZE - 1)
        self.bodies.append(body)
        return web.Response(body=body, content_type="application/octet-stream")


@pytest_asyncio.fixture
async def store() -> AsyncIterator[Store]:
    s = Store()
    await s.start()
    yield s
    await s.stop()


async def test_a_held_buffer_is_never_reused(store: Store) -> None:
    raw = rawget.RawGet(limit=2 << 20, timeout=5)
    try:
        kept = [(await raw.get(f"{store.url}/n", {})).body for _ in range(3)]
        view = memoryview((await raw.get(f"{store.url}/n", {})).body)
        later = [(await raw.get(f"{store.url}/n", {})).body for _ in range(6)]
    finally:
        raw.close()
    held = [*kept, view.obj, *later]
    assert len({id(b) for b in held}) == len(held)  # nothing anyone holds was handed out twice
    assert [bytes(b) for b in kept] == store.bodies[:3]
    assert bytes(view) == store.bodies[3]
    assert [bytes(b) for b in later] == store.bodies[4:]


async def test_a_dropped_buffer_is_received_into_again(store: Store) -> None:
    raw = rawget.RawGet(limit=2 << 20, timeout=5)
    try:
        seen = []
        for _ in range(8):
            body = (await raw.get(f"{store.url}/n", {})).body
            assert bytes(body) == store.bodies[-1]
            seen.append(id(body))
            del body
            gc.collect()
    finally:
        raw.close()
    assert len(set(seen)) == 1  # one buffer for eight answers read one after the other

