"""The daemon: a client's root dir, block cache and connections to a hub."""

from __future__ import annotations

import fcntl
import os
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
from lucidlink.aio.writeback import PendingCommit, load_records
from lucidlink.exceptions import AuthenticationError, DaemonError
from lucidlink.types import ServiceAccountCredentials

STATE_DIR = ".lucid"
"""The daemon's state directory inside its root (cache, staging, pending journal, lock)."""
_LOCK_FILE = "daemon.lock"


class AsyncDaemon:
    """A lucidlink client. ``start`` it (or ``async with``), then ``authenticate``.

    Sandboxed daemons keep their state in a private temporary directory. Physical ones
    (``sandboxed=False``) keep it in ``<root_path>/.lucid`` (``root_path`` defaults to
    the working directory), as LucidLink's SDK does; ``stop`` removes that ``.lucid``
    directory, never ``root_path`` itself or anything else in it, unless
    ``persist_files=True``, in which case changes closed but not yet committed when
    the process died are committed on the next start. One daemon at a time may use a
    root: a second one is refused with ``DaemonError``.
    """

    def __init__(self, *, sandboxed: bool = True, persist_files: bool = False, root_path: str | None = None,
                 hub_url: str | None = None, config: Mapping[str, Any] | None = None) -> None:
        self._config = DaemonConfig.build(hub_url, config)
        self.sandboxed = sandboxed
        self.persist_files = bool(persist_files and not sandboxed)
        self._root_arg = root_path
        self._root: Path | None = None
        self._state: Path | None = None
        self._lock_fd: int | None = None
        self._orphans: list[PendingCommit] = []
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
        """The daemon's root dir while running (its state is in ``<root_path>/.lucid``)."""
        return str(self._root) if self._root else None

    @property
    def state_path(self) -> str | None:
        """The daemon's state dir while running: cache, staging files, pending journal."""
        return str(self._state) if self._state else None

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
        assert self._state is not None
        return self._state / "staging"

    @property
    def _pending_dir(self) -> Path:
        assert self._state is not None
        return self._state / "pending"

    def claim_pending(self, filespace_id: str) -> list[PendingCommit]:
        """The changes a previous run left for ``filespace_id``, handed out once.

        Only records found at ``start`` qualify, so a second link of the same
        filespace never resumes the first link's live changes.
        """
        mine = [c for c in self._orphans if c.filespace_id == filespace_id]
        self._orphans = [c for c in self._orphans if c.filespace_id != filespace_id]
        return mine

    async def start(self) -> None:
        """Prepare the root dir and the block cache. Idempotent while running."""
        if self._running:
            return
        if self._stopped:
            raise DaemonError("a stopped daemon cannot be restarted; create a new one with create_daemon()")

        def prepare() -> tuple[Path, Path, int, list[PendingCommit]]:
            if self.sandboxed:
                root = Path(tempfile.mkdtemp(prefix="lucidlink-daemon-"))
                state = root
            else:
                root = Path(self._root_arg).absolute() if self._root_arg else Path.cwd()
                state = root / STATE_DIR
                state.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock_fd = _lock_root(state, root)
            try:
                for sub in ("staging", "pending", "cache"):
                    (state / sub).mkdir(exist_ok=True, mode=0o700)
                orphans = load_records(state / "pending") if self.persist_files else []
                _drop_unreferenced_staging(state / "staging", orphans)
            except BaseException:
                os.close(lock_fd)
                raise
            return root, state, lock_fd, orphans

        self._root, self._state, self._lock_fd, self._orphans = await anyio.to_thread.run_sync(prepare)
        try:
            self._cache = BlockCache(self._state / "cache", self._config.cache_mb * 1024 * 1024)
            await self._cache.open()
        except BaseException:
            await anyio.to_thread.run_sync(self._release_root, False)
            raise
        self._running = True

    async def authenticate(self, credentials: ServiceAccountCredentials) -> AsyncWorkspace:
        """Log in with a service-account token; returns its workspace.

        Raises ``AuthenticationError`` when the hub refuses the token.
        """
        self._check_running()
        if not isinstance(credentials, ServiceAccountCredentials):
            raise AuthenticationError("authenticate() takes lucidlink.ServiceAccountCredentials(token=...)")
        if not (credentials.token.isascii() and credentials.token.strip().isprintable()):
            # It cannot go in an HTTP header as it is, so no hub would accept it.
            raise AuthenticationError(f"the token of key {credentials.key_id[:40]!r} holds characters no "
                                      "service-account token has (non-ASCII or control characters)")
        transport = Transport(self._config.hub_url, credentials.token.strip(), timeout=self._config.hub_timeout,
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
            await anyio.to_thread.run_sync(self._release_root, not self.persist_files)

    def _release_root(self, remove_state: bool) -> None:
        """Remove the state dir (only it: never the user's root) and give up the root's lock."""
        state = self._state
        if remove_state and state is not None:
            shutil.rmtree(state, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def __aenter__(self) -> AsyncDaemon:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()


def _lock_root(state: Path, root: Path) -> int:
    """Take the root's lock file (held until stop); refuse a second daemon on it."""
    fd = os.open(state / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DaemonError(
            f"another daemon is already using the root {root} (its state is in {state}); stop it first, "
            "or give this daemon another root_path"
        ) from None
    return fd


def _drop_unreferenced_staging(staging: Path, records: list[PendingCommit]) -> None:
    """Delete staging files no pending record names (left by a crash before the record)."""
    keep = {Path(c.staging).name for c in records if c.staging}
    for f in staging.iterdir():
        if f.name not in keep:
            f.unlink(missing_ok=True)


def create_daemon(*, sandboxed: bool = True, persist_files: bool = False, root_path: str | None = None,
                  hub_url: str | None = None, config: Mapping[str, Any] | None = None) -> AsyncDaemon:
    """Create a daemon (not started yet).

    Parameters
    ----------
    sandboxed
        Keep state in a private temporary directory (default).
    persist_files
        With ``sandboxed=False``: keep the state dir after ``stop`` and resume changes
        that were closed but not committed when the process died.
    root_path
        The root dir of a physical (``sandboxed=False``) daemon, default the working
        directory; its state lives in ``<root_path>/.lucid``.
    hub_url
        The hub; else ``LUCIDLINK_HUB_URL``; else ``http://127.0.0.1:8470``.
    config
        Settings such as ``{"fs.cache.size": "2048"}`` (cache size in MB).
    """
    return AsyncDaemon(sandboxed=sandboxed, persist_files=persist_files, root_path=root_path,
                       hub_url=hub_url, config=config)
