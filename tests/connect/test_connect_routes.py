"""Every Connect route of the hub over raw HTTP: once with success, once with a failure.

The hub validates everything itself (it never trusts the SDK's checks); these requests
bypass the SDK to prove it. :data:`SCENARIOS` covers exactly the ``/connect/`` routes
of :data:`lucidlink.hub.api.routes.ROUTES`; ``tests/support/seaweed.py`` also hands them to the
route table of ``tests/hub/test_hub_routes.py``, whose completeness check covers every route.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lucidlink.hub.api.routes import ROUTES
from tests.support.hubfixtures import Api, hub_state, make_token, q, snapshot
from tests.support.seaweed import running_seaweed

pytest_plugins = ["tests.support.hubfixtures"]

Scenario = Callable[[Api], Awaitable[None]]
SCENARIOS: dict[tuple[str, str], Scenario] = {}
CONNECT_ROUTES = {(r.method, r.path) for r in ROUTES if "/connect/" in r.path}


def scenario(method: str, path: str) -> Callable[[Scenario], Scenario]:
    def deco(fn: Scenario) -> Scenario:
        SCENARIOS[(method, path)] = fn
        return fn

    return deco


def config(**overrides: Any) -> dict[str, Any]:
    """A valid store config (JSON) for the session's SeaweedFS bucket."""
    s3 = running_seaweed()
    out: dict[str, Any] = {"access_key": s3.access_key, "secret_key": s3.secret_key, "bucket_name": s3.bucket,
                           "region": s3.region, "endpoint": s3.endpoint, "url_expiration_minutes": 60,
                           "use_virtual_addressing": False}
    out.update(overrides)
    return out


async def add_store(api: Api, name: str = "st") -> dict[str, Any]:
    return await api.ok("POST", api.p("connect/stores"), 201, json={"name": name, "config": config()})  # type: ignore[no-any-return]


async def put(key: str, data: bytes) -> str:
    return await running_seaweed().put(key, data)


@scenario("GET", "/v1/filespaces/{fs}/connect/stores")
async def _list_stores(api: Api) -> None:
    assert await api.ok("GET", api.p("connect/stores")) == {"stores": []}
    await add_store(api)
    body = await api.ok("GET", api.p("connect/stores"))
    assert [s["name"] for s in body["stores"]] == ["st"] and body["stores"][0]["secret_key"] == ""
    await api.fail("GET", api.p("connect/stores", "0" * 32), 404, "filespace_not_found")


@scenario("POST", "/v1/filespaces/{fs}/connect/stores")
async def _add_store(api: Api) -> None:
    body = await add_store(api)
    assert body["name"] == "st" and body["secret_key"] == "" and body["kind"] == "s3"
    assert body["rekey_state"] == "none" and body["url_expiration_minutes"] == 60
    await api.fail("POST", api.p("connect/stores"), 409, "exists", "already exists",
                   json={"name": "st", "config": config()})
    err = await api.fail("POST", api.p("connect/stores"), 400, "invalid_configuration", "bucket",
                         json={"name": "s2", "config": config(bucket_name="Bad_Bucket")})
    assert err["details"]["field"] == "bucket_name"


@scenario("GET", "/v1/filespaces/{fs}/connect/store")
async def _get_store(api: Api) -> None:
    await add_store(api, "my store")
    body = await api.ok("GET", api.p("connect/store") + "?" + q(name="my store"))
    assert body["secret_key"] == running_seaweed().secret_key  # admin token
    reader = make_token(api.hub, read_only=True)
    body = await api.ok("GET", api.p("connect/store") + "?" + q(name="my store"), token=reader)
    assert body["secret_key"] == ""
    await api.fail("GET", api.p("connect/store") + "?" + q(name="nope"), 404, "object_not_found", "'my store'")


@scenario("POST", "/v1/filespaces/{fs}/connect/stores/rekey")
async def _rekey_store(api: Api) -> None:
    before = await add_store(api)
    s3 = running_seaweed()
    body = await api.ok("POST", api.p("connect/stores/rekey"),
                        json={"name": "st", "access_key": s3.access_key, "secret_key": s3.secret_key})
    assert body["key_id"] != before["key_id"] and body["rekey_state"] == "rekeyed"
    err = await api.fail("POST", api.p("connect/stores/rekey"), 400, "invalid_configuration", "secret",
                         json={"name": "st", "access_key": s3.access_key, "secret_key": "wrong"})
    assert err["details"] == {"field": "secret_key", "reason": "signature_mismatch"}


