"""Files' read answers (entry, block list, small blocks' bytes): from the metadata cache,
or from the hub with the next files of the directory prefetched.

A miss asks ``GET .../file?path=P&prefetch=64``: the hub answers P and up to 64 regular
files that follow it in its directory, small blocks inline, and all of them enter the
cache (:mod:`lucidlink.aio.metacache`), so a loop through a directory makes about one
call per 64 files. Concurrent misses in one directory share one request; a reader that
reaches the middle of a prefetched run starts the next run in the background. While
the journal is not fresh the cache serves nothing, so prefetching would be wasted: a
miss then asks for its own file only, as without a cache.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from lucidlink.aio.metacache import FileAnswer, answer_from_json
from lucidlink.aio.singleflight import SingleFlight
from lucidlink.exceptions import LucidLinkError, error_from_envelope
from lucidlink.paths import parent_and_name

if TYPE_CHECKING:
    from lucidlink.aio.link import FilespaceLink

PREFETCH = 64
"""Files a miss asks the hub for after the one it needs (the hub caps it at 256)."""
BATCH = 1000
"""Paths per ``POST .../files``."""
_BATCHES_IN_FLIGHT = 4
_BATCH_MIN = 64
_NEXT_MAX = 1024
"""Runs waiting for their reader (a reader that stopped leaves its entry behind)."""
_Result = tuple[str, FileAnswer | None, LucidLinkError | None]


class FileInfos:
    """The read answers of one link's files (see the module docstring)."""

    def __init__(self, link: FilespaceLink) -> None:
        self._link = link
        self._cache = link.metacache
        self._flights: SingleFlight[str, _Result] = SingleFlight()  # by directory
        self._next: dict[str, str] = {}  # a path whose read starts the run after ``value``
        self._tasks: set[asyncio.Task[Any]] = set()

    def cached(self, path: str) -> FileAnswer | None:
        """The fresh cached answer of ``path``, or ``None`` (and the next run, when due)."""
        answer = self._cache.answer(path)
        if answer is not None and self._next:
            start = self._next.pop(path, None)
            if start is not None:
                task = asyncio.get_running_loop().create_task(self._ahead(start))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return answer

    async def get(self, path: str) -> FileAnswer:
        """The answer of the file ``path``: cached, joined to a request in flight for its
        directory, or asked (with the next files prefetched); raises what the hub says."""
        answer = self.cached(path)
        if answer is not None:
            return answer
        if not self._cache.fresh():
            return await self._fetch(path, 0)
        directory = parent_and_name(path)[0]
        for _ in range(2):
            leader, answer, error = await self._flights.run(directory, lambda: self._lead(path))
            if leader == path:
                if error is not None:
                    raise error
                assert answer is not None
                return answer
            answer = self.cached(path)
            if answer is not None:
                return answer
        return await self._fetch(path, PREFETCH)

    async def _lead(self, path: str) -> _Result:
        try:
            return path, await self._fetch(path, PREFETCH), None
        except LucidLinkError as exc:
            return path, None, exc

    async def _ahead(self, start: str) -> None:
        try:
            await self._flights.run(parent_and_name(start)[0], lambda: self._lead(start))
        except Exception:  # noqa: BLE001 - best effort: a reader asks for itself
            pass

    async def _fetch(self, path: str, prefetch: int) -> FileAnswer:
        ticket = self._cache.ticket()
        params = {"path": path}
        if prefetch:
            params["prefetch"] = str(prefetch)
        body = await self._link.call("GET", "/file", params=params)
        answer = answer_from_json(body)
        self._cache.put_answer(ticket, answer)
        prefetched = body.get("prefetched") or []
        for item in prefetched:
            self._cache.put_answer(ticket, answer_from_json(item))
        if prefetch and len(prefetched) >= prefetch // 2:
            # Most likely more follow: when the reader takes the first file of this run,
            # the next run is asked for, so the hub works while the reader reads.
            if len(self._next) >= _NEXT_MAX:
                self._next.clear()
            self._next[prefetched[0]["entry"]["path"]] = prefetched[-1]["entry"]["path"]
        return answer

    async def many(self, paths: list[str]) -> list[FileAnswer | LucidLinkError]:
        """The answers of many files, in order: cached, else ``POST .../files`` (up to
        1,000 paths a call); a path's failure is its error, in its place."""
        out: list[FileAnswer | LucidLinkError | None] = [self.cached(p) for p in paths]
        todo = [i for i, a in enumerate(out) if a is None]
        # Several smaller requests at once: the hub prepares one while this client
        # decodes another (one 1,000-file answer would leave each idle in turn).
        size = max(_BATCH_MIN, min(BATCH, -(-len(todo) // _BATCHES_IN_FLIGHT)))
        limit = asyncio.Semaphore(_BATCHES_IN_FLIGHT)

        async def ask(chunk: list[int]) -> None:
            async with limit:
                ticket = self._cache.ticket()
                asked = {"paths": [paths[i] for i in chunk]}
                body = await self._link.call("POST", "/files", json=asked, idempotent=True)
            for i, item in zip(chunk, body["files"], strict=True):
                if item.get("error") is not None:
                    out[i] = error_from_envelope(409, {"error": item["error"]})
                else:
                    answer = answer_from_json(item["file"])
                    self._cache.put_answer(ticket, answer)
                    out[i] = answer

        await asyncio.gather(*(ask(todo[start:start + size])
                               for start in range(0, len(todo), size)))
        return [a for a in out if a is not None]

    async def close(self) -> None:
        """Stop background prefetches."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
