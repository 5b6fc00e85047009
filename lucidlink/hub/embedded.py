"""A hub running in a background thread of this process: for tests, demos and examples."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from lucidlink.hub.api.app_keys import HUB_KEY
from lucidlink.hub.app import MAX_LINE_SIZE, HubRunner, create_app
from lucidlink.hub.config import HubSettings
from lucidlink.hub.core import admin
from lucidlink.hub.eventloop import new_event_loop


class EmbeddedHub:
    """Start a hub on a free loopback port in its own thread; stop it cleanly.

    >>> with EmbeddedHub(data_dir) as hub:
    ...     token = hub.init("demo", ["production-data"])
    ...     hub.url
    """

    def __init__(self, data_dir: Path | str | None, *, host: str = "127.0.0.1", port: int = 0,
                 **settings: Any) -> None:
        self.settings = HubSettings(data_dir=data_dir, host=host, port=port, **settings)
        self.url = ""
        self.app: web.Application | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> EmbeddedHub:
        """Start serving; returns once the hub accepts requests."""
        self._thread = threading.Thread(target=self._run, name="lucidhub-embedded", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        loop = new_event_loop(self.settings.event_loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()
            self._error = exc
        finally:
            self._ready.set()
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self.app = create_app(self.settings)
        runner = HubRunner(self.app, access_log=None, shutdown_timeout=5, max_line_size=MAX_LINE_SIZE)
        await runner.setup()
        # The hub's own listening socket, so that stopping can stop accepting before the
        # server closes it (HubRunner.stop).
        listening = socket.create_server((self.settings.host, self.settings.port),
                                         family=_family(self.settings.host))
        try:
            site = web.SockSite(runner, listening)
            await site.start()
            port = runner.addresses[0][1]
            self.url = f"http://{self.settings.host}:{port}"
            self._ready.set()
            await self._stop.wait()
        finally:
            try:
                await runner.stop([listening])
            finally:
                listening.close()

    def call(self, coro: Any) -> Any:
        """Run a coroutine on the hub's loop (e.g. a store function) and return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def write(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a transactional function on the hub's metadata store."""
        assert self.app is not None
        store = self.app[HUB_KEY].store
        return self.call(store.write(lambda tx: fn(tx, *args, **kwargs)))

    def init(self, workspace: str, filespaces: list[str], *, block_size: int = admin.DEFAULT_BLOCK_SIZE,
             **token_rights: Any) -> str:
        """Create the workspace and filespaces if missing; return a new token for them."""
        def _init(tx: Any) -> str:
            ws, _ = admin.ensure_workspace(tx, workspace)
            for name in filespaces:
                admin.ensure_filespace(tx, ws["id"], name, block_size)
            token, _ = admin.create_token(tx, ws["id"], **token_rights)
            return token

        return str(self.write(_init))

    def stop(self) -> None:
        """Stop serving and wait for the clean shutdown."""
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> EmbeddedHub:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _family(host: str) -> socket.AddressFamily:
    """The address family of a literal host (IPv6 when it has a colon)."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET
