"""The fault proxy itself, against a tiny aiohttp server in a thread of its own."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support.faultproxy import (
    PASS,
    FaultProxy,
    blackhole,
    latency,
    refuse,
    reset_after,
    reset_request,
)

BIG = bytes(range(256)) * 1024  # 256 KiB, recognisable at every offset


class TinyServer:
    """An aiohttp app on a free loopback port, in its own thread and loop.

    Routes: ``GET /hello``; ``GET /big`` (:data:`BIG`); ``POST /count`` (counts the
    requests that reached it, echoes the body); ``GET /slow`` (streams ``n`` chunks, one
    whenever :attr:`tick` is set).
    """

    def __init__(self) -> None:
        self.port = 0
        self.counted = 0
        self.tick = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete,
            args=(self._serve(),),
            name="tinyserver",
            daemon=True,
        )

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_get("/hello", self._hello)
        app.router.add_get("/big", self._big)
        app.router.add_post("/count", self._count)
        app.router.add_get("/slow", self._slow)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    async def _hello(self, request: web.Request) -> web.Response:
        return web.Response(body=b"hello")

    async def _big(self, request: web.Request) -> web.Response:
        return web.Response(body=BIG)

    async def _count(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.counted += 1
        return web.Response(body=body)

    async def _slow(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for _ in range(int(request.query.get("n", "3"))):
            # The test thread sets ``tick``: a threading.Event, so poll it.
            while not self.tick.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            self.tick.clear()
            await resp.write(b"x" * 1000)
        await resp.write_eof()
        return resp

    def __enter__(self) -> TinyServer:
        self._thread.start()
        self._ready.wait(30)
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._loop.close()


@pytest.fixture
def server() -> Iterator[TinyServer]:
    with TinyServer() as s:
        yield s


@pytest.fixture
def proxy(server: TinyServer) -> Iterator[FaultProxy]:
    with FaultProxy(("127.0.0.1", server.port), seed=1) as p:
        yield p


def raw_request(port: int, method: str, path: str, body: bytes = b"") -> socket.socket:
    """A connected socket that has sent one HTTP/1.1 request (keep-alive)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


def read_until_closed(sock: socket.socket) -> tuple[bytes, BaseException | None]:
    """Everything the socket delivers, and the error it ended with (``None``: a clean FIN)."""
    got = bytearray()
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return bytes(got), None
            got += chunk
    except OSError as exc:
        return bytes(got), exc
    finally:
        sock.close()


def body_of(response: bytes) -> bytes:
    return response.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in response else b""


