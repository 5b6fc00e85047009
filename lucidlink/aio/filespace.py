"""A linked filespace: its session on the hub, its write-back queue, ``sync_all``."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import TYPE_CHECKING, Any


from lucidlink._log import get_logger
from lucidlink.aio.blocks import BlockIO
from lucidlink.aio.connect import AsyncConnect
from lucidlink.aio.filesystem import AsyncFilesystem
from lucidlink.aio.writeback import WriteBack
from lucidlink.exceptions import FilespaceError, LucidLinkError, ReadOnlyError, SessionExpiredError
from lucidlink.types import SyncMode

if TYPE_CHECKING:
    from lucidlink.aio.daemon import AsyncDaemon
    from lucidlink.aio.file import AsyncFile
    from lucidlink.aio.transport import Transport
    from lucidlink.aio.workspace import AsyncWorkspace

log = get_logger("lucidlink")


class AsyncFilespace:
    """A filespace linked to a daemon: ``fs`` for files, ``sync_all`` as the barrier.

    ``async with workspace.link_filespace(name=...) as filespace`` unlinks on exit
    (after ``sync_all`` unless ``sync_mode`` is ``SyncMode.SYNC_NONE``).
    """

    def __init__(self, workspace: AsyncWorkspace, info: dict[str, Any], sync_mode: SyncMode) -> None:
        self._workspace = workspace
        self._daemon: AsyncDaemon = workspace._daemon
        self._transport: Transport = workspace._transport
        self._config = self._daemon._config
        self._info = info
        self.sync_mode = SyncMode(sync_mode)
        self._linked = False
        self._session_id: str | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._open_files: set[AsyncFile] = set()
        self._seq = 0
        self._lease = 30.0
        self._last_renewal = 0.0
        self._session_started = 0.0
        self._blocks = BlockIO(
            self._transport, info["id"], self._daemon._cache,
            download_concurrency=self._config.download_concurrency,
            upload_concurrency=self._config.upload_concurrency,
        )
        self._writeback = WriteBack(
            self._transport, self._blocks, info["id"], lambda: self._session_id, self._daemon._pending_dir,
            durable=self._daemon.persist_files, delay=self._config.flush_delay_ms / 1000,
            sync_timeout=self._config.sync_timeout,
        )
        self._fs = AsyncFilesystem(self)
        self._connect: AsyncConnect | None = None

    # -- identity ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The filespace's name."""
        return str(self._info["name"])

    @property
    def id(self) -> str:
        """The filespace's id."""
        return str(self._info["id"])

    @property
    def full_name(self) -> str:
        """``<filespace>.<workspace>``."""
        return f"{self.name}.{self._workspace.name}"

    @property
    def block_size(self) -> int:
        """The filespace's block size in bytes."""
        return int(self._info["block_size"])

    @property
    def fs(self) -> AsyncFilesystem:
        """File and directory operations."""
        self._check_linked()
        return self._fs

    @property
    def connect(self) -> AsyncConnect:
        """LucidLink Connect: data stores and files linked from S3 objects."""
        self._check_linked()
        if self._connect is None:
            self._connect = AsyncConnect(self)
        return self._connect

    @property
    def is_linked(self) -> bool:
        """Whether the filespace is still linked."""
        return self._linked

    def __repr__(self) -> str:
        return f"<AsyncFilespace {self.full_name}{'' if self._linked else ' (unlinked)'}>"

    # -- lifecycle ---------------------------------------------------------------------

    async def _link(self) -> None:
        await self._open_session()
        self._linked = True
        self._writeback.start()
        self._writeback.resume(self._daemon.claim_pending(self.id))
        self._heartbeat = asyncio.create_task(self._renew(), name=f"lucidlink-heartbeat-{self.id[:8]}")
        body = await self._transport.call("GET", f"/v1/filespaces/{self.id}")
        self._seq = int(body["seq"])

    async def _open_session(self) -> None:
        body = await self._transport.call("POST", f"/v1/filespaces/{self.id}/sessions",
                                          json={"client": f"lucidlink-python daemon {self._daemon._id}"})
        self._session_id = body["session_id"]
        self._lease = float(body["lease_seconds"])
        self._session_started = self._last_renewal = asyncio.get_running_loop().time()

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                sent = asyncio.get_running_loop().time()
                await self._transport.call("POST", f"/v1/sessions/{self._session_id}/heartbeat", idempotent=True)
                self._last_renewal = sent
            except SessionExpiredError:
                log.warning("lucidlink.session.expired", filespace=self.full_name)
                with contextlib.suppress(LucidLinkError):
                    await self._open_session()
            except LucidLinkError as exc:
                log.warning("lucidlink.session.heartbeat_failed", filespace=self.full_name, error=str(exc))

    def _session_epoch_lost(self, since: float) -> bool:
        """Whether the session that existed at loop time ``since`` has been replaced."""
        return self._session_started > since

    def _check_linked(self) -> None:
        if not self._linked:
            raise FilespaceError(
                f"filespace {self.full_name} is not linked (it was unlinked, or its daemon stopped); "
                "link it again with workspace.link_filespace(name=...)"
            )
        self._daemon._check_running()

    def _require_writable(self, what: str) -> None:
        self._check_linked()
        if self._workspace._read_only:
            raise ReadOnlyError(f"this token is read-only and cannot {what}; use a read-write token")

    async def _before(self, path: str, scope: str) -> None:
        """Check state; commit pending writes an operation on ``path`` must see first."""
        self._check_linked()
        if self._writeback.affects(path, scope):
            await self._writeback.flush()

    async def _call(self, method: str, suffix: str, **kw: Any) -> Any:
        self._check_linked()
        return await self._transport.call(method, f"/v1/filespaces/{self.id}{suffix}",
                                          session_id=self._session_id, **kw)

    async def sync_all(self) -> None:
        """The barrier both ways.

        Returns once every change this daemon made (closed files included) is
        committed in the hub, and this daemon has pulled every change committed before
        the call. Raises what the hub refused (once), or ``SyncTimeoutError`` (a
        ``TimeoutError``) naming the files still pending when ``fs.sync.timeout`` runs
        out: those stay queued and a later ``sync_all()`` lands them.
        """
        self._check_linked()
        await self._writeback.flush()
        while True:
            body = await self._call("GET", "/changes", params={"since": str(self._seq), "limit": "10000"})
            if body["changes"]:
                self._seq = int(body["changes"][-1]["seq"])
            if not body["more"]:
                self._seq = max(self._seq, int(body["seq"]))
                return

    async def unlink(self) -> None:
        """Close open files, sync (unless ``SyncMode.SYNC_NONE``) and leave the filespace."""
        if not self._linked:
            return
        try:
            for handle in list(self._open_files):
                await handle.close()
            if self.sync_mode is SyncMode.SYNC_ALL:
                await self.sync_all()
            else:
                # SYNC_NONE skips the barrier, but closed files are still committed:
                # nothing written and closed is ever dropped.
                await self._writeback.flush()
        finally:
            await self._detach()

    async def _detach(self) -> None:
        self._linked = False
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        await self._writeback.stop()
        if self._session_id is not None:
            with contextlib.suppress(LucidLinkError):
                await self._transport.call("DELETE", f"/v1/sessions/{self._session_id}")
            self._session_id = None
        self._workspace._filespaces.discard(self)

    async def __aenter__(self) -> AsyncFilespace:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.unlink()
