"""Authentication, the rights matrix (workspace, filespace, read-only, admin), and sessions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from lucidlink.hub.api.routes import ROUTES
from lucidlink.hub.core import admin
from tests.support.hubfixtures import Api, digest_of, expect_error, key_id_of, make_token, snapshot

pytest_plugins = ["tests.support.hubfixtures"]

pytestmark = pytest.mark.asyncio

TOKEN_ROUTES = sorted((r.method, r.path) for r in ROUTES if r.auth == "token")
FS_ROUTES = [(m, p) for m, p in TOKEN_ROUTES if p.startswith("/v1/filespaces/{fs}")]


@pytest_asyncio.fixture
async def world(api: Api) -> AsyncIterator[dict[str, Any]]:
    """A file, a directory and a session to aim requests at."""
    await api.mkdir("/dir")
    await api.write("/file", [b"abc"])
    sid = (await api.ok("POST", api.p("sessions"), 201, json={"client": "owner"}))["session_id"]
    yield {"api": api, "sid": sid, "hash": digest_of(b"abc")}


def concrete(path: str, api: Api, sid: str, fs: str | None = None) -> str:
    out = path.replace("{fs}", fs or api.fs).replace("{sid}", sid).replace("{lock_id}", "0" * 32)
    assert "{" not in out, f"give {path} a value for its parameter"
    return out


def valid_request(method: str, path: str, world: dict[str, Any]) -> dict[str, Any]:
    """Arguments that make a well-formed request to the route (query or JSON body)."""
    h = world["hash"]
    query = {
        "/v1/filespaces/{fs}/entry": "?path=/file",
        "/v1/filespaces/{fs}/list": "?path=/",
        "/v1/filespaces/{fs}/file": "?path=/file",
        "/v1/filespaces/{fs}/changes": "?since=0",
    }
    body = {
        "/v1/filespaces/{fs}/sessions": {"client": "x"},
        "/v1/filespaces/{fs}/mkdir": {"path": "/new"},
        "/v1/filespaces/{fs}/delete": {"path": "/file"},
        "/v1/filespaces/{fs}/move": {"src": "/file", "dst": "/moved"},
        "/v1/filespaces/{fs}/copy": {"src": "/file", "dst": "/copied"},
        "/v1/filespaces/{fs}/truncate": {"path": "/file", "size": 1},
        "/v1/filespaces/{fs}/commit": {"path": "/file", "size": 3, "blocks": [{"index": 0, "hash": h, "length": 3}]},
        "/v1/filespaces/{fs}/commits": {"commits": [{"path": "/c1", "size": 3,
                                                     "blocks": [{"index": 0, "hash": h, "length": 3}]}]},
        "/v1/filespaces/{fs}/blocks/urls": {"op": "put", "hashes": [digest_of(b"new")]},
        "/v1/admin/gc": {"grace_seconds": 3600},
    }
    out: dict[str, Any] = {"suffix": query.get(path, "")}
    if method in ("POST", "PUT"):
        out["json"] = body.get(path, {})
    return out


async def request(world: dict[str, Any], method: str, path: str, fs: str | None = None,
                  **kw: Any) -> tuple[int, Any]:
    api: Api = world["api"]
    req = valid_request(method, path, world)
    url = concrete(path, api, world["sid"], fs) + req.pop("suffix")
    return await api.call(method, url, **{**req, **kw})


# -- authentication ----------------------------------------------------------------------

BAD_AUTH = {
    "missing": {},
    "empty-bearer": {"Authorization": "Bearer "},
    "basic-scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
    "malformed": {"Authorization": "Bearer sa_live:short"},
    "not-a-token": {"Authorization": "Bearer hello"},
    "unknown": {"Authorization": "Bearer sa_live:0123456789abcdef:" + "s" * 43},
}


@pytest.mark.parametrize("route", TOKEN_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
async def test_bad_tokens_are_401_on_every_route(world: dict[str, Any], route: tuple[str, str]) -> None:
    # Every kind of bad credentials against one hub per route (a hub per pair cost CI
    # 2 minutes); a failure names the kind.
    api: Api = world["api"]
    before = snapshot(api.hub)
    for auth in sorted(BAD_AUTH):
        headers = BAD_AUTH[auth]
        # RawHub always sends the admin token unless told otherwise: override the header.
        status, body = await request(world, *route, headers={"Authorization": headers.get("Authorization", "")})
        try:
            err = expect_error(status, body, 401, "unauthenticated")
            assert "token" in err["message"]
            assert "s" * 43 not in err["message"]  # a secret is never echoed
        except AssertionError as exc:
            raise AssertionError(f"bad credentials {auth!r}: {exc}") from exc
        assert snapshot(api.hub) == before, f"bad credentials {auth!r} changed the hub"


async def test_wrong_secret_and_revoked_token(world: dict[str, Any]) -> None:
    api: Api = world["api"]
    token = make_token(api.hub)
    assert (await api.ok("GET", "/v1/whoami", token=token))["key_id"] == key_id_of(token)
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    await api.fail("GET", "/v1/whoami", 401, "unauthenticated", "unknown, revoked or wrong", token=wrong)
    api.hub.hub.write(admin.revoke_token, key_id_of(token))
    # Effective on the very next request, on every route.
    before = snapshot(api.hub)
    for route in TOKEN_ROUTES:
        status, body = await request(world, *route, token=token)
        expect_error(status, body, 401, "unauthenticated", "revoked")
    assert snapshot(api.hub) == before
    # Other tokens are unaffected; revoking twice is harmless; an unknown key id is an error.
    assert (await api.ok("GET", "/v1/whoami"))["admin"] is True
    api.hub.hub.write(admin.revoke_token, key_id_of(token))
    with pytest.raises(admin.NotFoundError):
        api.hub.hub.write(admin.revoke_token, "nosuchkey")


async def test_revocation_during_a_long_poll_does_not_leak_later_requests(world: dict[str, Any]) -> None:
    api: Api = world["api"]
    token = make_token(api.hub)
    seq = await api.seq()
    poll = asyncio.create_task(api.call("GET", api.p("changes") + f"?since={seq}&wait=1", token=token))
    await asyncio.sleep(0.2)
    api.hub.hub.write(admin.revoke_token, key_id_of(token))
    status, _ = await poll  # authenticated when it started
    assert status == 200
    await api.fail("GET", api.p("changes") + f"?since={seq}", 401, "unauthenticated", token=token)


# -- the rights matrix -------------------------------------------------------------------


@pytest.mark.parametrize("route", FS_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
async def test_token_of_another_workspace_cannot_see_the_filespace(world: dict[str, Any],
                                                                   route: tuple[str, str]) -> None:
    api: Api = world["api"]
    stranger = make_token(api.hub, workspace="acme", filespaces=["theirs"], admin=True)
    before = snapshot(api.hub)
    status, body = await request(world, *route, token=stranger)
    err = expect_error(status, body, 404, "filespace_not_found", api.fs)
    assert "does not exist or this token may not use it" in err["message"]
    assert snapshot(api.hub) == before


async def test_token_of_another_workspace_sees_only_its_own(world: dict[str, Any]) -> None:
    api: Api = world["api"]
    stranger = make_token(api.hub, workspace="acme", filespaces=["theirs"])
    body = await api.ok("GET", "/v1/filespaces", token=stranger)
    assert [f["name"] for f in body["filespaces"]] == ["theirs"]
    assert (await api.ok("GET", "/v1/whoami", token=stranger))["workspace"]["name"] == "acme"
    # Missing and foreign filespaces answer alike, so ids cannot be probed.
    missing = await api.fail("GET", "/v1/filespaces/" + "f" * 32, 404, "filespace_not_found", token=stranger)
    foreign = await api.fail("GET", f"/v1/filespaces/{api.fs}", 404, "filespace_not_found", token=stranger)
    assert missing["message"].replace("f" * 32, "X") == foreign["message"].replace(api.fs, "X")
    # Nor can it touch another workspace's session.
    await api.fail("POST", f"/v1/sessions/{world['sid']}/heartbeat", 403, "permission_denied", "another token",
                   token=stranger)


@pytest.mark.parametrize("route", FS_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
async def test_token_limited_to_one_filespace_cannot_use_another(world: dict[str, Any],
                                                                 route: tuple[str, str]) -> None:
    api: Api = world["api"]
    limited = make_token(api.hub, filespaces=["data"])
    other = await api.raw.filespace_id("other")
    before = snapshot(api.hub)
    status, body = await request(world, *route, fs=other, token=limited)
    expect_error(status, body, 404, "filespace_not_found", other)
    assert snapshot(api.hub) == before


async def test_limited_token_lists_and_uses_its_filespace(world: dict[str, Any]) -> None:
    api: Api = world["api"]
    limited = make_token(api.hub, filespaces=["data"])
    assert [f["name"] for f in (await api.ok("GET", "/v1/filespaces", token=limited))["filespaces"]] == ["data"]
    assert (await api.ok("GET", "/v1/whoami", token=limited))["filespaces"] == [api.fs]
    await api.ok("POST", api.p("mkdir"), json={"path": "/by-limited"}, token=limited)
    assert await api.exists("/by-limited")


WRITE_ROUTES = [
    ("POST", "/v1/filespaces/{fs}/mkdir"),
    ("POST", "/v1/filespaces/{fs}/delete"),
    ("POST", "/v1/filespaces/{fs}/move"),
    ("POST", "/v1/filespaces/{fs}/copy"),
    ("POST", "/v1/filespaces/{fs}/truncate"),
    ("POST", "/v1/filespaces/{fs}/commit"),
    ("POST", "/v1/filespaces/{fs}/commits"),
    ("POST", "/v1/filespaces/{fs}/blocks/urls"),  # op=put
]


@pytest.mark.parametrize("route", WRITE_ROUTES, ids=lambda r: r[1].rsplit("/", 1)[-1])
async def test_read_only_token_cannot_write(world: dict[str, Any], route: tuple[str, str]) -> None:
    api: Api = world["api"]
    reader = make_token(api.hub, read_only=True)
    before = snapshot(api.hub)
    status, body = await request(world, *route, token=reader)
    err = expect_error(status, body, 403, "read_only", "read-only", key_id_of(reader))
    assert "token create" in err["message"]
    assert snapshot(api.hub) == before
    # The same request is fine with a read-write token.
    status, body = await request(world, *route)
    assert status == 200, body


async def test_read_only_token_can_read(world: dict[str, Any]) -> None:
    api: Api = world["api"]
    reader = make_token(api.hub, read_only=True)
    before = snapshot(api.hub)
    who = await api.ok("GET", "/v1/whoami", token=reader)
    assert who["read_only"] is True and who["admin"] is False
    assert len((await api.ok("GET", "/v1/filespaces", token=reader))["filespaces"]) == 3
    assert (await api.ok("GET", f"/v1/filespaces/{api.fs}", token=reader))["seq"] == 2
    assert (await api.ok("GET", api.p("entry") + "?path=/file", token=reader))["size"] == 3
    assert [e["name"] for e in (await api.ok("GET", api.p("list") + "?path=/", token=reader))["entries"]] == [
        "dir", "file"]
    info = await api.ok("GET", api.p("file") + "?path=/file", token=reader)
    assert info["blocks"][0]["hash"] == world["hash"]
    assert len((await api.ok("GET", api.p("changes") + "?since=0", token=reader))["changes"]) == 2
    assert (await api.ok("GET", api.p("statistics"), token=reader))["file_count"] == 1
    urls = await api.ok("POST", api.p("blocks/urls"), json={"op": "get", "hashes": [world["hash"]]}, token=reader)
    status, data = await api.url("GET", urls["urls"][world["hash"]])
    assert status == 200 and data == b"abc"
    assert snapshot(api.hub) == before
    # Sessions are how a reader holds locks, so it may open one.
    await api.ok("POST", api.p("sessions"), 201, json={}, token=reader)


async def test_only_admin_tokens_run_the_gc(world: dict[str, Any]) -> None:
    api: Api = world["api"]
    await api.upload(b"garbage")
    tokens = (make_token(api.hub), make_token(api.hub, read_only=True))
    before = snapshot(api.hub)
    for token in tokens:
        await api.fail("POST", "/v1/admin/gc", 403, "permission_denied", "not an admin", "--admin",
                       json={"grace_seconds": 0}, token=token)
    assert snapshot(api.hub) == before
    assert await api.gc() == 1


# -- sessions ----------------------------------------------------------------------------


async def test_session_open_heartbeat_close(world: dict[str, Any]) -> None:
    api: Api = world["api"]
    opened = await api.ok("POST", api.p("sessions"), 201, json={"client": "host-1"})
    sid = opened["session_id"]
    row = api.hub.hub.write(lambda tx: dict(tx.one("SELECT * FROM sessions WHERE id = ?", (sid,))))
    assert row["client"] == "host-1" and row["filespace_id"] == api.fs and row["expires"] == opened["expires"]
    await asyncio.sleep(0.01)
    beat = await api.ok("POST", f"/v1/sessions/{sid}/heartbeat")
    assert beat["expires"] > opened["expires"] and beat["lease_seconds"] == 30.0
    assert api.hub.hub.write(lambda tx: tx.one("SELECT expires FROM sessions WHERE id = ?", (sid,))["expires"]) == \
        beat["expires"]
    assert await api.ok("DELETE", f"/v1/sessions/{sid}") == {"closed": True}
    err = await api.fail("POST", f"/v1/sessions/{sid}/heartbeat", 410, "session_expired", "link the filespace again")
    assert sid not in err["message"]  # a session id in a message could be replayed
    assert await api.ok("DELETE", f"/v1/sessions/{sid}") == {"closed": True}  # idempotent


async def test_heartbeat_of_unknown_or_other_tokens_session(world: dict[str, Any]) -> None:
    api: Api = world["api"]
    sid = world["sid"]
    other = make_token(api.hub)
    before = snapshot(api.hub)
    await api.fail("POST", "/v1/sessions/0123456789abcdef/heartbeat", 410, "session_expired", "expired")
    # A session acts only for the token that opened it: another token can neither renew nor end it.
    for method, route in (("POST", f"/v1/sessions/{sid}/heartbeat"), ("DELETE", f"/v1/sessions/{sid}")):
        err = await api.fail(method, route, 403, "permission_denied", "another token", token=other)
        assert sid not in err["message"]
    assert snapshot(api.hub) == before
    await api.ok("POST", f"/v1/sessions/{sid}/heartbeat")


async def test_session_expires_without_heartbeats(make_hub: Any, http_session: Any) -> None:
    hub = make_hub(lease_seconds=0.5)
    headers = {"Authorization": f"Bearer {hub.token}"}
    async with http_session.get(hub.url + "/v1/filespaces", headers=headers) as r:
        fs = (await r.json())["filespaces"][0]["id"]
    async with http_session.post(hub.url + f"/v1/filespaces/{fs}/sessions", json={}, headers=headers) as r:
        body = await r.json()
        assert r.status == 201 and body["lease_seconds"] == 0.5
    sid = body["session_id"]
    async with http_session.post(hub.url + f"/v1/sessions/{sid}/heartbeat", headers=headers) as r:
        assert r.status == 200
    await asyncio.sleep(1.0)
    async with http_session.post(hub.url + f"/v1/sessions/{sid}/heartbeat", headers=headers) as r:
        expect_error(r.status, await r.json(), 410, "session_expired", "expired")
    # The GC drops expired sessions.
    async with http_session.post(hub.url + "/v1/admin/gc", json={}, headers=headers) as r:
        assert r.status == 200
    assert hub.hub.write(lambda tx: tx.one("SELECT COUNT(*) AS n FROM sessions")["n"]) == 0
