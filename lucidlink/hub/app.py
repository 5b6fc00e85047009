"""The hub's aiohttp application: factory, middlewares, lifecycle and ``serve``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import anyio.to_thread
import structlog
from aiohttp import web

from lucidlink import _anyio_backend  # noqa: F401 (imported now, not on the hub's loop)
from lucidlink.exceptions import LucidLinkError
from lucidlink.hub import disk
from lucidlink.hub.api.app_keys import HUB_KEY, OPENAPI_KEY
from lucidlink.hub.api.context import PRINCIPALS_KEY
from lucidlink.hub.api.http import error_response
from lucidlink.hub.api.openapi import build_openapi
from lucidlink.hub.api.routes import ROUTES, add_routes
from lucidlink.hub.blockstore import BlockStore, create_block_store
from lucidlink.hub.blockstore.local import LocalBlockStore
from lucidlink.hub.collector import run_periodically
from lucidlink.hub.config import HubSettings
from lucidlink.hub.eventloop import running_loop_name
from lucidlink.hub.core.principal import PrincipalCache
from lucidlink.hub.secrets_box import SecretBox, resolve_connect_key
from lucidlink.hub.signing import UrlSigner, resolve_signing_key
from lucidlink.hub.state import Hub
from lucidlink.hub.store import create_metadata_store
from lucidlink.hub.store.base import MetadataStore

log = structlog.get_logger("lucidlink.hub")


class _RequestLog:
    """The hub's logger, assembled once per structlog configuration (and standard streams).

    structlog's lazy logger assembles a new logger on every call unless the application
    configured ``cache_logger_on_first_use`` (an embedding application may not): 10 µs
    of every request. This one is rebuilt only when ``structlog.configure`` changed the
    processors, wrapper class, context class or logger factory, or ``sys.stdout``/
    ``sys.stderr`` were replaced, so each request's line still follows the configuration
    in force.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._key: tuple[int, ...] = ()
        self._held: tuple[object, ...] = ()
        self._logger: Any = None

    def get(self) -> Any:
        """The logger for the configuration in force now."""
        config = structlog.get_config()
        held = (config["processors"], config["wrapper_class"], config["context_class"],
                config["logger_factory"], sys.stdout, sys.stderr)
        # Identities, compared as integers: the objects are held in _held, so none of
        # these ids can be reused by another object while they are compared.
        key = tuple(map(id, held))
        if key != self._key:
            self._logger = structlog.get_logger(self._name).bind()
            self._key, self._held = key, held
        return self._logger


_request_log = _RequestLog("lucidlink.hub")

MAX_LINE_SIZE = 32 * 1024
"""aiohttp's ``max_line_size`` for every hub: a request line must fit a 4096-byte path of 4-byte
characters, percent-encoded (about 12 KB; aiohttp's default is 8190 bytes)."""


def embedded_stores(settings: HubSettings) -> tuple[MetadataStore, BlockStore]:
    """The stores the settings name: by default SQLite and a block directory in the data dir.

    The local block store gets its signing key when the hub starts (:func:`open_keys`).
    """
    return create_metadata_store(settings), create_block_store(settings)


async def open_keys(hub: Hub) -> None:
    """Load (or create) the hub's URL-signing and Connect keys; the metadata store must be open.

    Both come from the store when it is shared (PostgreSQL): every hub on it must accept
    the others' block URLs and open the secrets they sealed (see :mod:`lucidlink.hub.signing`
    and :mod:`lucidlink.hub.secrets_box`). A missing, empty or short key refuses to start.
    """
    signing_key = await resolve_signing_key(hub.settings, hub.store)
    hub.secret_box = SecretBox(await resolve_connect_key(hub.settings, hub.store))
    if isinstance(hub.blocks, LocalBlockStore):
        hub.blocks.use_signer(UrlSigner(signing_key))


