"""Daemon sessions: open one, renew its lease by heartbeats, close it."""

from __future__ import annotations

from aiohttp import web

from lucidlink.exceptions import BadRequestError
from lucidlink.hub.api.context import body_of, filespace_of, hub_of, principal_of
from lucidlink.hub.api.http import ok
from lucidlink.hub.api.route import BOOL, INT, NUM, STR, RouteTable, obj
from lucidlink.hub.core import sessions

ROUTES = RouteTable()
route = ROUTES.route


@route("POST", "/v1/filespaces/{fs}/sessions", "Open a daemon session (a lease renewed by heartbeats).",
       request=obj({"client": {"type": "string", "description": "a name for the daemon (cut to 200)"}}, ()),
       status=201, response=obj({"session_id": STR, "lease_seconds": NUM, "expires": INT}),
       links={201: {"heartbeat": {"operationId": "heartbeat",
                                  "parameters": {"sid": "$response.body#/session_id"}},
                    "close": {"operationId": "close_session",
                              "parameters": {"sid": "$response.body#/session_id"}}}})
async def open_session(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request)
    body = await body_of(request)
    client = body.get("client", "")
    if not isinstance(client, str):
        raise BadRequestError("'client' must be a string")
    hub = hub_of(request)
    result = await hub.store.write(sessions.open_session, fs["id"], p.key_id, client, hub.settings.lease_seconds)
    return ok(result, status=201)


@route("POST", "/v1/sessions/{sid}/heartbeat", "Renew a session's lease.", errors=(410,),
       response=obj({"session_id": STR, "filespace_id": STR, "expires": INT, "lease_seconds": NUM}))
async def heartbeat(request: web.Request) -> web.StreamResponse:
    p = await principal_of(request)
    hub = hub_of(request)
    result = await hub.store.write(sessions.heartbeat, request.match_info["sid"], p.key_id, hub.settings.lease_seconds)
    return ok(result)


@route("DELETE", "/v1/sessions/{sid}", "End a session (idempotent).", response=obj({"closed": BOOL}))
async def close_session(request: web.Request) -> web.StreamResponse:
    p = await principal_of(request)
    await hub_of(request).store.write(sessions.close_session, request.match_info["sid"], p.key_id)
    return ok({"closed": True})
