"""The tenancy matrix (issue 10): every route of the hub against every identity that must not
cross a line.

For each route of :data:`lucidlink.hub.api.routes.ROUTES` (Connect and lock routes included)
one request is built with valid arguments, aimed at the owner's filespace ``data`` (and
naming the owner's session, lock, store, link and blocks). The same request is then sent
by each of these identities:

* ``stranger``: an admin, read-write token of ANOTHER workspace (``acme``);
* ``limited``: an admin, read-write token of the same workspace limited to ANOTHER
  filespace (``other``);
* ``reader``: a read-only (admin) token of the same workspace, on write routes;
* ``revoked``: a full token of the same workspace, revoked;
* ``replay``: a full, valid token of the same workspace replaying the owner's session id
  (``X-Lucid-Session``, or the session in the URL of the session routes).

Each cell proves that the request is refused with the right status and code, or (where
the identity may call the route at all, e.g. ``whoami``) that it answers only what is its
own; that NOTHING the hub stores changed (every table by value, and the block files);
and that the answer carries no data of the owner (the body of a refusal is an error
envelope). After the identities, the owner sends the very same request, which must
succeed: otherwise a refusal would prove nothing.

Runs once per metadata store (SQLite, PostgreSQL) on one hub with all identities.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import attrs
import pytest

from lucidlink.hub.api.context import SESSION_HEADER
from lucidlink.hub.api.routes import ROUTES
from lucidlink.hub.core import admin
from tests.support.hubfixtures import (
    Api,
    digest_of,
    expect_error,
    hub_state,
    key_id_of,
    make_token,
    q,
    snapshot,
)
from tests.support.seaweed import SeaweedS3

pytest_plugins = ["tests.support.hubfixtures"]

IDENTITIES = ("stranger", "limited", "reader", "revoked", "replay")

EXTRA_TABLES = ("locks", "range_locks", "data_stores", "external_files", "counters", "meta",
                "symlinks", "block_data", "block_chunks")


def full_snapshot(api: Api) -> dict[str, Any]:
    """:func:`tests.support.hubfixtures.snapshot` plus the tables it leaves out (locks, Connect...)."""
    state = snapshot(api.hub)

    def dump(tx: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for table in EXTRA_TABLES:
            rows = tx.all(f"SELECT * FROM {table}")
            out[table] = sorted(
                tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows
            )
        return out

    state.update(api.hub.hub.call(hub_state(api.hub).store.read(dump)))
    return state


def test_snapshot_covers_every_table(hub: Any) -> None:
    """A new table would escape the 'nothing changed' checks: list it in EXTRA_TABLES."""

    def tables(tx: Any) -> set[str]:
        if hub_state_engine(hub) == "postgresql":
            rows = tx.all(
                "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()"
            )
        else:
            rows = tx.all("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {r["name"] for r in rows}

    names = hub.hub.call(hub_state(hub).store.read(tables))
    api = Api(None, hub, "", "")  # type: ignore[arg-type]
    dumped = set(full_snapshot(api)) - {"block_files"}
    assert names - {"sqlite_sequence"} <= dumped, names - dumped


def hub_state_engine(hub: Any) -> str:
    return str(hub_state(hub).store.engine)


# -- requests and expectations --------------------------------------------------------------------


@attrs.define
class Req:
    """One request: a path on the hub (or an absolute signed URL), its body and headers."""

    method: str
    url: str
    json: Any = None
    data: bytes | None = None
    headers: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Refused:
    """An error envelope with this status and code."""

    status: int
    code: str


@attrs.frozen
class Own:
    """The identity may call the route: a 2xx answer about what is its own only."""


@attrs.frozen
class NA:
    """The identity has no line to cross on this route (the reason says why)."""

    reason: str


Expect = Refused | Own | NA


@attrs.define
class World:
    api: Api
    http: aiohttp.ClientSession
    s3: SeaweedS3
    owner: str
    tokens: dict[str, str]
    fs: str
    other: str
    theirs: str
    sid: str
    lock_id: str
    link_id: int
    hash: str
    garbage: str
    demo_ws: str

    def p(self, route: str, fs: str | None = None) -> str:
        return f"/v1/filespaces/{fs or self.fs}/{route}"

    def owner_markers(self) -> list[str]:
        """What must never appear in an answer to another tenant."""
        return [
            self.fs,
            self.sid,
            self.lock_id,
            self.hash,
            self.garbage,
            self.s3.secret_key,
            self.demo_ws,
        ]

    async def send(self, req: Req, token: str | None) -> tuple[int, Any]:
        headers = dict(req.headers)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        url = req.url if req.url.startswith("http") else self.api.hub.url + req.url
        async with self.http.request(
            req.method, url, json=req.json, data=req.data, headers=headers
        ) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.read()


Build = Callable[[World], Awaitable[Req]]
Variant = Callable[[World, str, Req], Awaitable[Req | None]]


@attrs.define
class Row:
    method: str
    path: str
    build: Build
    expect: dict[str, Expect]
    variant: Variant | None = None
    """For signed routes: the request an identity can make (a URL signed for what it may reach)."""


# -- the matrix -----------------------------------------------------------------------------------

ROW_BUILDERS: dict[tuple[str, str], Build] = {}
SESSION_ROUTES: set[tuple[str, str]] = set()
"""Routes that act as the session they are sent (X-Lucid-Session or the URL's)."""
WRITE_ROUTES: set[tuple[str, str]] = set()
"""Routes that change a filespace (a read-only token is refused)."""
PUBLIC_ROUTES = {(r.method, r.path) for r in ROUTES if r.auth == "none"}
SIGNED_ROUTES = {(r.method, r.path) for r in ROUTES if r.auth == "signed"}


def row(
    method: str, path: str, *, session: bool = False, write: bool = False
) -> Callable[[Build], Build]:
    def deco(fn: Build) -> Build:
        ROW_BUILDERS[(method, path)] = fn
        if session:
            SESSION_ROUTES.add((method, path))
        if write:
            WRITE_ROUTES.add((method, path))
        return fn

    return deco


def with_session(w: World, method: str, url: str, **kw: Any) -> Req:
    """Every token request names the owner's session (the id the ``replay`` identity replays)."""
    return Req(method, url, headers={SESSION_HEADER: w.sid}, **kw)


def store_config(w: World) -> dict[str, Any]:
    return {
        "access_key": w.s3.access_key,
        "secret_key": w.s3.secret_key,
        "bucket_name": w.s3.bucket,
        "region": w.s3.region,
        "endpoint": w.s3.endpoint,
        "url_expiration_minutes": 60,
        "use_virtual_addressing": False,
    }


@row("GET", "/healthz")
async def _healthz(w: World) -> Req:
    return with_session(w, "GET", "/healthz")


@row("GET", "/metrics")
async def _metrics(w: World) -> Req:
    return with_session(w, "GET", "/metrics")


@row("GET", "/v1/openapi.json")
async def _openapi(w: World) -> Req:
    return with_session(w, "GET", "/v1/openapi.json")


@row("GET", "/v1/whoami")
async def _whoami(w: World) -> Req:
    return with_session(w, "GET", "/v1/whoami")


@row("GET", "/v1/filespaces")
async def _filespaces(w: World) -> Req:
    return with_session(w, "GET", "/v1/filespaces")


@row("GET", "/v1/filespaces/{fs}")
async def _filespace(w: World) -> Req:
    return with_session(w, "GET", f"/v1/filespaces/{w.fs}")


@row("POST", "/v1/filespaces/{fs}/sessions")
async def _open_session(w: World) -> Req:
    return with_session(w, "POST", w.p("sessions"), json={"client": "again"})


@row("POST", "/v1/sessions/{sid}/heartbeat", session=True)
async def _heartbeat(w: World) -> Req:
    return with_session(w, "POST", f"/v1/sessions/{w.sid}/heartbeat")


@row("DELETE", "/v1/sessions/{sid}", session=True)
async def _close_session(w: World) -> Req:
    return with_session(w, "DELETE", f"/v1/sessions/{w.sid}")


@row("GET", "/v1/filespaces/{fs}/entry")
async def _entry(w: World) -> Req:
    return with_session(w, "GET", w.p("entry") + "?" + q(path="/file"))


@row("GET", "/v1/filespaces/{fs}/list")
async def _list(w: World) -> Req:
    return with_session(w, "GET", w.p("list") + "?" + q(path="/"))


@row("POST", "/v1/filespaces/{fs}/mkdir", session=True, write=True)
async def _mkdir(w: World) -> Req:
    return with_session(w, "POST", w.p("mkdir"), json={"path": "/new"})


@row("POST", "/v1/filespaces/{fs}/symlink", session=True, write=True)
async def _symlink(w: World) -> Req:
    return with_session(w, "POST", w.p("symlink"), json={"path": "/new-link", "target": "/file"})


@row("POST", "/v1/filespaces/{fs}/delete", session=True, write=True)
async def _delete(w: World) -> Req:
    return with_session(w, "POST", w.p("delete"), json={"path": "/victim-delete"})


@row("POST", "/v1/filespaces/{fs}/move", session=True, write=True)
async def _move(w: World) -> Req:
    return with_session(w, "POST", w.p("move"), json={"src": "/victim-move", "dst": "/moved"})


@row("POST", "/v1/filespaces/{fs}/copy", session=True, write=True)
async def _copy(w: World) -> Req:
    return with_session(w, "POST", w.p("copy"), json={"src": "/file", "dst": "/copied"})


@row("POST", "/v1/filespaces/{fs}/truncate", session=True, write=True)
async def _truncate(w: World) -> Req:
    return with_session(w, "POST", w.p("truncate"), json={"path": "/victim-truncate", "size": 1})


@row("GET", "/v1/filespaces/{fs}/file")
async def _file(w: World) -> Req:
    return with_session(w, "GET", w.p("file") + "?" + q(path="/file"))


@row("POST", "/v1/filespaces/{fs}/files")
async def _files(w: World) -> Req:
    return with_session(w, "POST", w.p("files"), json={"paths": ["/file"]})


@row("POST", "/v1/filespaces/{fs}/commit", session=True, write=True)
async def _commit(w: World) -> Req:
    return with_session(
        w,
        "POST",
        w.p("commit"),
        json={
            "path": "/committed",
            "size": 3,
            "blocks": [{"index": 0, "hash": w.hash, "length": 3}],
        },
    )


@row("POST", "/v1/filespaces/{fs}/commits", session=True, write=True)
async def _commits(w: World) -> Req:
    return with_session(
        w,
        "POST",
        w.p("commits"),
        json={
            "commits": [
                {"path": "/batch", "size": 3, "blocks": [{"index": 0, "hash": w.hash, "length": 3}]}
            ]
        },
    )


@row("POST", "/v1/filespaces/{fs}/blocks/urls", write=True)
async def _block_urls(w: World) -> Req:
    # op=put naming a block the filespace has: answering "present" refreshes it (a write).
    return with_session(
        w, "POST", w.p("blocks/urls"), json={"op": "put", "hashes": [w.hash, digest_of(b"new")]}
    )


@row("POST", "/v1/filespaces/{fs}/blocks/chunks")
async def _block_chunks(w: World) -> Req:
    return with_session(w, "POST", w.p("blocks/chunks"), json={"hashes": [w.hash, w.garbage]})


async def _signed(
    w: World, op: str, digest: str, fs: str | None = None, token: str | None = None
) -> str:
    body = await w.api.ok(
        "POST", w.p("blocks/urls", fs), json={"op": op, "hashes": [digest]}, token=token or w.owner
    )
    return str(body["urls"][digest])


PUT_DATA = b"a block uploaded on a signed URL"


@row("GET", "/v1/blocks/{fs}/{hash}")
async def _get_block(w: World) -> Req:
    return Req("GET", await _signed(w, "get", w.hash))


@row("PUT", "/v1/blocks/{fs}/{hash}")
async def _put_block(w: World) -> Req:
    return Req("PUT", await _signed(w, "put", digest_of(PUT_DATA)), data=PUT_DATA)


async def _signed_variant(w: World, ident: str, owners: Req) -> Req | None:
    """What an identity can do with a signed URL: one signed for what it may reach, re-aimed.

    ``stranger``/``limited``: a URL signed (with their own token) for their own filespace and
    the owner's block, pointed at the owner's filespace; ``reader``: a ``get`` URL for the
    owner's filespace turned into a ``put``.
    """
    op = "get" if owners.method == "GET" else "put"
    digest = owners.url.split("?")[0].rsplit("/", 1)[1]
    if ident in ("stranger", "limited"):
        own_fs = w.theirs if ident == "stranger" else w.other
        mine = await _signed(w, op, digest, own_fs, w.tokens[ident])
        # As signed: the owner's block is not in their filespace.
        status, body = await w.send(Req(owners.method, mine, data=owners.data), None)
        if op == "get":
            expect_error(status, body, 404, "not_found")
        return Req(
            owners.method,
            mine.replace(f"/v1/blocks/{own_fs}/", f"/v1/blocks/{w.fs}/"),
            data=owners.data,
        )
    if ident == "reader":
        mine = await _signed(w, "get", digest, w.fs, w.tokens["reader"])
        return Req(owners.method, mine.replace("op=get", "op=put"), data=owners.data)
    return None


@row("GET", "/v1/filespaces/{fs}/changes")
async def _changes(w: World) -> Req:
    return with_session(w, "GET", w.p("changes") + "?since=0")


@row("GET", "/v1/filespaces/{fs}/statistics")
async def _statistics(w: World) -> Req:
    return with_session(w, "GET", w.p("statistics"))


@row("POST", "/v1/admin/gc", write=True)
async def _gc(w: World) -> Req:
    grace = hub_state(w.api.hub).settings.url_ttl_seconds
    return with_session(w, "POST", "/v1/admin/gc", json={"grace_seconds": grace})


@row("GET", "/v1/filespaces/{fs}/connect/stores")
async def _stores(w: World) -> Req:
    return with_session(w, "GET", w.p("connect/stores"))


@row("POST", "/v1/filespaces/{fs}/connect/stores", write=True)
async def _add_store(w: World) -> Req:
    return with_session(
        w, "POST", w.p("connect/stores"), json={"name": "st3", "config": store_config(w)}
    )


@row("GET", "/v1/filespaces/{fs}/connect/store")
async def _get_store(w: World) -> Req:
    return with_session(w, "GET", w.p("connect/store") + "?" + q(name="st"))


@row("POST", "/v1/filespaces/{fs}/connect/stores/rekey", write=True)
async def _rekey(w: World) -> Req:
    return with_session(
        w,
        "POST",
        w.p("connect/stores/rekey"),
        json={"name": "st", "access_key": w.s3.access_key, "secret_key": w.s3.secret_key},
    )


@row("POST", "/v1/filespaces/{fs}/connect/stores/remove", session=True, write=True)
async def _remove_store(w: World) -> Req:
    return with_session(
        w, "POST", w.p("connect/stores/remove"), json={"name": "st2", "force": True}
    )


@row("POST", "/v1/filespaces/{fs}/connect/links", session=True, write=True)
async def _links(w: World) -> Req:
    return with_session(
        w,
        "POST",
        w.p("connect/links"),
        json={
            "links": [
                {
                    "path": "/linked-new",
                    "store": "st",
                    "object_id": "o-new",
                    "size": 1,
                    "checksum": "c",
                }
            ]
        },
    )


@row("POST", "/v1/filespaces/{fs}/connect/unlink", session=True, write=True)
async def _unlink(w: World) -> Req:
    return with_session(w, "POST", w.p("connect/unlink"), json={"path": "/l-unlink"})


@row("GET", "/v1/filespaces/{fs}/connect/files")
async def _linked(w: World) -> Req:
    return with_session(w, "GET", w.p("connect/files") + "?" + q(store="st"))


@row("GET", "/v1/filespaces/{fs}/connect/count")
async def _count(w: World) -> Req:
    return with_session(w, "GET", w.p("connect/count") + "?" + q(store="st"))


@row("POST", "/v1/filespaces/{fs}/connect/urls")
async def _connect_urls(w: World) -> Req:
    return with_session(w, "POST", w.p("connect/urls"), json={"ids": [w.link_id]})


@row("POST", "/v1/filespaces/{fs}/locks", session=True, write=True)
async def _lock(w: World) -> Req:
    return with_session(w, "POST", w.p("locks"), json={"path": "/lockme", "mode": "exclusive"})


@row("DELETE", "/v1/filespaces/{fs}/locks/{lock_id}", session=True)
async def _unlock(w: World) -> Req:
    return with_session(w, "DELETE", w.p(f"locks/{w.lock_id}"))


@row("GET", "/v1/filespaces/{fs}/locks")
async def _locks(w: World) -> Req:
    return with_session(w, "GET", w.p("locks"))


@row("POST", "/v1/filespaces/{fs}/range-locks", session=True, write=True)
async def _lock_range(w: World) -> Req:
    return with_session(w, "POST", w.p("range-locks"), json={
        "path": "/lockme", "handle": "h1", "offset": 0, "length": 10, "mode": "exclusive",
        "request_id": "tenancy-1"})


@row("POST", "/v1/filespaces/{fs}/range-locks/release", session=True)
async def _release_ranges(w: World) -> Req:
    return with_session(w, "POST", w.p("range-locks/release"), json={"handle": "h1"})


@row("GET", "/v1/filespaces/{fs}/range-locks")
async def _list_ranges(w: World) -> Req:
    return with_session(w, "GET", w.p("range-locks") + "?path=/lockme")


NO_SESSION = (
    "the route takes no session: the replayed id is not read and the token acts on its own rights"
)
READ_RIGHT = "a read: a read-only token's right"
SIGNED_NO_TOKEN = "a signed URL is checked by its signature alone: no token, no session is sent"


def expectations(method: str, path: str) -> dict[str, Expect]:
    """What each identity must get on a route (the rules of lucidlink/hub: principal, sessions)."""
    key = (method, path)
    if key in PUBLIC_ROUTES:
        return {ident: Own() for ident in IDENTITIES}
    if key in SIGNED_ROUTES:
        signed = Refused(403, "bad_signature")
        return {
            "stranger": signed,
            "limited": signed,
            "reader": signed if method == "PUT" else NA(READ_RIGHT),
            "revoked": NA(SIGNED_NO_TOKEN),
            "replay": NA(SIGNED_NO_TOKEN),
        }
    out: dict[str, Expect] = {"revoked": Refused(401, "unauthenticated")}
    if path.startswith("/v1/filespaces/{fs}"):
        out["stranger"] = out["limited"] = Refused(404, "filespace_not_found")
    elif path.startswith("/v1/sessions/"):
        out["stranger"] = out["limited"] = Refused(403, "permission_denied")
    else:  # whoami, the filespace list, the GC: each token within its own reach
        out["stranger"] = out["limited"] = Own()
    if key in WRITE_ROUTES:
        out["reader"] = Refused(403, "read_only")
    elif key in SESSION_ROUTES:
        out["reader"] = Refused(403, "permission_denied")  # another token's session
    else:
        out["reader"] = NA(READ_RIGHT)
    if key in SESSION_ROUTES:
        out["replay"] = Refused(403, "permission_denied")
    elif method == "GET":
        out["replay"] = Own()
    else:
        out["replay"] = NA(NO_SESSION)
    return out


# Session routes run last: closing the owner's session (and releasing its lock) would
# change what the routes after it can be asked.
LAST = [("DELETE", "/v1/filespaces/{fs}/locks/{lock_id}"), ("DELETE", "/v1/sessions/{sid}")]
MATRIX: list[Row] = [
    Row(
        r.method,
        r.path,
        ROW_BUILDERS[(r.method, r.path)],
        expectations(r.method, r.path),
        _signed_variant if (r.method, r.path) in SIGNED_ROUTES else None,
    )
    for r in sorted(
        ROUTES, key=lambda r: LAST.index((r.method, r.path)) if (r.method, r.path) in LAST else -1
    )
    if (r.method, r.path) in ROW_BUILDERS
]


def test_every_route_has_a_matrix_row() -> None:
    """A new route without a row (and the builder of its request) fails here."""
    assert sorted((r.method, r.path) for r in MATRIX) == sorted((r.method, r.path) for r in ROUTES)
    assert len(MATRIX) == len(ROUTES)
    for r in MATRIX:
        assert set(r.expect) == set(IDENTITIES), r.path


# -- the world ------------------------------------------------------------------------------------


async def make_world(api: Api, http: aiohttp.ClientSession, s3: SeaweedS3) -> World:
    hub = api.hub
    owner = hub.token
    other = await api.raw.filespace_id("other")
    stranger = make_token(hub, workspace="acme", filespaces=["theirs"], admin=True)
    theirs = await api.raw.filespace_id("theirs", token=stranger)
    tokens = {
        "stranger": stranger,
        "limited": make_token(hub, filespaces=["other"], admin=True),
        "reader": make_token(hub, read_only=True, admin=True),
        "revoked": make_token(hub, admin=True),
        "replay": make_token(hub, admin=True),
    }
    hub.hub.write(admin.revoke_token, key_id_of(tokens["revoked"]))
    # Each identity that can has its own session too (the owner's is what it must not use).
    for ident, fs in (
        ("stranger", theirs),
        ("limited", other),
        ("reader", api.fs),
        ("replay", api.fs),
    ):
        await api.ok(
            "POST",
            f"/v1/filespaces/{fs}/sessions",
            201,
            json={"client": ident},
            token=tokens[ident],
        )
    sid = (await api.ok("POST", api.p("sessions"), 201, json={"client": "owner"}))["session_id"]
    # The owner's filespace: files, directories, blocks, a held lock, data stores and links.
    for d in ("/dir", "/victim-delete", "/victim-move"):
        await api.mkdir(d)
    await api.write("/file", [b"abc"])
    await api.write("/victim-truncate", [b"xyz"])
    garbage = await api.upload(b"garbage of the owner's filespace")
    shift = int((hub_state(hub).settings.url_ttl_seconds + 3600) * 1e9)
    hub.hub.write(
        lambda tx: tx.execute(
            "UPDATE blocks SET last_seen = last_seen - ? WHERE hash = ?", (shift, garbage)
        )
    )
    lock = await api.ok(
        "POST",
        api.p("locks"),
        json={"path": "/locked", "mode": "exclusive"},
        headers={SESSION_HEADER: sid},
    )
    assert lock["state"] == "held", lock
    for name in ("st", "st2"):
        await api.ok(
            "POST",
            api.p("connect/stores"),
            201,
            json={
                "name": name,
                "config": {
                    "access_key": s3.access_key,
                    "secret_key": s3.secret_key,
                    "bucket_name": s3.bucket,
                    "region": s3.region,
                    "endpoint": s3.endpoint,
                    "url_expiration_minutes": 60,
                    "use_virtual_addressing": False,
                },
            },
        )
    linked = await api.ok(
        "POST",
        api.p("connect/links"),
        201,
        json={
            "links": [
                {"path": "/l", "store": "st", "object_id": "o", "size": 1, "checksum": "c"},
                {"path": "/l-unlink", "store": "st", "object_id": "o2", "size": 1, "checksum": "c"},
            ]
        },
    )
    demo_ws = (await api.ok("GET", "/v1/whoami"))["workspace"]["id"]
    return World(
        api,
        http,
        s3,
        owner,
        tokens,
        api.fs,
        other,
        theirs,
        sid,
        lock["lock_id"],
        linked["entries"][0]["id"],
        digest_of(b"abc"),
        garbage,
        demo_ws,
    )


def forbidden_in_own_answer(w: World, ident: str, key: tuple[str, str]) -> list[str]:
    """Owner data an identity's successful answer must not carry."""
    if ident == "replay":
        # Same workspace, every right: it may read the filespace, not the owner's lock or session.
        return [w.lock_id] + ([w.sid] if key == ("GET", "/v1/filespaces/{fs}/locks") else [])
    out = w.owner_markers()
    if ident == "stranger":
        out.append(w.other)
    else:  # the limited token's workspace is the owner's: its id is no secret to it
        out.remove(w.demo_ws)
    return out


def no_markers(body: Any, markers: list[str], where: str) -> None:
    text = body.decode(errors="replace") if isinstance(body, bytes) else json.dumps(body)
    for marker in markers:
        assert marker not in text, (
            f"{where}: the answer carries the owner's {marker!r}: {text[:500]}"
        )


# -- the test -------------------------------------------------------------------------------------

# Cells known to cross the line (bugs in lucidlink/hub), run as strict xfails in their own test.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}


async def run_cell(w: World, r: Row, ident: str, owners: Req) -> None:
    expect = r.expect[ident]
    where = f"{ident} {r.method} {r.path}"
    if isinstance(expect, NA):
        return
    req = owners
    if r.variant is not None:
        variant = await r.variant(w, ident, owners)
        assert variant is not None, where
        req = variant
    token = None if (r.method, r.path) in SIGNED_ROUTES else w.tokens[ident]
    before = full_snapshot(w.api)
    status, body = await w.send(req, token)
    if isinstance(expect, Refused):
        expect_error(status, body, expect.status, expect.code)
        # An error envelope only (no entries, no data), naming none of the owner's secrets.
        assert set(body) == {"error"}, (where, body)
        no_markers(body, [w.sid, w.lock_id, w.garbage, w.s3.secret_key, w.demo_ws], where)
    else:
        assert 200 <= status < 300, (where, status, body)
        no_markers(body, forbidden_in_own_answer(w, ident, (r.method, r.path)), where)
    assert full_snapshot(w.api) == before, f"{where}: the hub's state changed"


@pytest.mark.asyncio
async def test_tenancy_matrix(api: Api, seaweed: SeaweedS3) -> None:
    async with aiohttp.ClientSession() as http:
        w = await make_world(api, http, seaweed)
        cells = 0
        for r in MATRIX:
            owners = await r.build(w)
            for ident in IDENTITIES:
                if (ident, r.method, r.path) in KNOWN_BUGS:
                    continue
                await run_cell(w, r, ident, owners)
                cells += not isinstance(r.expect[ident], NA)
            # The rightful owner's very same request succeeds: the refusals were not vacuous.
            status, body = await w.send(
                owners, None if (r.method, r.path) in SIGNED_ROUTES else w.owner
            )
            assert 200 <= status < 300, ("owner", r.method, r.path, status, body)
        engine = hub_state_engine(api.hub)
        total = len(MATRIX) * len(IDENTITIES)
        na = sum(isinstance(e, NA) for r in MATRIX for e in r.expect.values())
        print(
            f"\ntenancy matrix ({engine}): {len(MATRIX)} routes x {len(IDENTITIES)} identities"
            f" = {total} cells; "
            f"{cells} checked, {na} not applicable, {len(KNOWN_BUGS)} known bugs (xfail)"
        )
        assert cells == total - na - len(KNOWN_BUGS)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "cell",
    [
        pytest.param(cell, marks=pytest.mark.xfail(strict=True, reason=reason), id=" ".join(cell))
        for cell, reason in sorted(KNOWN_BUGS.items())
    ],
)
async def test_known_tenancy_bugs(api: Api, seaweed: SeaweedS3, cell: tuple[str, str, str]) -> None:
    """The cells that cross the line today (KNOWN_BUGS): each must be refused, changing nothing."""
    ident, method, path = cell
    r = next(r for r in MATRIX if (r.method, r.path) == (method, path))
    async with aiohttp.ClientSession() as http:
        w = await make_world(api, http, seaweed)
        owners = await r.build(w)
        await run_cell(w, r, ident, owners)
        status, body = await w.send(owners, None if (method, path) in SIGNED_ROUTES else w.owner)
        assert 200 <= status < 300, ("owner", method, path, status, body)


