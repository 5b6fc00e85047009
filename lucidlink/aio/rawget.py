"""Block GETs whose body the kernel copies straight into one buffer.

aiohttp hands a response body over as the chunks the socket produced (a new ``bytes``
per receive) and ``read()`` joins them: every downloaded block crossed memory twice on
the event loop, and the joins were the loop's largest cost in a cold read. This client
speaks just the HTTP/1.1 a GET of a signed block URL needs, on an
:class:`asyncio.BufferedProtocol`: the status line and headers are received into a
small buffer, then a ``bytearray`` of the announced ``Content-Length`` is allocated and
the rest of the body is received into it in place (``recv_into``). Connections are kept
alive and reused, like aiohttp's.

A body is handed out only once all of its announced length has arrived: a connection
cut, a reset or a timeout mid-body raises, and the buffer is dropped with the
connection (never reused, so no later answer can be mixed with its bytes). What this
client does not handle (a chunked or length-less body, an informational answer, huge
headers) raises :class:`Unsupported`; the caller then makes the request with aiohttp.

A caller that knows where the bytes belong (a slice of a large read's result) passes
that buffer as ``into``: a successful answer whose length is exactly the buffer's is
received straight into it, and the answer's body is that buffer. Any other answer (an
error, another length) gets a buffer of its own, so an error body never lands in the
caller's memory. A failed request may have written part of ``into``; the connection is
dropped with it, so nothing is written there once the request has returned or raised.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import cast

import aiohttp
import attrs
import yarl

_HEAD_MAX = 64 * 1024
_IDLE_MAX = 64
"""Idle connections kept per host."""
_ORIGINS_MAX = 64
"""Parsed origins remembered (see :meth:`RawGet._split`)."""


class Unsupported(Exception):
    """An answer this client does not parse (the request should go through aiohttp)."""


@attrs.frozen
class Answer:
    """A complete response: its status, headers (lower-case names) and whole body."""

    status: int
    headers: dict[str, str]
    body: bytearray | memoryview


class _Connection(asyncio.BufferedProtocol):
    """One keep-alive connection, answering one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self._loop = loop
        self._limit = limit
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = False
        self.progress = 0.0
        self._head = bytearray(_HEAD_MAX)
        self._head_len = 0
        self._status = 0
        self._headers: dict[str, str] = {}
        self._body: bytearray | memoryview | None = None
        self._view: memoryview | None = None
        self._into: memoryview | None = None
        self._got = 0
        self._waiter: asyncio.Future[Answer] | None = None
        self._stray: bytearray | None = None
        self._timeout = 0.0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def started(self) -> bool:
        """Whether any byte of the answer to the last request arrived."""
        return self._head_len > 0 or self._body is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports do not derive from asyncio's.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._view = self._into = None
        if exc is None:
            self._fail(aiohttp.ServerDisconnectedError())
        else:
            self._fail(aiohttp.ClientOSError(*getattr(exc, "args", ()) or (0, str(exc))))

    def eof_received(self) -> bool:
        return False  # close our side too

    def send(self, request: bytes, timeout: float,
             into: memoryview | None = None) -> asyncio.Future[Answer]:
        """Send a request; the future resolves with the complete answer (a successful body
        of exactly ``len(into)`` bytes received into ``into``), or fails with
        ``asyncio.TimeoutError`` once no byte has arrived for ``timeout`` seconds."""
        if self.transport is None or self.closed:  # reset before it could be used
            raise aiohttp.ServerDisconnectedError()
        self._head_len = self._got = 0
        self._body = self._view = None
        self._into = into
        self.reusable = False
        self.progress = self._loop.time()
        self._waiter = self._loop.create_future()
        # One timer per request, re-armed only when it fires while bytes still arrive:
        # cheaper than wait_for(shield(...)) (two futures and a task per request).
        self._timeout = timeout
        self._timer = self._loop.call_at(self.progress + timeout, self._check_stall)
        self.transport.write(request)
        return self._waiter

    def _check_stall(self) -> None:
        self._timer = None
        if self._waiter is None or self._waiter.done():
            return
        due = self.progress + self._timeout
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._check_stall)
            return
        self._fail(asyncio.TimeoutError())  # the caller drops the connection

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def abort(self) -> None:
        """Drop the connection (and whatever a request on it was receiving)."""
        self.closed = True
        self.reusable = False
        self._view = self._into = None  # not one more byte into a caller's buffer
        self._stop_timer()
        if self._waiter is not None:
            if not self._waiter.done():
                self._waiter.cancel()
            elif not self._waiter.cancelled():
                self._waiter.exception()  # seen: nobody waits for it any more
        self._waiter = None
        if self.transport is not None:
            self.transport.abort()

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._waiter is None:  # no request in flight: whatever comes is stray
            self._stray = bytearray(65536)
            return memoryview(self._stray)
        if self._view is not None and self._got < len(self._view):
            return self._view[self._got:]
        if self._body is None and self._head_len < _HEAD_MAX:
            return memoryview(self._head)[self._head_len:]
        # Bytes beyond an answer, or headers too large: received, then dropped with the
        # connection (buffer_updated sees this buffer was not the body's).
        self._stray = bytearray(65536)
        return memoryview(self._stray)

    def buffer_updated(self, nbytes: int) -> None:
        self.progress = self._loop.time()
        if self._waiter is None:  # bytes no request asked for: never reuse this connection
            self.abort()
        elif self._view is not None and self._got < len(self._view):
            self._got += nbytes
            if self._got == len(self._view):
                self._finish()
        elif self._body is None and self._head_len < _HEAD_MAX:
            self._head_len += nbytes
            self._parse_head()
        else:  # stray bytes: this connection no longer knows where an answer starts
            self._fail(Unsupported("the server sent more than it announced"))
            self.abort()

    def _parse_head(self) -> None:
        end = self._head.find(b"\r\n\r\n", 0, self._head_len)
        if end < 0:
            if self._head_len >= _HEAD_MAX:
                self._fail(Unsupported("response headers over 64 KiB"))
                self.abort()
            return
        try:
            lines = bytes(self._head[:end]).decode("latin-1").split("\r\n")
            version, status = lines[0].split(" ", 2)[:2]
            self._status = int(status)
            self._headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                self._headers[name.strip().lower()] = value.strip()
            length = int(self._headers["content-length"])
        except (ValueError, KeyError, IndexError):
            self._fail(Unsupported("an answer without a plain Content-Length body"))
            self.abort()
            return
        if (self._status < 200 or "transfer-encoding" in self._headers
                or not version.startswith("HTTP/1.")):
            coding = self._headers.get("transfer-encoding", version)
            self._fail(Unsupported(f"HTTP {self._status} with {coding}"))
            self.abort()
            return
        if length > self._limit:
            self._fail(aiohttp.ClientPayloadError(
                f"a block answer of {length} bytes (at most {self._limit} expected)"))
            self.abort()
            return
        self.reusable = (version == "HTTP/1.1"
                         and self._headers.get("connection", "").lower() != "close")
        if self._into is not None and self._status == 200 and length == len(self._into):
            self._body = self._view = self._into
        else:
            self._body = bytearray(length)
            self._view = memoryview(self._body)
        start = end + 4
        extra = self._head_len - start
        if extra > length:
            self.reusable = False
        take = min(extra, length)
        self._view[:take] = memoryview(self._head)[start:start + take]
        self._got = take
        if self._got == length:
            self._finish()

    def _finish(self) -> None:
        assert self._body is not None
        self._view = None
        self._stop_timer()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(Answer(self._status, self._headers, self._body))
        self._waiter = None
        self._body = self._into = None

    def _fail(self, exc: BaseException) -> None:
        self.reusable = False
        self._stop_timer()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self._waiter = None


