"""Block GETs received in place (lucidlink/aio/rawget.py): whole answers or an error, never
torn bytes; kept-alive connections reused; what the client does not parse goes to aiohttp.

A small aiohttp server plays the block store; it counts requests and connections. The
last case reads a file through a real hub behind a proxy that cuts block answers
mid-body.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

import lucidlink.aio
from lucidlink.aio import rawget
from lucidlink.aio.transport import Transport
from lucidlink.exceptions import HubUnavailableError, PathNotFoundError, SignedUrlError
from tests.support.faultproxy import FaultProxy, reset_after
from tests.support.sdkfixtures import SMALL_BLOCK, SdkHub

pytestmark = pytest.mark.asyncio
BLOCK = os.urandom(3 * 65536 + 17)


class Store:
    """A block store on loopback: ``/b`` a block, ``/chunked`` the same chunked,
    ``/cut`` half of it then the connection dropped, ``/stall`` half then silence,
    ``/silent`` no answer at all, ``/slow`` the block a chunk every 0.1 s, ``/host`` the
    ``Host`` header it was sent, ``/gone`` a 404 envelope, ``/denied`` a bare 403."""

    def __init__(self) -> None:
        self.requests = 0
        self.connections: set[int] = set()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{name}", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        assert request.transport is not None
        self.connections.add(id(request.transport))
        name = request.match_info["name"]
        if name == "b":
            return web.Response(body=BLOCK, content_type="application/octet-stream")
        if name in ("cut", "stall"):
            resp = web.StreamResponse(headers={"Content-Length": str(len(BLOCK))})
            await resp.prepare(request)
            await resp.write(BLOCK[: len(BLOCK) // 2])
            if name == "stall":
                await asyncio.sleep(5)
            request.transport.abort()
            return resp
        if name == "silent":
            await asyncio.sleep(5)
        if name == "slow":
            resp = web.StreamResponse(headers={"Content-Length": str(len(BLOCK))})
            await resp.prepare(request)
            step = len(BLOCK) // 8 + 1
            for at in range(0, len(BLOCK), step):
                await resp.write(BLOCK[at:at + step])
                await asyncio.sleep(0.1)
            await resp.write_eof()
            return resp
        if name == "host":
            return web.Response(body=request.headers["Host"].encode())
        if name == "chunked":
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            await resp.write(BLOCK)
            await resp.write_eof()
            return resp
        if name == "gone":
            return web.json_response(
                {"error": {"code": "not_found", "message": "no such block"}}, status=404)
        return web.Response(status=403, text="denied")


@pytest_asyncio.fixture
async def store() -> AsyncIterator[Store]:
    s = Store()
    await s.start()
    yield s
    await s.stop()


async def test_whole_bodies_on_one_kept_alive_connection(store: Store) -> None:
    t = Transport(store.url, "token")
    try:
        got = [await t.get_block(f"{store.url}/b") for _ in range(5)]
    finally:
        await t.close()
    assert all(type(g) is bytearray and g == BLOCK for g in got)
    assert store.requests == 5 and len(store.connections) == 1


async def test_a_body_is_received_into_the_callers_buffer_only_when_it_fits(
        store: Store) -> None:
    """``into``: a 200 of exactly its length lands there (and is the answer's body); an
    answer of another length or an error gets a buffer of its own, ``into`` untouched."""
    raw = rawget.RawGet(limit=1 << 20, timeout=5)
    try:
        into = memoryview(bytearray(len(BLOCK)))
        answer = await raw.get(f"{store.url}/b", {}, into)
        assert answer.body is into and into == BLOCK
        for name, size in (("b", len(BLOCK) + 1), ("b", len(BLOCK) - 1), ("gone", len(BLOCK))):
            other = memoryview(bytearray(b"\xee" * size))
            answer = await raw.get(f"{store.url}/{name}", {}, other)
            assert answer.body is not other and other == b"\xee" * size
        assert answer.status == 404 and b"no such block" in answer.body
        # A cut answer raises; the next request on a fresh connection fills the buffer.
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await raw.get(f"{store.url}/cut", {}, into)
        into[:] = bytes(len(BLOCK))
        assert (await raw.get(f"{store.url}/b", {}, into)).body is into and into == BLOCK
    finally:
        raw.close()


async def test_an_answer_cut_mid_body_is_retried_never_handed_out(store: Store) -> None:
    raw = rawget.RawGet(limit=1 << 20, timeout=5)
    try:
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await raw.get(f"{store.url}/cut", {})
        answer = await raw.get(f"{store.url}/b", {})  # a fresh connection, a fresh buffer
    finally:
        raw.close()
    assert answer.status == 200 and answer.body == BLOCK
    # Through the transport: every attempt cut, then "unavailable"; nothing returned.
    t = Transport(store.url, "token", retries=2)
    try:
        with pytest.raises(HubUnavailableError):
            await t.get_block(f"{store.url}/cut")
    finally:
        await t.close()
    assert store.requests == 2 + 3


async def test_a_stalled_body_times_out(store: Store) -> None:
    raw = rawget.RawGet(limit=1 << 20, timeout=0.3)
    try:
        with pytest.raises(asyncio.TimeoutError):
            await raw.get(f"{store.url}/stall", {})
    finally:
        raw.close()


async def test_an_unanswered_request_times_out_and_its_connection_is_dropped(
        store: Store) -> None:
    raw = rawget.RawGet(limit=1 << 20, timeout=0.3)
    try:
        with pytest.raises(asyncio.TimeoutError):
            await raw.get(f"{store.url}/silent", {})
        assert (await raw.get(f"{store.url}/b", {})).body == BLOCK
        assert len(store.connections) == 2  # the timed-out one was not reused
    finally:
        raw.close()


async def test_an_answer_that_keeps_arriving_does_not_time_out(store: Store) -> None:
    """The timeout is for silence: 8 chunks 0.1 s apart take 0.8 s, past a 0.3 s timeout."""
    raw = rawget.RawGet(limit=1 << 20, timeout=0.3)
    try:
        assert (await raw.get(f"{store.url}/slow", {})).body == BLOCK
        assert (await raw.get(f"{store.url}/b", {})).body == BLOCK
        assert len(store.connections) == 1
    finally:
        raw.close()


async def test_a_cancelled_get_drops_its_connection(store: Store) -> None:
    raw = rawget.RawGet(limit=1 << 20, timeout=5)
    try:
        task = asyncio.create_task(raw.get(f"{store.url}/silent", {}))
        for _ in range(1000):  # until the server has the request (10 s at most)
            if store.requests:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await raw.get(f"{store.url}/b", {})).body == BLOCK
        assert len(store.connections) == 2
    finally:
        raw.close()


async def test_the_host_header_names_the_origin() -> None:
    """``host:port``, and an IPv6 literal in brackets (RFC 9110 7.2)."""
    for family_host in ("127.0.0.1", "::1"):
        s = Store()
        app = web.Application()
        app.router.add_get("/{name}", s.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            site = web.TCPSite(runner, family_host, 0)
            try:
                await site.start()
            except OSError:
                assert family_host == "::1"
                continue  # no IPv6 loopback on this machine
            port = runner.addresses[0][1]
            name = f"[{family_host}]" if ":" in family_host else family_host
            raw = rawget.RawGet(limit=1 << 20, timeout=5)
            try:
                answer = await raw.get(f"http://{name}:{port}/host?x=1#fragment", {})
                assert bytes(answer.body).decode() == f"{name}:{port}"
            finally:
                raw.close()
        finally:
            await runner.cleanup()


async def test_a_server_closing_an_idle_connection_costs_no_error(store: Store) -> None:
    raw = rawget.RawGet(limit=1 << 20, timeout=5)
    try:
        assert (await raw.get(f"{store.url}/b", {})).body == BLOCK
        # The server drops its kept-alive connections (as after its idle timeout)...
        assert store._runner is not None
        for conn in list(store._runner.server.connections if store._runner.server else []):
            conn.force_close()
        await asyncio.sleep(0.05)
        # ...the next GET goes on a fresh one.
        assert (await raw.get(f"{store.url}/b", {})).body == BLOCK
    finally:
        raw.close()
    assert store.requests == 2 and len(store.connections) == 2


async def test_errors_and_oversized_answers(store: Store) -> None:
    t = Transport(store.url, "token", retries=0)
    try:
        with pytest.raises(PathNotFoundError):
            await t.get_block(f"{store.url}/gone")
        with pytest.raises(SignedUrlError):
            await t.get_block(f"{store.url}/denied")
    finally:
        await t.close()
    raw = rawget.RawGet(limit=1000, timeout=5)
    try:
        with pytest.raises(aiohttp.ClientPayloadError):
            await raw.get(f"{store.url}/b", {})
    finally:
        raw.close()


async def test_an_answer_it_does_not_parse_goes_to_aiohttp(store: Store) -> None:
    t = Transport(store.url, "token")
    try:
        data = await t.get_block(f"{store.url}/chunked")
        assert data == BLOCK
        assert await t.get_block(f"{store.url}/b") == BLOCK  # aiohttp from now on
    finally:
        await t.close()
    assert store.requests == 3  # the chunked one twice: once each client


async def test_block_reads_through_cut_answers_are_whole(sdk_hub: SdkHub) -> None:
    """Block answers cut mid-body: every read returns the file's bytes; the cut GETs are
    made again (counted at the proxy), and nothing torn reaches the reader."""
    data = os.urandom(12 * SMALL_BLOCK + 99)
    creds = lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token)
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as writer:
        fsp = await (await writer.authenticate(creds)).link_filespace(name="small")
        await fsp.fs.write_file("/cut.bin", data)
        await fsp.sync_all()
        await fsp.unlink()
    port = int(sdk_hub.url.rsplit(":", 1)[1])
    with FaultProxy(("127.0.0.1", port)) as proxy:
        async with lucidlink.aio.create_daemon(hub_url=proxy.url) as reader:
            fsp = await (await reader.authenticate(creds)).link_filespace(name="small")
            downloads: list[str] = []
            transport = fsp._link.blocks.transport
            real = transport.get_block

            async def counting(url: str, into: memoryview | None = None) -> Any:
                downloads.append(url)
                return await real(url, into)

            transport.get_block = counting  # type: ignore[method-assign]
            raw = transport._raw
            assert raw is not None
            answers: list[int] = []
            real_get = raw.get

            async def counting_gets(url: str, headers: dict[str, str],
                                    into: memoryview | None = None) -> Any:
                try:
                    answer = await real_get(url, headers, into)
                except Exception:
                    answers.append(0)
                    raise
                answers.append(len(answer.body))
                return answer

            raw.get = counting_gets  # type: ignore[method-assign]
            proxy.mode = reset_after(SMALL_BLOCK // 3, match=r"^GET /v1/blocks/", times=4)
            got = await fsp.fs.read_file("/cut.bin")
            await fsp.unlink()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    # One download per block not kept inline by the hub; the 4 cut answers raised (no
    # partial body came out) and were asked again inside their download.
    assert len(downloads) == len(set(downloads)) >= 12
    assert answers.count(0) == 4 and len(answers) == len(downloads) + 4, answers
    assert all(n in (0, SMALL_BLOCK, 99) for n in answers), answers


async def test_bytes_beyond_an_answer_retire_the_connection() -> None:
    """A server that sends more than it announced: the answer is its announced length,
    and the connection is never used again (the stray bytes belong to no request)."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloGARBAGE")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    raw = rawget.RawGet(limit=1 << 20, timeout=5)
    try:
        first = await raw.get(f"http://127.0.0.1:{port}/a", {})
        await asyncio.sleep(0.05)  # the stray bytes arrive on the idle connection
        second = await raw.get(f"http://127.0.0.1:{port}/a", {})
    finally:
        raw.close()
        server.close()
        await asyncio.sleep(0.05)  # the handlers see the connections close
        await server.wait_closed()
    assert first.body == second.body == b"hello"
    assert len(connections) == 2
