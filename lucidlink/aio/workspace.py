"""An authenticated workspace: its filespaces, and linking them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lucidlink.aio._util import AwaitableContext
from lucidlink.aio.filespace import AsyncFilespace, attach
from lucidlink.aio.link import DaemonServices
from lucidlink.exceptions import (
    ConfigurationError,
    FilespaceAlreadyLinkedError,
    FilespaceNotFoundError,
)
from lucidlink.types import FilespaceInfo, SyncMode

if TYPE_CHECKING:
    from lucidlink.aio.transport import Transport


class AsyncWorkspace:
    """The workspace a service-account token belongs to."""

    def __init__(self, services: DaemonServices, transport: Transport,
                 whoami: dict[str, Any]) -> None:
        self._services = services
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
        self._services.check_running()
        body = await self._transport.call("GET", "/v1/filespaces")
        return list(body["filespaces"])

    async def list_filespaces(self) -> list[FilespaceInfo]:
        """The filespaces this token may use."""
        return [FilespaceInfo(id=f["id"], name=f["name"], created=f["created"], block_size=f["block_size"])
                for f in await self._filespaces_json()]

    @property
    def linked_filespaces(self) -> list[AsyncFilespace]:
        """The filespaces this workspace has linked and not yet unlinked, by name (several at once)."""
        return sorted((f for f in self._filespaces if f.is_linked), key=lambda f: (f.name, f.id))

    def link_filespace(self, name: str | None = None, id: str | None = None, root_path: str = "/",
                       sync_mode: SyncMode = SyncMode.SYNC_ALL) -> AwaitableContext[AsyncFilespace]:
        """Link a filespace by name or ``id``: ``fs = await ws.link_filespace(name=...)`` or
        ``async with`` (LucidLink's parameters, in its order).

        Raises ``FilespaceError`` naming the filespaces that exist when ``name`` is not one.
        Linking by ``id`` a filespace this workspace already has linked returns that live
        filespace, the same object (``FilespaceAlreadyLinkedError`` if it was linked with
        another sync mode); leaving an ``async with`` on it unlinks it for every holder.
        With both, the filespace of that ``id`` must have that ``name``. ``root_path``
        (LucidLink's mount point) must be ``"/"``: a filespace is linked whole.
        """
        if root_path != "/":
            raise ConfigurationError(
                f"root_path={root_path!r} is not supported: a filespace is linked whole; "
                "pass root_path='/' (the default) and use paths inside it", field="root_path"
            )
        if id is not None:
            return AwaitableContext(self._link_id(id, sync_mode, name))
        if name is None:
            raise ConfigurationError("link_filespace() needs a filespace name= or id=")
        return AwaitableContext(self._link(name, sync_mode))

    async def _link_id(self, filespace_id: str, sync_mode: SyncMode, name: str | None) -> AsyncFilespace:
        live = next((f for f in self.linked_filespaces if f.id == filespace_id), None)
        if live is not None:
            if live.sync_mode != SyncMode(sync_mode):
                raise FilespaceAlreadyLinkedError(
                    f"filespace {live.name!r} ({filespace_id}) is already linked with {live.sync_mode.name}; "
                    "unlink it first to link it with another sync mode", filespace_id=filespace_id
                )
            return live
        found = await self._filespaces_json()
        info = next((f for f in found if f["id"] == filespace_id), None)
        if info is None or (name is not None and info["name"] != name):
            ids = ", ".join(sorted(f"{f['name']} ({f['id']})" for f in found)) or "none"
            raise FilespaceNotFoundError(
                f"no filespace with id {filespace_id!r}" + (f" named {name!r}" if name is not None else "")
                + f" in workspace {self.name}; filespaces: {ids}"
            )
        return await self._link(info["name"], sync_mode, info)

    async def _link(self, name: str, sync_mode: SyncMode, info: dict[str, Any] | None = None) -> AsyncFilespace:
        if info is None:
            found = await self._filespaces_json()
            info = next((f for f in found if f["name"] == name), None)
            if info is None:
                names = ", ".join(sorted(f["name"] for f in found)) or "none"
                raise FilespaceNotFoundError(
                    f"no filespace named {name!r} in workspace {self.name}; filespaces: {names}"
                )
        filespace = await attach(self, info, SyncMode(sync_mode), transport=self._transport,
                                 services=self._services, read_only=self._read_only,
                                 on_unlink=self._filespaces.discard)
        self._filespaces.add(filespace)
        return filespace

    async def stop(self) -> None:
        """Unlink every linked filespace (syncing each per its sync mode). Idempotent.

        Every filespace is unlinked even when one fails; the first failure is raised
        after all of them (LucidLink's SDK swallows them: ours says what was lost).
        """
        failure: BaseException | None = None
        for filespace in list(self._filespaces):
            try:
                await filespace.unlink()
            except Exception as exc:  # noqa: BLE001 - unlink the others, raise the first after
                failure = failure or exc
        if failure is not None:
            raise failure
