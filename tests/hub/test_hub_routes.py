"""Every route of the hub, once with success and once with a failure; and the OpenAPI document.

The scenario table is keyed by (method, path template) and must cover exactly
:data:`lucidlink.hub.api.routes.ROUTES`, so a new route without a test fails here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lucidlink.hub.api.routes import ROUTES
from tests.support.hubfixtures import (
    Api,
    digest_of,
    hub_state,
    make_token,
    q,
    random_bytes,
    signer_of,
)

pytest_plugins = ["tests.support.hubfixtures"]

Scenario = Callable[[Api], Awaitable[None]]
SCENARIOS: dict[tuple[str, str], Scenario] = {}


def scenario(method: str, path: str) -> Callable[[Scenario], Scenario]:
    def deco(fn: Scenario) -> Scenario:
        SCENARIOS[(method, path)] = fn
        return fn

    return deco


@scenario("GET", "/healthz")
async def _healthz(api: Api) -> None:
    body = await api.ok("GET", "/healthz")
    assert body["status"] == "ok" and body["metadata"] in ("sqlite", "postgresql") and body["blocks"] == "local"
    await api.fail("POST", "/healthz", 405, "method_not_allowed", "POST /healthz")


@scenario("GET", "/metrics")
async def _metrics(api: Api) -> None:
    text = (await api.ok("GET", "/metrics")).decode()
    assert "lucidhub_requests_total" in text
    await api.fail("DELETE", "/metrics", 405, "method_not_allowed", "DELETE /metrics")


@scenario("GET", "/v1/openapi.json")
async def _openapi(api: Api) -> None:
    body = await api.ok("GET", "/v1/openapi.json")
    assert body["openapi"].startswith("3.")
    await api.fail("POST", "/v1/openapi.json", 405, "method_not_allowed")


@scenario("GET", "/v1/whoami")
async def _whoami(api: Api) -> None:
    body = await api.ok("GET", "/v1/whoami")
    assert body["workspace"]["name"] == "demo" and body["admin"] is True and body["read_only"] is False
    assert body["filespaces"] is None
    await api.fail("GET", "/v1/whoami", 401, "unauthenticated", "malformed", token="nope")


@scenario("GET", "/v1/filespaces")
async def _filespaces(api: Api) -> None:
    body = await api.ok("GET", "/v1/filespaces")
    assert sorted(f["name"] for f in body["filespaces"]) == ["data", "other", "small"]
    assert {f["name"]: f["block_size"] for f in body["filespaces"]}["small"] == 65536
    await api.fail("GET", "/v1/filespaces", 401, "unauthenticated", headers={"Authorization": "Basic x"})


@scenario("GET", "/v1/filespaces/{fs}")
async def _filespace(api: Api) -> None:
    body = await api.ok("GET", f"/v1/filespaces/{api.fs}")
    assert body["id"] == api.fs and body["name"] == "data" and body["seq"] == 0
    assert body["block_size"] == 4 * 1024 * 1024
    await api.fail("GET", "/v1/filespaces/" + "0" * 32, 404, "filespace_not_found", "0" * 32)


@scenario("POST", "/v1/filespaces/{fs}/sessions")
async def _open_session(api: Api) -> None:
    body = await api.ok("POST", api.p("sessions"), 201, json={"client": "test"})
    assert len(body["session_id"]) == 32 and body["lease_seconds"] == 30.0
    await api.fail("POST", api.p("sessions"), 400, "bad_request", "'client'", json={"client": 5})


@scenario("POST", "/v1/sessions/{sid}/heartbeat")
async def _heartbeat(api: Api) -> None:
    sid = (await api.ok("POST", api.p("sessions"), 201, json={}))["session_id"]
    body = await api.ok("POST", f"/v1/sessions/{sid}/heartbeat")
    assert body["session_id"] == sid and body["filespace_id"] == api.fs
    await api.fail("POST", "/v1/sessions/nosuch/heartbeat", 410, "session_expired", "expired")


@scenario("DELETE", "/v1/sessions/{sid}")
async def _close_session(api: Api) -> None:
    sid = (await api.ok("POST", api.p("sessions"), 201, json={}))["session_id"]
    assert await api.ok("DELETE", f"/v1/sessions/{sid}") == {"closed": True}
    await api.fail("DELETE", f"/v1/sessions/{sid}", 401, "unauthenticated", headers={"Authorization": ""})


@scenario("GET", "/v1/filespaces/{fs}/entry")
async def _stat(api: Api) -> None:
    await api.mkdir("/d")
    status, body = await api.stat("/d")
    assert status == 200 and body["type"] == "dir" and body["path"] == "/d" and body["name"] == "d"
    await api.fail("GET", api.p("entry") + "?path=/missing", 404, "not_found", "/missing")


@scenario("GET", "/v1/filespaces/{fs}/list")
async def _list(api: Api) -> None:
    await api.mkdir("/d/e")
    body = await api.ok("GET", api.p("list") + "?path=/d")
    assert [e["path"] for e in body["entries"]] == ["/d/e"] and body["cursor"] is None
    await api.write("/f", [b"x"])
    await api.fail("GET", api.p("list") + "?path=/f", 409, "not_a_directory", "/f")


@scenario("POST", "/v1/filespaces/{fs}/mkdir")
async def _mkdir(api: Api) -> None:
    entry = await api.mkdir("/a/b")
    assert entry["path"] == "/a/b" and entry["type"] == "dir" and entry["version"] == 1
    await api.fail("POST", api.p("mkdir"), 409, "exists", "/a/b", json={"path": "/a/b", "exist_ok": False})


@scenario("POST", "/v1/filespaces/{fs}/symlink")
async def _symlink(api: Api) -> None:
    entry = await api.ok("POST", api.p("symlink"), 201, json={"path": "/l", "target": "d/../f"})
    assert entry["path"] == "/l" and entry["type"] == "link" and entry["target"] == "d/../f"
    await api.fail("POST", api.p("symlink"), 409, "exists", "/l",
                   json={"path": "/l", "target": "/g"})


@scenario("POST", "/v1/filespaces/{fs}/delete")
async def _delete(api: Api) -> None:
    await api.mkdir("/a")
    body = await api.ok("POST", api.p("delete"), json={"path": "/a"})
    assert body["deleted"] == 1 and body["seq"] == 2
    await api.fail("POST", api.p("delete"), 404, "not_found", "/a", json={"path": "/a"})


@scenario("POST", "/v1/filespaces/{fs}/move")
async def _move(api: Api) -> None:
    await api.mkdir("/a")
    await api.mkdir("/b")
    entry = await api.ok("POST", api.p("move"), json={"src": "/a", "dst": "/c"})
    assert entry["path"] == "/c" and entry["name"] == "c"
    await api.fail("POST", api.p("move"), 409, "exists", "/b", json={"src": "/c", "dst": "/b"})


@scenario("POST", "/v1/filespaces/{fs}/copy")
async def _copy(api: Api) -> None:
    await api.write("/f", [b"hello"])
    body = await api.ok("POST", api.p("copy"), json={"src": "/f", "dst": "/g"})
    assert body["entry"]["path"] == "/g" and body["entry"]["size"] == 5 and body["created"] is True
    await api.mkdir("/d")
    await api.fail("POST", api.p("copy"), 409, "is_a_directory", "/d", json={"src": "/d", "dst": "/h"})


@scenario("POST", "/v1/filespaces/{fs}/truncate")
async def _truncate(api: Api) -> None:
    await api.write("/f", [b"hello"])
    body = await api.ok("POST", api.p("truncate"), json={"path": "/f", "size": 2})
    assert body["entry"]["size"] == 2 and body["entry"]["version"] == 2
    await api.fail("POST", api.p("truncate"), 404, "not_found", "/nofile", json={"path": "/nofile", "size": 0})


@scenario("GET", "/v1/filespaces/{fs}/file")
async def _file(api: Api) -> None:
    await api.write("/f", [b"hello"])
    info = await api.file("/f")
    assert info["entry"]["size"] == 5 and info["block_size"] == 4 * 1024 * 1024
    assert info["blocks"] == [{"index": 0, "hash": digest_of(b"hello"), "length": 5, "used": 5}]
    await api.fail("GET", api.p("file") + "?path=/", 409, "is_a_directory", "/")


@scenario("POST", "/v1/filespaces/{fs}/files")
async def _files(api: Api) -> None:
    await api.write("/f", [b"hello"])
    body = await api.ok("POST", api.p("files"), json={"paths": ["/f", "/missing"]})
    assert [f["path"] for f in body["files"]] == ["/f", "/missing"]
    assert body["files"][0]["file"]["entry"]["size"] == 5
    assert body["files"][1]["error"]["code"] == "not_found"
    await api.fail("POST", api.p("files"), 400, "bad_request", "paths", json={"paths": []})


@scenario("POST", "/v1/filespaces/{fs}/commit")
async def _commit(api: Api) -> None:
    digest = await api.upload(b"abc")
    body = await api.ok("POST", api.p("commit"), json={
        "path": "/f", "size": 3, "blocks": [{"index": 0, "hash": digest, "length": 3}]})
    assert body["created"] is True and body["entry"]["version"] == 1 and body["seq"] == 1
    never = digest_of(b"never uploaded")
    err = await api.fail("POST", api.p("commit"), 409, "block_missing", "upload", json={
        "path": "/g", "size": 3, "blocks": [{"index": 0, "hash": never, "length": 3}]})
    assert err["details"]["missing"] == [never]


@scenario("POST", "/v1/filespaces/{fs}/commits")
async def _commits(api: Api) -> None:
    digest = await api.upload(b"abc")
    blocks = [{"index": 0, "hash": digest, "length": 3}]
    body = await api.ok("POST", api.p("commits"), json={"commits": [
        {"path": "/a", "size": 3, "blocks": blocks}, {"path": "/b", "size": 3, "blocks": blocks}]})
    assert [r["entry"]["path"] for r in body["results"]] == ["/a", "/b"]
    # One transaction: the second change fails, so the first does not land either.
    await api.fail("POST", api.p("commits"), 409, "exists", "/b", json={"commits": [
        {"path": "/c", "size": 3, "blocks": blocks}, {"path": "/b", "size": 3, "mode": "exclusive"}]})
    assert not await api.exists("/c")


@scenario("POST", "/v1/filespaces/{fs}/blocks/urls")
async def _block_urls(api: Api) -> None:
    digest = digest_of(b"x")
    body = await api.ok("POST", api.p("blocks/urls"), json={"op": "put", "hashes": [digest]})
    assert list(body["urls"]) == [digest] and body["present"] == [] and body["block_size"] == 4 * 1024 * 1024
    await api.fail("POST", api.p("blocks/urls"), 400, "bad_request", "'XYZ'",
                   json={"op": "get", "hashes": ["XYZ"]})


@scenario("POST", "/v1/filespaces/{fs}/blocks/chunks")
async def _block_chunks(api: Api) -> None:
    data = random_bytes(100)
    digest = await api.upload(data)
    body = await api.ok("POST", api.p("blocks/chunks"), json={"hashes": [digest, digest_of(b"y")]})
    # One chunk: its digest is the block's own hash.
    assert body == {"chunk_size": 65536, "digests": {digest: digest}, "deferred": []}
    await api.fail("POST", api.p("blocks/chunks"), 400, "bad_request", "'XYZ'", json={"hashes": ["XYZ"]})


@scenario("GET", "/v1/blocks/{fs}/{hash}")
async def _get_block(api: Api) -> None:
    data = random_bytes(100)
    url = await api.block_url(await api.upload(data))
    async with api.raw.session.get(url) as resp:
        assert resp.status == 200 and await resp.read() == data
    status, body = await api.url("GET", url.replace("sig=", "sig=0"))
    assert status == 403 and body["error"]["code"] == "bad_signature"


@scenario("PUT", "/v1/blocks/{fs}/{hash}")
async def _put_block(api: Api) -> None:
    data = random_bytes(100)
    url = await api.block_url(digest_of(data), "put")
    async with api.raw.session.put(url, data=data) as resp:
        assert resp.status == 201 and await resp.json() == {"hash": digest_of(data), "length": 100}
    async with api.raw.session.put(url, data=data + b"!") as resp:
        assert resp.status == 422 and (await resp.json())["error"]["code"] == "hash_mismatch"


@scenario("GET", "/v1/filespaces/{fs}/changes")
async def _changes(api: Api) -> None:
    await api.mkdir("/a")
    body = await api.ok("GET", api.p("changes") + "?since=0")
    assert [(c["seq"], c["op"], c["path"]) for c in body["changes"]] == [(1, "mkdir", "/a")]
    assert body["seq"] == 1 and body["more"] is False
    await api.fail("GET", api.p("changes") + "?since=x", 400, "bad_request", "'since'")


@scenario("GET", "/v1/filespaces/{fs}/statistics")
async def _statistics(api: Api) -> None:
    await api.write("/f", [b"hello"])
    body = await api.ok("GET", api.p("statistics"))
    assert body["file_count"] == 1 and body["data_size"] == 5 and body["block_count"] == 1
    await api.fail("GET", "/v1/filespaces/nope/statistics", 404, "filespace_not_found", "nope")


@scenario("POST", "/v1/admin/gc")
async def _gc(api: Api) -> None:
    assert await api.ok("POST", "/v1/admin/gc", json={}) == {"deleted_blocks": 0}
    await api.fail("POST", "/v1/admin/gc", 403, "permission_denied", "not an admin", json={},
                   token=make_token(api.hub))


@scenario("POST", "/v1/filespaces/{fs}/locks")
async def _request_lock(api: Api) -> None:
    await api.write("/f", [b"x"])
    sid = (await api.ok("POST", api.p("sessions"), 201, json={}))["session_id"]
    body = await api.ok("POST", api.p("locks"), json={"path": "/f", "mode": "exclusive"},
                        headers={"X-Lucid-Session": sid})
    assert body["state"] == "held" and body["lock_id"]
    await api.fail("POST", api.p("locks"), 400, "bad_request", "X-Lucid-Session",
                   json={"path": "/f", "mode": "shared"})


@scenario("GET", "/v1/filespaces/{fs}/locks")
async def _list_locks(api: Api) -> None:
    assert await api.ok("GET", api.p("locks")) == {"locks": []}
    await api.fail("GET", api.p("locks", "0" * 32), 404, "filespace_not_found")


@scenario("DELETE", "/v1/filespaces/{fs}/locks/{lock_id}")
async def _release_lock(api: Api) -> None:
    await api.write("/f", [b"x"])
    headers = {"X-Lucid-Session": (await api.ok("POST", api.p("sessions"), 201, json={}))["session_id"]}
    lock_id = (await api.ok("POST", api.p("locks"), json={"path": "/f", "mode": "shared"}, headers=headers))["lock_id"]
    assert await api.ok("DELETE", api.p(f"locks/{lock_id}"), headers=headers) == {"released": True}
    await api.fail("DELETE", api.p(f"locks/{lock_id}"), 400, "bad_request", "X-Lucid-Session")


RANGE = {"path": "/f", "handle": "h1", "offset": 0, "length": 10, "mode": "exclusive"}


@scenario("POST", "/v1/filespaces/{fs}/range-locks")
async def _lock_range(api: Api) -> None:
    sid = (await api.ok("POST", api.p("sessions"), 201, json={}))["session_id"]
    headers = {"X-Lucid-Session": sid}
    body = await api.ok("POST", api.p("range-locks"), json={**RANGE, "request_id": "r1"},
                        headers=headers)
    assert body == {"granted": True, "held_by": None}
    await api.fail("POST", api.p("range-locks"), 400, "bad_request", "offset",
                   json={**RANGE, "offset": -1, "request_id": "r2"}, headers=headers)


@scenario("POST", "/v1/filespaces/{fs}/range-locks/release")
async def _release_ranges(api: Api) -> None:
    sid = (await api.ok("POST", api.p("sessions"), 201, json={}))["session_id"]
    headers = {"X-Lucid-Session": sid}
    await api.ok("POST", api.p("range-locks"), json={**RANGE, "request_id": "r1"}, headers=headers)
    body = await api.ok("POST", api.p("range-locks/release"), json={"handle": "h1"},
                        headers=headers)
    assert body == {"released": 1}
    await api.fail("POST", api.p("range-locks/release"), 400, "bad_request", "X-Lucid-Session",
                   json={"handle": "h1"})


@scenario("GET", "/v1/filespaces/{fs}/range-locks")
async def _list_ranges(api: Api) -> None:
    assert await api.ok("GET", api.p("range-locks") + "?path=/f") == {"ranges": []}
    await api.fail("GET", api.p("range-locks"), 400, "bad_request")


def test_every_route_has_a_scenario() -> None:
    assert set(SCENARIOS) == {(r.method, r.path) for r in ROUTES}


@pytest.mark.asyncio
@pytest.mark.parametrize("key", sorted(SCENARIOS), ids=lambda k: f"{k[0]} {k[1]}")
async def test_route_success_and_failure(api: Api, key: tuple[str, str]) -> None:
    await SCENARIOS[key](api)
    await asyncio.sleep(0)
    method, path = key
    statuses = {s for (r, m, s) in hub_state(api.hub).metrics.requests if (r, m) == (path, method)}
    assert any(s < 400 for s in statuses), statuses
    auth = next(r.auth for r in ROUTES if (r.method, r.path) == key)
    if auth == "none":  # nothing to get wrong but the method
        assert ("unmatched", "POST" if path != "/metrics" else "DELETE", 405) in hub_state(api.hub).metrics.requests
    else:
        assert any(s >= 400 for s in statuses), statuses


@pytest.mark.asyncio
async def test_openapi_lists_exactly_the_app_routes(api: Api) -> None:
    doc = await api.ok("GET", "/v1/openapi.json")
    app = api.hub.hub.app
    assert app is not None
    served = {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == served
    assert len(served) == len(ROUTES)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert isinstance(op.get("summary"), str) and op["summary"].strip(), (method, path)
            assert op["operationId"]
            for name in path.split("{")[1:]:
                assert name.split("}")[0] in {p["name"] for p in op["parameters"] if p["in"] == "path"}
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    assert doc["components"]["securitySchemes"]["serviceAccountToken"]["scheme"] == "bearer"
    assert doc["paths"]["/v1/filespaces/{fs}/entry"]["get"]["security"] == [{"serviceAccountToken": []}]
    assert doc["paths"]["/v1/blocks/{fs}/{hash}"]["put"]["security"] == []


def test_signer_of_reads_the_hub_key(hub: Any) -> None:
    url = signer_of(hub).sign("http://x", "fs", "a" * 64, "get", 10)
    assert "op=get" in url and "sig=" in url and q(path="/a b") == "path=/a%20b"


@pytest.mark.asyncio
async def test_each_path_matches_one_route_whatever_the_registration_order(api: Api) -> None:
    # add_routes registers the busiest paths first; that may change only the cost of
    # finding a route, never which route a request finds.
    from aiohttp.test_utils import make_mocked_request

    from lucidlink.hub.api.routes import BUSIEST_FIRST

    app = api.hub.hub.app
    assert app is not None
    assert set(BUSIEST_FIRST) <= {r.path for r in ROUTES}
    for r in ROUTES:
        concrete = r.path.replace("{fs}", "data").replace("{hash}", "a" * 64).replace(
            "{sid}", "s1").replace("{lock_id}", "l1")
        assert "{" not in concrete, r.path
        match = await app.router.resolve(make_mocked_request(r.method, concrete, app=app))
        assert match.route.handler is r.handler, (r.method, r.path, match.route)
        # No other documented path's pattern takes this one.
        assert _pattern(r.path).fullmatch(concrete), r.path
        others = [o.path for o in ROUTES if o.path != r.path and _pattern(o.path).fullmatch(concrete)]
        assert others == [], (r.path, others)


def _pattern(template: str) -> Any:
    import re

    return re.compile(re.sub(r"\\\{[a-z_]+\\\}", "[^{}/]+", re.escape(template)))
