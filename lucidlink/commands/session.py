"""One daemon per command: started on first use, linked filespaces cached, synced at the end."""

from __future__ import annotations

import threading
from types import TracebackType

import lucidlink
from lucidlink.commands.credentials import Credentials
from lucidlink.commands.errors import CommandError
from lucidlink.commands.urls import SCHEME, RemoteURL


class Session:
    """The SDK objects one run of the command line needs (thread-safe; use it as ``with``).

    Leaving the ``with`` block without an error commits what was written
    (``sync_all`` on every linked filespace) before the daemon stops, so the command
    exits only once the hub holds its changes.
    """

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials
        self._lock = threading.Lock()
        self._daemon: lucidlink.Daemon | None = None
        self._workspace: lucidlink.Workspace | None = None
        self._filespaces: dict[str, lucidlink.Filespace] = {}

    @property
    def hub_url(self) -> str:
        """The hub this session talks to."""
        return self._credentials.hub_url

    def workspace(self) -> lucidlink.Workspace:
        """The token's workspace (starting the daemon and logging in on first use)."""
        with self._lock:
            return self._workspace_locked()

    def _workspace_locked(self) -> lucidlink.Workspace:
        if self._workspace is None:
            daemon = lucidlink.create_daemon(hub_url=self._credentials.hub_url)
            daemon.start()
            self._daemon = daemon
            credentials = lucidlink.ServiceAccountCredentials(token=self._credentials.token)
            self._workspace = daemon.authenticate(credentials)
        return self._workspace

    def check_workspace(self, url: RemoteURL) -> lucidlink.Workspace:
        """The workspace, after checking that ``url`` is in it."""
        workspace = self.workspace()
        if url.workspace != workspace.name:
            raise CommandError(
                f"{url} is in workspace {url.workspace!r}, but the token "
                f"({self._credentials.source}) belongs to workspace {workspace.name!r}; "
                f"use {SCHEME}{workspace.name}/..., or a token of that workspace"
            )
        return workspace

    def filespace(self, url: RemoteURL) -> lucidlink.Filespace:
        """The linked filespace ``url`` is in (linked once per session)."""
        self.check_workspace(url)
        with self._lock:
            found = self._filespaces.get(url.filespace)
            if found is None:
                found = self._workspace_locked().link_filespace(name=url.filespace)
                self._filespaces[url.filespace] = found
            return found

    def fs(self, url: RemoteURL) -> lucidlink.Filesystem:
        """The filesystem of ``url``'s filespace."""
        return self.filespace(url).fs

    def commit(self) -> None:
        """Wait until the hub holds every change written in this session."""
        for filespace in list(self._filespaces.values()):
            filespace.sync_all()

    def close(self) -> None:
        """Stop the daemon (idempotent)."""
        daemon, self._daemon = self._daemon, None
        self._workspace, self._filespaces = None, {}
        if daemon is not None:
            daemon.stop()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is None:
                self.commit()
        finally:
            self.close()
