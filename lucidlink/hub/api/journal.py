"""The change journal: entries after a position, long-polled."""

from __future__ import annotations

import asyncio

from aiohttp import web

from lucidlink.hub.api.context import filespace_of, hub_of
from lucidlink.hub.api.http import int_arg, ok, query
from lucidlink.hub.api.route import BOOL, INT, RouteTable, Setting, obj, ref
from lucidlink.hub.core import journal
from lucidlink.hub.store.base import MAX_INT64

ROUTES = RouteTable()
route = ROUTES.route


@route("GET", "/v1/filespaces/{fs}/changes",
       "Journal entries after 'since'; waits up to 'wait' seconds for one (long-poll).",
       params={"since": {"type": "integer", "minimum": 0, "maximum": MAX_INT64},
               "limit": {"type": "integer", "minimum": 1, "maximum": 10_000},
               "wait": {"type": "integer", "minimum": 0, "maximum": Setting("long_poll_max_seconds")}},
       response=obj({"changes": {"type": "array", "items": ref("Change")}, "seq": INT, "more": BOOL}))
async def changes(request: web.Request) -> web.StreamResponse:
    _, fs = await filespace_of(request)
    hub = hub_of(request)
    q = query(request)
    since = int_arg(q.get("since"), "since", default=0)
    limit = int_arg(q.get("limit"), "limit", default=1000, lo=1, hi=10_000)
    wait = float(int_arg(q.get("wait"), "wait", default=0, hi=int(hub.settings.long_poll_max_seconds)))
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        entries, seq = await hub.store.read(journal.since, fs["id"], since, limit)
        remaining = deadline - asyncio.get_running_loop().time()
        if entries or remaining <= 0 or hub.closing.is_set():
            return ok({"changes": entries, "seq": seq, "more": bool(entries) and entries[-1]["seq"] < seq})
        # Re-read at least every second so changes made by other hub processes show up.
        await hub.changes.wait(fs["id"], min(remaining, 1.0))
