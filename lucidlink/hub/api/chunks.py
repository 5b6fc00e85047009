"""Chunk digests of blocks, for clients that read a small range of a block and verify it.

See :mod:`lucidlink.hub.core.chunks`. Only blocks of the request's filespace that are
``live`` are answered, so naming a hash never reveals anything about another filespace.
"""

from __future__ import annotations

from aiohttp import web

from lucidlink.exceptions import BadRequestError
from lucidlink.hub.api.context import body_of, filespace_of, hub_of
from lucidlink.hub.api.http import ok
from lucidlink.hub.api.route import INT, RouteTable, obj, ref
from lucidlink.hub.core import chunks
from lucidlink.hub.identifiers import HASH_RE

MAX_CHUNK_BATCH = 1024
ON_DEMAND_PER_CALL = 16
"""Live blocks without digests whose digests one call computes (each a read of the block
and a hash of it: :mod:`lucidlink.hub.digests`); the others are answered in ``deferred``."""

ROUTES = RouteTable()
route = ROUTES.route


@route("POST", "/v1/filespaces/{fs}/blocks/chunks",
       "Chunk digests of blocks, to verify ranged reads: 'digests' maps each live block of "
       "this filespace that has them to the hex of its chunks' concatenated SHA-256 digests "
       "(chunk i covers bytes [i*chunk_size, (i+1)*chunk_size) of the block). A block absent "
       "from 'digests' and 'deferred' has none: read it whole. 'deferred' blocks get theirs "
       "when asked again.",
       request=obj({"hashes": {"type": "array", "maxItems": MAX_CHUNK_BATCH, "items": ref("Hash")}},
                   ("hashes",)),
       response=obj({"chunk_size": INT,
                     "digests": {"type": "object", "additionalProperties": {
                         "type": "string", "pattern": "^([0-9a-f]{64})*$"}},
                     "deferred": {"type": "array", "items": ref("Hash")}}))
async def block_chunks(request: web.Request) -> web.StreamResponse:
    _, fs = await filespace_of(request)
    body = await body_of(request)
    hashes = body.get("hashes")
    if not isinstance(hashes, list) or len(hashes) > MAX_CHUNK_BATCH:
        raise BadRequestError(
            f"'hashes' must be a list of at most {MAX_CHUNK_BATCH} SHA-256 hex digests")
    for digest in hashes:
        if not isinstance(digest, str) or not HASH_RE.fullmatch(digest):
            raise BadRequestError(f"{digest!r} is not a SHA-256 hex digest")
    hub = hub_of(request)
    found, lacking = await hub.store.read(chunks.live_digests, fs["id"], hashes)
    computed, deferred = await hub.digests.compute(fs["id"], lacking, ON_DEMAND_PER_CALL)
    found.update(computed)
    return ok({"chunk_size": chunks.CHUNK_SIZE,
               "digests": {h: d.hex() for h, d in found.items()},
               "deferred": deferred})
