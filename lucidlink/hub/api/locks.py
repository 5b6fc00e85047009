"""Lock routes: request/poll, release, and who holds what (see :mod:`lucidlink.hub.core.locks`)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from lucidlink.exceptions import BadRequestError
from lucidlink.hub.api.context import SESSION_HEADER, body_of, filespace_of, hub_of, session_id_of
from lucidlink.hub.api.http import bool_arg, bool_field, ok, path_arg, query
from lucidlink.hub.api.route import INT, RouteTable, obj, ref
from lucidlink.hub.core import locks, range_locks, sessions

MAX_WAIT = 30
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
SESSION = {SESSION_HEADER: {"type": "string", "minLength": 1, "description": "the caller's session id"}}
ROUTES = RouteTable()
route = ROUTES.route


def _id_arg(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise BadRequestError(f"'{name}' must be 1 to 64 letters, digits, '-' or '_'")
    return value


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
                    "lock_id": {"anyOf": [ID, {"type": "null"}]},
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
    if lock_id is not None:
        lock_id = _id_arg(lock_id, "lock_id")
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




# -- byte-range locks (see :mod:`lucidlink.hub.core.range_locks`) -------------------------

RANGE = {"type": "integer", "minimum": 0, "maximum": range_locks.TO_END - 1}


@route("POST", "/v1/filespaces/{fs}/range-locks",
       "Lock a byte range of a file for a handle, waiting up to 'wait' seconds for it.",
       request=obj({"path": ref("Path"), "handle": ID, "offset": RANGE, "length": RANGE,
                    "mode": {"enum": ["shared", "exclusive"]}, "request_id": ID,
                    "wait": {"type": "number", "minimum": 0, "maximum": MAX_WAIT}},
                   ("path", "handle", "offset", "length", "mode", "request_id")),
       headers=SESSION, errors=(403, 409, 410),
       response=obj({"granted": {"type": "boolean"},
                     "held_by": {"anyOf": [{"type": "string"}, {"type": "null"}]}}))
async def lock_range(request: web.Request) -> web.StreamResponse:
    principal, fs = await filespace_of(request)
    body = await body_of(request)
    path = path_arg(body.get("path"))
    handle = _id_arg(body.get("handle"), "handle")
    request_id = _id_arg(body.get("request_id"), "request_id")
    mode, offset, length = body.get("mode"), body.get("offset"), body.get("length")
    range_locks.check_range(offset, length)
    if mode == "exclusive":
        principal.require_write(f"lock a byte range of {path} exclusively")
    wait = body.get("wait", 0)
    if not isinstance(wait, (int, float)) or isinstance(wait, bool) or not 0 <= wait <= MAX_WAIT:
        raise BadRequestError(f"'wait' must be a number of seconds between 0 and {MAX_WAIT}")
    hub = hub_of(request)
    sid = await _session(request, principal.key_id, fs["id"])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        result = await hub.store.write(range_locks.lock, fs["id"], path, handle, offset, length,
                                       mode, sid, request_id, hub.settings.lease_seconds)
        gone = request.transport is None or request.transport.is_closing()
        if result["granted"] and gone:  # it would never learn it holds the lock: give it back
            await hub.store.write(range_locks.drop, fs["id"], sid, request_id)
            hub.changes.notify(_lock_channel(fs["id"]))
            return ok({"granted": False, "held_by": None})
        remaining = deadline - loop.time()
        if result["granted"] or remaining <= 0 or gone or hub.closing.is_set():
            return ok(result)
        await hub.changes.wait(_lock_channel(fs["id"]), min(remaining, 0.25))


@route("POST", "/v1/filespaces/{fs}/range-locks/release",
       "Release a handle's byte-range locks within [offset, offset+length) (default: all).",
       request=obj({"handle": ID, "offset": RANGE, "length": RANGE}, ("handle",)),
       headers=SESSION, errors=(409, 410), response=obj({"released": INT}))
async def release_ranges(request: web.Request) -> web.StreamResponse:
    principal, fs = await filespace_of(request)
    body = await body_of(request)
    handle = _id_arg(body.get("handle"), "handle")
    offset, length = body.get("offset", 0), body.get("length", 0)
    range_locks.check_range(offset, length)
    hub = hub_of(request)
    sid = await _session(request, principal.key_id, fs["id"])
    released = await hub.store.write(range_locks.unlock, fs["id"], sid, handle, offset, length)
    hub.changes.notify(_lock_channel(fs["id"]))
    return ok({"released": released})


@route("GET", "/v1/filespaces/{fs}/range-locks",
       "The live byte-range locks on a file (modes, ranges and clients; no ids).",
       params={"path": ref("Path")}, required_params=("path",), errors=(409,),
       response=obj({"ranges": {"type": "array", "items": {"type": "object"}}}))
async def list_ranges(request: web.Request) -> web.StreamResponse:
    _, fs = await filespace_of(request)
    path = path_arg(query(request).get("path"))
    return ok({"ranges": await hub_of(request).store.read(range_locks.list_ranges, fs["id"], path)})
