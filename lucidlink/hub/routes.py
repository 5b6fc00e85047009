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
from lucidlink.hub.http import (
    ID_RE,
    MAX_INT64,
    bool_field,
    int_arg,
    json_body,
    ok,
    path_arg,
    query,
    read_body,
)
from lucidlink.hub.keys import HUB_KEY
from lucidlink.hub.principal import Principal
from lucidlink.hub.state import Hub
from lucidlink.paths import MAX_NAME_BYTES
from lucidlink.tokens import parse_token

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")
SESSION_HEADER = "X-Lucid-Session"
MAX_URL_BATCH = 1024
MAX_LIST_LIMIT = 5000


@attrs.frozen
class Route:
    """One endpoint: method, path template, handler and what its OpenAPI operation says.

    The schemas state what the handler enforces (see :mod:`lucidlink.hub.openapi`).
    """

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


# -- OpenAPI metadata (schemas of lucidlink.hub.openapi.SCHEMAS are named with ref()) ----------


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
MAX_GRACE_SECONDS = 100 * 365 * 86400


# -- service ---------------------------------------------------------------------------


@route("GET", "/healthz", "Liveness and the engines in use.", auth="none",
       response=obj({"status": {"enum": ["ok"]}, "metadata": STR, "blocks": STR}))
async def healthz(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    return ok({"status": "ok", "metadata": hub.store.engine, "blocks": hub.blocks.engine})


@route("GET", "/metrics", "Prometheus metrics.", auth="none", content_type="text/plain")
async def metrics(request: web.Request) -> web.StreamResponse:
    return web.Response(text=hub_of(request).metrics.render(), content_type="text/plain", charset="utf-8")


@route("GET", "/v1/openapi.json", "This document.", auth="none", response={"type": "object"})
async def openapi(request: web.Request) -> web.StreamResponse:
    from lucidlink.hub.openapi import build_openapi

    return ok(build_openapi(hub_of(request).settings))


# -- identity and filespaces -----------------------------------------------------------


def _filespace_json(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "created": row["created"], "block_size": row["block_size"]}


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
    return ok({"filespaces": [_filespace_json(r) for r in rows if p.may_use(r["id"])]})


@route("GET", "/v1/filespaces/{fs}", "One filespace, with its journal position.", response=ref("Filespace"))
async def get_filespace(request: web.Request) -> web.StreamResponse:
    _, fs = await filespace_of(request)
    seq = await hub_of(request).store.read(journal.current_seq, fs["id"])
    return ok({**_filespace_json(fs), "seq": seq})


# -- sessions --------------------------------------------------------------------------


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


# -- namespace -------------------------------------------------------------------------


@route("GET", "/v1/filespaces/{fs}/entry", "Stat one path.", params={"path": PATH}, required_params=("path",),
       response=ENTRY, errors=(409,))
async def stat(request: web.Request) -> web.StreamResponse:
    _, fs = await filespace_of(request)
    path = path_arg(query(request).get("path"))
    return ok(await hub_of(request).store.read(namespace.stat, fs["id"], path))


@route("GET", "/v1/filespaces/{fs}/list",
       "One page of a directory, by name in code-point order (keyset cursor: the last name of a page).",
       params={"path": PATH, "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT},
               "cursor": NAME}, errors=(409,),
       response=obj({"entries": {"type": "array", "items": ENTRY}, "cursor": {"anyOf": [STR, {"type": "null"}]}}))
async def list_dir(request: web.Request) -> web.StreamResponse:
    _, fs = await filespace_of(request)
    q = query(request)
    path = path_arg(q.get("path", "/"))
    limit = int_arg(q.get("limit"), "limit", default=1000, lo=1, hi=MAX_LIST_LIMIT)
    after = q.get("cursor")
    if after is not None and (len(after) > MAX_NAME_BYTES or "/" in after or "\x00" in after):
        raise BadRequestError(f"cursor {after[:40]!r} is not one this hub handed out (the last name of a page)")
    entries, cursor = await hub_of(request).store.read(namespace.list_dir, fs["id"], path, limit, after)
    return ok({"entries": entries, "cursor": cursor})


@route("POST", "/v1/filespaces/{fs}/mkdir", "Create a directory (parents included by default).",
       request=obj({"path": PATH, "parents": BOOL, "exist_ok": BOOL}, ("path",)), response=ENTRY,
       errors=(403, 409))
async def mkdir(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request, write="create directories")
    body = await body_of(request)
    result = await write_as(
        request, p, namespace.mkdir, fs["id"], path_arg(body.get("path")),
        parents=bool_field(body, "parents", True),
        exist_ok=bool_field(body, "exist_ok", True),
    )
    changed(request, fs["id"])
    return ok(result)


@route("POST", "/v1/filespaces/{fs}/delete", "Delete a file or a directory (recursive in one call).",
       request=obj({"path": NON_ROOT, "recursive": BOOL, "type": {"enum": ["file", "dir", None]}}, ("path",)),
       response=obj({"deleted": INT, "seq": INT}), errors=(403, 409))
async def delete(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request, write="delete")
    body = await body_of(request)
    expect = body.get("type")
    if expect not in (None, "file", "dir"):
        raise BadRequestError("'type' must be 'file', 'dir' or null")
    result = await write_as(
        request, p, namespace.delete, fs["id"], path_arg(body.get("path")), expect=expect,
        recursive=bool_field(body, "recursive"),
    )
    changed(request, fs["id"])
    return ok(result)


@route("POST", "/v1/filespaces/{fs}/move", "Rename/move; POSIX overwrite rules when 'overwrite'.",
       request=obj({"src": NON_ROOT, "dst": NON_ROOT, "overwrite": BOOL}, ("src", "dst")), response=ENTRY,
       errors=(403, 409))
async def move(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request, write="move")
    body = await body_of(request)
    result = await write_as(
        request, p, namespace.move, fs["id"], path_arg(body.get("src"), "src"), path_arg(body.get("dst"), "dst"),
        overwrite=bool_field(body, "overwrite"),
    )
    changed(request, fs["id"])
    return ok(result)


@route("POST", "/v1/filespaces/{fs}/copy", "Server-side copy of a file (shares its blocks).",
       request=obj({"src": NON_ROOT, "dst": NON_ROOT, "overwrite": BOOL}, ("src", "dst")),
       response=ref("CommitResult"), errors=(403, 409))
async def copy(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request, write="copy")
    body = await body_of(request)
    result = await write_as(
        request, p, files.copy, fs["id"], path_arg(body.get("src"), "src"), path_arg(body.get("dst"), "dst"),
        overwrite=bool_field(body, "overwrite", True),
    )
    changed(request, fs["id"])
    return ok(result)


@route("POST", "/v1/filespaces/{fs}/truncate", "Shrink or extend a file without moving bytes.",
       request=obj({"path": NON_ROOT, "size": {"type": "integer", "minimum": 0, "maximum": MAX_INT64}},
                   ("path", "size")),
       response=ref("CommitResult"), errors=(403, 409))
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


@route("GET", "/v1/filespaces/{fs}/file", "A file's current version: entry and block list.",
       params={"path": PATH}, required_params=("path",), errors=(409,), response=obj({
           "entry": ENTRY, "block_size": INT, "external": {"type": "object"}, "blocks": {"type": "array", "items": obj(
               {"index": INT, "hash": ref("Hash"), "length": INT, "used": INT})}}, ("entry", "block_size", "blocks")))
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
        if done is not None:
            files.check_change(tx, filespace_id, change)  # a replay answers only a well-formed request
        else:
            done = files.commit(tx, filespace_id, change, session_id)  # validates it
            if change_id:
                idempotency.remember(tx, filespace_id, change_id, done)
        results.append(done)
    return results


@route("POST", "/v1/filespaces/{fs}/commit", "Atomically apply block changes to one file; bumps its version.",
       request=ref("Commit"), response=ref("CommitResult"), errors=(403, 409))
async def commit(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request, write="write files")
    body = await body_of(request)
    results = await write_as(request, p, _commit_many, fs["id"], [body])
    changed(request, fs["id"])
    return ok(results[0])


@route("POST", "/v1/filespaces/{fs}/commits",
       "Several commits in one call and one transaction: all land or none do.",
       request=obj({"commits": {"type": "array", "minItems": 1, "items": ref("Commit")}}, ("commits",)),
       response=obj({"results": {"type": "array", "items": ref("CommitResult")}}), errors=(403, 409))
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
       request=obj({"op": {"enum": ["get", "put"]},
                    "hashes": {"type": "array", "maxItems": MAX_URL_BATCH, "items": ref("Hash")}}, ("op", "hashes")),
       response=obj({"urls": {"type": "object", "additionalProperties": STR}, "present": {
           "type": "array", "items": ref("Hash")}, "expires": INT, "block_size": INT}), errors=(403, 503))
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
       params=signed_params("get"), required_params=("op", "exp", "sig"), statuses=(200, 206),
       content_type="application/octet-stream", errors=(416,))
