"""An authenticated workspace: its filespaces, and linking them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lucidlink.aio._util import AwaitableContext
from lucidlink.aio.filespace import AsyncFilespace
from lucidlink.exceptions import FilespaceNotFoundError
from lucidlink.types import FilespaceInfo, SyncMode

if TYPE_CHECKING:
    from lucidlink.aio.daemon import AsyncDaemon
    from lucidlink.aio.transport import Transport


class AsyncWorkspace:
    """The workspace a service-account token belongs to."""

    def __init__(self, daemon: AsyncDaemon, transport: Transport, whoami: dict[str, Any]) -> None:
        self._daemon = daemon
        self._transport = transport
        self._whoami = whoami
        self._read_only = bool(whoami.get("read_only"))
        self._filespaces: set[AsyncFilespace] = set()

    @property
    def name(self) -> str:
        """The workspace's name."""
        return str(self._whoami["workspace"]["name"])

    @property
    def id(self) -> str:
        """The workspace's id."""
        return str(self._whoami["workspace"]["id"])

    def __repr__(self) -> str:
        return f"<AsyncWorkspace {self.name}>"

    async def _filespaces_json(self) -> list[dict[str, Any]]:
        self._daemon._check_running()
        body = await self._transport.call("GET", "/v1/filespaces")
        return list(body["filespaces"])

    async def list_filespaces(self) -> list[FilespaceInfo]:
        """The filespaces this token may use."""
        return [FilespaceInfo(id=f["id"], name=f["name"], created=f["created"], block_size=f["block_size"])
                for f in await self._filespaces_json()]

    def link_filespace(self, name: str, sync_mode: SyncMode = SyncMode.SYNC_ALL) -> AwaitableContext[AsyncFilespace]:
        """Link a filespace by name: ``fs = await ws.link_filespace(name=...)`` or ``async with``.

        Raises ``FilespaceError`` naming the filespaces that exist when ``name`` is not one.
        """
        return AwaitableContext(self._link(name, sync_mode))

    async def _link(self, name: str, sync_mode: SyncMode) -> AsyncFilespace:
        found = await self._filespaces_json()
        info = next((f for f in found if f["name"] == name), None)
        if info is None:
            names = ", ".join(sorted(f["name"] for f in found)) or "none"
            raise FilespaceNotFoundError(
                f"no filespace named {name!r} in workspace {self.name}; filespaces: {names}"
            )
        filespace = AsyncFilespace(self, info, SyncMode(sync_mode))
        await filespace._link()
        self._filespaces.add(filespace)
        return filespace

    async def _close(self) -> None:
        for filespace in list(self._filespaces):
            await filespace.unlink()
        await self._transport.close()
