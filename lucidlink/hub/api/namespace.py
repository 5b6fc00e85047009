"""The namespace: stat, list, mkdir, symlink, delete, move, copy and truncate."""

from __future__ import annotations

from aiohttp import web

from lucidlink.exceptions import BadRequestError
from lucidlink.hub.api.context import body_of, changed, filespace_of, read_access, write_as
from lucidlink.hub.api.http import bool_arg, bool_field, int_arg, ok, path_arg, query
from lucidlink.hub.api.route import (
    BOOL,
    ENTRY,
    INT,
    NAME,
    NON_ROOT,
    PATH,
    STR,
    RouteTable,
    obj,
    ref,
)
from lucidlink.hub.core import copies, files, links, namespace
from lucidlink.hub.store.base import MAX_INT64
from lucidlink.paths import MAX_NAME_BYTES, MAX_PATH_BYTES
from lucidlink.shared import LIST_ROW_COLUMNS

MAX_LIST_LIMIT = 5000
ROUTES = RouteTable()
route = ROUTES.route


LINK_TARGET = {
    "type": "string", "minLength": 1, "maxLength": MAX_PATH_BYTES, "pattern": "^[^\\x00]+$",
    "description": f"an absolute filespace path, or one relative to the link's directory; at most "
                   f"{MAX_PATH_BYTES} bytes of UTF-8, no NUL. One that climbs above '/' from the "
                   "link's directory is 409 link_outside_filespace",
}


@route("GET", "/v1/filespaces/{fs}/entry",
       "Stat one path (a link itself; with 'follow', what it resolves to, at its canonical path).",
       params={"path": PATH, "follow": {"type": "boolean"}}, required_params=("path",),
       response=ENTRY, errors=(409,))
async def stat(request: web.Request) -> web.StreamResponse:
    access = await read_access(request)
    q = query(request)
    path = path_arg(q.get("path"))
    follow = bool_arg(q.get("follow"), "follow")
    return ok(await access.read_short(namespace.stat, path, follow=follow))


LIST_ROW = {"type": "array", "items": {"type": ["integer", "string"]}, "minItems": 7,
            "maxItems": 7, "description": "one entry: " + ", ".join(LIST_ROW_COLUMNS)}


@route("GET", "/v1/filespaces/{fs}/list",
       "One page of a directory, by name in code-point order (keyset cursor: the last name of a "
       "page). With form=rows, each entry is an array of the fields named in 'columns' (its path "
       "is the directory's path joined with its name), and 'extra' holds by name what linked "
       "files and symbolic links add ('external', 'target').",
       params={"path": PATH, "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT},
               "cursor": NAME, "form": {"enum": ["entries", "rows"]}}, errors=(409,),
       response={"anyOf": [
           obj({"entries": {"type": "array", "items": ENTRY},
                "cursor": {"anyOf": [STR, {"type": "null"}]}}),
           obj({"columns": {"type": "array", "items": STR},
                "rows": {"type": "array", "items": LIST_ROW},
                "extra": {"type": "object"},
                "cursor": {"anyOf": [STR, {"type": "null"}]}}),
       ]})
async def list_dir(request: web.Request) -> web.StreamResponse:
    access = await read_access(request)
    q = query(request)
    path = path_arg(q.get("path", "/"))
    limit = int_arg(q.get("limit"), "limit", default=1000, lo=1, hi=MAX_LIST_LIMIT)
    after = q.get("cursor")
    if after is not None and (len(after) > MAX_NAME_BYTES or "/" in after or "\x00" in after):
        raise BadRequestError(f"cursor {after[:40]!r} is not one this hub handed out (the last name of a page)")
    form = q.get("form", "entries")
    if form not in ("entries", "rows"):
        raise BadRequestError(f"form {form[:40]!r} must be 'entries' (the default) or 'rows'")
    # Inline (SQLite): a page of 1,000 entries costs the loop 2.5 ms of CPU, a hop to a
    # reader thread 3.2-4.2 ms (the thread holds the GIL to build the page anyway).
    if form == "rows":
        rows, extra, cursor = await access.read_short(namespace.list_rows, path, limit, after)
        return ok({"columns": LIST_ROW_COLUMNS, "rows": rows, "extra": extra,
                   "cursor": cursor})
    entries, cursor = await access.read_short(namespace.list_dir, path, limit, after)
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


@route("POST", "/v1/filespaces/{fs}/symlink",
       "Create a symbolic link at 'path' pointing to 'target'.",
       request=obj({"path": NON_ROOT, "target": LINK_TARGET}, ("path", "target")), response=ENTRY,
       status=201, errors=(403, 409))
async def symlink(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request, write="create links")
    body = await body_of(request)
    path = path_arg(body.get("path"))
    target = links.check_target(body.get("target"))
    result = await write_as(request, p, links.create, fs["id"], path, target)
    changed(request, fs["id"])
    return ok(result, status=201)


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


@route("POST", "/v1/filespaces/{fs}/copy",
       "Server-side copy of a file (shares its blocks); a symbolic link is copied as a link.",
       request=obj({"src": NON_ROOT, "dst": NON_ROOT, "overwrite": BOOL}, ("src", "dst")),
       response=ref("CommitResult"), errors=(403, 409))
async def copy(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request, write="copy")
    body = await body_of(request)
    result = await write_as(
        request, p, copies.copy, fs["id"], path_arg(body.get("src"), "src"),
        path_arg(body.get("dst"), "dst"),
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
