"""The client: LucidLink SDK 0.12's entry point, a daemon plus the workspaces it logged in to."""

from __future__ import annotations

import os
from types import TracebackType

from lucidlink.aio.daemon import AsyncDaemon
from lucidlink.aio.workspace import AsyncWorkspace
from lucidlink.exceptions import ClientError, ConfigurationError, WorkspaceNotFoundError
from lucidlink.types import (
    ClientConfig,
    ServiceAccountCredentials,
    StorageConfig,
    StorageMode,
    WorkspaceInfo,
)


class AsyncClient:
    """A lucidlink client: ``login``, then ``get_workspace`` and link its filespaces.

    ``storage`` is where the client keeps its state, as LucidLink's SDK takes it: a
    :class:`~lucidlink.types.StorageConfig` (default: sandboxed, a private temporary
    directory removed on ``close``), or a directory (its ``.lucid``, removed on
    ``close``: ``StorageConfig(mode=StorageMode.PHYSICAL, root_path=storage)``). The hub
    is ``LUCIDLINK_HUB_URL``, else the default, as for ``create_daemon``. ``close``
    (or leaving ``async with``) unlinks every filespace, syncing per its sync mode.
    """

    def __init__(self, *, storage: StorageConfig | str | None = None,
                 config: ClientConfig | None = None) -> None:
        if config is not None and not isinstance(config, ClientConfig):
            raise ConfigurationError("config must be a lucidlink.ClientConfig(...)")
        settings: dict[str, str] = {}
        if config is not None and config.fs_cache_size_mb is not None:
            settings["fs.cache.size"] = str(config.fs_cache_size_mb)
        self._client_config = config or ClientConfig()
        if isinstance(storage, (str, os.PathLike)):
            storage = StorageConfig(mode=StorageMode.PHYSICAL, root_path=storage)
        self._daemon = AsyncDaemon(settings, storage)
        self._workspaces: dict[str, AsyncWorkspace] = {}
        self._closed = False

    @property
    def is_logged_in(self) -> bool:
        """Whether ``login`` succeeded and the client is not closed."""
        return bool(self._workspaces) and self._daemon.is_running()

    @property
    def config(self) -> ClientConfig:
        """The client's settings."""
        return self._client_config

    @property
    def hub_url(self) -> str:
        """The hub this client talks to."""
        return self._daemon.hub_url

    def __repr__(self) -> str:
        state = "logged in" if self.is_logged_in else "not logged in"
        return f"<AsyncClient {self.hub_url} {state}>"

    async def login(self, credentials: ServiceAccountCredentials) -> None:
        """Log in with a service-account token (starting the client if needed).

        Raises ``AuthenticationError`` when the hub refuses the token. Logging in with
        tokens of several workspaces makes all of them available.
        """
        await self._daemon.start()
        workspace = await self._daemon.authenticate(credentials)
        self._workspaces.setdefault(workspace.id, workspace)

    def _check_logged_in(self) -> None:
        if self._closed:
            raise ClientError("the client is closed; create a new lucidlink.Client()")
        if not self._workspaces:
            raise ClientError("the client is not logged in; call client.login(credentials) first")

    async def list_workspaces(self) -> list[WorkspaceInfo]:
        """The workspaces the client is logged in to."""
        self._check_logged_in()
        return [WorkspaceInfo(id=w.id, name=w.name) for w in self._workspaces.values()]

    async def get_workspace(self, id: str) -> AsyncWorkspace:
        """The workspace of that id; ``WorkspaceNotFoundError`` (a ``ValueError``) if none."""
        self._check_logged_in()
        workspace = self._workspaces.get(id)
        if workspace is None:
            known = ", ".join(f"{w.name} ({w.id})" for w in self._workspaces.values())
            raise WorkspaceNotFoundError(f"not logged in to a workspace with id {id!r}; workspaces: {known}")
        return workspace

    async def close(self) -> None:
        """Unlink every filespace (syncing per its sync mode) and clean up. Idempotent."""
        try:
            await self._daemon.stop()
        finally:
            self._closed = True
            self._workspaces.clear()

    async def __aenter__(self) -> AsyncClient:
        await self._daemon.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
