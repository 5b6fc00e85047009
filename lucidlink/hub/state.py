"""The hub's running state: its stores, signer, settings and change notifier."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from lucidlink.hub.blockstore.base import BlockStore
from lucidlink.hub.config import HubSettings
from lucidlink.hub.core import admin
from lucidlink.hub.core.principal import Principal, filespace_not_visible
from lucidlink.hub.digests import ChunkDigester
from lucidlink.hub.metrics import Metrics
from lucidlink.hub.secrets_box import SecretBox
from lucidlink.hub.store.base import MetadataStore


class ChangeNotifier:
    """Wakes long-polls (journal reads, lock waits) when something they wait for changes.

    ``notify`` wakes this process's waiters at once and hands the key to ``broadcast``,
    which a shared store (PostgreSQL: LISTEN/NOTIFY) sets so that other hub processes
    wake theirs; their keys arrive through :meth:`wake`. Waiters still re-read on a
    bounded period, so a lost notification only delays them.
    """

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self.broadcast: Callable[[str], None] | None = None

    def notify(self, key: str) -> None:
        """Wake every waiter of ``key`` (a filespace id, or its locks' channel), in every hub."""
        self.wake(key)
        if self.broadcast is not None:
            self.broadcast(key)

    def wake(self, key: str) -> None:
        """Wake this process's waiters of ``key`` only."""
        event = self._events.pop(key, None)
        if event is not None:
            event.set()

    async def wait(self, key: str, timeout: float) -> None:
        """Wait for the next change of ``key``, or ``timeout`` seconds."""
        event = self._events.setdefault(key, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass


class Hub:
    """What every handler needs, stored on the app under :data:`HUB_KEY`."""

    def __init__(self, settings: HubSettings, store: MetadataStore, blocks: BlockStore) -> None:
        self.settings = settings
        self.store = store
        self.blocks = blocks
        self.metrics = Metrics()
        self.changes = ChangeNotifier()
        # A store shared by several hubs relays changes between them (PostgreSQL).
        subscribe = getattr(store, "subscribe", None)
        if subscribe is not None:
            self.changes.broadcast = subscribe(self.changes.wake)
        self.closing = asyncio.Event()
        self.digests = ChunkDigester(self)
        """Chunk digests of live blocks that have none (started and stopped with the app)."""
        self._filespaces: dict[str, dict[str, Any]] = {}
        self.secret_box: SecretBox | None = None
        """Seals Connect secrets; set when the hub starts (its key may live in the store)."""

    async def filespace_row(self, filespace_id: str) -> dict[str, Any] | None:
        """The filespace ``filespace_id``, or ``None`` when there is none; no rights checked.

        Cached: a filespace's id, workspace and block size never change.
        """
        row = self._filespaces.get(filespace_id)
        if row is None:
            found = await self.store.read(admin.get_filespace, filespace_id)
            if found is None:
                return None
            row = dict(found)
            self._filespaces[filespace_id] = row
        return row

    async def filespace(self, principal: Principal, filespace_id: str) -> dict[str, Any]:
        """A filespace the principal may use (cached, see :meth:`filespace_row`)."""
        row = await self.filespace_row(filespace_id)
        if row is None:
            raise filespace_not_visible(filespace_id)
        if row["workspace_id"] != principal.workspace_id or not principal.may_use(filespace_id):
            raise filespace_not_visible(filespace_id)
        return row