def get(
    proxy: FaultProxy, path: str, method: str = "GET", body: bytes | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# -- pass-through ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_pass_through_keeps_connections_alive(proxy: FaultProxy) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB each way
    async with aiohttp.ClientSession() as session:
        for _ in range(5):
            async with session.get(proxy.url + "/hello") as resp:
                assert await resp.read() == b"hello"
        async with session.post(proxy.url + "/count", data=payload) as resp:
            assert await resp.read() == payload
        async with session.get(proxy.url + "/big") as resp:
            assert await resp.read() == BIG
    assert proxy.connections == 1  # keep-alive: one connection carried every request
    assert proxy.requests == 7
    assert proxy.faults == {}
    assert proxy.mode is PASS


def test_context_manager_stops_listening_and_refuses_control_from_its_own_loop(
    server: TinyServer,
) -> None:
    with FaultProxy(("127.0.0.1", server.port)) as p:
        port = p.port
        assert get(p, "/hello") == (200, b"hello")
        assert p._loop is not None

        async def from_inside() -> None:
            p.reset_all()

        with pytest.raises(RuntimeError, match="another thread"):
            asyncio.run_coroutine_threadsafe(from_inside(), p._loop).result(10)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


# -- resets ------------------------------------------------------------------------------


def test_reset_all_sends_rst_to_open_connections(proxy: FaultProxy, server: TinyServer) -> None:
    sock = raw_request(proxy.port, "GET", "/slow?n=3")
    server.tick.set()
    first = b""
    while b"x" not in first:  # the first chunk got through: the response is mid-body
        first += sock.recv(65536)
    assert proxy.reset_all() == 1
    _, error = read_until_closed(sock)
    assert isinstance(error, ConnectionResetError)
    assert proxy.faults == {"reset": 1}
    server.tick.set()
    assert get(proxy, "/hello") == (200, b"hello")  # new connections are fine


def test_reset_after_cuts_the_body_after_n_bytes_with_rst(proxy: FaultProxy) -> None:
    proxy.mode = reset_after(1000)
    response, error = read_until_closed(raw_request(proxy.port, "GET", "/big"))
    assert isinstance(error, ConnectionResetError)
    assert response.startswith(b"HTTP/1.1 200")
    assert body_of(response) == BIG[:1000]  # exactly the first n bytes of the body, then RST
    assert proxy.faults == {"reset_after": 1}
    # A body no longer than n is not cut.
    assert get(proxy, "/hello") == (200, b"hello")
    assert proxy.faults == {"reset_after": 1}


def test_reset_after_only_on_matching_requests_and_only_times(proxy: FaultProxy) -> None:
    proxy.mode = reset_after(0, match=r"^POST /count", times=2)
    assert get(proxy, "/big") == (200, BIG)
    for _ in range(2):
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            get(proxy, "/count", "POST", b"payload")
    assert get(proxy, "/count", "POST", b"third") == (
        200,
        b"third",
    )  # the fault was armed twice only
    assert proxy.faults == {"reset_after": 2}


def test_reset_after_the_server_acted_reset_request_before(
    proxy: FaultProxy, server: TinyServer
) -> None:
    proxy.mode = reset_after(2, match=r"^POST ")
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        get(proxy, "/count", "POST", b"abc")
    assert server.counted == 1  # the request landed; only its answer was lost

    proxy.mode = reset_request(match=r"^POST ")
    _, error = read_until_closed(raw_request(proxy.port, "POST", "/count", b"abc"))
    assert isinstance(error, ConnectionResetError)
    assert server.counted == 1  # this one never reached the server
    assert get(proxy, "/hello") == (200, b"hello")
    assert proxy.faults == {"reset_after": 1, "reset_request": 1}


@pytest.mark.asyncio
async def test_a_fault_per_request_on_a_keep_alive_connection(proxy: FaultProxy) -> None:
    proxy.mode = reset_after(10, match=r"^GET /big")
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(proxy.url + "/hello") as resp:
                assert await resp.read() == b"hello"
        with pytest.raises(aiohttp.ClientError):
            async with session.get(proxy.url + "/big") as resp:
                await resp.read()
        async with session.get(proxy.url + "/hello") as resp:
            assert await resp.read() == b"hello"
    assert proxy.faults == {"reset_after": 1}


def test_several_faults_at_once(proxy: FaultProxy, server: TinyServer) -> None:
    proxy.mode = (
        reset_after(0, match=r"^POST /count", times=1),
        reset_request(match=r"^POST /count", times=1),
        latency(0.01),
    )
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        get(proxy, "/count", "POST", b"1")  # cut after the server acted
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        get(proxy, "/count", "POST", b"2")  # reset before it
    assert get(proxy, "/count", "POST", b"3") == (200, b"3")
    assert server.counted == 2
    faults = proxy.faults
    assert faults["reset_after"] == 1 and faults["reset_request"] == 1 and faults["latency"] >= 4


def test_probability_arms_some_requests(server: TinyServer) -> None:
    with FaultProxy(("127.0.0.1", server.port), seed=7) as proxy:
        proxy.mode = reset_request(probability=0.5)
        outcomes = []
        for _ in range(40):
            try:
                outcomes.append(get(proxy, "/hello") == (200, b"hello"))
            except (ConnectionError, http.client.HTTPException):
                outcomes.append(False)
        assert 0 < sum(outcomes) < 40
        assert proxy.faults["reset_request"] == outcomes.count(False)


# -- blackhole, refuse, latency ------------------------------------------------------------


@pytest.mark.asyncio
async def test_blackhole_stalls_and_delivers_late_when_healed(
    proxy: FaultProxy, server: TinyServer
) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy.url + "/hello") as resp:  # an open keep-alive connection
            assert await resp.read() == b"hello"
        await asyncio.to_thread(setattr, proxy, "mode", blackhole())
        short = aiohttp.ClientTimeout(total=0.3)
        with pytest.raises(asyncio.TimeoutError):  # a new connection is accepted but stalls
            async with (
                aiohttp.ClientSession() as other,
                other.get(proxy.url + "/hello", timeout=short),
            ):
                pass
        late = asyncio.ensure_future(session.post(proxy.url + "/count", data=b"held"))
        await asyncio.sleep(0.3)
        assert not late.done() and server.counted == 0  # held in the proxy
        await asyncio.to_thread(setattr, proxy, "mode", PASS)
        async with await late as resp:  # the same connection resumes
            assert await resp.read() == b"held"
    assert server.counted == 1
    assert proxy.faults["blackhole"] >= 2


def test_blackhole_of_matching_requests_only(proxy: FaultProxy, server: TinyServer) -> None:
    proxy.mode = blackhole(match=r"^POST /count")
    held = raw_request(proxy.port, "POST", "/count", b"late")
    assert get(proxy, "/hello") == (200, b"hello")  # other requests pass
    held.settimeout(0.3)
    with pytest.raises(TimeoutError):
        held.recv(1)
    assert server.counted == 0
    proxy.mode = PASS
    held.settimeout(10)
    assert held.recv(65536).startswith(b"HTTP/1.1 200")
    held.close()
    assert server.counted == 1


def test_refuse_closes_the_listener_and_reopens_it(proxy: FaultProxy) -> None:
    open_conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    open_conn.request("GET", "/hello")
    assert open_conn.getresponse().read() == b"hello"
    url = proxy.url
    with proxy.faulted(refuse()):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=5).close()
        open_conn.request("GET", "/hello")  # open connections carry on
        assert open_conn.getresponse().read() == b"hello"
    open_conn.close()
    assert proxy.url == url
    assert get(proxy, "/hello") == (200, b"hello")
    assert proxy.faults == {"refuse": 1}


def test_latency_delays_chunks_without_changing_them(proxy: FaultProxy) -> None:
    proxy.mode = latency(0.05)
    started = time.monotonic()
    assert get(proxy, "/big") == (200, BIG)
    assert time.monotonic() - started >= 0.1  # a request and a response chunk, 0.05 s each
    proxy.mode = latency(0.05, match=r"^GET /big")
    assert get(proxy, "/hello") == (200, b"hello")
    counted = proxy.faults["latency"]
    assert get(proxy, "/big") == (200, BIG)
    assert proxy.faults["latency"] > counted


def test_controls_are_thread_safe(proxy: FaultProxy) -> None:
    modes = [
        PASS,
        latency(0.001),
        reset_after(100, match="^GET /big"),
        blackhole(match="^PUT "),
        PASS,
    ]
    errors: list[BaseException] = []

    def flip(i: int) -> None:
        try:
            for n in range(20):
                proxy.mode = modes[(i + n) % len(modes)]
                if n % 5 == 0:
                    proxy.reset_all()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=flip, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    proxy.mode = PASS
    assert get(proxy, "/hello") == (200, b"hello")
