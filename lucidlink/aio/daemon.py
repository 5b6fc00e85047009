"""The daemon: a client's root dir, block cache and connections to a hub."""

from __future__ import annotations

import fcntl
import gc
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
from lucidlink.aio.link import DaemonServices
from lucidlink.aio.pending import PendingCommit, load_records
from lucidlink.aio.transport import Transport
from lucidlink.aio.workspace import AsyncWorkspace
from lucidlink.directio import DirectWriter
from lucidlink.exceptions import AuthenticationError, ConfigurationError, DaemonError
from lucidlink.types import DaemonStatus, ServiceAccountCredentials, StorageConfig, StorageMode

STATE_DIR = ".lucid"
"""The daemon's state directory inside its root (cache, staging, pending journal, lock)."""
_LOCK_FILE = "daemon.lock"


class AsyncDaemon:
    """A lucidlink client. ``start`` it (or ``async with``), then ``authenticate``.

    ``AsyncDaemon(config=None, storage=None)`` as LucidLink's ``Daemon``: ``config`` holds
    settings such as ``{"fs.cache.size": "2048"}``, ``storage`` a
    :class:`~lucidlink.types.StorageConfig` (default: sandboxed). Sandboxed daemons keep
    their state in a private temporary directory. Physical ones keep it in
    ``<root_path>/.lucid`` (``root_path`` defaults to the working directory), as
    LucidLink's SDK does; ``stop`` removes that ``.lucid`` directory, never
    ``root_path`` itself or anything else in it, unless ``persist_on_exit=True``, in
    which case changes closed but not yet committed when the process died are
    committed on the next start. One daemon at a time may use a root: a second one is
    refused with ``DaemonError``. ``hub_url`` is the hub (else ``LUCIDLINK_HUB_URL``,
    else ``http://127.0.0.1:8470``), or several hubs sharing one metadata store,
    separated by commas: the daemon fails over to the next when one stops answering.
    """

    def __init__(self, config: Mapping[str, Any] | None = None,
                 storage: StorageConfig | None = None, *, hub_url: str | None = None) -> None:
        if storage is not None and not isinstance(storage, StorageConfig):
            raise ConfigurationError(
                "storage must be a lucidlink.StorageConfig(mode=StorageMode...)", field="storage"
            )
        self._config = DaemonConfig.build(hub_url, config)
        self._storage = storage or StorageConfig()
        self._root: Path | None = None
        self._state: Path | None = None
        self._lock_fd: int | None = None
        self._orphans: list[PendingCommit] = []
        self._running = False
        self._stopped = False
        self._id = uuid.uuid4().hex[:12]
        self._workspaces: list[AsyncWorkspace] = []
        self._transports: list[Transport] = []
        self._services: DaemonServices | None = None  # set by start()

    @property
    def storage(self) -> StorageConfig:
        """Where the daemon keeps its state."""
        return self._storage

    @property
    def sandboxed(self) -> bool:
        """Whether the state is in a private temporary directory (``StorageMode.SANDBOXED``)."""
        return self._storage.mode is StorageMode.SANDBOXED

    @property
    def persist_files(self) -> bool:
        """Whether the state outlives ``stop`` (physical storage with ``persist_on_exit``)."""
        return not self._storage.should_cleanup()

    @property
    def hub_url(self) -> str:
        """The hub this daemon talks to, as given: one URL, or several separated by commas.

        With several, requests go to one hub at a time, the first to begin with; when it
        stops answering (refused, reset, timed out, or a proxy's 502/503/504) the daemon
        moves on to the next, and after the last back to the first, logging each switch
        once (``lucidlink.hub_switch``). Pending changes are retried through whichever
        hub answers.
        """
        return self._config.hub_url

    @property
    def root_path(self) -> str | None:
        """The daemon's root dir while running (its state is in ``<root_path>/.lucid``)."""
        return str(self._root) if self._root else None

    @property
    def state_path(self) -> str | None:
        """The daemon's state dir while running: cache, staging files, pending journal."""
        return str(self._state) if self._state else None

    def is_running(self) -> bool:
        """Whether ``start`` was called and ``stop`` not yet."""
        return self._running

    def get_status(self) -> DaemonStatus:
        """Whether the daemon runs, has authenticated, has a filespace linked; its root dir."""
        root = self._root
        if not self._running:
            root = None if self.sandboxed else self._storage.get_root_path()
        return DaemonStatus(
            is_running=self._running,
            is_authenticated=self._running and bool(self._workspaces),
            is_linked=any(w.linked_filespaces for w in self._workspaces),
            root_path=str(root) if root else "",
        )

    def __repr__(self) -> str:
        state = "running" if self._running else ("stopped" if self._stopped else "not started")
        return f"<AsyncDaemon {self.hub_url} {state}>"

    def _check_running(self) -> None:
        if not self._running:
            if self._stopped:
                raise DaemonError("the daemon was stopped; create a new one with create_daemon() and start it")
            raise DaemonError("the daemon is not started; call daemon.start() first or use 'with create_daemon()'")

    def _claim_pending(self, filespace_id: str) -> list[PendingCommit]:
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
                root = self._storage.get_root_path()
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

        root, state, self._lock_fd, self._orphans = await anyio.to_thread.run_sync(prepare)
        _settle_heap_once()
        self._root, self._state = root, state
        direct = DirectWriter(direct=self._config.direct_writes)
        try:
            cache = BlockCache(state / "cache", self._config.cache_mb * 1024 * 1024, direct)
            await cache.open()
        except BaseException:
            await anyio.to_thread.run_sync(self._release_root, False)
            raise
        self._services = DaemonServices(
            config=self._config, cache=cache, staging_dir=self._state / "staging",
            direct=direct,
            pending_dir=self._state / "pending", durable=self.persist_files,
            client_name=f"lucidlink-python daemon {self._id}", check_running=self._check_running,
            claim_pending=self._claim_pending,
        )
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
        transport = Transport(self._config.hubs, credentials.token.strip(), timeout=self._config.hub_timeout,
                              retries=self._config.hub_retries)
        try:
            whoami = await transport.call("GET", "/v1/whoami")
        except BaseException:
            await transport.close()
            raise
        assert self._services is not None  # set by start(), checked above
        workspace = AsyncWorkspace(self._services, transport, whoami)
        self._workspaces.append(workspace)
        self._transports.append(transport)
        return workspace

    async def stop(self) -> None:
        """Unlink every filespace (syncing per its sync mode), close connections, clean up."""
        if not self._running:
            self._stopped = True
            return
        try:
            for workspace in self._workspaces:
                await workspace.stop()
        finally:
            for transport in self._transports:
                await transport.close()
            self._running = False
            self._stopped = True
            self._workspaces.clear()
            self._transports.clear()
            if self._services is not None:  # cache writes run in the background
                await self._services.cache.drain()
                self._services.direct.close()
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


