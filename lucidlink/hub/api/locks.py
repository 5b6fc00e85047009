"""Lock routes: request/poll, release, and who holds what (see :mod:`lucidlink.hub.core.locks`)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from lucidlink.exceptions import BadRequestError
from lucidlink.hub.api.context import SESSION_HEADER, body_of, filespace_of, hub_of, session_id_of
from lucidlink.hub.api.http import bool_arg, bool_field, ok, path_arg, query
from lucidlink.hub.api.route import RouteTable, obj, ref
from lucidlink.hub.core import locks, sessions

MAX_WAIT = 30
SESSION = {SESSION_HEADER: {"type": "string", "minLength": 1, "description": "the caller's session id"}}
ROUTES = RouteTable()
route = ROUTES.route


def _lock_channel(filespace_id: str) -> str:
    return f"locks:{filespace_id}"


async def _session(request: web.Request, key_id: str, filespace_id: str) -> str:
    """The request's session: live, this token's and on this filespace (see :mod:`lucidlink.hub.core.sessions`)."""
    sid = session_id_of(request)
    if not sid:
        raise BadRequestError("locks belong to a daemon session: send the X-Lucid-Session header")
    await hub_of(request).store.read(sessions.live, sid, key_id, filespace_id)
    return sid


@route("POST", "/v1/filespaces/{fs}/locks",
       "Request a shared or exclusive lock on a path, waiting up to 'wait' seconds (FIFO).",
       request=obj({"path": ref("Path"), "mode": {"enum": ["shared", "exclusive"]},
                    "wait": {"type": "number", "minimum": 0, "maximum": MAX_WAIT},
                    "lock_id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    "must_exist": {"type": "boolean"}}, ("path", "mode")),
       headers=SESSION, statuses=(200, 202), errors=(403, 409, 410),
       response=obj({"lock_id": {"type": "string"}, "state": {"enum": ["held", "waiting", "withdrawn"]}}))
async def request_lock(request: web.Request) -> web.StreamResponse:
    principal, fs = await filespace_of(request)
    body = await body_of(request)
    path = path_arg(body.get("path"))
    mode = body.get("mode")
    if mode == "exclusive":
        principal.require_write(f"lock {path} exclusively")
    wait = body.get("wait", 0)
    if not isinstance(wait, (int, float)) or isinstance(wait, bool) or not 0 <= wait <= MAX_WAIT:
        raise BadRequestError(f"'wait' must be a number of seconds between 0 and {MAX_WAIT}")
    lock_id = body.get("lock_id")
    if lock_id is not None and not isinstance(lock_id, str):
        raise BadRequestError("'lock_id' must be a string")
    must_exist = bool_field(body, "must_exist")
    hub = hub_of(request)
    sid = await _session(request, principal.key_id, fs["id"])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        result = await hub.store.write(locks.request, fs["id"], path, mode, sid, principal.key_id,
                                       hub.settings.lease_seconds, lock_id, must_exist, wait + 10.0)
        lock_id = result["lock_id"]
        if request.transport is None or request.transport.is_closing():
            # The client went away (it cancelled its wait): withdraw the request, or give
            # back a lock it would never learn it holds and its heartbeats would keep alive.
            await hub.store.write(locks.release, fs["id"], lock_id, sid)
            hub.changes.notify(_lock_channel(fs["id"]))
            return ok({"lock_id": lock_id, "state": "withdrawn"}, status=202)
        remaining = deadline - loop.time()
        if result["state"] == "held" or remaining <= 0 or hub.closing.is_set():
            return ok(result, status=200 if result["state"] == "held" else 202)
        # Releases in this process wake us at once; other hub processes' within 0.25 s.
        await hub.changes.wait(_lock_channel(fs["id"]), min(remaining, 0.25))


@route("DELETE", "/v1/filespaces/{fs}/locks/{lock_id}",
       "Release a lock, or withdraw a waiting request ('timeout=1' reports who holds it).",
       params={"timeout": {"type": "boolean"}, "path": ref("Path")}, headers=SESSION, errors=(409, 410),
       response=obj({"released": {"type": "boolean"}}))
async def release_lock(request: web.Request) -> web.StreamResponse:
    principal, fs = await filespace_of(request)
    hub = hub_of(request)
    q = query(request)
    path = path_arg(q["path"]) if "path" in q else None  # a malformed request is refused before the state
    timeout = bool_arg(q.get("timeout"), "timeout")
    sid = await _session(request, principal.key_id, fs["id"])
    lock_id = request.match_info["lock_id"]
    if timeout:
        if path is None:  # the path the request was for, to name who holds it
            mine = [r for r in await hub.store.read(locks.list_locks, fs["id"], None, principal.key_id)
                    if r["lock_id"] == lock_id]
            path = mine[0]["path"] if mine else "/"
        err = await hub.store.write(locks.give_up, fs["id"], path, lock_id, sid, principal.key_id)
        hub.changes.notify(_lock_channel(fs["id"]))
        raise err
    released = await hub.store.write(locks.release, fs["id"], lock_id, sid)
    hub.changes.notify(_lock_channel(fs["id"]))
    return ok({"released": released})


@route("GET", "/v1/filespaces/{fs}/locks",
       "Who holds and who waits for locks (one path, or all); lock and session ids only of this token's sessions.",
       params={"path": ref("Path")}, errors=(409,), response=obj({"locks": {"type": "array", "items": {"type": "object"}}}))
async def list_locks(request: web.Request) -> web.StreamResponse:
    principal, fs = await filespace_of(request)
    q = query(request)
    path = path_arg(q["path"]) if "path" in q else None
    return ok({"locks": await hub_of(request).store.read(locks.list_locks, fs["id"], path, principal.key_id)})


