"""Client side of file locks: acquiring with a timeout, noticing a lost lease, releasing."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import TYPE_CHECKING

import attrs

from lucidlink.exceptions import LeaseExpiredError, LucidLinkError
from lucidlink.types import LockType

if TYPE_CHECKING:
    from lucidlink.aio.link import FilespaceLink

DEFAULT_LOCK_TIMEOUT = 60.0
"""Seconds ``open(..., lock_type=...)`` waits for a lock unless told otherwise (``None``: for ever)."""

_POLL = 20.0


@attrs.define
class HeldLock:
    """A granted lock: its id, its fencing token and when it was granted (monotonic time)."""

    link: FilespaceLink
    path: str
    mode: LockType
    lock_id: str
    token: int
    granted_at: float
    released: bool = False

    def lost(self) -> bool:
        """Whether the lease may have lapsed: no renewal for a whole lease, or the session died."""
        return self.link.lease.lost_since(self.granted_at)

    def check(self) -> None:
        """Raise :class:`LeaseExpiredError` when the lease is lost."""
        if self.lost():
            raise LeaseExpiredError(
                f"the {self.mode.value} lock on {self.path} was lost (its lease expired); changes made "
                "under it will be refused. Close the file and open it again to re-lock it",
                path=self.path,
            )

    async def release(self) -> None:
        """Give the lock back (idempotent; a lost lock has nothing to give back)."""
        if self.released:
            return
        self.released = True
        with contextlib.suppress(LucidLinkError):
            await self.link.call("DELETE", f"/locks/{self.lock_id}")


async def acquire(link: FilespaceLink, path: str, mode: LockType, *, must_exist: bool,
                  timeout: float | None) -> HeldLock:
    """Wait (in arrival order) for a lock; ``LockTimeoutError`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + max(0.0, timeout)
    # Chosen here, not by the hub: a request retried (on another hub, after a lost
    # answer) finds its first row instead of queueing a second one.
    lock_id = uuid.uuid4().hex
    try:
        while True:
            remaining = _POLL if deadline is None else max(0.0, deadline - loop.time())
            body = await link.call("POST", "/locks", json={
                "path": path, "mode": mode.value, "wait": min(remaining, _POLL), "lock_id": lock_id,
                "must_exist": must_exist,
            }, timeout=_POLL + 30, idempotent=True)
            lock_id = body["lock_id"]
            if body["state"] == "held":
                granted = time.monotonic()
                return HeldLock(link, path, mode, body["lock_id"], int(body["token"]), granted)
            if deadline is not None and loop.time() >= deadline:
                params = {"timeout": "1", "path": path}
                await link.call("DELETE", f"/locks/{lock_id}", params=params)
                raise AssertionError("the hub did not report the lock timeout")  # pragma: no cover
    except asyncio.CancelledError:
        with contextlib.suppress(LucidLinkError):
            await asyncio.shield(link.call("DELETE", f"/locks/{lock_id}"))
        raise