class RawGet:
    """GETs of block URLs, bodies received in place, on kept-alive connections.

    ``limit`` bounds the ``Content-Length`` accepted (larger answers raise
    ``ClientPayloadError``); ``timeout`` is the longest wait for the next bytes
    (``asyncio.TimeoutError``), ``connect_timeout`` for a connection.
    """

    def __init__(self, *, limit: int, timeout: float, connect_timeout: float = 10.0) -> None:
        self._limit = limit
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._origins: dict[str, tuple[tuple[str, str, int], str]] = {}
        self._ssl: ssl.SSLContext | None = None

    async def get(self, url: str, headers: dict[str, str],
                  into: memoryview | None = None) -> Answer:
        """One GET of ``url`` (already encoded); the whole answer, whatever its status.

        A 200 answer of exactly ``len(into)`` bytes is received into ``into`` (see the
        module's docstring).

        Raises aiohttp's connection errors, ``ClientPayloadError``, ``asyncio.TimeoutError``
        or :class:`Unsupported`.
        """
        key, host, target = self._split(url)
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = (f"GET {target} HTTP/1.1\r\nHost: {host}\r\n"
                   f"Accept-Encoding: identity\r\n{extra}\r\n").encode("latin-1")
        while True:
            conn, reused = await self._connection(key)
            try:
                answer = await self._exchange(conn, request, into)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                conn.abort()
                if reused and not conn.started:
                    continue  # a kept-alive connection the server had closed: a fresh one
                raise
            except BaseException:
                conn.abort()
                raise
            if conn.reusable and not conn.closed:
                idle = self._idle.setdefault(key, [])
                if len(idle) < _IDLE_MAX:
                    idle.append(conn)
                else:
                    conn.abort()
            else:
                conn.abort()
            return answer

    def _split(self, url: str) -> tuple[tuple[str, str, int], str, str]:
        """``url``'s connection key, ``Host`` header and request target.

        The origin's parse is remembered: a daemon's GETs go to a few origins (its hubs,
        a block store), and parsing each whole URL was a noticeable part of a small GET.
        """
        start = url.find("://")
        slash = url.find("/", start + 3) if start > 0 else -1
        origin = url[:slash] if slash > 0 else url
        if slash < 0 or "?" in origin or "#" in origin or "@" in origin:
            u = yarl.URL(url, encoded=True)  # the unusual shapes: yarl's whole parse
            return (*self._origin(u), u.raw_path_qs)
        known = self._origins.get(origin)
        if known is None:
            if len(self._origins) >= _ORIGINS_MAX:
                self._origins.clear()
            known = self._origins[origin] = self._origin(yarl.URL(origin, encoded=True))
        target = url[slash:]
        hash_at = target.find("#")  # a fragment is never sent
        return (*known, target if hash_at < 0 else target[:hash_at])

    @staticmethod
    def _origin(u: yarl.URL) -> tuple[tuple[str, str, int], str]:
        if u.scheme not in ("http", "https") or u.raw_host is None or u.port is None:
            raise Unsupported(f"not an http(s) URL: {u.scheme}")
        name = f"[{u.raw_host}]" if ":" in u.raw_host else u.raw_host  # an IPv6 literal
        host = name if u.is_default_port() else f"{name}:{u.port}"
        return (u.scheme, u.raw_host, u.port), host

    async def _exchange(self, conn: _Connection, request: bytes,
                        into: memoryview | None) -> Answer:
        return await conn.send(request, self._timeout, into)

    async def _connection(self, key: tuple[str, str, int]) -> tuple[_Connection, bool]:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn, True
        loop = asyncio.get_running_loop()
        scheme, host, port = key
        context = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(loop, self._limit), host, port,
                                       ssl=context),
                self._connect_timeout)
        except OSError as exc:
            raise aiohttp.ClientOSError(
                exc.errno or 0, f"cannot connect to {host}:{port}: {exc}") from exc
        return conn, False

    def close(self) -> None:
        """Close the idle connections."""
        for idle in self._idle.values():
            for conn in idle:
                conn.abort()
        self._idle.clear()
