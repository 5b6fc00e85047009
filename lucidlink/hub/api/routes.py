"""The hub's route table: every endpoint, composed from the route modules in one place.

The order is the OpenAPI document's; :func:`add_routes` registers the table on an app,
the busiest paths first.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from lucidlink.hub.api import (
    admin,
    blocks,
    chunks,
    connect,
    files,
    filespaces,
    journal,
    locks,
    namespace,
    service,
    sessions,
)
from lucidlink.hub.api.route import Route

ROUTES: tuple[Route, ...] = (
    *service.ROUTES,
    *filespaces.ROUTES,
    *sessions.ROUTES,
    *namespace.ROUTES,
    *files.ROUTES,
    *blocks.ROUTES,
    *chunks.ROUTES,
    *journal.ROUTES,
    *admin.ROUTES,
    *connect.ROUTES,
    *locks.ROUTES,
)
"""Every endpoint of the hub."""


BUSIEST_FIRST = (
    "/v1/filespaces/{fs}/entry",
    "/v1/filespaces/{fs}/file",
    "/v1/filespaces/{fs}/commits",
    "/v1/filespaces/{fs}/list",
    "/v1/filespaces/{fs}/changes",
    "/v1/filespaces/{fs}/files",
    "/v1/filespaces/{fs}/blocks/urls",
    "/v1/filespaces/{fs}/blocks/chunks",
    "/v1/filespaces/{fs}/commit",
    "/v1/filespaces/{fs}/locks",
)
"""Paths registered before the rest, in this order. aiohttp finds a route among those that
share its static prefix (every ``/v1/filespaces/{fs}/...`` route) by trying their patterns
in registration order, about 3 µs each: ``commits`` was the 17th. No two patterns match
one path, so the order changes only the cost (``tests/hub/test_hub_routes.py``)."""


def add_routes(app: web.Application, routes: Iterable[Route] = ROUTES) -> None:
    """Register ``routes`` on ``app``, each named after its handler, :data:`BUSIEST_FIRST`
    first; the methods of one path stay together (one aiohttp resource)."""
    rank = {path: i for i, path in enumerate(BUSIEST_FIRST)}
    for r in sorted(routes, key=lambda r: rank.get(r.path, len(rank))):
        app.router.add_route(r.method, r.path, r.handler, name=r.handler.__name__)
