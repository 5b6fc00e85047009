"""Signing block URLs for many readers at once: concurrent requests share one hub call.

Many handles opened at the same moment (``read_file`` of many small files, ``cat`` of a
list) each need the URL of their first block. Rather than one ``blocks/urls`` call
each, the requests that arrive while a call is in flight wait for the next call, which
signs all of them. It is only a shortcut: a failed call is not reported here, since
each download asks for its own URL again (and reports its own error).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

_batchers: weakref.WeakKeyDictionary[Any, UrlBatcher] = weakref.WeakKeyDictionary()


class UrlBatcher:
    """Coalesces ``prepare_get_urls`` calls on one block source."""

    def __init__(self, source: Any) -> None:
        self._source = weakref.ref(source)
        self._pending: dict[str, None] = {}
        self._next: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    async def prepare(self, hashes: list[str]) -> None:
        """Return once the URLs of ``hashes`` were asked for (with whoever else asked)."""
        if not hashes:
            return
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        self._pending.update(dict.fromkeys(hashes))
        waiter = self._next
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        await asyncio.shield(waiter)

    async def _run(self) -> None:
        try:
            await asyncio.sleep(0)  # the readers of this moment join the first call
            while self._next is not None:
                waiter, hashes = self._next, list(self._pending)
                self._next, self._pending = None, {}
                source = self._source()
                try:
                    if source is not None:
                        await source.prepare_get_urls(hashes)
                except Exception:  # each download asks again and reports its own error
                    pass
                finally:
                    waiter.set_result(None)
        finally:
            self._task = None
            if self._next is not None and not self._next.done():
                self._next.set_result(None)
                self._next, self._pending = None, {}


async def prepare_get_urls(source: Any, hashes: list[str]) -> None:
    """``source.prepare_get_urls(hashes)``, shared with the concurrent callers on ``source``."""
    batcher = _batchers.get(source)
    if batcher is None:
        batcher = _batchers[source] = UrlBatcher(source)
    await batcher.prepare(hashes)
