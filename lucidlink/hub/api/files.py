"""File contents: block lists, commits, block URLs and the statistics of a filespace."""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread
from aiohttp import web

from lucidlink.exceptions import BadRequestError
from lucidlink.hub.api.context import (
    base_url_of,
    body_of,
    changed,
    filespace_of,
    hub_of,
    read_access,
    write_as,
)
from lucidlink.hub.api.http import int_arg, ok, path_arg, query
from lucidlink.hub.api.route import ENTRY, INT, PATH, STR, RouteTable, obj, ref
from lucidlink.hub.core import file_answers, files, inline_blocks
from lucidlink.hub.identifiers import HASH_RE
from lucidlink.hub.uploads import confirm_uploads

MAX_URL_BATCH = 1024
MAX_FILES_BATCH = 1000
_DECODE_IN_THREAD = 1024 * 1024
"""A batch carrying more inline bytes than this is decoded and hashed in a worker thread."""
ROUTES = RouteTable()
route = ROUTES.route


def _changes_of(items: list[Any]) -> list[dict[str, Any]]:
    """The commits of a request, each a JSON object with its path normalised."""
    changes = []
    for change in items:
        if not isinstance(change, dict):
            raise BadRequestError("each commit must be a JSON object")
        changes.append({**change, "path": path_arg(change.get("path"))})
    return changes


_BLOCK = obj({"index": INT, "hash": ref("Hash"), "length": INT, "used": INT,
              "data": {**STR, "contentEncoding": "base64",
                       "description": "the block's bytes, when the hub keeps it inline (small blocks)"}},
             ("index", "hash", "length", "used"))
_FILE = obj({"entry": ENTRY, "block_size": INT, "external": {"type": "object"},
             "blocks": {"type": "array", "items": _BLOCK}}, ("entry", "block_size", "blocks"))


async def _inline_of(request: web.Request, changes: list[dict[str, Any]]) -> dict[str, bytes]:
    """The verified inline bytes the changes carry (removed from them), checked before any transaction."""
    limit = hub_of(request).settings.inline_block_max
    if inline_blocks.inline_bytes(changes) > _DECODE_IN_THREAD:
        return await anyio.to_thread.run_sync(inline_blocks.decode, changes, limit)
    return inline_blocks.decode(changes, limit)


@route("GET", "/v1/filespaces/{fs}/file",
       "A file's current version: entry and block list; blocks kept inline carry their bytes ('data'). "
       "With 'prefetch' N, 'prefetched' also answers up to N regular files that follow it in its "
       "directory (name order), until their inline bytes pass 4 MiB.",
       params={"path": PATH, "prefetch": {"type": "integer", "minimum": 0, "maximum": file_answers.MAX_PREFETCH}},
       required_params=("path",), errors=(409,),
       response={**_FILE, "properties": {**_FILE["properties"],
                                         "prefetched": {"type": "array", "items": _FILE}}})
async def read_file(request: web.Request) -> web.StreamResponse:
    access = await read_access(request)
    q = query(request)
    path = path_arg(q.get("path"))
    if "prefetch" in q:
        prefetch = int_arg(q["prefetch"], "prefetch", lo=0, hi=file_answers.MAX_PREFETCH)
        return ok(await access.read(file_answers.read_file_prefetch, path, prefetch))
    return ok(await access.read(files.read_file, path, with_data=True))


@route("POST", "/v1/filespaces/{fs}/files",
       "Several files' current versions (as GET .../file, inline bytes included) in one read "
       "transaction, in the request's order; a path that cannot be read answers its error in place.",
       request=obj({"paths": {"type": "array", "minItems": 1, "maxItems": MAX_FILES_BATCH,
                              "items": {**STR, "description": "a filespace path; one that is not "
                                                              "valid answers its error in place"}}},
                   ("paths",)),
       response=obj({"files": {"type": "array", "items": obj(
           {"path": STR, "file": _FILE, "error": obj({"code": STR, "message": STR})}, ("path",))}}))
async def read_files(request: web.Request) -> web.StreamResponse:
    access = await read_access(request)
    body = await body_of(request)
    paths = body.get("paths")
    if (not isinstance(paths, list) or not 0 < len(paths) <= MAX_FILES_BATCH
            or not all(isinstance(p, str) for p in paths)):
        raise BadRequestError(f"'paths' must be a list of 1 to {MAX_FILES_BATCH} paths (strings)")
    return ok({"files": await access.read(file_answers.read_files, paths)})


