"""How an endpoint is declared: :class:`Route`, the :class:`RouteTable` a route module
fills, and the schema building blocks its OpenAPI metadata is written with.

The schemas state what the handler enforces (see :mod:`lucidlink.hub.api.openapi`);
shared ones are named with :func:`ref`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import attrs
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.frozen
class Route:
    """One endpoint: method, path template, handler and what its OpenAPI operation says."""

    method: str
    path: str
    handler: Handler
    summary: str
    auth: str = "token"  # token | signed | none
    request: dict[str, Any] | None = None
    request_content_type: str = "application/json"
    response: dict[str, Any] | None = None
    """Schema of the success body (of every success status without one in ``responses``)."""
    params: tuple[str, ...] | dict[str, Any] = ()
    """Query parameters: names (strings), or name -> schema."""
    required_params: tuple[str, ...] = ()
    path_params: dict[str, Any] = attrs.field(factory=dict)
    """Schemas of path parameters other than the shared ones (``openapi.PATH_PARAMS``)."""
    headers: dict[str, Any] = attrs.field(factory=dict)
    """Required request headers, name -> schema."""
    status: int = 200
    statuses: tuple[int, ...] = ()
    """Success statuses when there are several (default: ``(status,)``)."""
    responses: dict[int, Any] = attrs.field(factory=dict)
    """Success body schemas by status, where they differ from ``response``."""
    errors: tuple[int, ...] = ()
    """Error statuses beyond the ones every route of its kind may answer (see ``openapi``)."""
    content_type: str = "application/json"
    links: dict[int, Any] = attrs.field(factory=dict)
    """OpenAPI links by status (how a response's values feed other operations)."""


class RouteTable:
    """The routes of one module, in declaration order (like aiohttp's ``RouteTableDef``).

    Declaring a route only adds it to this table; the app serves the tables that
    :mod:`lucidlink.hub.api.routes` composes.
    """

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def route(self, method: str, path: str, summary: str, **kw: Any) -> Callable[[Handler], Handler]:
        """Declare a handler as an endpoint."""

        def deco(fn: Handler) -> Handler:
            self._routes.append(Route(method, path, fn, summary, **kw))
            return fn

        return deco

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)

    def __len__(self) -> int:
        return len(self._routes)


@attrs.frozen
class Setting:
    """A bound in a schema that is a hub setting (``HubSettings.<name>``), filled in when served."""

    name: str


def ref(name: str) -> dict[str, Any]:
    """A reference to a shared schema of the document."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Any], required: tuple[str, ...] | None = None) -> dict[str, Any]:
    """An object schema; every property is required unless ``required`` says which."""
    out: dict[str, Any] = {"type": "object", "properties": properties}
    names = tuple(properties) if required is None else required
    if names:
        out["required"] = list(names)
    return out


def signed_params(op: str) -> dict[str, Any]:
    """The query of a signed block URL (see :mod:`lucidlink.hub.signing`)."""
    return {"op": {"enum": [op]}, "exp": {"type": "string", "pattern": "^[0-9]{1,19}$"},
            "sig": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}


STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
NUM: dict[str, Any] = {"type": "number"}
BOOL: dict[str, Any] = {"type": "boolean"}
PATH = ref("Path")
NON_ROOT = ref("NonRootPath")
NAME: dict[str, Any] = {"type": "string", "pattern": "^[^/\\x00]{0,255}$", "description": "one name (no '/')"}
ENTRY = ref("Entry")