@scenario("POST", "/v1/filespaces/{fs}/connect/stores/remove")
async def _remove_store(api: Api) -> None:
    await add_store(api)
    await api.ok("POST", api.p("connect/links"), 201,
                 json={"links": [{"path": "/l", "store": "st", "object_id": "o", "size": 1, "checksum": "c"}]})
    err = await api.fail("POST", api.p("connect/stores/remove"), 409, "store_in_use", "1 linked file",
                         json={"name": "st"})
    assert err["details"]["linked_files"] == 1
    assert await api.ok("POST", api.p("connect/stores/remove"), json={"name": "st", "force": True}) == {
        "removed": True, "unlinked": 1}
    assert not await api.exists("/l")


@scenario("POST", "/v1/filespaces/{fs}/connect/links")
async def _links(api: Api) -> None:
    key = running_seaweed().prefix() + "obj.txt"
    etag = await put(key, b"hello")
    await add_store(api)
    body = await api.ok("POST", api.p("connect/links"), 201,
                        json={"links": [{"path": "/a/b/obj.txt", "store": "st", "object_id": key}]})
    entry = body["entries"][0]
    assert entry["type"] == "external" and entry["size"] == 5 and entry["path"] == "/a/b/obj.txt"
    assert entry["external"] == {"store": "st", "object_id": key}
    info = await api.file("/a/b/obj.txt")
    assert info["blocks"] == [] and info["external"]["etag"] == etag and info["external"]["size"] == 5
    await api.fail("POST", api.p("connect/links"), 409, "exists", "/a/b/obj.txt",
                   json={"links": [{"path": "/a/b/obj.txt", "store": "st", "object_id": key}]})


@scenario("POST", "/v1/filespaces/{fs}/connect/unlink")
async def _unlink(api: Api) -> None:
    await add_store(api)
    await api.ok("POST", api.p("connect/links"), 201,
                 json={"links": [{"path": "/l", "store": "st", "object_id": "o", "size": 1, "checksum": "c"}]})
    body = await api.ok("POST", api.p("connect/unlink"), json={"path": "/l"})
    assert body["deleted"] == 1
    await api.mkdir("/d")
    await api.fail("POST", api.p("connect/unlink"), 409, "not_linked", "not a file linked", json={"path": "/d"})


@scenario("GET", "/v1/filespaces/{fs}/connect/files")
async def _files(api: Api) -> None:
    await add_store(api)
    links = [{"path": f"/f{i}", "store": "st", "object_id": f"o{i}", "size": i, "checksum": "c"} for i in range(3)]
    await api.ok("POST", api.p("connect/links"), 201, json={"links": links})
    page = await api.ok("GET", api.p("connect/files") + "?" + q(store="st", limit=2))
    assert [f["path"] for f in page["files"]] == ["/f0", "/f1"] and page["has_more"] is True
    page = await api.ok("GET", api.p("connect/files") + "?" + q(store="st", limit=2, cursor=page["cursor"]))
    assert [f["object_id"] for f in page["files"]] == ["o2"] and page["has_more"] is False and page["cursor"] is None
    await api.fail("GET", api.p("connect/files") + "?" + q(store="st", limit=0), 400, "bad_request", "limit")


@scenario("GET", "/v1/filespaces/{fs}/connect/count")
async def _count(api: Api) -> None:
    await add_store(api)
    assert await api.ok("GET", api.p("connect/count") + "?store=st") == {"count": 0}
    await api.fail("GET", api.p("connect/count") + "?store=other", 404, "object_not_found", "'st'")


