"""Client side of byte-range locks: ``fs.create`` handles and the locks they hold.

The hub keeps the locks (:mod:`lucidlink.hub.core.range_locks`); a handle here is an
integer naming a path and the hub-side handle name its locks are held under. Handles
last as long as the filespace link: its session's end releases their locks.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import TYPE_CHECKING

import attrs

from lucidlink.exceptions import ConfigurationError

if TYPE_CHECKING:
    from lucidlink.aio.link import FilespaceLink

_POLL = 20.0
_numbers = itertools.count(1)


@attrs.frozen
class Handle:
    """A handle from ``fs.create``: its path and the name the hub knows it by."""

    path: str
    name: str


class RangeLocks:
    """The ``fs.create`` handles of one filespace link and their byte-range locks."""

    def __init__(self, link: FilespaceLink) -> None:
        self._link = link
        self._handles: dict[int, Handle] = {}

    def add(self, path: str) -> int:
        """A new handle on ``path``."""
        number = next(_numbers)
        self._handles[number] = Handle(path, f"h{number}")
        return number

    def handle(self, handle_id: int) -> Handle:
        """The handle ``handle_id``; ``ConfigurationError`` if this filespace has none such."""
        found = self._handles.get(handle_id) if isinstance(handle_id, int) else None
        if found is None:
            raise ConfigurationError(
                f"{handle_id!r} is not a handle of this filespace; get one from fs.create(path)"
            )
        return found

    async def lock(
        self, handle_id: int, offset: int, length: int, lock_type: str, blocking: bool
    ) -> bool:
        """Lock ``[offset, offset+length)`` (length 0: to the end); ``False`` if not granted."""
        handle = self.handle(handle_id)
        _check_range(offset, length)
        if lock_type not in ("shared", "exclusive"):
            raise ConfigurationError(
                f"lock_type {lock_type!r} is invalid for a byte range; use 'shared' or 'exclusive'"
            )
        if lock_type == "exclusive":
            self._link.require_writable(f"lock a byte range of {handle.path} exclusively")
        # One id for every attempt: a retried request (another hub, a lost answer)
        # answers the first grant instead of taking a second lock.
        body = {
            "path": handle.path,
            "handle": handle.name,
            "offset": offset,
            "length": length,
            "mode": lock_type,
            "request_id": uuid.uuid4().hex,
            "wait": _POLL if blocking else 0,
        }
        while True:
            result = await self._link.call(
                "POST", "/range-locks", json=body, idempotent=True, timeout=_POLL + 30
            )
            if result["granted"] or not blocking:
                return bool(result["granted"])
            await asyncio.sleep(0.05)  # the hub waited already; do not spin if it did not

    async def unlock(self, handle_id: int, offset: int | None, length: int | None) -> None:
        """Release the handle's locks within ``[offset, offset+length)``, or all of them."""
        handle = self.handle(handle_id)
        body: dict[str, object] = {"handle": handle.name}
        if offset is not None and length is not None:
            _check_range(offset, length)
            body.update(offset=offset, length=length)
        await self._link.call("POST", "/range-locks/release", json=body, idempotent=True)


def _check_range(offset: object, length: object) -> None:
    for name, value in (("offset", offset), ("length", length)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigurationError(f"{name} must be an integer >= 0, not {value!r}")
