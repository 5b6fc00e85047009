"""The hub's HTTP API, ``/v1/...``: thin handlers over the transactional functions.

Each route is declared once in :data:`ROUTES` with what the OpenAPI document needs;
:func:`add_routes` registers them and :mod:`lucidlink.hub.openapi` describes them.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio.to_thread
import attrs
from aiohttp import web

from lucidlink.exceptions import (
    AuthenticationError,
    BadRequestError,
    HubUnavailableError,
    IntegrityError,
    PathNotFoundError,
    PayloadTooLargeError,
    SignedUrlError,
)
from lucidlink.hub import admin, files, idempotency, journal, namespace, sessions
from lucidlink.hub.blockstore.local import LocalBlockStore
from lucidlink.hub.http import ID_RE, bool_arg, int_arg, json_body, ok, path_arg, query, read_body
from lucidlink.hub.keys import HUB_KEY
from lucidlink.hub.principal import Principal
from lucidlink.hub.state import Hub
from lucidlink.tokens import parse_token

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")
SESSION_HEADER = "X-Lucid-Session"
MAX_URL_BATCH = 1024
MAX_LIST_LIMIT = 5000


@attrs.frozen
class Route:
    """One endpoint: method, path template, handler and its documentation."""

    method: str
    path: str
    handler: Handler
    summary: str
    auth: str = "token"  # token | signed | none
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    params: tuple[str, ...] = ()
    """Query parameters."""


ROUTES: list[Route] = []


def route(method: str, path: str, summary: str, **kw: Any) -> Callable[[Handler], Handler]:
    """Declare a handler as an endpoint."""

    def deco(fn: Handler) -> Handler:
        ROUTES.append(Route(method, path, fn, summary, **kw))
        return fn

    return deco


def add_routes(app: web.Application) -> None:
    """Register every declared route on ``app``."""
    for r in ROUTES:
        app.router.add_route(r.method, r.path, r.handler, name=r.handler.__name__)


# -- helpers ---------------------------------------------------------------------------


def hub_of(request: web.Request) -> Hub:
    """The :class:`Hub` serving this request."""
    return request.app[HUB_KEY]


async def principal_of(request: web.Request) -> Principal:
    """Authenticate the request's bearer token (checked against the store every time)."""
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
    return await hub_of(request).store.read(admin.authenticate, parsed.key_id, parsed.secret)


async def filespace_of(request: web.Request, *, write: str | None = None) -> tuple[Principal, dict[str, Any]]:
    """Authenticate, then resolve the ``{fs}`` of the URL within the token's reach."""
    principal = await principal_of(request)
    fs = await hub_of(request).filespace(principal, request.match_info["fs"])
    if write is not None:
        principal.require_write(write)
    return principal, fs


def session_id_of(request: web.Request) -> str | None:
    """The daemon session the client names (``X-Lucid-Session``), not yet checked.

    Use it through :func:`write_as` (or :func:`lucidlink.hub.sessions.live`), which
    refuse another token's session.
    """
    value = request.headers.get(SESSION_HEADER)
    return value[:64] if value else None


