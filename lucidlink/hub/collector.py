"""The garbage collector's passes: mark in the store, delete from the block store, forget.

The rules (what is garbage, the grace period, why uploads in flight are safe) are in
:mod:`lucidlink.hub.core.gc`; this module runs a pass over a :class:`Hub`'s two stores,
on demand (``POST /v1/admin/gc``) and periodically (:func:`run_periodically`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from lucidlink.exceptions import BadRequestError
from lucidlink.hub.core import gc, idempotency
from lucidlink.hub.state import Hub

log = structlog.get_logger("lucidlink.hub")


async def collect_garbage(
    hub: Hub, grace_seconds: float | None = None, filespace_ids: Sequence[str] | None = None,
    *, wait: bool = True,
) -> int:
    """One GC pass (see :mod:`lucidlink.hub.core.gc`); returns how many blocks were deleted.

    ``grace_seconds`` defaults to the hub's ``gc_grace_seconds``; a shorter grace than
    the signed-URL lifetime is refused (``BadRequestError``): it could delete a block
    under a reader holding a URL to it. ``filespace_ids`` limits the pass to those
    filespaces (``POST /v1/admin/gc``: the caller's workspace); ``None`` covers all.

    On a store shared by several hubs (PostgreSQL) one pass runs at a time across them:
    the pass waits for another hub's to finish, or with ``wait=False`` is skipped
    (returning 0) while another hub collects.
    """
    grace = hub.settings.gc_grace_seconds if grace_seconds is None else grace_seconds
    if not grace >= hub.settings.url_ttl_seconds:
        raise BadRequestError(
            f"'grace_seconds' must be at least {hub.settings.url_ttl_seconds:g}, the lifetime of "
            "signed block URLs (url_ttl_seconds): a shorter grace could delete a block under a "
            "reader holding a URL to it"
        )
    scope = None if filespace_ids is None else list(filespace_ids)
    exclusive = getattr(hub.store, "exclusive", None)
    if exclusive is None:  # a store of one hub (SQLite): nobody to take turns with
        return await _collect(hub, grace, scope)
    async with exclusive("gc", wait=wait) as held:
        if not held:
            log.debug("hub.gc.skipped", reason="another hub is collecting")
            return 0
        return await _collect(hub, grace, scope)


async def _collect(hub: Hub, grace: float, scope: list[str] | None) -> int:
    pairs = await hub.store.write(gc.marked, scope)
    pairs += await hub.store.write(gc.mark, grace, filespace_ids=scope)
    by_fs: dict[str, list[str]] = {}
    stored = await hub.store.read(gc.in_block_store, pairs) if pairs else []
    for fs_id, digest in stored:
        by_fs.setdefault(fs_id, []).append(digest)
    for fs_id, digests in by_fs.items():
        await hub.blocks.delete(fs_id, digests)
    await hub.store.write(gc.forget, pairs)
    await hub.store.write(gc.expire_sessions, scope)
    if scope is None:
        await hub.store.write(idempotency.forget_older_than)
    if pairs:
        log.info("hub.gc", deleted_blocks=len(pairs),
                 filespaces="all" if scope is None else len(scope))
    return len(pairs)


async def run_periodically(hub: Hub) -> None:
    """A pass every ``gc_interval_seconds`` until cancelled; a failed pass is logged."""
    while True:
        await asyncio.sleep(hub.settings.gc_interval_seconds)
        try:
            await collect_garbage(hub, wait=False)
        except Exception:
            log.exception("hub.gc.failed")
