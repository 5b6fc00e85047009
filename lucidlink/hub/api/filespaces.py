"""Identity and filespaces: who the token is and which filespaces it may use."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from lucidlink.hub.api.context import filespace_of, hub_of, principal_of
from lucidlink.hub.api.http import ok
from lucidlink.hub.api.route import BOOL, STR, RouteTable, obj, ref
from lucidlink.hub.core import admin, journal

ROUTES = RouteTable()
route = ROUTES.route


def _filespace_json(row: Any, request: web.Request) -> dict[str, Any]:
    settings = hub_of(request).settings
    return {"id": row["id"], "name": row["name"], "created": row["created"], "block_size": row["block_size"],
            "inline_block_max": settings.inline_block_max, "max_request_bytes": settings.max_json_bytes}


@route("GET", "/v1/whoami", "The token's workspace and rights.", response=obj({
    "workspace": obj({"id": STR, "name": STR}), "key_id": STR, "read_only": BOOL, "admin": BOOL,
    "filespaces": {"anyOf": [{"type": "array", "items": STR}, {"type": "null"}]}}))
async def whoami(request: web.Request) -> web.StreamResponse:
    p = await principal_of(request)
    return ok({
        "workspace": {"id": p.workspace_id, "name": p.workspace_name},
        "key_id": p.key_id,
        "read_only": p.read_only,
        "admin": p.admin,
        "filespaces": None if p.filespaces is None else sorted(p.filespaces),
    })


@route("GET", "/v1/filespaces", "Filespaces of the token's workspace that it may use.",
       response=obj({"filespaces": {"type": "array", "items": ref("Filespace")}}))
async def list_filespaces(request: web.Request) -> web.StreamResponse:
    p = await principal_of(request)
    rows = await hub_of(request).store.read(admin.list_filespaces, p.workspace_id)
    return ok({"filespaces": [_filespace_json(r, request) for r in rows if p.may_use(r["id"])]})


@route("GET", "/v1/filespaces/{fs}", "One filespace, with its journal position.", response=ref("Filespace"))
async def get_filespace(request: web.Request) -> web.StreamResponse:
    _, fs = await filespace_of(request)
    seq = await hub_of(request).store.read(journal.current_seq, fs["id"])
    return ok({**_filespace_json(fs, request), "seq": seq})