async def get_block(request: web.Request) -> web.StreamResponse:
    fs_id, digest = _check_block_url(request, "get")
    path = _local_store(request).path_of(fs_id, digest)
    if not await anyio.to_thread.run_sync(path.exists):
        raise PathNotFoundError(f"block {digest[:12]}... is not in the block store")
    return web.FileResponse(path, headers={"Cache-Control": "private, max-age=31536000, immutable",
                                           "Content-Type": "application/octet-stream"})


@route("PUT", "/v1/blocks/{fs}/{hash}", "Upload a block on a signed URL; its bytes must hash to its name.",
       auth="signed", params=signed_params("put"), required_params=("op", "exp", "sig"), status=201,
       request_content_type="application/octet-stream", request={"type": "string", "format": "binary"},
       response=obj({"hash": ref("Hash"), "length": INT}), errors=(413, 422, 503))
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
       params={"since": {"type": "integer", "minimum": 0, "maximum": MAX_INT64},
               "limit": {"type": "integer", "minimum": 1, "maximum": 10_000},
               "wait": {"type": "integer", "minimum": 0, "maximum": Setting("long_poll_max_seconds")}},
       response=obj({"changes": {"type": "array", "items": ref("Change")}, "seq": INT, "more": BOOL}))
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


@route("GET", "/v1/filespaces/{fs}/statistics", "File, directory and byte counts of the filespace.",
       response=obj({k: INT for k in ("file_count", "directory_count", "symlink_count", "entries", "entries_size",
                                      "data_size", "storage_size", "block_count", "external_files_size",
                                      "external_files_count")}))
async def statistics(request: web.Request) -> web.StreamResponse:
    _, fs = await filespace_of(request)
    return ok(await hub_of(request).store.read(files.statistics, fs["id"]))


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
    from lucidlink.hub.app import collect_garbage  # refuses a grace shorter than url_ttl_seconds

    hub = hub_of(request)
    # An admin acts within its own workspace: other tenants' blocks are not its to collect.
    rows = await hub.store.read(admin.list_filespaces, p.workspace_id)
    deleted = await collect_garbage(hub, grace, [r["id"] for r in rows if p.may_use(r["id"])])
    return ok({"deleted_blocks": deleted})



# Route modules that declare into ROUTES (imported last: they build on the helpers above).
from lucidlink.hub import (
    routes_connect,  # noqa: E402,F401
    routes_locks,  # noqa: E402,F401
)
