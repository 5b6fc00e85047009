"""What the parts of a linked filespace share, and what a running daemon lends them.

:class:`DaemonServices` is handed by a started daemon to its workspaces; a workspace
hands it, with its transport, to each filespace it links. :class:`FilespaceLink` is the
state of one link that the filespace's collaborators (its filesystem, Connect, files,
locks and the reader of linked files) use: hub calls scoped to the filespace and its
session, the block store, the write-back queue, the session's lease and the open files.
Keeping it here, not on :class:`~lucidlink.aio.filespace.AsyncFilespace`, keeps those
internals out of the public (and generated blocking) API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from lucidlink.aio.blocks import BlockIO
from lucidlink.aio.cache import BlockCache
from lucidlink.aio.config import DaemonConfig
from lucidlink.aio.external import ExternalReader
from lucidlink.aio.fileinfo import FileInfos
from lucidlink.aio.metacache import MetaCache
from lucidlink.aio.pending import PendingCommit
from lucidlink.aio.writeback import WriteBack
from lucidlink.directio import DirectWriter
from lucidlink.exceptions import FilespaceError, ReadOnlyError

if TYPE_CHECKING:
    from lucidlink.aio.file import AsyncFile
    from lucidlink.aio.transport import Transport


_MUTATIONS = frozenset({"/mkdir", "/delete", "/move", "/copy", "/truncate", "/symlink"})
"""The filespace calls that change entries (commits go through the write-back queue;
Connect's calls other than reads may too)."""


class ObservedWriteBack(WriteBack):
    """The write-back queue, telling the metadata cache of each change it queues (so this
    client's own reads never see what the change replaces)."""

    def __init__(self, *args: Any, metacache: MetaCache, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._metacache = metacache

    def _accept(self, commit: PendingCommit) -> None:
        self._metacache.own_write(commit.path)
        super()._accept(commit)


@attrs.frozen
class DaemonServices:
    """What a started daemon lends its workspaces and their filespaces."""

    config: DaemonConfig
    cache: BlockCache
    staging_dir: Path
    """Where open files keep the bytes written to them."""
    direct: DirectWriter
    """Writes staging and cache files (large aligned writes past the page cache)."""
    pending_dir: Path
    """Where the write-back queue journals closed changes (when ``durable``)."""
    durable: bool
    """Whether closed changes survive the process (physical storage that persists)."""
    client_name: str
    """How sessions opened by this daemon name it to the hub."""
    check_running: Callable[[], None]
    """Raises ``DaemonError`` (saying what to do) unless the daemon is running."""
    claim_pending: Callable[[str], list[PendingCommit]]
    """The changes a previous run left for a filespace id, handed out once."""


@attrs.define
class Lease:
    """The filespace session's lease, as this client last renewed it (monotonic seconds)."""

    seconds: float = 30.0
    started: float = 0.0
    """When the current session was opened."""
    renewed: float = 0.0
    """When the last successful renewal was sent."""

    def restart(self, seconds: float) -> None:
        """A new session was opened now, for ``seconds``."""
        self.seconds = seconds
        self.started = self.renewed = time.monotonic()

    def lost_since(self, granted_at: float) -> bool:
        """Whether a grant made at ``granted_at`` may have lapsed: the session was replaced
        since, or no renewal reached the hub for a whole lease."""
        last = max(granted_at, self.renewed)
        return self.started > granted_at or time.monotonic() - last > self.seconds


class FilespaceLink:
    """The shared state of one linked filespace (see the module docstring)."""

    def __init__(
        self,
        *,
        filespace_id: str,
        full_name: str,
        block_size: int,
        read_only: bool,
        transport: Transport,
        services: DaemonServices,
    ) -> None:
        self.id = filespace_id
        self.full_name = full_name
        self.block_size = block_size
        self.read_only = read_only
        self.transport = transport
        self.services = services
        self.config = services.config
        self.session_id: str | None = None
        self.linked = False
        """Whether the filespace's session is open (hub calls may be made)."""
        self.unlinking = False
        """Set when ``unlink`` begins: no new operation starts, while the calls that finish
        what is open (closes, lock releases, the last commits) still reach the hub."""
        self.lease = Lease()
        self.open_files: set[AsyncFile] = set()
        self.blocks = BlockIO(
            transport,
            filespace_id,
            services.cache,
            download_concurrency=self.config.download_concurrency,
            upload_concurrency=self.config.upload_concurrency,
        )
        self.metacache = MetaCache(self._changes, lambda: self.writeback.pending_paths)
        self.files = FileInfos(self)
        """Files' read answers: cached, prefetched, in batches."""
        self.writeback: WriteBack = ObservedWriteBack(
            transport,
            self.blocks,
            filespace_id,
            lambda: self.session_id,
            services.pending_dir,
            durable=services.durable,
            delay=self.config.flush_delay_ms / 1000,
            sync_timeout=self.config.sync_timeout,
            metacache=self.metacache,
        )
        self._external: ExternalReader | None = None

    @property
    def external(self) -> ExternalReader:
        """The reader of the filespace's linked (Connect) files, made on first use."""
        if self._external is None:
            self._external = ExternalReader(self)
        return self._external

    @property
    def accepting(self) -> bool:
        """Whether new operations may start: linked, and no ``unlink`` under way."""
        return self.linked and not self.unlinking

    def check_linked(self) -> None:
        """Raise ``FilespaceError`` (or the daemon's ``DaemonError``) unless a new operation
        may start (see :attr:`accepting`)."""
        if not self.accepting:
            raise FilespaceError(
                f"filespace {self.full_name} is not linked (it was unlinked, or its daemon "
                "stopped); link it again with workspace.link_filespace(name=...)"
            )
        self.services.check_running()

    def require_writable(self, what: str) -> None:
        """Raise ``ReadOnlyError`` when the token may not ``what`` (after :meth:`check_linked`)."""
        self.check_linked()
        if self.read_only:
            raise ReadOnlyError(
                f"this token is read-only and cannot {what}; use a read-write token"
            )

    async def before(self, path: str, scope: str) -> None:
        """Check state; commit pending writes an operation on ``path`` must see first."""
        self.check_linked()
        if self.writeback.affects(path, scope):
            await self.writeback.flush()

    async def call(self, method: str, suffix: str, **kw: Any) -> Any:
        """One hub call under ``/v1/filespaces/<id>``, in this link's session (also while
        an unlink finishes what is open: it checks the session, not :attr:`accepting`)."""
        if not self.linked:
            self.check_linked()  # raises the error a closed link gives
        self.services.check_running()
        if suffix not in _MUTATIONS and (method == "GET" or not suffix.startswith("/connect/")
                                         or suffix == "/connect/urls"):
            return await self.transport.call(
                method, f"/v1/filespaces/{self.id}{suffix}", session_id=self.session_id, **kw
            )
        try:
            return await self.transport.call(
                method, f"/v1/filespaces/{self.id}{suffix}", session_id=self.session_id, **kw
            )
        finally:  # answered or not, the cache must not keep what the call may have changed
            self.metacache.own_call(suffix, kw.get("json"))

    async def _changes(self, since: int, limit: int, wait: int) -> Any:
        params = {"since": str(since), "limit": str(limit)}
        if wait:
            params["wait"] = str(wait)
        return await self.transport.call(
            "GET", f"/v1/filespaces/{self.id}/changes", params=params,
            timeout=wait + 10 if wait else None, session_id=self.session_id,
        )