@pytest.mark.asyncio
async def test_owner_ids_do_not_work_through_ones_own_reach(api: Api, seaweed: SeaweedS3) -> None:
    """The other way in: aim a request at what the identity may use, naming the owner's ids.

    A lock id, a session id, a block hash or a linked file's id of the owner, sent with
    a filespace (and session) the identity holds, reaches nothing of the owner's.
    """
    async with aiohttp.ClientSession() as http:
        w = await make_world(api, http, seaweed)
        sessions = {}
        for ident, fs in (("stranger", w.theirs), ("limited", w.other), ("replay", w.fs)):
            sessions[ident] = (
                await api.ok(
                    "POST",
                    f"/v1/filespaces/{fs}/sessions",
                    201,
                    json={"client": ident},
                    token=w.tokens[ident],
                )
            )["session_id"]
        before = full_snapshot(api)
        for ident, fs in (("stranger", w.theirs), ("limited", w.other), ("replay", w.fs)):
            token, own = w.tokens[ident], {SESSION_HEADER: sessions[ident]}
            # The owner's lock id with one's own session: not released, not withdrawn.
            body = await api.ok(
                "DELETE", f"/v1/filespaces/{fs}/locks/{w.lock_id}", token=token, headers=own
            )
            assert body == {"released": False}, (ident, body)
            status, body = await api.call(
                "DELETE",
                f"/v1/filespaces/{fs}/locks/{w.lock_id}?timeout=1&path=/locked",
                token=token,
                headers=own,
            )
            assert status >= 400 and set(body) == {"error"}, (ident, status, body)
            # Locks listed: none of the owner's ids.
            no_markers(
                await api.ok("GET", f"/v1/filespaces/{fs}/locks", token=token),
                [w.lock_id, w.sid],
                ident,
            )
            if ident == "replay":
                continue
            # The owner's linked file by id: missing, no URL.
            body = await api.ok(
                "POST", f"/v1/filespaces/{fs}/connect/urls", json={"ids": [w.link_id]}, token=token
            )
            assert body == {"urls": {}, "missing": [w.link_id]}, (ident, body)
            # The owner's block hash: not "present" (the owner's blocks cannot be probed), a
            # signed GET for it finds nothing, and a commit naming it is refused.
            body = await api.ok(
                "POST",
                f"/v1/filespaces/{fs}/blocks/urls",
                json={"op": "put", "hashes": [w.hash]},
                token=token,
            )
            assert body["present"] == [] and w.hash in body["urls"], (ident, body)
            url = (
                await api.ok(
                    "POST",
                    f"/v1/filespaces/{fs}/blocks/urls",
                    json={"op": "get", "hashes": [w.hash]},
                    token=token,
                )
            )["urls"][w.hash]
            status, data = await api.url("GET", url)
            assert status == 404 and b"abc" not in (
                data if isinstance(data, bytes) else json.dumps(data).encode()
            )
            status, body = await api.call(
                "POST",
                f"/v1/filespaces/{fs}/commit",
                token=token,
                headers=own,
                json={
                    "path": "/stolen",
                    "size": 3,
                    "blocks": [{"index": 0, "hash": w.hash, "length": 3}],
                },
            )
            assert 400 <= status < 500 and set(body) == {"error"}, (ident, status, body)
            # The journal and listings of its own filespace show nothing of the owner's.
            for route in ("changes?since=0", "list?path=/", "statistics", "connect/stores"):
                no_markers(
                    await api.ok("GET", f"/v1/filespaces/{fs}/{route}", token=token),
                    w.owner_markers(),
                    route,
                )
        assert full_snapshot(api) == before
        # The owner's lock is still held by the owner's session.
        held = await api.ok("GET", api.p("locks") + "?path=/locked")
        assert [(h["lock_id"], h["session_id"], h["state"]) for h in held["locks"]] == [
            (w.lock_id, w.sid, "held")
        ]
