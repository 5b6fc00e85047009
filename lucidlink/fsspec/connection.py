"""What one file-system instance is connected with: its daemon, workspace and filespaces.

Nothing is connected at construction: the daemon starts, and the token's workspace is
logged in to, on first use; each filespace is linked on first use too (under one
:class:`asyncio.Lock`). A connection is bound to the event loop that first uses it; a
loop that has finished leaves its daemon behind, abandoned (its sandbox directory
removed), and the next loop starts afresh. ``close`` commits pending writes of every
linked filespace and stops the daemon; the connection stays usable and reconnects on
next use. It is never pickled: the file system pickles its storage options.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import sys
from typing import Any

from lucidlink._log import get_logger
from lucidlink.aio.daemon import AsyncDaemon, create_daemon
from lucidlink.aio.filespace import AsyncFilespace
from lucidlink.aio.workspace import AsyncWorkspace
from lucidlink.exceptions import FilespaceNotFoundError, PathNotFoundError
from lucidlink.fsspec.paths import (
    PROTOCOL,
    Location,
    WorkspaceMismatchError,
    not_a_file,
    strip_protocol,
)
from lucidlink.paths import normalize_path
from lucidlink.types import ServiceAccountCredentials, SyncMode

log = get_logger("lucidlink")

#: Longest wait for the exit-time commit of pending writes, in seconds.
EXIT_TIMEOUT = 30.0


class Connection:
    """The daemon, workspace and linked filespaces of one file system; restartable."""

    def __init__(self, token: str, daemon_options: dict[str, Any]) -> None:
        self._credentials = ServiceAccountCredentials(token=token)
        self._options = daemon_options
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._daemon: AsyncDaemon | None = None
        self._workspace: AsyncWorkspace | None = None
        self._filespaces: dict[str, AsyncFilespace] = {}
        self._exit_tasks: set[asyncio.Task[None]] = set()

    def _bind(self) -> asyncio.Lock:
        running = asyncio.get_running_loop()
        if self.loop is not running or self._lock is None:
            if self.loop is not None and self.loop is not running and self.loop.is_running():
                raise RuntimeError(
                    "this LucidLinkFileSystem is in use on another running event loop; create one "
                    "instance per loop (pass skip_instance_cache=True)"
                )
            self._abandon()  # whatever was bound to a finished loop cannot be used here
            self.loop = running
            self._lock = asyncio.Lock()
        return self._lock

    async def workspace(self) -> AsyncWorkspace:
        """The token's workspace, starting the daemon and logging in on first use."""
        lock = self._bind()
        if self._workspace is None:
            async with lock:
                if self._workspace is None:
                    daemon = create_daemon(**self._options)
                    await daemon.start()
                    try:
                        workspace = await daemon.authenticate(self._credentials)
                    except BaseException:
                        await daemon.stop()
                        raise
                    self._daemon, self._workspace = daemon, workspace
        return self._workspace

    async def filespace(self, name: str) -> AsyncFilespace:
        """The filespace ``name`` of the workspace, linked on first use."""
        workspace = await self.workspace()
        found = self._filespaces.get(name)
        if found is not None and found.is_linked:
            return found
        assert self._lock is not None
        async with self._lock:
            found = self._filespaces.get(name)
            if found is None or not found.is_linked:
                try:
                    # close() syncs explicitly, so unlinking need not sync a second time.
                    found = await workspace.link_filespace(name=name, sync_mode=SyncMode.SYNC_NONE)
                except FilespaceNotFoundError as err:
                    raise PathNotFoundError(str(err), path=f"{workspace.name}/{name}") from None
                self._filespaces[name] = found
        return found

    # -- where a path points -------------------------------------------------------------

    async def location(self, path: str) -> Location:
        """Where ``path`` points; ``WorkspaceMismatchError`` for another workspace."""
        parts = [p for p in strip_protocol(path).split("/") if p]
        if not parts:
            return Location()
        workspace = await self.workspace()
        if parts[0] != workspace.name:
            raise WorkspaceMismatchError(
                f"{PROTOCOL}://{'/'.join(parts)} is in workspace {parts[0]!r}, but this token "
                f"belongs to workspace {workspace.name!r}; use "
                f"{PROTOCOL}://{workspace.name}/<filespace>/<path>, or a token of workspace "
                f"{parts[0]!r}",
                path=path,
            )
        if len(parts) == 1:
            return Location(parts[0])
        return Location(parts[0], parts[1], normalize_path("/" + "/".join(parts[2:])))

    async def filespace_at(self, loc: Location) -> AsyncFilespace:
        """The filespace a location (of depth 2 or more) is in, linked on first use."""
        return await self.filespace(loc.filespace)

    async def current(self, loc: Location) -> AsyncFilespace:
        """:meth:`filespace_at`, refreshed: its reads see every change committed before
        (as an object store's do), not only what its journal delivered so far."""
        filespace = await self.filespace_at(loc)
        await filespace.refresh()
        return filespace

    async def target(self, path: str, what: str) -> tuple[AsyncFilespace, Location]:
        """A path inside a filespace; ``IsADirectoryError`` for the levels above files."""
        loc = await self.location(path)
        if loc.depth < 3:
            raise not_a_file(loc, what)
        return await self.filespace_at(loc), loc

    # -- lifetime ------------------------------------------------------------------------

    async def close(self) -> None:
        """Commit pending writes of every linked filespace, then stop the daemon."""
        if self._daemon is None:
            return
        lock = self._bind()
        async with lock:
            daemon, filespaces = self._daemon, list(self._filespaces.values())
            self._daemon, self._workspace, self._filespaces = None, None, {}
        if daemon is None:
            return
        errors: list[BaseException] = []
        try:
            for filespace in filespaces:
                if filespace.is_linked:
                    try:
                        await filespace.sync_all()
                    except Exception as exc:  # stop the daemon anyway; report after
                        errors.append(exc)
        finally:
            await daemon.stop()
        if errors:
            raise errors[0]

    def close_from_thread(self, timeout: float) -> None:
        """``close`` from any thread (finalizer, exit); never blocks longer than ``timeout``."""
        loop = self.loop
        if self._daemon is None:
            return
        if loop is None or loop.is_closed() or not loop.is_running() or sys.is_finalizing():
            self._abandon()
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:  # garbage collected on the loop's own thread: cannot block here
            task = loop.create_task(self.close())
            self._exit_tasks.add(task)
            task.add_done_callback(self._exit_tasks.discard)
            return
        future = asyncio.run_coroutine_threadsafe(self.close(), loop)
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            log.warning("lucidlink.fsspec.close_timeout", seconds=timeout)
        except Exception as exc:
            log.warning("lucidlink.fsspec.close_failed", error=str(exc))

    def _abandon(self) -> None:
        """Forget a daemon whose loop is gone (its sandbox directory is removed)."""
        daemon = self._daemon
        self._daemon, self._workspace, self._filespaces = None, None, {}
        self._lock = None
        if daemon is not None and daemon.sandboxed and daemon.root_path:
            shutil.rmtree(daemon.root_path, ignore_errors=True)


def close_at_exit(connection: Connection) -> None:
    """The file system's finalizer: ``close`` bounded by :data:`EXIT_TIMEOUT`."""
    connection.close_from_thread(EXIT_TIMEOUT)