_heap_settled = False


def _settle_heap_once() -> None:
    """Run the interpreter's first full garbage collection now, once per process.

    After the SDK's imports the collector owes a full pass over some 45,000 young objects
    (15-30 ms here). Left alone it lands on whatever allocates next, usually the first
    listing or small-file read: a fresh client's 1,000-entry ``read_dir`` measured 40 ms
    with it, 15 ms without. Starting is where that pause belongs. A collection holds the
    GIL whatever thread runs it, so it runs here rather than in a worker thread.
    """
    global _heap_settled
    if not _heap_settled:
        _heap_settled = True
        gc.collect()


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


def create_daemon(config: Mapping[str, Any] | None = None, sandboxed: bool = True,
                  persist_files: bool = False, root_path: str | Path | None = None, *,
                  hub_url: str | None = None) -> AsyncDaemon:
    """Create a daemon (not started yet), its storage given by flags.

    Parameters
    ----------
    config
        Settings such as ``{"fs.cache.size": "2048"}`` (cache size in MB).
    sandboxed
        Keep state in a private temporary directory (default).
    persist_files
        With ``sandboxed=False``: keep the state dir after ``stop`` and resume changes
        that were closed but not committed when the process died.
    root_path
        The root dir of a physical (``sandboxed=False``) daemon, default the working
        directory; its state lives in ``<root_path>/.lucid``.
    hub_url
        The hub; else ``LUCIDLINK_HUB_URL``; else ``http://127.0.0.1:8470``. Several hubs
        sharing one metadata store may be given separated by commas
        (``"http://hub-a:8470,http://hub-b:8470"``): the daemon fails over between them.
        A bad entry raises ``ConfigurationError`` naming it.
    """
    if sandboxed:
        storage = StorageConfig(mode=StorageMode.SANDBOXED)
    else:
        storage = StorageConfig(mode=StorageMode.PHYSICAL, persist_on_exit=persist_files,
                                root_path=root_path)
    return AsyncDaemon(config, storage, hub_url=hub_url)
