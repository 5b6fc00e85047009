"""Administration: a garbage-collector pass over the workspace of the caller."""

from __future__ import annotations

from aiohttp import web

from lucidlink.exceptions import BadRequestError
from lucidlink.hub.api.context import body_of, hub_of, principal_of
from lucidlink.hub.api.http import ok
from lucidlink.hub.api.route import INT, RouteTable, Setting, obj
from lucidlink.hub.collector import collect_garbage
from lucidlink.hub.core import admin

MAX_GRACE_SECONDS = 100 * 365 * 86400
ROUTES = RouteTable()
route = ROUTES.route


@route("POST", "/v1/admin/gc",
       "Collect the unreferenced blocks of the caller's workspace now (admin). 'grace_seconds' (default: "
       "the hub's gc_grace_seconds) must be at least the hub's url_ttl_seconds.",
       request=obj({"grace_seconds": {"type": "number", "minimum": Setting("url_ttl_seconds"),
                                      "maximum": MAX_GRACE_SECONDS}}, ()),
       response=obj({"deleted_blocks": INT}), errors=(403,))
async def run_gc(request: web.Request) -> web.StreamResponse:
    p = await principal_of(request)
    p.require_admin("run the garbage collector")
    p.require_write("run the garbage collector")  # it deletes stored blocks
    body = await body_of(request)
    grace = body.get("grace_seconds")
    if "grace_seconds" in body and (
        not isinstance(grace, (int, float)) or isinstance(grace, bool)
        or not 0 <= grace <= MAX_GRACE_SECONDS  # also refuses NaN and infinities
    ):
        raise BadRequestError("'grace_seconds' must be a number of seconds from 0 to 100 years")

    hub = hub_of(request)
    # An admin acts within its own workspace: other tenants' blocks are not its to collect.
    rows = await hub.store.read(admin.list_filespaces, p.workspace_id)
    # collect_garbage refuses a grace shorter than url_ttl_seconds.
    deleted = await collect_garbage(hub, grace, [r["id"] for r in rows if p.may_use(r["id"])])
    return ok({"deleted_blocks": deleted})
