"""A linked filespace: its session on the hub, its write-back queue, ``sync_all``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from lucidlink._log import get_logger
from lucidlink.aio.connect import AsyncConnect
from lucidlink.aio.filesystem import AsyncFilesystem
from lucidlink.aio.link import DaemonServices, FilespaceLink
from lucidlink.exceptions import (
    HubUnavailableError,
    LucidLinkError,
    SessionExpiredError,
    SyncTimeoutError,
)
from lucidlink.types import SyncMode

if TYPE_CHECKING:
    from lucidlink.aio.transport import Transport
    from lucidlink.aio.workspace import AsyncWorkspace

log = get_logger("lucidlink")


class AsyncFilespace:
    """A filespace linked to a daemon: ``fs`` for files, ``sync_all`` as the barrier.

    ``async with workspace.link_filespace(name=...) as filespace`` unlinks on exit
    (after ``sync_all`` unless ``sync_mode`` is ``SyncMode.SYNC_NONE``).
    """

    def __init__(self, workspace: AsyncWorkspace, info: dict[str, Any], sync_mode: SyncMode, *,
                 transport: Transport, services: DaemonServices, read_only: bool,
                 on_unlink: Callable[[AsyncFilespace], None]) -> None:
        self._workspace = workspace
        self._transport = transport
        self._services = services
        self._on_unlink = on_unlink
        self._info = info
        self.sync_mode = SyncMode(sync_mode)
        self._heartbeat: asyncio.Task[None] | None = None
        self._link = FilespaceLink(
            filespace_id=str(info["id"]), full_name=f"{info['name']}.{workspace.name}",
            block_size=int(info["block_size"]), read_only=read_only, transport=transport,
            services=services,
        )
        self._fs = AsyncFilesystem(self._link)
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
    def workspace_id(self) -> str:
        """The id of the workspace the filespace belongs to."""
        return self._workspace.id

    @property
    def workspace_name(self) -> str:
        """The name of the workspace the filespace belongs to."""
        return self._workspace.name

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
        self._link.check_linked()
        return self._fs

    @property
    def connect(self) -> AsyncConnect:
        """LucidLink Connect: data stores and files linked from S3 objects."""
        self._link.check_linked()
        if self._connect is None:
            self._connect = AsyncConnect(self._link)
        return self._connect

    @property
    def is_linked(self) -> bool:
        """Whether the filespace is still linked."""
        return self._link.accepting

    def __repr__(self) -> str:
        return f"<AsyncFilespace {self.full_name}{'' if self._link.accepting else ' (unlinked)'}>"

    # -- lifecycle ---------------------------------------------------------------------

    async def _start(self) -> None:
        await self._open_session()
        self._link.linked = True
        self._link.writeback.start()
        self._link.writeback.resume(self._services.claim_pending(self.id))
        self._heartbeat = asyncio.create_task(self._renew(), name=f"lucidlink-heartbeat-{self.id[:8]}")
        body = await self._transport.call("GET", f"/v1/filespaces/{self.id}")
        self._link.metacache.start(int(body["seq"]))

    async def _open_session(self) -> None:
        body = await self._transport.call("POST", f"/v1/filespaces/{self.id}/sessions",
                                          json={"client": self._services.client_name})
        self._link.session_id = body["session_id"]
        self._link.lease.restart(float(body["lease_seconds"]))

    async def _renew(self) -> None:
        lease = self._link.lease
        while True:
            await asyncio.sleep(lease.seconds / 3)
            try:
                sent = time.monotonic()
                session = self._link.session_id
                await self._transport.call("POST", f"/v1/sessions/{session}/heartbeat", idempotent=True)
                lease.renewed = sent
            except SessionExpiredError:
                log.warning("lucidlink.session.expired", filespace=self.full_name)
                with contextlib.suppress(LucidLinkError):
                    await self._open_session()
            except LucidLinkError as exc:
                log.warning("lucidlink.session.heartbeat_failed", filespace=self.full_name, error=str(exc))

    async def _call(self, method: str, suffix: str, **kw: Any) -> Any:
        # A raw hub call in this link's session: tests use it to see the hub's view.
        return await self._link.call(method, suffix, **kw)

    async def sync_all(self) -> None:
        """The barrier both ways.

        Returns once every change this daemon made (closed files included) is
        committed in the hub, and this daemon has pulled every change committed before
        the call. Raises what the hub refused (once), or ``SyncTimeoutError`` (a
        ``TimeoutError``) naming the files still pending when ``fs.sync.timeout`` runs
        out: those stay queued and a later ``sync_all()`` lands them.
        """
        self._link.check_linked()
        await self._link.writeback.flush()
        # The metadata cache drops what every change up to the hub's position touched.
        await self._catch_up()

    async def _catch_up(self) -> None:
        """Pull the journal to the hub's position; while the hub cannot be reached, retry
        until ``fs.sync.timeout``, then raise ``SyncTimeoutError`` (as the write half does)."""
        timeout = self._link.writeback.sync_timeout
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            try:
                await self._link.metacache.catch_up()
                return
            except HubUnavailableError as exc:
                if time.monotonic() + delay > deadline:
                    raise SyncTimeoutError(
                        f"the hub did not answer this daemon's pull of the change journal within "
                        f"{timeout:g} s ({exc}); nothing is lost: call sync_all() again once the "
                        "hub answers, or raise 'fs.sync.timeout'", pending=[]) from exc
                await asyncio.sleep(delay)
                delay = min(2 * delay, 1.0)

    async def refresh(self) -> None:
        """Pull the change journal up to the hub's current position (one hub call).

        The read half of :meth:`sync_all`, which commits nothing: after it, this
        daemon's reads (cached or not) see every change committed anywhere before the
        call. Without it, they see what the journal has delivered (see "Consistency"
        in docs/architecture.md).
        """
        self._link.check_linked()
        await self._catch_up()

    @property
    def _seq(self) -> int:
        # The journal position this daemon has applied (tests read it).
        return self._link.metacache.seq

    async def unlink(self) -> None:
        """Close open files, sync (unless ``SyncMode.SYNC_NONE``) and leave the filespace."""
        if not self._link.accepting:
            return
        # From here on nothing new starts (opens, write_file, namespace calls raise
        # FilespaceError; the blocking write_file's queueing from other threads stops):
        # every change acknowledged before is queued once the open files are closed (a
        # close already running is waited for), and the flush below commits them all.
        self._link.unlinking = True
        self._link.writeback.close_inbox()
        try:
            while self._link.open_files:  # a handle an open in flight made meanwhile too
                for handle in list(self._link.open_files):
                    await handle.close()
            # SYNC_ALL and SYNC_NONE alike: closed files are committed (the journal pull
            # of sync_all would serve a cache this unlink drops).
            await self._link.writeback.flush()
        finally:
            await self._detach()

    async def _detach(self) -> None:
        self._link.linked = False
        await self._link.files.close()
        await self._link.metacache.stop()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        await self._link.writeback.stop()
        if self._link.session_id is not None:
            with contextlib.suppress(LucidLinkError):
                await self._transport.call("DELETE", f"/v1/sessions/{self._link.session_id}")
            self._link.session_id = None
        self._on_unlink(self)

    async def __aenter__(self) -> AsyncFilespace:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.unlink()


async def attach(workspace: AsyncWorkspace, info: dict[str, Any], sync_mode: SyncMode, *,
                 transport: Transport, services: DaemonServices, read_only: bool,
                 on_unlink: Callable[[AsyncFilespace], None]) -> AsyncFilespace:
    """Link the filespace ``info`` describes: open its session, start its queue and heartbeat."""
    filespace = AsyncFilespace(workspace, info, sync_mode, transport=transport, services=services,
                               read_only=read_only, on_unlink=on_unlink)
    await filespace._start()
    return filespace
