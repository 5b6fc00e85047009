"""What a handler learns from its request: the hub, the caller, the filespace, the session.

Every token-authorised handler starts with :func:`principal_of` or :func:`filespace_of`
(the token is checked on every request: in full against the store, or against the hub's
cache of verified tokens while the store's auth generation is unchanged, see
:mod:`lucidlink.hub.core.principal`) and makes its changes through :func:`write_as`,
which ties the change to the caller's own session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from lucidlink.exceptions import AuthenticationError
from lucidlink.hub.api.app_keys import HUB_KEY
from lucidlink.hub.api.http import json_body
from lucidlink.hub.core import admin, sessions
from lucidlink.hub.core.principal import (
    AUTH_GENERATION_KEY,
    Principal,
    PrincipalCache,
    auth_generation,
)
from lucidlink.hub.state import Hub
from lucidlink.hub.store.base import Tx
from lucidlink.tokens import parse_token

T = TypeVar("T")
SESSION_HEADER = "X-Lucid-Session"
PRINCIPALS_KEY = web.AppKey("principals", PrincipalCache)
"""The hub's cache of verified tokens (set by the app factory)."""


def hub_of(request: web.Request) -> Hub:
    """The :class:`Hub` serving this request."""
    return request.app[HUB_KEY]


def _verify(tx: Tx, key_id: str, secret: str) -> tuple[Principal, str]:
    """A full check of a token and the auth generation it was made under (one snapshot)."""
    return admin.authenticate(tx, key_id, secret), auth_generation(tx)


async def principal_of(request: web.Request) -> Principal:
    """Authenticate the request's bearer token (see the module docstring)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError(
            "missing bearer token: send 'Authorization: Bearer sa_live:<key-id>:<secret>'"
        )
    try:
        parsed = parse_token(token)
    except ValueError as exc:
        raise AuthenticationError(str(exc)) from None
    store = hub_of(request).store
    cache = request.app[PRINCIPALS_KEY]
    generation = await store.meta_value(AUTH_GENERATION_KEY) or ""
    cached = cache.get(parsed.key_id, parsed.secret, generation)
    if cached is not None:
        return cached
    principal, generation = await store.read_short(_verify, parsed.key_id, parsed.secret)
    cache.put(parsed.secret, principal, generation)
    return principal


async def filespace_of(
    request: web.Request, *, write: str | None = None
) -> tuple[Principal, dict[str, Any]]:
    """Authenticate, then resolve the ``{fs}`` of the URL within the token's reach."""
    principal = await principal_of(request)
    fs = await hub_of(request).filespace(principal, request.match_info["fs"])
    if write is not None:
        principal.require_write(write)
    return principal, fs


def session_id_of(request: web.Request) -> str | None:
    """The daemon session the client names (``X-Lucid-Session``), not yet checked.

    Use it through :func:`write_as` (or :func:`lucidlink.hub.core.sessions.live`), which
    refuse another token's session.
    """
    value = request.headers.get(SESSION_HEADER)
    return value[:64] if value else None


async def write_as(request: web.Request, principal: Principal, fn: Callable[..., T],
                   filespace_id: str, *args: Any, **kwargs: Any) -> T:
    """Run the change ``fn(tx, filespace_id, *args, session_id=..., **kwargs)`` in one write
    transaction.

    ``session_id`` is the request's session once :func:`lucidlink.hub.core.sessions.run_as`
    has checked it against the token: another token's is refused before anything
    changes, so a session id read from somewhere never lets a token act as its holder.
    """
    return await hub_of(request).store.write(
        sessions.run_as, principal.key_id, session_id_of(request), fn, filespace_id, *args,
        **kwargs,
    )


def base_url_of(request: web.Request) -> str:
    """The base URL for signed block URLs."""
    configured = hub_of(request).settings.public_url
    return configured.rstrip("/") if configured else str(request.url.origin())


async def body_of(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, within the hub's size limit."""
    return await json_body(request, hub_of(request).settings.max_json_bytes)


def changed(request: web.Request, filespace_id: str) -> None:
    """Wake long-polls of the filespace after a write."""
    hub_of(request).changes.notify(filespace_id)
