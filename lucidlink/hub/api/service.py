"""Service endpoints: liveness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from lucidlink.hub.api.app_keys import OPENAPI_KEY
from lucidlink.hub.api.context import hub_of
from lucidlink.hub.api.http import ok
from lucidlink.hub.api.route import STR, RouteTable, obj
from lucidlink.hub.eventloop import running_loop_name

ROUTES = RouteTable()
route = ROUTES.route


@route("GET", "/healthz", "Liveness and the engines in use.", auth="none",
       response=obj({"status": {"enum": ["ok"]}, "metadata": STR, "blocks": STR, "event_loop": STR}))
async def healthz(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    return ok({"status": "ok", "metadata": hub.store.engine, "blocks": hub.blocks.engine,
               "event_loop": running_loop_name()})


@route("GET", "/metrics", "Prometheus metrics.", auth="none", content_type="text/plain")
async def metrics(request: web.Request) -> web.StreamResponse:
    return web.Response(text=hub_of(request).metrics.render(), content_type="text/plain", charset="utf-8")


@route("GET", "/v1/openapi.json", "This document.", auth="none", response={"type": "object"})
async def openapi(request: web.Request) -> web.StreamResponse:
    return ok(request.app[OPENAPI_KEY])