@route("POST", "/v1/filespaces/{fs}/commit",
       "Atomically apply block changes to one file; bumps its version. A block of at most the hub's "
       "inline limit may carry its bytes ('data', base64): it is then kept with the metadata, not uploaded.",
       request=ref("Commit"), response=ref("CommitResult"), errors=(403, 409, 422, 503))
async def commit(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request, write="write files")
    body = await body_of(request)
    changes = _changes_of([body])
    inline = await _inline_of(request, changes)
    await confirm_uploads(hub_of(request), fs["id"], changes)
    results = await write_as(request, p, files.commit_many, fs["id"], changes, inline=inline)
    changed(request, fs["id"])
    return ok(results[0])


@route("POST", "/v1/filespaces/{fs}/commits",
       "Several commits in one call and one transaction: all land or none do.",
       request=obj({"commits": {"type": "array", "minItems": 1, "items": ref("Commit")}}, ("commits",)),
       response=obj({"results": {"type": "array", "items": ref("CommitResult")}}), errors=(403, 409, 422, 503))
async def commit_batch(request: web.Request) -> web.StreamResponse:
    p, fs = await filespace_of(request, write="write files")
    body = await body_of(request)
    changes = body.get("commits")
    if not isinstance(changes, list) or not changes:
        raise BadRequestError("'commits' must be a non-empty list")
    changes = _changes_of(changes)
    inline = await _inline_of(request, changes)
    await confirm_uploads(hub_of(request), fs["id"], changes)
    results = await write_as(request, p, files.commit_many, fs["id"], changes, inline=inline)
    changed(request, fs["id"])
    return ok({"results": results})


@route("POST", "/v1/filespaces/{fs}/blocks/urls",
       "Signed, short-lived URLs for blocks: op 'get' to read, 'put' to upload (known blocks need "
       "none). 'urls' maps each hash to its URL; 'headers' maps a hash to the HTTP headers the "
       "client must send with that request, exactly as given (an S3 block store signs the upload "
       "together with 'x-amz-checksum-sha256'; a hash absent from 'headers' needs none).",
       request=obj({"op": {"enum": ["get", "put"]},
                    "hashes": {"type": "array", "maxItems": MAX_URL_BATCH, "items": ref("Hash")}}, ("op", "hashes")),
       response=obj({"urls": {"type": "object", "additionalProperties": STR},
                     "headers": {"type": "object", "additionalProperties": {
                         "type": "object", "additionalProperties": STR}},
                     "present": {"type": "array", "items": ref("Hash")}, "expires": INT,
                     "block_size": INT,
                     "inline": {"type": "object", "additionalProperties": {**STR, "contentEncoding": "base64"},
                                "description": "op 'get': the bytes (base64) of blocks kept inline, "
                                               "which get no URL"}},
                    ("urls", "headers", "present", "expires", "block_size")), errors=(403, 503))
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
        if not isinstance(digest, str) or not HASH_RE.fullmatch(digest):
            raise BadRequestError(f"{digest!r} is not a SHA-256 hex digest")
    present: list[str] = []
    if op == "put":
        # A write: answering "present" refreshes the blocks' last_seen, so the GC keeps
        # them for the commit the client is about to make without uploading them. A store
        # clients upload to directly has the others recorded as uploading now: the hub
        # sees no upload, and the row's last_seen starts the GC's grace for it.
        begin = files.known_blocks if hub.blocks.serves_blocks else files.begin_direct_uploads
        known = await hub.store.write(begin, fs["id"], hashes)
        present = sorted(known)
        hashes = [h for h in hashes if h not in known]
    inline: dict[str, bytes] = {}
    if op == "get" and hashes:
        inline = await hub.store.read(inline_blocks.read_many, fs["id"], hashes)
        hashes = [h for h in hashes if h not in inline]
    ttl = hub.settings.url_ttl_seconds
    signed = await hub.blocks.sign_urls(base_url_of(request), fs["id"], hashes, op, ttl)
    answer = {"urls": {h: r.url for h, r in signed.items()},
              "headers": {h: dict(r.headers) for h, r in signed.items() if r.headers},
              "present": present, "expires": int(time.time() + ttl),
              "block_size": fs["block_size"]}
    if op == "get":
        answer["inline"] = {h: inline_blocks.encode(data) for h, data in inline.items()}
    return ok(answer)


@route("GET", "/v1/filespaces/{fs}/statistics", "File, directory and byte counts of the filespace.",
       response=obj({k: INT for k in ("file_count", "directory_count", "symlink_count", "entries", "entries_size",
                                      "data_size", "storage_size", "block_count", "external_files_size",
                                      "external_files_count")}))
async def statistics(request: web.Request) -> web.StreamResponse:
    return ok(await (await read_access(request)).read(files.statistics))