@scenario("POST", "/v1/filespaces/{fs}/connect/urls")
async def _urls(api: Api) -> None:
    key = running_seaweed().prefix() + "u.bin"
    await put(key, b"0123456789")
    await add_store(api)
    entry = (await api.ok("POST", api.p("connect/links"), 201,
                          json={"links": [{"path": "/u", "store": "st", "object_id": key}]}))["entries"][0]
    body = await api.ok("POST", api.p("connect/urls"), json={"ids": [entry["id"], 999999]})
    assert body["missing"] == [999999]
    item = body["urls"][str(entry["id"])]
    assert item["size"] == 10 and item["etag"]
    status, data = await api.url("GET", item["url"], headers={"Range": "bytes=2-4"})
    assert status == 206 and data == b"234"
    await api.fail("POST", api.p("connect/urls"), 400, "bad_request", "'ids'", json={"ids": ["x"]})


def test_every_connect_route_has_a_scenario() -> None:
    assert set(SCENARIOS) == CONNECT_ROUTES


@pytest.mark.asyncio
@pytest.mark.parametrize("key", sorted(SCENARIOS), ids=lambda k: f"{k[0]} {k[1]}")
async def test_connect_route_success_and_failure(api: Api, key: tuple[str, str]) -> None:
    await SCENARIOS[key](api)
    await asyncio.sleep(0)
    method, path = key
    statuses = {s for (r, m, s) in hub_state(api.hub).metrics.requests if (r, m) == (path, method)}
    assert any(s < 400 for s in statuses), statuses
    assert any(s >= 400 for s in statuses), statuses


# -- the hub's own validation (requests the SDK would never send) ---------------------------

BAD_CONFIGS = [
    ({"bucket_name": "ab"}, "bucket_name"),
    ({"bucket_name": "a..b"}, "bucket_name"),
    ({"bucket_name": "192.168.1.1"}, "bucket_name"),
    ({"bucket_name": 5}, "bucket_name"),
    ({"region": "", "endpoint": ""}, "region"),
    ({"region": "us east"}, "region"),
    ({"endpoint": "ftp://host"}, "endpoint"),
    ({"endpoint": "http://host/path"}, "endpoint"),
    ({"endpoint": "http://user:pw@host"}, "endpoint"),
    ({"endpoint": "http://host:99999"}, "endpoint"),
    ({"url_expiration_minutes": 0}, "url_expiration_minutes"),
    ({"url_expiration_minutes": 10081}, "url_expiration_minutes"),
    ({"url_expiration_minutes": True}, "url_expiration_minutes"),
    ({"use_virtual_addressing": "yes"}, "use_virtual_addressing"),
    ({"access_key": ""}, "access_key"),
    ({"access_key": "has space"}, "access_key"),
    ({"secret_key": "x" * 300}, "secret_key"),
    ({"colour": "blue"}, "colour"),
]


@pytest.mark.asyncio
async def test_hub_validates_store_configs_itself(api: Api) -> None:
    before = snapshot(api.hub)
    for overrides, field in BAD_CONFIGS:
        err = await api.fail("POST", api.p("connect/stores"), 400, "invalid_configuration", field,
                             json={"name": "st", "config": config(**overrides)})
        assert err["details"]["field"] == field, (overrides, err)
        assert running_seaweed().secret_key not in err["message"]
    missing = config()
    del missing["secret_key"]
    await api.fail("POST", api.p("connect/stores"), 400, "invalid_configuration", "secret_key",
                   json={"name": "st", "config": missing})
    for name in ("", "x" * 65, " lead", "semi;colon", "tab\tname", 7, None):
        await api.fail("POST", api.p("connect/stores"), 400, "invalid_configuration" if name is not None
                       else "bad_request", "name", json={"name": name, "config": config()})
    await api.fail("POST", api.p("connect/stores"), 400, "invalid_configuration", "kind",
                   json={"name": "st", "kind": "gcs", "config": config()})
    await api.fail("POST", api.p("connect/stores"), 400, "invalid_configuration", "config",
                   json={"name": "st", "config": "nope"})
    assert snapshot(api.hub) == before


