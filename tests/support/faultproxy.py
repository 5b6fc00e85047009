"""A TCP proxy for fault tests: sits between a client and a server on loopback and breaks
the connection on command.

    with FaultProxy(("127.0.0.1", hub_port)) as proxy:
        client = create_daemon(hub_url=proxy.url)
        proxy.mode = reset_after(16, match=r"^POST \\S*/commits")   # cut commit answers
        proxy.reset_all()                                           # RST every connection
        with proxy.faulted(blackhole()):                            # a partition, healed on exit
            ...

Invariants and choices:

* The proxy runs its own event loop in its own thread, so sync and async tests use it
  alike; every control method is thread-safe and returns once the change is in effect
  (the proxy's loop has applied it). Calling one from the proxy's own loop is refused.
* A reset is a real RST: ``SO_LINGER`` 0, then close. Both sides of the connection get
  it (the client sees ``ECONNRESET``; the server sees its peer vanish).
* Faults that concern one request (``reset_after``, ``reset_request``, and ``blackhole``
  or ``latency`` with a ``match``) are decided when the request's first line passes
  through: a client-to-server chunk that starts with ``METHOD target HTTP/1.x\\r\\n``.
  Connections are HTTP/1.1 keep-alive and carry many requests; clients such as aiohttp
  do not pipeline, so the response bytes that follow belong to that request. A body
  chunk is never mistaken for a request line in practice (it would have to start with
  an exact ``GET /x HTTP/1.1\\r\\n``), which is what keeps this simple.
* Global faults (``blackhole``/``latency`` without ``match``, ``refuse``) apply to every
  chunk as it passes, so connections already open stall or slow down too. A blackhole
  holds the bytes it stops; when it ends they are delivered, late, like a healed
  partition's retransmissions (a client that gave up may thus have its request reach
  the server after all: exactly what idempotent retries must survive).
* Setting a new mode disarms the old one everywhere, including requests it had armed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import re
import socket
import struct
import threading
from collections.abc import Coroutine, Iterator
from types import TracebackType
from typing import Any, Literal, TypeVar

import attrs

__all__ = [
    "PASS",
    "Fault",
    "FaultProxy",
    "blackhole",
    "latency",
    "refuse",
    "reset_after",
    "reset_request",
]

T = TypeVar("T")
Kind = Literal["pass", "reset_after", "reset_request", "blackhole", "refuse", "latency"]

_REQUEST_LINE = re.compile(rb"^(?:GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS) \S+ HTTP/1\.[01]\r\n")
_CHUNK = 256 * 1024
_CONTROL_TIMEOUT = 30.0


@attrs.frozen
class Fault:
    """What the proxy does to traffic. Build one with the functions below, not directly.

    ``match`` (a regex searched in the request line, e.g. ``^PUT /v1/blocks/``) limits
    the fault to those requests; ``times`` arms it for at most that many requests;
    ``probability`` arms it for each matching request with that chance (seeded by the
    proxy's ``seed``).
    """

    kind: Kind
    n_bytes: int = 0
    seconds: float = 0.0
    match: re.Pattern[str] | None = None
    times: int | None = None
    probability: float = 1.0

    @property
    def per_request(self) -> bool:
        """Whether the fault is decided per request (else it applies to every chunk)."""
        return self.kind in ("reset_after", "reset_request") or (
            self.kind in ("blackhole", "latency") and self.match is not None
        )


def _pattern(match: str | re.Pattern[str] | None) -> re.Pattern[str] | None:
    return re.compile(match) if isinstance(match, str) else match


PASS = Fault("pass")
"""Forward everything untouched."""


def reset_after(
    n_bytes: int,
    *,
    match: str | re.Pattern[str] | None = None,
    times: int | None = None,
    probability: float = 1.0,
) -> Fault:
    """Let ``n_bytes`` of a response's *body* through, then RST.

    Only bodies longer than ``n_bytes`` are cut. The request reached the server: it
    may have acted on it, and the client does not know. With ``n_bytes=0`` the client
    gets the status line and headers only.
    """
    if n_bytes < 0:
        raise ValueError("n_bytes must be >= 0")
    return Fault(
        "reset_after", n_bytes=n_bytes, match=_pattern(match), times=times, probability=probability
    )


def reset_request(
    *,
    match: str | re.Pattern[str] | None = None,
    times: int | None = None,
    probability: float = 1.0,
) -> Fault:
    """RST the connection when a (matching) request arrives, before the server sees it."""
    return Fault("reset_request", match=_pattern(match), times=times, probability=probability)


def blackhole(*, match: str | re.Pattern[str] | None = None, times: int | None = None) -> Fault:
    """Forward nothing either way until the mode changes; connections stay open and stall.

    With ``match``, only the matching requests (and their responses) are held, and
    ``times`` limits how many.
    """
    return Fault("blackhole", match=_pattern(match), times=times)


def refuse() -> Fault:
    """Close the listening socket: new connections are refused; open ones carry on."""
    return Fault("refuse")


def latency(
    seconds: float, *, match: str | re.Pattern[str] | None = None, times: int | None = None
) -> Fault:
    """Delay every chunk (each direction) by ``seconds``.

    With ``match``, only the chunks of matching requests and their responses, and
    ``times`` limits how many requests.
    """
    if seconds < 0:
        raise ValueError("seconds must be >= 0")
    return Fault("latency", seconds=seconds, match=_pattern(match), times=times)


_ID = re.compile(r"/[0-9a-f]{8,}(?=/|$)|/[0-9a-f-]{36}(?=/|$)")


def _route(line: str) -> str:
    """``METHOD /path`` of a request line, without the query and with hex ids as ``*``."""
    method, _, rest = line.partition(" ")
    path = rest.split(" ", 1)[0].split("?", 1)[0]
    return f"{method} {_ID.sub('/*', path)}"


class _Conn:
    """One proxied connection and the state of the request it is carrying."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.dead = False
        self.armed: Fault | None = None
        """The per-request fault armed for the current request (``None``: none)."""
        self.armed_epoch = -1
        self.line = ""
        """The current request's first line."""
        self.in_body = False
        self.head_tail = b""
        self.body_bytes = 0

    def new_request(self, line: str) -> None:
        self.line = line
        self.armed = None
        self.in_body = False
        self.head_tail = b""
        self.body_bytes = 0


def _rst(writer: asyncio.StreamWriter | None) -> None:
    """Close a connection with RST: SO_LINGER 0, then an immediate close."""
    if writer is None or writer.transport.is_closing():
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """A loopback TCP proxy to ``upstream`` (host, port) with faults switchable at run time.

    Counters (read them from any thread): :attr:`connections` accepted, :attr:`requests`
    seen, and :attr:`faults`, the faults injected by kind (``reset`` counts connections
    cut by :meth:`reset_all`; ``reset_after``/``reset_request`` the requests cut;
    ``blackhole`` and ``latency`` the chunks held or delayed; ``refuse`` the times the
    listener was closed).
    """

    def __init__(self, upstream: tuple[str, int], *, seed: int | None = None) -> None:
        self.upstream = upstream
        self.port = 0
        self._random = random.Random(seed)
        self._mode: Fault | tuple[Fault, ...] = PASS
        self._faults_on: tuple[Fault, ...] = ()
        self._epoch = 0
        self._left: list[int | None] = []  # per fault: how many more requests it may arm
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._closing = False
        self._conns: set[_Conn] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._changed: asyncio.Event | None = None
        self._stats_lock = threading.Lock()
        self._faults: collections.Counter[str] = collections.Counter()
        self._by_request: collections.Counter[tuple[str, str]] = collections.Counter()
        self._connections = 0
        self._requests = 0

    # -- life cycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: give this to the client instead of the server's URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        """Start the loop thread and listen on a free loopback port."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="faultproxy", daemon=True)
        self._thread.start()
        self._call(self._listen(0))
        return self

    def stop(self) -> None:
        """Close the listener and every connection, stop the loop and its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._call(self._shutdown())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_CONTROL_TIMEOUT)
            loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- control (any thread) ----------------------------------------------------------

    @property
    def mode(self) -> Fault | tuple[Fault, ...]:
        """The fault(s) in effect (``PASS`` when none); assign to switch.

        Assign one fault, or several at once (a tuple): a request is armed with the
        first per-request fault of the tuple that takes it; global faults all apply.
        """
        return self._mode

    @mode.setter
    def mode(self, fault: Fault | tuple[Fault, ...]) -> None:
        self._call(self._set_mode(fault))

    @contextlib.contextmanager
    def faulted(self, fault: Fault | tuple[Fault, ...]) -> Iterator[FaultProxy]:
        """Apply ``fault`` for the ``with`` block, then pass traffic again."""
        self.mode = fault
        try:
            yield self
        finally:
            self.mode = PASS

    def reset_all(self) -> int:
        """RST every open connection (both sides); returns how many were reset."""
        return self._call(self._reset_all())

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        with self._stats_lock:
            return self._connections

    @property
    def active(self) -> int:
        """Connections open now."""
        return len(self._conns)

    @property
    def requests(self) -> int:
        """HTTP requests seen so far (request lines)."""
        with self._stats_lock:
            return self._requests

    @property
    def faults(self) -> dict[str, int]:
        """Faults injected so far, by kind."""
        with self._stats_lock:
            return dict(self._faults)

    @property
    def faults_by_request(self) -> dict[tuple[str, str], int]:
        """Per-request faults injected so far, by (kind, ``METHOD /path`` with ids as ``*``)."""
        with self._stats_lock:
            return dict(self._by_request)

    @property
    def faults_total(self) -> int:
        """Faults injected so far, all kinds."""
        with self._stats_lock:
            return sum(self._faults.values())

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError(
                "the proxy is not running; start() it or use it as a context manager"
            )
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise RuntimeError(
                "FaultProxy controls block; call them from another thread than the proxy's"
            )
        return asyncio.run_coroutine_threadsafe(coro, loop).result(_CONTROL_TIMEOUT)

    def _count(self, kind: str, n: int = 1, line: str | None = None) -> None:
        with self._stats_lock:
            self._faults[kind] += n
            if line is not None:
                self._by_request[(kind, _route(line))] += 1

    # -- the loop's side ---------------------------------------------------------------

    async def _listen(self, port: int) -> None:
        if self._changed is None:
            self._changed = asyncio.Event()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(128)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._listener = sock
        self.port = sock.getsockname()[1]
        asyncio.get_running_loop().add_reader(sock, self._accept, sock)

    def _unlisten(self) -> None:
        # Not asyncio.Server: its close() can leak a socket accepted at that very
        # moment. Here accepting is a plain callback, so it stops all at once.
        sock, self._listener = self._listener, None
        if sock is not None:
            asyncio.get_running_loop().remove_reader(sock)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:  # nothing more to accept now (or the listener closed)
                return
            sock.setblocking(False)
            task = asyncio.get_running_loop().create_task(self._serve(sock))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _set_mode(self, mode: Fault | tuple[Fault, ...]) -> None:
        given = (mode,) if isinstance(mode, Fault) else mode
        faults = tuple(f for f in given if f.kind != "pass")
        refusing = any(f.kind == "refuse" for f in faults)
        if refusing and self._listener is not None:
            # Closing the listener makes new connects fail with ECONNREFUSED (and RSTs
            # any still waiting in the backlog); open connections are not touched.
            self._unlisten()
            self._count("refuse")
        self._mode = mode
        self._faults_on = faults
        self._epoch += 1
        self._left = [f.times for f in faults]
        if not refusing and self._listener is None:
            await self._listen(self.port)
        self._wake()

    def _wake(self) -> None:
        """Let pumps waiting on a mode change re-check it."""
        assert self._changed is not None
        self._changed.set()
        self._changed = asyncio.Event()

    async def _reset_all(self) -> int:
        conns = [c for c in self._conns if not c.dead]
        for conn in conns:
            self._kill(conn)
        self._count("reset", len(conns))
        self._wake()
        return len(conns)

    def _kill(self, conn: _Conn) -> None:
        conn.dead = True
        _rst(conn.client)
        _rst(conn.upstream)
        self._wake()  # the connection's other pump may be held by a blackhole

    async def _shutdown(self) -> None:
        self._closing = True
        self._unlisten()
        for conn in list(self._conns):
            conn.dead = True
            conn.client.transport.abort()
            if conn.upstream is not None:
                conn.upstream.transport.abort()
        if self._changed is not None:
            self._wake()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=_CONTROL_TIMEOUT)

    async def _serve(self, sock: socket.socket) -> None:
        """One accepted connection, from its first byte to its close."""
        if self._closing:
            sock.close()
            return
        try:
            client_r, client_w = await asyncio.open_connection(sock=sock, limit=_CHUNK)
        except OSError:
            sock.close()
            return
        conn = _Conn(client_w)
        self._conns.add(conn)
        with self._stats_lock:
            self._connections += 1
        try:
            if self._closing:
                conn.dead = True
                return
            try:
                up_r, up_w = await asyncio.open_connection(*self.upstream, limit=_CHUNK)
            except OSError:
                self._kill(conn)  # the server is down: the client sees its connection die
                return
            conn.upstream = up_w
            if conn.dead:  # reset while connecting
                self._kill(conn)
                return
            await asyncio.gather(
                self._pump_up(conn, client_r, up_w), self._pump_down(conn, up_r, client_w)
            )
        except Exception:  # noqa: BLE001 - a broken connection is the proxy's normal business
            self._kill(conn)
        finally:
            self._conns.discard(conn)
            for writer in (conn.client, conn.upstream):
                if writer is None:
                    continue
                if conn.dead:
                    writer.transport.abort()
                else:
                    writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    def _arm(self, conn: _Conn, line: str) -> None:
        """Decide which per-request fault, if any, applies to the request starting now."""
        conn.new_request(line)
        with self._stats_lock:
            self._requests += 1
        for i, fault in enumerate(self._faults_on):
            if not fault.per_request:
                continue
            if fault.match is not None and not fault.match.search(line):
                continue
            left = self._left[i]
            if left is not None and left <= 0:
                continue
            if fault.probability < 1.0 and self._random.random() >= fault.probability:
                continue
            if left is not None:
                self._left[i] = left - 1
            conn.armed = fault
            conn.armed_epoch = self._epoch
            return

    def _armed(self, conn: _Conn, kind: str) -> Fault | None:
        """The fault of ``kind`` in effect for this connection's current chunk, if any."""
        for fault in self._faults_on:
            if fault.kind != kind:
                continue
            if not fault.per_request:
                return fault
            if conn.armed is fault and conn.armed_epoch == self._epoch:
                return fault
        return None

    async def _gate(self, conn: _Conn) -> None:
        """Hold a chunk while a blackhole covers it; delay it while latency does."""
        counted = False
        while not conn.dead and (hole := self._armed(conn, "blackhole")) is not None:
            if not counted:
                self._count("blackhole", line=conn.line if hole.per_request else None)
                counted = True
            assert self._changed is not None
            await self._changed.wait()
        slow = self._armed(conn, "latency")
        if slow is not None and not conn.dead:
            self._count("latency", line=conn.line if slow.per_request else None)
            await asyncio.sleep(slow.seconds)

    async def _pump_up(
        self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Client to server."""
        try:
            while not conn.dead:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                head = _REQUEST_LINE.match(data)
                if head is not None:
                    self._arm(conn, head.group(0).decode("latin-1").rstrip())
                    if self._armed(conn, "reset_request") is not None:
                        self._count("reset_request", line=conn.line)
                        self._kill(conn)
                        return
                await self._gate(conn)
                if conn.dead:
                    return
                writer.write(data)
                await writer.drain()
            if not conn.dead and writer.can_write_eof():
                writer.write_eof()  # the client half-closed; answers may still come back
        except (ConnectionError, OSError):
            self._kill(conn)

    async def _pump_down(
        self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Server to client."""
        try:
            while not conn.dead:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                await self._gate(conn)
                if conn.dead:
                    return
                cut = self._cut_at(conn, data)
                if cut is not None:
                    if cut:
                        # drain() with a high-water mark of 0 returns once the kernel has
                        # every byte: the RST must not discard the part we let through.
                        writer.transport.set_write_buffer_limits(high=0)
                        writer.write(data[:cut])
                        await writer.drain()
                    self._count("reset_after", line=conn.line)
                    self._kill(conn)
                    return
                writer.write(data)
                await writer.drain()
            if not conn.dead:
                # The server closed: so does the proxy, towards the client (a FIN, after
                # every byte already written).
                writer.close()
                if conn.upstream is not None:
                    conn.upstream.close()
        except (ConnectionError, OSError):
            self._kill(conn)

    def _cut_at(self, conn: _Conn, data: bytes) -> int | None:
        """Where in ``data`` an armed ``reset_after`` cuts the response, or ``None`` (not here)."""
        fault = self._armed(conn, "reset_after")
        if fault is None:
            return None
        start = 0
        if not conn.in_body:
            seen = conn.head_tail + data
            end = seen.find(b"\r\n\r\n")
            if end < 0:
                conn.head_tail = seen[-3:]
                return None
            conn.in_body = True
            start = end + 4 - len(conn.head_tail)
        room = fault.n_bytes - conn.body_bytes
        if len(data) - start > room:
            return start + room
        conn.body_bytes += len(data) - start
        return None
