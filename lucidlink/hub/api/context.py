"""What a handler learns from its request: the hub, the caller, the filespace, the session.

Every token-authorised handler starts with :func:`principal_of`, :func:`filespace_of`
or (a handler that only reads its filespace) :func:`read_access`. The token is checked on
every request: in full against the store, or against the hub's cache of verified tokens
while the store's auth generation is unchanged, see :mod:`lucidlink.hub.core.principal`.
Changes go through :func:`write_as`, which ties the change to the caller's own session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from lucidlink.exceptions import AuthenticationError, FilespaceNotFoundError
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
from lucidlink.tokens import ParsedToken, parse_token

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


def bearer_of(request: web.Request) -> ParsedToken:
    """The request's bearer token, parsed (not yet checked); 401 when missing or malformed."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError(
            "missing bearer token: send 'Authorization: Bearer sa_live:<key-id>:<secret>'"
        )
    try:
        return parse_token(token)
    except ValueError as exc:
        raise AuthenticationError(str(exc)) from None


async def principal_of(request: web.Request) -> Principal:
    """Authenticate the request's bearer token (see the module docstring)."""
    parsed = bearer_of(request)
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


_STALE = object()
"""What :func:`_confirmed` answers when the auth generation moved since the token's check."""


def _confirmed(tx: Tx, generation: str, fn: Callable[..., T], filespace_id: str,
               *args: Any, **kwargs: Any) -> T | object:
    """``fn(tx, filespace_id, ...)`` if the auth generation is still ``generation`` in this
    snapshot (read first, so not even an error of ``fn`` reaches a revoked token), else
    :data:`_STALE`."""
    if auth_generation(tx) != generation:
        return _STALE
    return fn(tx, filespace_id, *args, **kwargs)


class ReadAccess:
    """A read-only handler's access to the filespace of its URL (see :func:`read_access`).

    ``fs`` is the filespace row; :meth:`read_short` and :meth:`read` run a read
    ``fn(tx, filespace_id, ...)`` in it. Nothing but reads: rights to change anything are
    :func:`filespace_of`'s.
    """

    def __init__(self, request: web.Request, fs: dict[str, Any], generation: str | None) -> None:
        self._request = request
        self.fs = fs
        self._generation = generation
        """The auth generation the cache vouched for the token under; ``None`` once checked."""

    async def read_short(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``store.read_short(fn, filespace_id, *args, **kwargs)``, the token confirmed."""
        return await self._run(hub_of(self._request).store.read_short, fn, args, kwargs)

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``store.read(fn, filespace_id, *args, **kwargs)``, the token confirmed."""
        return await self._run(hub_of(self._request).store.read, fn, args, kwargs)

    async def _run(self, read: Callable[..., Any], fn: Callable[..., T],
                   args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        if self._generation is not None:
            result = await read(_confirmed, self._generation, fn, self.fs["id"], *args, **kwargs)
            if result is not _STALE:
                return result  # type: ignore[no-any-return]
            # Revoked or changed since the cache verified it: check it in full (a revoked
            # token is refused here) and read again with the rights the store holds now.
            _, self.fs = await filespace_of(self._request)
            self._generation = None
        return await read(fn, self.fs["id"], *args, **kwargs)  # type: ignore[no-any-return]


async def read_access(request: web.Request) -> ReadAccess:
    """Authenticate and resolve ``{fs}`` for a handler that only reads its filespace.

    As :func:`filespace_of`, but a token the hub's cache has verified costs no read of
    its own: the auth generation is read in the snapshot of the handler's read, before
    its ``fn``, and anything but the generation the cache verified the token under
    checks the token in full and reads again. A revoked token is refused on its next
    request, as with :func:`filespace_of`; a stat or a listing is one read transaction
    instead of two (the hub's inline reads each take and drop a WAL read lock).
    """
    vouched = request.app[PRINCIPALS_KEY].peek(bearer_of(request))
    if vouched is not None:
        principal, generation = vouched
        try:
            fs = await hub_of(request).filespace(principal, request.match_info["fs"])
        except FilespaceNotFoundError:
            pass  # the full check below says what this token may see
        else:
            return ReadAccess(request, fs, generation)
    _, fs = await filespace_of(request)
    return ReadAccess(request, fs, None)


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