@pytest.mark.asyncio
async def test_hub_validates_links_itself(api: Api) -> None:
    await add_store(api)
    before = snapshot(api.hub)
    good = {"path": "/x", "store": "st", "object_id": "o", "size": 1, "checksum": "c"}
    bad_links: list[tuple[dict[str, Any], str, str]] = [
        ({"size": 1, "checksum": None}, "invalid_configuration", "together"),
        ({"size": None, "checksum": "c"}, "invalid_configuration", "together"),
        ({"size": -1}, "invalid_configuration", "size"),
        ({"size": True}, "invalid_configuration", "size"),
        ({"size": "1"}, "invalid_configuration", "size"),
        ({"object_id": ""}, "invalid_configuration", "object_id"),
        ({"object_id": "a" * 1025}, "invalid_configuration", "object_id"),
        ({"object_id": "nul\x00"}, "invalid_configuration", "object_id"),
        ({"checksum": "\n"}, "invalid_configuration", "checksum"),
        ({"path": "/"}, "invalid_configuration", "root"),
        ({"path": "/a/../b"}, "invalid_path", ".."),
        ({"path": None}, "bad_request", "path"),
        ({"store": "bad;name"}, "invalid_configuration", "name"),
        ({"extra": 1}, "bad_request", "extra"),
    ]
    for change, code, word in bad_links:
        await api.fail("POST", api.p("connect/links"), 400, code, word, json={"links": [{**good, **change}]})
    for links in ([], "x", [good] * 10_001, [5]):
        await api.fail("POST", api.p("connect/links"), 400, "bad_request", "link", json={"links": links})
    await api.fail("POST", api.p("connect/links"), 409, "exists", "twice", json={"links": [good, good]})
    await api.fail("POST", api.p("connect/links"), 404, "object_not_found", "'nope'",
                   json={"links": [{**good, "store": "nope"}]})
    for ids in ([], [True], [-1], list(range(1025)), "1"):
        await api.fail("POST", api.p("connect/urls"), 400, "bad_request", "ids", json={"ids": ids})
    await api.fail("GET", api.p("connect/files") + "?store=st&cursor=-5", 400, "bad_request", "cursor")
    await api.fail("GET", api.p("connect/files"), 400, "bad_request", "store")
    assert snapshot(api.hub) == before


@pytest.mark.asyncio
async def test_rights_on_every_connect_route(api: Api) -> None:
    """Store management: admin (and read-write); links: read-write; the rest: any token of the filespace."""
    await add_store(api)
    writer = make_token(api.hub)
    reader = make_token(api.hub, read_only=True)
    ro_admin = make_token(api.hub, read_only=True, admin=True)
    for token, code in ((writer, "permission_denied"), (reader, "permission_denied"), (ro_admin, "read_only")):
        await api.fail("POST", api.p("connect/stores"), 403, code, token=token,
                       json={"name": "s2", "config": config()})
        await api.fail("POST", api.p("connect/stores/rekey"), 403, code, token=token,
                       json={"name": "st", "access_key": "a", "secret_key": "b"})
        await api.fail("POST", api.p("connect/stores/remove"), 403, code, token=token, json={"name": "st"})
    link = {"links": [{"path": "/w", "store": "st", "object_id": "o", "size": 1, "checksum": "c"}]}
    await api.fail("POST", api.p("connect/links"), 403, "read_only", token=reader, json=link)
    await api.fail("POST", api.p("connect/unlink"), 403, "read_only", token=reader, json={"path": "/w"})
    entry = (await api.ok("POST", api.p("connect/links"), 201, token=writer, json=link))["entries"][0]
    for token in (writer, reader):
        assert (await api.ok("GET", api.p("connect/stores"), token=token))["stores"][0]["secret_key"] == ""
        assert (await api.ok("GET", api.p("connect/store") + "?name=st", token=token))["secret_key"] == ""
        assert (await api.ok("GET", api.p("connect/count") + "?store=st", token=token))["count"] == 1
        assert (await api.ok("GET", api.p("connect/files") + "?store=st", token=token))["files"][0]["path"] == "/w"
        assert str(entry["id"]) in (await api.ok("POST", api.p("connect/urls"), token=token,
                                                  json={"ids": [entry["id"]]}))["urls"]
    # A token of another workspace sees nothing (the same answer as a missing filespace).
    stranger = make_token(api.hub, workspace="acme", admin=True)
    await api.fail("GET", api.p("connect/stores"), 404, "filespace_not_found", token=stranger)
