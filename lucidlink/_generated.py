# Generated from lucidlink.aio by tools/generate_sync.py: do not edit.
"""Blocking twins of the classes and factories of :mod:`lucidlink.aio`.

Each class wraps an instance of its ``Async`` counterpart and runs its coroutines on
the background event loop (:mod:`lucidlink._loop`); the runtime is :mod:`lucidlink._facade`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import lucidlink.aio as _aio
from lucidlink import _facade, _loop
from lucidlink._facade import FilesystemFacade
from lucidlink.aio import (
    ClientConfig,
    DaemonStatus,
    DataStoreInfo,
    DirEntry,
    ExternalFileLink,
    FilespaceInfo,
    FilespaceSize,
    FilespaceStatistics,
    LinkedFilesResult,
    LockInfo,
    S3Credentials,
    S3DataStoreConfig,
    ServiceAccountCredentials,
    StorageConfig,
    SyncMode,
    WorkspaceInfo,
)

__all__ = ["Daemon", "Workspace", "Filespace", "Filesystem", "Connect", "Client", "create_daemon"]


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

    def unlink(self) -> None:
        """Close open files, sync (unless ``SyncMode.SYNC_NONE``) and leave the filespace."""
        return _loop.run(self._async.unlink())


class Filesystem(FilesystemFacade):
    """File and directory operations on one linked filespace (paths are absolute, ``/``-separated)."""

    __slots__ = ()
    _async_class = _aio.AsyncFilesystem
    _async: _aio.AsyncFilesystem

    def get_entry(self, path: str) -> DirEntry:
        """The entry at ``path`` (a link's own: not followed); ``FileNotFoundError`` if missing."""
        return _loop.run(self._async.get_entry(path))

    def file_exists(self, path: str) -> bool:
        """Whether ``path`` is an existing file (links followed; not through a dangling one)."""
        return _loop.run(self._async.file_exists(path))

    def dir_exists(self, path: str) -> bool:
        """Whether ``path`` is an existing directory (links followed)."""
        return _loop.run(self._async.dir_exists(path))

    def read_dir(self, path: str = "/") -> list[DirEntry]:
        """The entries of a directory, by name."""
        return _loop.run(self._async.read_dir(path))

    def list_dir(self, path: str = "/") -> list[str]:
        """The names in a directory, sorted."""
        return _loop.run(self._async.list_dir(path))

    def create_symlink(self, target_path: str, link_path: str) -> None:
        """Create the link ``link_path`` to ``target_path`` (absolute, or relative to the link)."""
        return _loop.run(self._async.create_symlink(target_path, link_path))

    def read_symlink(self, link_path: str) -> str:
        """The target of the link ``link_path``; ``NotASymlinkError`` (``EINVAL``) if not a link."""
        return _loop.run(self._async.read_symlink(link_path))

    def create_dir(self, path: str, *, parents: bool = True, exist_ok: bool = True) -> None:
        """Create a directory, by default with any missing parents and no error if it exists.

        Like :func:`os.makedirs`; ``parents=False`` raises ``FileNotFoundError`` when
        the parent is missing, ``exist_ok=False`` ``FileExistsError`` when the path
        exists (as :func:`os.mkdir` does with both).
        """
        return _loop.run(self._async.create_dir(path, parents=parents, exist_ok=exist_ok))

    def delete(self, path: str) -> None:
        """Delete a file; ``IsADirectoryError`` for a directory (use :meth:`delete_dir`)."""
        return _loop.run(self._async.delete(path))

    def delete_dir(self, path: str, recursive: bool = False) -> None:
        """Delete a directory; with ``recursive`` everything in it too, in one hub call."""
        return _loop.run(self._async.delete_dir(path, recursive))

    def move(self, src: str, dst: str, overwrite: bool = True) -> None:
        """Rename/move (one update), replacing as POSIX ``rename`` unless ``overwrite=False``."""
        return _loop.run(self._async.move(src, dst, overwrite))

    def copy_file(self, src: str, dst: str, overwrite: bool = True) -> None:
        """Copy a file without moving bytes (the copy shares blocks); a link is copied as a link."""
        return _loop.run(self._async.copy_file(src, dst, overwrite))

    def truncate(self, path: str, size: int) -> None:
        """Shrink or extend a file to ``size`` bytes (extension reads as zeros; links followed)."""
        return _loop.run(self._async.truncate(path, size))

    def read_file(self, path: str) -> bytes:
        """The whole content of a file."""
        return _loop.run(self._async.read_file(path))

    def write_file(self, path: str, data: bytes) -> None:
        """Create or replace a file with ``data``."""
        return _loop.run(self._async.write_file(path, data))

    def get_statistics(self) -> FilespaceStatistics:
        """Counts and sizes of the whole filespace."""
        return _loop.run(self._async.get_statistics())

    def get_size(self) -> FilespaceSize:
        """Sizes of the whole filespace."""
        return _loop.run(self._async.get_size())

    def get_locks(self, path: str | None = None) -> list[LockInfo]:
        """Locks held and awaited on ``path`` or every path (another token's ``session_id``: "")."""
        return _loop.run(self._async.get_locks(path))


class Connect(_facade.Facade):
    """Connect operations of one linked filespace (``filespace.connect``)."""

    __slots__ = ()
    _async_class = _aio.AsyncConnect
    _async: _aio.AsyncConnect

    def are_data_stores_available(self) -> bool:
        """Whether this filespace can have data stores and linked files (Connect).

        LucidLink answers ``False`` for filespaces too old for Connect or where it is
        not configured; tools call it before any other Connect method. This hub
        serves Connect on every filespace, so the answer is ``True`` unless the hub
        has no Connect endpoints (an older hub). Any token that may use the filespace
        may ask; other errors (a revoked token, an unreachable hub) are raised.
        """
        return _loop.run(self._async.are_data_stores_available())

    def add_data_store(self, name: str, config: S3DataStoreConfig) -> DataStoreInfo:
        """Add an S3 data store to the filespace (admin token).

        The hub first checks that the store answers and the bucket exists (HeadBucket)
        and raises ``ConfigurationError`` saying which setting is wrong when not
        (``err.details["field"]``, ``err.details["reason"]``); ``FileExistsError``
        when the name is taken. The returned info carries no secret key.
        """
        return _loop.run(self._async.add_data_store(name, config))

    def list_data_stores(self) -> list[DataStoreInfo]:
        """The filespace's data stores, by name (``secret_key`` is always ``""``)."""
        return _loop.run(self._async.list_data_stores())

    def get_data_store(self, name: str) -> DataStoreInfo | None:
        """One data store, or ``None`` if the filespace has none of that name.

        The secret key is returned to admin tokens only; other tokens get ``""``.
        """
        return _loop.run(self._async.get_data_store(name))

    def rekey_data_store(
        self,
        name: str,
        credentials: S3Credentials | str | None = None,
        new_secret_key: str | None = None,
        *,
        new_access_key: str | None = None,
    ) -> DataStoreInfo:
        """Replace a data store's credentials (admin token); checked against the bucket first.

        Give them as ``S3Credentials(access_key=..., secret_key=...)``, or as
        ``new_access_key=..., new_secret_key=...`` (LucidLink's two forms), or as
        ``(name, access_key, secret_key)``. Linked files keep working: their next reads
        get URLs signed with the new keys. Returns the store's new info.
        """
        return _loop.run(
            self._async.rekey_data_store(
                name, credentials, new_secret_key, new_access_key=new_access_key
            )
        )

    def remove_data_store(self, name: str, force: bool = False) -> None:
        """Remove a data store (admin token).

        Refused (``FilespaceError``, ``err.details["linked_files"]``) while files are
        linked to it, unless ``force=True``, which unlinks them first. Objects in S3
        are never touched.
        """
        return _loop.run(self._async.remove_data_store(name, force))

    def link_file(
        self,
        file_path: str,
        data_store_name: str,
        object_id: str,
        size: int | None = None,
        checksum: str = "",
    ) -> DirEntry:
        """Link an S3 object as the read-only file ``file_path`` (one hub call; parents are created).

        Without ``size`` the hub asks S3 for the size, ETag and modification time. With
        ``size`` and ``checksum`` (best: the object's ETag as S3 lists it) it trusts
        them and makes no S3 call, which is what bulk linking wants. ``checksum=""``
        (the default, as in LucidLink's SDK) means not given; ``size`` without a
        checksum is refused (``ConfigurationError``). Linking over an
        existing path (``FileExistsError``), to a missing store or object
        (``NotFoundError``) fails and changes nothing.
        """
        return _loop.run(
            self._async.link_file(file_path, data_store_name, object_id, size, checksum)
        )

    def link_files(self, links: Iterable[ExternalFileLink | Mapping[str, Any]]) -> list[DirEntry]:
        """Link many objects: :class:`~lucidlink.types.ExternalFileLink` values, or dicts of
        ``link_file``'s arguments.

        Sent in batches of :data:`LINK_BATCH`, each one hub call and one transaction
        (all of a batch land or none); when a batch fails, the batches before it stay
        linked and the error says how many.
        """
        return _loop.run(self._async.link_files(links))

    def unlink_file(self, file_path: str) -> None:
        """Remove a linked file (the S3 object is not touched); ``ValueError`` for a regular file."""
        return _loop.run(self._async.unlink_file(file_path))

    def list_external_files(
        self, data_store_name: str, limit: int = 100, cursor: str | None = ""
    ) -> LinkedFilesResult:
        """One page of at most ``limit`` (1 to 5000) files linked to a data store, in link order.

        Pass ``cursor`` from the previous page while ``has_more`` (``""`` or ``None``:
        the first page). ``file_ids[i]`` equals ``DirEntry.file_id_external`` of that
        file. Pages are stable:
        links added or removed meanwhile never make a file appear twice or be skipped.
        """
        return _loop.run(self._async.list_external_files(data_store_name, limit, cursor))

    def count_external_files(self, data_store_name: str) -> int:
        """How many files are linked to a data store."""
        return _loop.run(self._async.count_external_files(data_store_name))


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