async def write_as(request: web.Request, principal: Principal, fn: Callable[..., T], filespace_id: str,
                   *args: Any, **kwargs: Any) -> T:
    """Run the change ``fn(tx, filespace_id, *args, session_id=..., **kwargs)`` in one write transaction.

    ``session_id`` is the request's session once :func:`lucidlink.hub.sessions.run_as`
    has checked it against the token: another token's is refused before anything
    changes, so a session id read from somewhere never lets a token act as its holder.
    """
    return await hub_of(request).store.write(
        sessions.run_as, principal.key_id, session_id_of(request), fn, filespace_id, *args, **kwargs
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


PATH_BODY = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
ENTRY = {"$ref": "#/components/schemas/Entry"}


# -- service ---------------------------------------------------------------------------


@route("GET", "/healthz", "Liveness and the engines in use.", auth="none")
async def healthz(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    return ok({"status": "ok", "metadata": hub.store.engine, "blocks": hub.blocks.engine})


@route("GET", "/metrics", "Prometheus metrics.", auth="none")
async def metrics(request: web.Request) -> web.StreamResponse:
    return web.Response(text=hub_of(request).metrics.render(), content_type="text/plain", charset="utf-8")


@route("GET", "/v1/openapi.json", "This document.", auth="none")
async def openapi(request: web.Request) -> web.StreamResponse:
    from lucidlink.hub.openapi import build_openapi

    return ok(build_openapi())


# -- identity and filespaces -----------------------------------------------------------


def _filespace_json(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "created": row["created"], "block_size": row["block_size"]}


@route("GET", "/v1/whoami", "The token's workspace and rights.")
async def whoami(request: web.Request) -> web.StreamResponse:
    p = await principal_of(request)
    return ok({
        "workspace": {"id": p.workspace_id, "name": p.workspace_name},
        "key_id": p.key_id,
        "read_only": p.read_only,
        "admin": p.admin,
        "filespaces": None if p.filespaces is None else sorted(p.filespaces),
    })


@route("GET", "/v1/filespaces", "Filespaces of the token's workspace that it may use.")
async def list_filespaces(request: web.Request) -> web.StreamResponse:
    p = await principal_of(request)
    rows = await hub_of(request).store.read(admin.list_filespaces, p.workspace_id)
    return ok({"filespaces": [_filespace_json(r) for r in rows if p.may_use(r["id"])]})


@route("GET", "/v1/filespaces/{fs}", "One filespace, with its journal position.")
async def get_filespace(request: web.Request) -> web.StreamResponse:
    _, fs = await filespace_of(request)
    seq = await hub_of(request).store.read(journal.current_seq, fs["id"])
    return ok({**_filespace_json(fs), "seq": seq})


# -- sessions --------------------------------------------------------------------------


@route("POST", "/v1/filespaces/{fs}/sessions", "Open a daemon session (a lease renewed by heartbeats).",
       request={"type": "object", "properties": {"client": {"type": "string"}}})
async def open_session(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request)
    body = await body_of(request)
    client = body.get("client", "")
    if not isinstance(client, str):
        raise BadRequestError("'client' must be a string")
    hub = hub_of(request)
    result = await hub.store.write(sessions.open_session, fs["id"], p.key_id, client, hub.settings.lease_seconds)
    return ok(result, status=201)


@route("POST", "/v1/sessions/{sid}/heartbeat", "Renew a session's lease.")
async def heartbeat(request: web.Request) -> web.StreamResponse:
    p = await principal_of(request)
    hub = hub_of(request)
    result = await hub.store.write(sessions.heartbeat, request.match_info["sid"], p.key_id, hub.settings.lease_seconds)
    return ok(result)


@route("DELETE", "/v1/sessions/{sid}", "End a session.")
async def close_session(request: web.Request) -> web.StreamResponse:
    p = await principal_of(request)
    await hub_of(request).store.write(sessions.close_session, request.match_info["sid"], p.key_id)
    return ok({"closed": True})


# -- namespace -------------------------------------------------------------------------


@route("GET", "/v1/filespaces/{fs}/entry", "Stat one path.", params=("path",), response=ENTRY)
async def stat(request: web.Request) -> web.StreamResponse:
    _, fs = await filespace_of(request)
    path = path_arg(query(request).get("path"))
    return ok(await hub_of(request).store.read(namespace.stat, fs["id"], path))


@route("GET", "/v1/filespaces/{fs}/list", "One page of a directory, by name (keyset cursor).",
       params=("path", "limit", "cursor"))
async def list_dir(request: web.Request) -> web.StreamResponse:
    _, fs = await filespace_of(request)
    q = query(request)
    path = path_arg(q.get("path", "/"))
    limit = int_arg(q.get("limit"), "limit", default=1000, lo=1, hi=MAX_LIST_LIMIT)
    entries, cursor = await hub_of(request).store.read(namespace.list_dir, fs["id"], path, limit, q.get("cursor"))
    return ok({"entries": entries, "cursor": cursor})


@route("POST", "/v1/filespaces/{fs}/mkdir", "Create a directory (parents included by default).",
       request={"type": "object", "properties": {"path": {"type": "string"}, "parents": {"type": "boolean"},
                                                 "exist_ok": {"type": "boolean"}}, "required": ["path"]},
       response=ENTRY)
async def mkdir(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request, write="create directories")
    body = await body_of(request)
    result = await write_as(
        request, p, namespace.mkdir, fs["id"], path_arg(body.get("path")),
        parents=bool_arg(body.get("parents"), "parents", True),
        exist_ok=bool_arg(body.get("exist_ok"), "exist_ok", True),
    )
    changed(request, fs["id"])
    return ok(result)


@route("POST", "/v1/filespaces/{fs}/delete", "Delete a file or a directory (recursive in one call).",
       request={"type": "object", "properties": {"path": {"type": "string"}, "recursive": {"type": "boolean"},
                                                 "type": {"enum": ["file", "dir", None]}}, "required": ["path"]})
async def delete(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request, write="delete")
    body = await body_of(request)
    expect = body.get("type")
    if expect not in (None, "file", "dir"):
        raise BadRequestError("'type' must be 'file', 'dir' or null")
    result = await write_as(
        request, p, namespace.delete, fs["id"], path_arg(body.get("path")), expect=expect,
        recursive=bool_arg(body.get("recursive"), "recursive"),
    )
    changed(request, fs["id"])
    return ok(result)


@route("POST", "/v1/filespaces/{fs}/move", "Rename/move; POSIX overwrite rules when 'overwrite'.",
       request={"type": "object", "properties": {"src": {"type": "string"}, "dst": {"type": "string"},
                                                 "overwrite": {"type": "boolean"}}, "required": ["src", "dst"]},
       response=ENTRY)
async def move(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request, write="move")
    body = await body_of(request)
    result = await write_as(
        request, p, namespace.move, fs["id"], path_arg(body.get("src"), "src"), path_arg(body.get("dst"), "dst"),
        overwrite=bool_arg(body.get("overwrite"), "overwrite"),
    )
    changed(request, fs["id"])
    return ok(result)


@route("POST", "/v1/filespaces/{fs}/copy", "Server-side copy of a file (shares its blocks).",
       request={"type": "object", "properties": {"src": {"type": "string"}, "dst": {"type": "string"},
                                                 "overwrite": {"type": "boolean"}}, "required": ["src", "dst"]})
async def copy(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request, write="copy")
    body = await body_of(request)
    result = await write_as(
        request, p, files.copy, fs["id"], path_arg(body.get("src"), "src"), path_arg(body.get("dst"), "dst"),
        overwrite=bool_arg(body.get("overwrite"), "overwrite", True),
    )
    changed(request, fs["id"])
    return ok(result)


@route("POST", "/v1/filespaces/{fs}/truncate", "Shrink or extend a file without moving bytes.",
       request={"type": "object", "properties": {"path": {"type": "string"}, "size": {"type": "integer"}},
                "required": ["path", "size"]})
async def truncate(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request, write="truncate")
    body = await body_of(request)
    size = body.get("size")
    if not isinstance(size, int) or isinstance(size, bool):
        raise BadRequestError(f"'size' must be an integer, not {size!r}")
    size = int_arg(size, "size")
    result = await write_as(request, p, files.truncate, fs["id"], path_arg(body.get("path")), size)
    changed(request, fs["id"])
    return ok(result)


# -- file contents ---------------------------------------------------------------------


@route("GET", "/v1/filespaces/{fs}/file", "A file's current version: entry and block list.", params=("path",))
async def read_file(request: web.Request) -> web.StreamResponse:
    _, fs = await filespace_of(request)
    path = path_arg(query(request).get("path"))
    return ok(await hub_of(request).store.read(files.read_file, fs["id"], path))


def _commit_many(tx: Any, filespace_id: str, changes: list[Any], session_id: str | None) -> list[dict[str, Any]]:
    results = []
    for change in changes:
        if not isinstance(change, dict):
            raise BadRequestError("each commit must be a JSON object")
        change = {**change, "path": path_arg(change.get("path"))}
        change_id = idempotency.change_id_of(change)
        done = idempotency.applied(tx, filespace_id, change_id) if change_id else None
        if done is None:
            done = files.commit(tx, filespace_id, change, session_id)
            if change_id:
                idempotency.remember(tx, filespace_id, change_id, done)
        results.append(done)
    return results


@route("POST", "/v1/filespaces/{fs}/commit", "Atomically apply block changes to one file; bumps its version.",
       request={"$ref": "#/components/schemas/Commit"})
async def commit(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request, write="write files")
    body = await body_of(request)
    results = await write_as(request, p, _commit_many, fs["id"], [body])
    changed(request, fs["id"])
    return ok(results[0])


@route("POST", "/v1/filespaces/{fs}/commits",
       "Several commits in one call and one transaction: all land or none do.",
       request={"type": "object", "properties": {"commits": {"type": "array", "items": {"$ref": "#/components/schemas/Commit"}}}})
async def commit_batch(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request, write="write files")
    body = await body_of(request)
    changes = body.get("commits")
    if not isinstance(changes, list) or not changes:
        raise BadRequestError("'commits' must be a non-empty list")
    results = await write_as(request, p, _commit_many, fs["id"], changes)
    changed(request, fs["id"])
    return ok({"results": results})


@route("POST", "/v1/filespaces/{fs}/blocks/urls",
       "Signed, short-lived URLs for blocks: op 'get' to read, 'put' to upload (known blocks need none).",
       request={"type": "object", "properties": {"op": {"enum": ["get", "put"]},
                                                 "hashes": {"type": "array", "items": {"type": "string"}}}})
async def block_urls(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request)
    body = await body_of(request)
    op = body.get("op")
    if op not in ("get", "put"):
        raise BadRequestError("'op' must be 'get' or 'put'")
    if op == "put":
        p.require_write("upload blocks")
    hub = hub_of(request)
    hashes = body.get("hashes")
    if not isinstance(hashes, list) or len(hashes) > MAX_URL_BATCH:
        raise BadRequestError(f"'hashes' must be a list of at most {MAX_URL_BATCH} SHA-256 hex digests")
    for digest in hashes:
        if not isinstance(digest, str) or not files.HASH_RE.fullmatch(digest):
            raise BadRequestError(f"{digest!r} is not a SHA-256 hex digest")
    present: list[str] = []
    if op == "put":
        # A write: answering "present" refreshes the blocks' last_seen, so the GC keeps
        # them for the commit the client is about to make without uploading them.
        known = await hub.store.write(files.known_blocks, fs["id"], hashes)
        present = sorted(known)
        hashes = [h for h in hashes if h not in known]
    base = base_url_of(request)
    ttl = hub.settings.url_ttl_seconds
    urls = {h: hub.blocks.signed_url(base, fs["id"], h, op, ttl) for h in hashes}
    return ok({"urls": urls, "present": present, "expires": int(time.time() + ttl), "block_size": fs["block_size"]})


def _local_store(request: web.Request) -> LocalBlockStore:
    blocks = hub_of(request).blocks
    if not isinstance(blocks, LocalBlockStore):
        raise PathNotFoundError("this hub keeps blocks in an object store; use the URLs it signs")
    return blocks


def _check_block_url(request: web.Request, op: str) -> tuple[str, str]:
    fs_id, digest = request.match_info["fs"], request.match_info["hash"]
    if not files.HASH_RE.fullmatch(digest):
        raise BadRequestError(f"{digest[:80]!r} is not a SHA-256 hex digest")
    if not ID_RE.fullmatch(fs_id):
        raise SignedUrlError(f"block URL for {digest[:12]} names no filespace this hub signs for")
    q = query(request)
    if q.get("op") != op:
        raise SignedUrlError(f"this block URL was signed for {q.get('op', '')[:20]!r}, not {op!r}")
    _local_store(request).signer.check(op, fs_id, digest, q.get("exp"), q.get("sig"))
    return fs_id, digest


@route("GET", "/v1/blocks/{fs}/{hash}", "Read a block (Range supported), on a signed URL.", auth="signed",
       params=("op", "exp", "sig"))
async def get_block(request: web.Request) -> web.StreamResponse:
    fs_id, digest = _check_block_url(request, "get")
    path = _local_store(request).path_of(fs_id, digest)
    if not await anyio.to_thread.run_sync(path.exists):
        raise PathNotFoundError(f"block {digest[:12]}... is not in the block store")
    return web.FileResponse(path, headers={"Cache-Control": "private, max-age=31536000, immutable",
                                           "Content-Type": "application/octet-stream"})


@route("PUT", "/v1/blocks/{fs}/{hash}", "Upload a block on a signed URL; its bytes must hash to its name.",
       auth="signed", params=("op", "exp", "sig"))
async def put_block(request: web.Request) -> web.StreamResponse:
    fs_id, digest = _check_block_url(request, "put")
    hub = hub_of(request)
    store = _local_store(request)
    fs = hub._filespaces.get(fs_id) or await hub.store.read(admin.get_filespace, fs_id)
    if fs is None:
        raise PathNotFoundError(f"filespace {fs_id} does not exist")
    limit = int(fs["block_size"])
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError(f"a block is at most {limit} bytes; this one is {request.content_length}")
    data = await read_body(request, limit)
    if len(data) > limit:
        raise PayloadTooLargeError(f"a block is at most {limit} bytes")
    if not data:
        raise BadRequestError("a block cannot be empty")
    actual = await anyio.to_thread.run_sync(lambda: hashlib.sha256(data).hexdigest())
    if actual != digest:
        raise IntegrityError(
            f"block bytes hash to {actual[:12]}..., not {digest[:12]}...; nothing was stored. "
            "Upload the block's exact bytes again",
            expected=digest, actual=actual,
        )
    # The block becomes known only once its bytes are durable (see lucidlink/hub/gc.py).
    await hub.store.write(files.begin_upload, fs_id, digest, len(data))
    try:
        await store.write_verified(fs_id, digest, data)
    except OSError as exc:
        await hub.store.write(files.abort_upload, fs_id, digest)
        raise HubUnavailableError(
            f"the hub could not store block {digest[:12]}... ({exc.strerror or exc}); nothing "
            "was stored. Retry the upload later; if this persists, the hub's disk is full or "
            "failing"
        ) from exc
    await hub.store.write(files.finish_upload, fs_id, digest)
    hub.metrics.block_bytes["in"] += len(data)
    return ok({"hash": digest, "length": len(data)}, status=201)


# -- journal and statistics ------------------------------------------------------------


@route("GET", "/v1/filespaces/{fs}/changes",
       "Journal entries after 'since'; waits up to 'wait' seconds for one (long-poll).",
       params=("since", "limit", "wait"))
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


@route("GET", "/v1/filespaces/{fs}/statistics", "File, directory and byte counts of the filespace.")
async def statistics(request: web.Request) -> web.StreamResponse:
    _, fs = await filespace_of(request)
    return ok(await hub_of(request).store.read(files.statistics, fs["id"]))


@route("POST", "/v1/admin/gc",
       "Collect unreferenced blocks now (admin). 'grace_seconds' (default: the hub's "
       "gc_grace_seconds) must be at least the hub's url_ttl_seconds.",
       request={"type": "object", "properties": {"grace_seconds": {"type": "number"}}})
async def run_gc(request: web.Request) -> web.StreamResponse:
    p = await principal_of(request)
    p.require_admin("run the garbage collector")
    body = await body_of(request)
    grace = body.get("grace_seconds")
    if grace is not None and (
        not isinstance(grace, (int, float)) or isinstance(grace, bool)
        or not 0 <= grace <= 100 * 365 * 86400  # also refuses NaN and infinities
    ):
        raise BadRequestError("'grace_seconds' must be a number of seconds from 0 to 100 years")
    from lucidlink.hub.app import collect_garbage  # refuses a grace shorter than url_ttl_seconds

    hub = hub_of(request)
    # An admin acts within its own workspace: other tenants' blocks are not its to collect.
    rows = await hub.store.read(admin.list_filespaces, p.workspace_id)
    deleted = await collect_garbage(hub, grace, [r["id"] for r in rows if p.may_use(r["id"])])
    return ok({"deleted_blocks": deleted})



# Route modules that declare into ROUTES (imported last: they build on the helpers above).
from lucidlink.hub import routes_connect  # noqa: E402,F401
from lucidlink.hub import routes_locks  # noqa: E402,F401
