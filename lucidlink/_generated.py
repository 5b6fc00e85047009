# Generated from lucidlink.aio by tools/generate_sync.py: do not edit.
"""Blocking twins of the classes and factories of :mod:`lucidlink.aio`.

Each class wraps an instance of its ``Async`` counterpart and runs its coroutines on
the background event loop (:mod:`lucidlink._loop`); the runtime is :mod:`lucidlink._facade`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import lucidlink.aio as _aio
from lucidlink import _facade, _loop
from lucidlink._generated_fs import Connect, Filesystem
from lucidlink.aio import (
    ClientConfig,
    DaemonStatus,
    FilespaceInfo,
    ServiceAccountCredentials,
    StorageConfig,
    SyncMode,
    WorkspaceInfo,
)

__all__ = ["Daemon", "Workspace", "Filespace", "Client", "create_daemon"]


class Daemon(_facade.Facade):
    """A lucidlink client. ``start`` it (or ``with``), then ``authenticate``.

    ``Daemon(config=None, storage=None)`` as LucidLink's ``Daemon``: ``config`` holds
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

    __slots__ = ()
    _async_class = _aio.AsyncDaemon
    _async: _aio.AsyncDaemon

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        storage: StorageConfig | None = None,
        *,
        hub_url: str | None = None,
    ) -> None:
        """Create the wrapped ``AsyncDaemon`` from the same arguments."""
        super().__init__(_aio.AsyncDaemon(config, storage, hub_url=hub_url))

    def __enter__(self) -> Daemon:
        """Blocking version of ``AsyncDaemon.__aenter__``."""
        _loop.run(self._async.__aenter__())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Blocking version of ``AsyncDaemon.__aexit__``."""
        return _loop.run(self._async.__aexit__(exc_type, exc, tb))

    @property
    def storage(self) -> StorageConfig:
        """Where the daemon keeps its state."""
        return self._async.storage

    @property
    def sandboxed(self) -> bool:
        """Whether the state is in a private temporary directory (``StorageMode.SANDBOXED``)."""
        return self._async.sandboxed

    @property
    def persist_files(self) -> bool:
        """Whether the state outlives ``stop`` (physical storage with ``persist_on_exit``)."""
        return self._async.persist_files

    @property
    def hub_url(self) -> str:
        """The hub this daemon talks to, as given: one URL, or several separated by commas.

        With several, requests go to one hub at a time, the first to begin with; when it
        stops answering (refused, reset, timed out, or a proxy's 502/503/504) the daemon
        moves on to the next, and after the last back to the first, logging each switch
        once (``lucidlink.hub_switch``). Pending changes are retried through whichever
        hub answers.
        """
        return self._async.hub_url

    @property
    def root_path(self) -> str | None:
        """The daemon's root dir while running (its state is in ``<root_path>/.lucid``)."""
        return self._async.root_path

    @property
    def state_path(self) -> str | None:
        """The daemon's state dir while running: cache, staging files, pending journal."""
        return self._async.state_path

    def is_running(self) -> bool:
        """Whether ``start`` was called and ``stop`` not yet."""
        return self._async.is_running()

    def get_status(self) -> DaemonStatus:
        """Whether the daemon runs, has authenticated, has a filespace linked; its root dir."""
        return self._async.get_status()

    def start(self) -> None:
        """Prepare the root dir and the block cache. Idempotent while running."""
        return _loop.run(self._async.start())

    def authenticate(self, credentials: ServiceAccountCredentials) -> Workspace:
        """Log in with a service-account token; returns its workspace.

        Raises ``AuthenticationError`` when the hub refuses the token.
        """
        return Workspace(_loop.run(self._async.authenticate(credentials)))

    def stop(self) -> None:
        """Unlink every filespace (syncing per its sync mode), close connections, clean up."""
        return _loop.run(self._async.stop())


class Workspace(_facade.Facade):
    """The workspace a service-account token belongs to."""

    __slots__ = ()
    _async_class = _aio.AsyncWorkspace
    _async: _aio.AsyncWorkspace

    @property
    def name(self) -> str:
        """The workspace's name."""
        return self._async.name

    @property
    def id(self) -> str:
        """The workspace's id."""
        return self._async.id

    def list_filespaces(self) -> list[FilespaceInfo]:
        """The filespaces this token may use."""
        return _loop.run(self._async.list_filespaces())

    @property
    def linked_filespaces(self) -> list[Filespace]:
        """The filespaces this workspace has linked and not yet unlinked, by name (several at once)."""
        return _facade.wrap_each(Filespace, self._async.linked_filespaces)

    def link_filespace(
        self,
        name: str | None = None,
        id: str | None = None,
        root_path: str = "/",
        sync_mode: SyncMode = SyncMode.SYNC_ALL,
    ) -> Filespace:
        """Link a filespace by name or ``id``: ``fs = ws.link_filespace(name=...)`` or
        ``with`` (LucidLink's parameters, in its order).

        Raises ``FilespaceError`` naming the filespaces that exist when ``name`` is not one.
        Linking by ``id`` a filespace this workspace already has linked returns that live
        filespace, the same object (``FilespaceAlreadyLinkedError`` if it was linked with
        another sync mode); leaving a ``with`` on it unlinks it for every holder.
        With both, the filespace of that ``id`` must have that ``name``. ``root_path``
        (LucidLink's mount point) must be ``"/"``: a filespace is linked whole.
        """
        return Filespace(
            _loop.run(lambda: self._async.link_filespace(name, id, root_path, sync_mode))
        )

    def stop(self) -> None:
        """Unlink every linked filespace (syncing each per its sync mode). Idempotent.

        Every filespace is unlinked even when one fails; the first failure is raised
        after all of them (LucidLink's SDK swallows them: ours says what was lost).
        """
        return _loop.run(self._async.stop())


class Filespace(_facade.Facade):
    """A filespace linked to a daemon: ``fs`` for files, ``sync_all`` as the barrier.

    ``with workspace.link_filespace(name=...) as filespace`` unlinks on exit
    (after ``sync_all`` unless ``sync_mode`` is ``SyncMode.SYNC_NONE``).
    """

    __slots__ = ()
    _async_class = _aio.AsyncFilespace
    _async: _aio.AsyncFilespace

    def __enter__(self) -> Filespace:
        """Blocking version of ``AsyncFilespace.__aenter__``."""
        _loop.run(self._async.__aenter__())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Blocking version of ``AsyncFilespace.__aexit__``."""
        return _loop.run(self._async.__aexit__(exc_type, exc, tb))

    @property
    def name(self) -> str:
        """The filespace's name."""
        return self._async.name

    @property
    def id(self) -> str:
        """The filespace's id."""
        return self._async.id

    @property
    def workspace_id(self) -> str:
        """The id of the workspace the filespace belongs to."""
        return self._async.workspace_id

    @property
    def workspace_name(self) -> str:
        """The name of the workspace the filespace belongs to."""
        return self._async.workspace_name

    @property
    def full_name(self) -> str:
        """``<filespace>.<workspace>``."""
        return self._async.full_name

    @property
    def block_size(self) -> int:
        """The filespace's block size in bytes."""
        return self._async.block_size

    @property
    def fs(self) -> Filesystem:
        """File and directory operations."""
        return Filesystem(self._async.fs)

    @property
    def connect(self) -> Connect:
        """LucidLink Connect: data stores and files linked from S3 objects."""
        return Connect(self._async.connect)

    @property
    def is_linked(self) -> bool:
        """Whether the filespace is still linked."""
        return self._async.is_linked

    def sync_all(self) -> None:
        """The barrier both ways.

        Returns once every change this daemon made (closed files included) is
        committed in the hub, and this daemon has pulled every change committed before
        the call. Raises what the hub refused (once), or ``SyncTimeoutError`` (a
        ``TimeoutError``) naming the files still pending when ``fs.sync.timeout`` runs
        out: those stay queued and a later ``sync_all()`` lands them.
        """
        return _loop.run(self._async.sync_all())

    def refresh(self) -> None:
        """Pull the change journal up to the hub's current position (one hub call).

        The read half of :meth:`sync_all`, which commits nothing: after it, this
        daemon's reads (cached or not) see every change committed anywhere before the
        call. Without it, they see what the journal has delivered (see "Consistency"
        in docs/architecture.md).
        """
        return _loop.run(self._async.refresh())

    def unlink(self) -> None:
        """Close open files, sync (unless ``SyncMode.SYNC_NONE``) and leave the filespace."""
        return _loop.run(self._async.unlink())


class Client(_facade.Facade):
    """A lucidlink client: ``login``, then ``get_workspace`` and link its filespaces.

    ``storage`` is where the client keeps its state, as LucidLink's SDK takes it: a
    :class:`~lucidlink.types.StorageConfig` (default: sandboxed, a private temporary
    directory removed on ``close``), or a directory (its ``.lucid``, removed on
    ``close``: ``StorageConfig(mode=StorageMode.PHYSICAL, root_path=storage)``). The hub
    is ``LUCIDLINK_HUB_URL``, else the default, as for ``create_daemon``. ``close``
    (or leaving ``with``) unlinks every filespace, syncing per its sync mode.
    """

    __slots__ = ()
    _async_class = _aio.AsyncClient
    _async: _aio.AsyncClient

    def __init__(
        self, *, storage: StorageConfig | str | None = None, config: ClientConfig | None = None
    ) -> None:
        """Create the wrapped ``AsyncClient`` from the same arguments."""
        super().__init__(_aio.AsyncClient(storage=storage, config=config))

    def __enter__(self) -> Client:
        """Blocking version of ``AsyncClient.__aenter__``."""
        _loop.run(self._async.__aenter__())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Blocking version of ``AsyncClient.__aexit__``."""
        return _loop.run(self._async.__aexit__(exc_type, exc, tb))

    @property
    def is_logged_in(self) -> bool:
        """Whether ``login`` succeeded and the client is not closed."""
        return self._async.is_logged_in

    @property
    def config(self) -> ClientConfig:
        """The client's settings."""
        return self._async.config

    @property
    def hub_url(self) -> str:
        """The hub this client talks to."""
        return self._async.hub_url

    def login(self, credentials: ServiceAccountCredentials) -> None:
        """Log in with a service-account token (starting the client if needed).

        Raises ``AuthenticationError`` when the hub refuses the token. Logging in with
        tokens of several workspaces makes all of them available.
        """
        return _loop.run(self._async.login(credentials))

    def list_workspaces(self) -> list[WorkspaceInfo]:
        """The workspaces the client is logged in to."""
        return _loop.run(self._async.list_workspaces())

    def get_workspace(self, id: str) -> Workspace:
        """The workspace of that id; ``WorkspaceNotFoundError`` (a ``ValueError``) if none."""
        return Workspace(_loop.run(self._async.get_workspace(id)))

    def close(self) -> None:
        """Unlink every filespace (syncing per its sync mode) and clean up. Idempotent."""
        return _loop.run(self._async.close())


def create_daemon(
    config: Mapping[str, Any] | None = None,
    sandboxed: bool = True,
    persist_files: bool = False,
    root_path: str | Path | None = None,
    *,
    hub_url: str | None = None,
) -> Daemon:
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
    return Daemon.wrap(
        _loop.call(_aio.create_daemon, config, sandboxed, persist_files, root_path, hub_url=hub_url)
    )
