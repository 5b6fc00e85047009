"""The hub's route table: every endpoint, composed from the route modules in one place.

The order is the OpenAPI document's; :func:`add_routes` registers the table on an app.
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


def add_routes(app: web.Application, routes: Iterable[Route] = ROUTES) -> None:
    """Register ``routes`` on ``app``, each named after its handler."""
    for r in routes:
        app.router.add_route(r.method, r.path, r.handler, name=r.handler.__name__)
