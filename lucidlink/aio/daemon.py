"""The daemon: a client's root dir, block cache and connections to a hub."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio.to_thread

from lucidlink.aio.cache import BlockCache
from lucidlink.aio.config import DaemonConfig
from lucidlink.aio.transport import Transport
from lucidlink.aio.workspace import AsyncWorkspace
from lucidlink.exceptions import AuthenticationError, DaemonError
from lucidlink.types import ServiceAccountCredentials


class AsyncDaemon:
    """A lucidlink client. ``start`` it (or ``async with``), then ``authenticate``.

    Sandboxed daemons keep their state in a private temporary directory; physical ones
    in ``root_path`` (default ``./.lucid``), removed on ``stop`` unless
    ``persist_files=True``, in which case changes closed but not yet committed when
    the process died are committed on the next start.
    """

    def __init__(self, *, sandboxed: bool = True, persist_files: bool = False, root_path: str | None = None,
                 hub_url: str | None = None, config: Mapping[str, Any] | None = None) -> None:
        self._config = DaemonConfig.build(hub_url, config)
        self.sandboxed = sandboxed
        self.persist_files = bool(persist_files and not sandboxed)
        self._root_arg = root_path
        self._root: Path | None = None
        self._running = False
        self._stopped = False
        self._id = uuid.uuid4().hex[:12]
        self._workspaces: list[AsyncWorkspace] = []
        self._cache: BlockCache = None  # type: ignore[assignment]  # set by start()

    @property
    def hub_url(self) -> str:
        """The hub this daemon talks to."""
        return self._config.hub_url

    @property
    def root_path(self) -> str | None:
        """The daemon's root dir (cache, staging, pending journal) while running."""
        return str(self._root) if self._root else None

    @property
    def is_running(self) -> bool:
        """Whether ``start`` was called and ``stop`` not yet."""
        return self._running

    def __repr__(self) -> str:
        state = "running" if self._running else ("stopped" if self._stopped else "not started")
        return f"<AsyncDaemon {self.hub_url} {state}>"

    def _check_running(self) -> None:
        if not self._running:
            if self._stopped:
                raise DaemonError("the daemon was stopped; create a new one with create_daemon() and start it")
            raise DaemonError("the daemon is not started; call daemon.start() first or use 'with create_daemon()'")

    @property
    def _staging_dir(self) -> Path:
        assert self._root is not None
        return self._root / "staging"

    @property
    def _pending_dir(self) -> Path:
        assert self._root is not None
        return self._root / "pending"

    async def start(self) -> None:
        """Prepare the root dir and the block cache. Idempotent while running."""
        if self._running:
            return
        if self._stopped:
            raise DaemonError("a stopped daemon cannot be restarted; create a new one with create_daemon()")

        def prepare() -> Path:
            if self.sandboxed:
                root = Path(tempfile.mkdtemp(prefix="lucidlink-daemon-"))
            else:
                root = Path(self._root_arg) if self._root_arg else Path.cwd() / ".lucid"
                root.mkdir(parents=True, exist_ok=True)
            for sub in ("staging", "pending", "cache"):
                (root / sub).mkdir(exist_ok=True)
            return root

        self._root = await anyio.to_thread.run_sync(prepare)
        self._cache = BlockCache(self._root / "cache", self._config.cache_mb * 1024 * 1024)
        await self._cache.open()
        self._running = True

    async def authenticate(self, credentials: ServiceAccountCredentials) -> AsyncWorkspace:
        """Log in with a service-account token; returns its workspace.

        Raises ``AuthenticationError`` when the hub refuses the token.
        """
        self._check_running()
        if not isinstance(credentials, ServiceAccountCredentials):
            raise AuthenticationError("authenticate() takes lucidlink.ServiceAccountCredentials(token=...)")
        transport = Transport(self._config.hub_url, credentials.token, timeout=self._config.hub_timeout,
                              retries=self._config.hub_retries)
        try:
            whoami = await transport.call("GET", "/v1/whoami")
        except BaseException:
            await transport.close()
            raise
        workspace = AsyncWorkspace(self, transport, whoami)
        self._workspaces.append(workspace)
        return workspace

    async def stop(self) -> None:
        """Unlink every filespace (syncing per its sync mode), close connections, clean up."""
        if not self._running:
            self._stopped = True
            return
        try:
            for workspace in self._workspaces:
                await workspace._close()
        finally:
            self._running = False
            self._stopped = True
            self._workspaces.clear()
            root = self._root
            if root is not None and not self.persist_files:
                await anyio.to_thread.run_sync(lambda: shutil.rmtree(root, ignore_errors=True))

    async def __aenter__(self) -> AsyncDaemon:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()


def create_daemon(*, sandboxed: bool = True, persist_files: bool = False, root_path: str | None = None,
                  hub_url: str | None = None, config: Mapping[str, Any] | None = None) -> AsyncDaemon:
    """Create a daemon (not started yet).

    Parameters
    ----------
    sandboxed
        Keep state in a private temporary directory (default).
    persist_files
        With ``sandboxed=False``: keep the root dir after ``stop`` and resume changes
        that were closed but not committed when the process died.
    root_path
        The root dir of a physical (``sandboxed=False``) daemon; default ``./.lucid``.
    hub_url
        The hub; else ``LUCIDLINK_HUB_URL``; else ``http://127.0.0.1:8470``.
    config
        Settings such as ``{"fs.cache.size": "2048"}`` (cache size in MB).
    """
    return AsyncDaemon(sandboxed=sandboxed, persist_files=persist_files, root_path=root_path,
                       hub_url=hub_url, config=config)