@web.middleware
async def observe(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn errors into the JSON envelope; log and count every request once."""
    hub: Hub = request.app[HUB_KEY]
    started = time.perf_counter()
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    try:
        response = await handler(request)
    except LucidLinkError as err:
        response = error_response(err)
    except web.HTTPException as exc:
        if exc.status >= 400:
            code = {404: "route_not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
                exc.status, "bad_request"
            )
            response = web.json_response(
                {"error": {"code": code, "message": f"{exc.reason}: {request.method} {request.path[:200]}"}},
                status=exc.status,
            )
            if "Allow" in exc.headers:  # RFC 9110: a 405 names the methods that are allowed
                response.headers["Allow"] = exc.headers["Allow"]
        else:
            raise
    except asyncio.CancelledError:
        raise
    except ConnectionResetError:
        # The client went away mid-request (a reset, a killed process): nothing to
        # answer and nothing wrong with the hub. 499 is nginx's "client closed request".
        log.info("hub.request.aborted", method=request.method, route=route)
        response = web.Response(status=499)
    except Exception:
        log.exception("hub.request.failed", method=request.method, route=route)
        response = web.json_response(
            {"error": {"code": "internal", "message": "internal hub error; see the hub's log"}}, status=500
        )
    elapsed = time.perf_counter() - started
    hub.metrics.observe(route, request.method, response.status, elapsed)
    _request_log.get().info("hub.request", method=request.method, route=route,
                            status=response.status, duration_ms=round(elapsed * 1000, 3))
    return response


async def count_block_bytes(request: web.Request, response: web.StreamResponse) -> None:
    """Count bytes served by the block endpoint.

    A ``FileResponse`` knows its length (of the range, for a 206) only once it is
    prepared, after the middleware has returned, hence this ``on_response_prepare`` hook.
    """
    resource = request.match_info.route.resource
    if (request.method == "GET" and resource is not None and resource.canonical == "/v1/blocks/{fs}/{hash}"
            and response.status in (200, 206) and response.content_length):
        request.app[HUB_KEY].metrics.count_block_bytes("out", response.content_length)


def create_app(
    settings: HubSettings,
    store: MetadataStore | None = None,
    blocks: BlockStore | None = None,
) -> web.Application:
    """Build the hub application; the stores default to the embedded pair."""
    if store is None or blocks is None:
        default_store, default_blocks = embedded_stores(settings)
        store = store or default_store
        blocks = blocks or default_blocks
    hub = Hub(settings, store, blocks)
    # Block uploads are read with an explicit limit; this only bounds other bodies.
    app = web.Application(middlewares=[observe], client_max_size=settings.max_json_bytes + 1)
    app[HUB_KEY] = hub
    app[PRINCIPALS_KEY] = PrincipalCache()

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        # The data dir is the hub's alone (0700; tightened if an older hub left it looser).
        if settings.data_dir is not None:
            await anyio.to_thread.run_sync(disk.private_dir, settings.data_dir)
        await hub.store.open()
        try:
            await open_keys(hub)
            await hub.blocks.open()
        except BaseException:
            await hub.store.close()  # a hub that cannot start leaves no threads or connections
            raise
        gc_task = asyncio.create_task(run_periodically(hub))
        hub.digests.start()
        yield
        await hub.digests.close()
        gc_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gc_task
        await hub.blocks.close()
        await hub.store.close()

    async def on_shutdown(app: web.Application) -> None:
        hub.closing.set()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    app.on_response_prepare.append(count_block_bytes)
    add_routes(app, ROUTES)
    app[OPENAPI_KEY] = build_openapi(settings)
    return app


class HubRunner(web.AppRunner):
    """The hub's ``AppRunner``: it remembers every connection its server accepts, so that
    :meth:`stop` leaves none open once the caller closes the loop.

    aiohttp's ``Server.shutdown`` shuts down the connections it knows when it starts,
    waits for them (up to the shutdown timeout), then forgets every connection, also
    those a client opened meanwhile (one retrying, under load): they would stay open,
    unclosed, until the loop is closed under them.
    """

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        # Transports, not handlers: aiohttp's handlers take no weak references.
        self._transports: weakref.WeakSet[asyncio.Transport] = weakref.WeakSet()

    async def setup(self) -> None:
        """Set up as ``AppRunner`` does, then record each connection the server accepts."""
        await super().setup()
        server = self.server
        assert server is not None
        made = server.connection_made

        def connection_made(handler: web.RequestHandler, transport: asyncio.Transport) -> None:
            self._transports.add(transport)
            made(handler, transport)

        setattr(server, "connection_made", connection_made)  # noqa: B010 (an instance's own)

    async def stop(self, listening: Sequence[socket.socket] = ()) -> None:
        """Stop serving (in-flight requests finish, as ``cleanup`` allows), then drop every
        connection still open.

        ``listening``: the sites' own listening sockets (``web.SockSite``). The loop stops
        accepting on them first and turns a few times: a connection accepted becomes a
        transport on a later iteration, and on Python before 3.12 one whose server closed
        in between is dropped unclosed (a ``ResourceWarning`` when it is collected). A
        closed transport releases its socket on the iteration after that: the loop turns
        again after the last connections are dropped.
        """
        if listening:
            loop = asyncio.get_running_loop()
            for sock in listening:
                with contextlib.suppress(Exception):  # a loop that does not poll it itself
                    loop.remove_reader(sock.fileno())
            for _ in range(3):
                await asyncio.sleep(0)
        await self.cleanup()
        for _ in range(3):
            await asyncio.sleep(0)
        for transport in list(self._transports):
            if not transport.is_closing():
                transport.abort()
        for _ in range(3):
            await asyncio.sleep(0)


async def serve(settings: HubSettings, ready: asyncio.Event | None = None) -> None:
    """Run a hub until SIGINT/SIGTERM; in-flight requests finish, the store closes cleanly."""
    app = create_app(settings)
    runner = HubRunner(app, handle_signals=False, access_log=None, max_line_size=MAX_LINE_SIZE,
                           shutdown_timeout=settings.shutdown_timeout_seconds)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else settings.port
        hub = app[HUB_KEY]
        log.info("hub.ready", url=f"http://{settings.host}:{port}",
                 data_dir=str(settings.data_dir or ""), metadata=hub.store.engine,
                 blocks=hub.blocks.engine, event_loop=running_loop_name())
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("hub.stopping")
    finally:
        await runner.stop()
        log.info("hub.stopped")
