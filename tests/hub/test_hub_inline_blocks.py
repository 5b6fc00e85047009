"""Small blocks committed with their bytes and kept with the metadata (core/inline_blocks.py).

Counts, never times: what the hub stores, answers and refuses, on every pair of stores.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest

from lucidlink.hub.core import file_answers
from tests.support.hubfixtures import (
    Api,
    block_exists,
    digest_of,
    hub_state,
    make_token,
    random_bytes,
    signer_of,
    snapshot,
)
from tests.support.hubfixtures import q as _q
from tests.support.pgfixture import with_block_stores

pytest_plugins = ["tests.support.hubfixtures"]

pytestmark = [pytest.mark.asyncio, with_block_stores]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def inline_block(data: bytes, index: int = 0, **override: Any) -> dict[str, Any]:
    return {"index": index, "hash": digest_of(data), "length": len(data), "data": b64(data), **override}


def change(path: str, data: bytes, **kw: Any) -> dict[str, Any]:
    return {"path": path, "size": len(data), "blocks": [inline_block(data)], "replace": True, **kw}


def block_data_rows(api: Api) -> dict[str, bytes]:
    rows = api.hub.hub.call(hub_state(api.hub).store.read(
        lambda tx: tx.all("SELECT hash, data FROM block_data")))
    return {r["hash"]: bytes(r["data"]) for r in rows}


def file_blocks_rows(api: Api) -> list[str]:
    rows = api.hub.hub.call(hub_state(api.hub).store.read(
        lambda tx: tx.all("SELECT hash FROM file_blocks")))
    return sorted(r["hash"] for r in rows)


async def test_commit_with_data_is_stored_inline_and_read_back(api: Api) -> None:
    data = random_bytes(4096)
    before_files = snapshot(api.hub)["block_files"]
    body = await api.ok("POST", api.p("commit"), json=change("/small.bin", data))
    assert body["created"] is True and body["entry"]["size"] == 4096
    digest = digest_of(data)
    assert block_data_rows(api) == {digest: data}
    # Nothing reached the block store (directory or bucket).
    assert snapshot(api.hub)["block_files"] == before_files
    assert not block_exists(api.hub, api.fs, digest)
    # GET .../file carries the bytes.
    info = await api.file("/small.bin")
    assert info["blocks"] == [{"index": 0, "hash": digest, "length": 4096, "used": 4096, "data": b64(data)}]
    # blocks/urls answers them inline instead of a URL.
    urls = await api.ok("POST", api.p("blocks/urls"), json={"op": "get", "hashes": [digest]})
    assert urls["urls"] == {} and urls["inline"] == {digest: b64(data)}
    # op put: the block is known, nothing to upload.
    put = await api.ok("POST", api.p("blocks/urls"), json={"op": "put", "hashes": [digest]})
    assert put["present"] == [digest] and put["urls"] == {}
    # The statistics count it once, with its length.
    stats = await api.ok("GET", api.p("statistics"))
    assert stats["storage_size"] == 4096 and stats["block_count"] == 1


async def test_signed_get_serves_an_inline_block(api: Api) -> None:
    if not hub_state(api.hub).blocks.serves_blocks:
        pytest.skip("the hub serves block URLs only with its own block store")
    data = random_bytes(1000)
    await api.ok("POST", api.p("commit"), json=change("/a", data))
    url = signer_of(api.hub).sign(api.hub.url, api.fs, digest_of(data), "get", 60)
    status, got = await api.url("GET", url)
    assert status == 200 and got == data
    status, got = await api.url("GET", url, headers={"Range": "bytes=10-19"})
    assert status == 206 and got == data[10:20]


@pytest.mark.parametrize("case", ["hash", "length", "base64", "too_long", "not_a_string"])
async def test_bad_inline_data_is_refused_and_changes_nothing(api: Api, case: str) -> None:
    data = random_bytes(2048)
    block = inline_block(data)
    expected: tuple[int, str]
    if case == "hash":
        block["data"] = b64(random_bytes(2048))
        expected = (422, "hash_mismatch")
    elif case == "length":
        block["length"] = 2047
        expected = (422, "hash_mismatch")
    elif case == "base64":
        block["data"] = "not base64!"
        expected = (400, "bad_request")
    elif case == "too_long":
        big = random_bytes(65537)
        block = inline_block(big)
        expected = (400, "bad_request")
    else:
        block["data"] = 12
        expected = (400, "bad_request")
    other = random_bytes(100)  # a good block in the same batch does not land either
    before = snapshot(api.hub)
    status, body = await api.call("POST", api.p("commits"), json={"commits": [
        change("/good", other), {"path": "/bad", "size": block["length"], "blocks": [block]}]})
    assert (status, body["error"]["code"]) == expected, body
    assert snapshot(api.hub) == before
    assert block_data_rows(api) == {}


async def test_a_hub_without_inlining_refuses_data(make_hub: Any, http_session: Any) -> None:
    from tests.support.hubclient import RawHub

    hub = make_hub(inline_block_max=0)
    raw = RawHub(http_session, hub.url, hub.token)
    fs = await raw.filespace_id("data")
    info = (await raw.call("GET", f"/v1/filespaces/{fs}"))[1]
    assert info["inline_block_max"] == 0
    status, body = await raw.call("POST", f"/v1/filespaces/{fs}/commit", json=change("/x", b"abc"))
    assert status == 400 and "no blocks inline" in body["error"]["message"]


async def test_the_limit_is_announced(api: Api) -> None:
    info = await api.ok("GET", f"/v1/filespaces/{api.fs}")
    assert info["inline_block_max"] == 65536
    listed = await api.ok("GET", "/v1/filespaces")
    assert {f["inline_block_max"] for f in listed["filespaces"]} == {65536}


async def test_a_retried_commit_lands_once(api: Api) -> None:
    data = random_bytes(3000)
    body = change("/retried", data, change_id="c" * 16)
    first = await api.ok("POST", api.p("commits"), json={"commits": [body]})
    seq = await api.seq()
    again = await api.ok("POST", api.p("commits"), json={"commits": [change("/retried", data, change_id="c" * 16)]})
    assert again["results"][0]["entry"] == first["results"][0]["entry"]
    assert await api.seq() == seq
    assert (await api.file("/retried"))["entry"]["version"] == 1
    assert block_data_rows(api) == {digest_of(data): data}


async def test_same_bytes_twice_and_an_uploaded_block_stay_one_block(api: Api) -> None:
    data = random_bytes(500)
    await api.ok("POST", api.p("commits"), json={"commits": [change("/one", data), change("/two", data)]})
    assert block_data_rows(api) == {digest_of(data): data}
    # A block already live in the block store is only refreshed, not copied inline.
    uploaded = random_bytes(600)
    await api.upload(uploaded)
    await api.ok("POST", api.p("commit"), json=change("/three", uploaded))
    assert digest_of(uploaded) not in block_data_rows(api)
    assert await api.read("/three") == uploaded


async def test_gc_removes_unreferenced_inline_blocks_only(api: Api) -> None:
    kept, dropped = random_bytes(4096), random_bytes(4096)
    await api.ok("POST", api.p("commits"), json={"commits": [change("/kept", kept), change("/dropped", dropped)]})
    assert await api.gc(grace=0) == 0  # both referenced
    assert set(block_data_rows(api)) == {digest_of(kept), digest_of(dropped)}
    await api.ok("POST", api.p("delete"), json={"path": "/dropped"})
    assert await api.gc(grace=0) == 1
    assert block_data_rows(api) == {digest_of(kept): kept}
    assert (await api.file("/kept"))["blocks"][0]["data"] == b64(kept)
    stats = await api.ok("GET", api.p("statistics"))
    assert stats["storage_size"] == 4096 and stats["block_count"] == 1
    # The same bytes committed again after the GC are stored again.
    await api.ok("POST", api.p("commit"), json=change("/again", dropped))
    assert block_data_rows(api)[digest_of(dropped)] == dropped


async def test_a_commit_of_a_block_being_collected_is_told_to_retry(api: Api) -> None:
    data = random_bytes(100)
    await api.ok("POST", api.p("commit"), json=change("/x", data))
    digest = digest_of(data)
    api.hub.hub.write(lambda tx: tx.execute("UPDATE blocks SET state = 'deleting' WHERE hash = ?", (digest,)))
    before = snapshot(api.hub)
    status, body = await api.call("POST", api.p("commit"), json=change("/y", data))
    assert status == 503 and body["error"]["code"] == "hub_unavailable"
    assert snapshot(api.hub) == before


async def write_dir(api: Api, names: list[str], size: int = 100) -> dict[str, bytes]:
    await api.mkdir("/d")
    contents = {n: random_bytes(size) for n in names}
    items = [change(f"/d/{n}", d) for n, d in contents.items()]
    for start in range(0, len(items), 8):  # requests under 1 MiB (aiohttp warns about larger bytes bodies)
        await api.ok("POST", api.p("commits"), json={"commits": items[start:start + 8]})
    return contents


async def test_prefetch_answers_the_following_files_in_name_order(api: Api) -> None:
    contents = await write_dir(api, ["b", "a", "c", "e", "d"])
    await api.mkdir("/d/c0")  # a directory between c and d: skipped
    await api.ok("POST", api.p("symlink"), 201, json={"path": "/d/c1", "target": "/d/a"})  # skipped
    body = await api.ok("GET", api.p("file") + "?" + _q(path="/d/b", prefetch=2))
    assert body["entry"]["path"] == "/d/b" and body["blocks"][0]["data"] == b64(contents["b"])
    assert [f["entry"]["path"] for f in body["prefetched"]] == ["/d/c", "/d/d"]
    for f in body["prefetched"]:
        name = f["entry"]["name"]
        assert base64.b64decode(f["blocks"][0]["data"]) == contents[name]
    body = await api.ok("GET", api.p("file") + "?" + _q(path="/d/d", prefetch=256))
    assert [f["entry"]["path"] for f in body["prefetched"]] == ["/d/e"]
    body = await api.ok("GET", api.p("file") + "?" + _q(path="/d/a", prefetch=0))
    assert body["prefetched"] == []
    await api.fail("GET", api.p("file") + "?" + _q(path="/d/a", prefetch=257), 400, "bad_request")


async def test_prefetch_stops_after_4_mib_of_inline_bytes(api: Api) -> None:
    names = [f"f{i:03}" for i in range(80)]
    await write_dir(api, names, size=65536)
    body = await api.ok("GET", api.p("file") + "?" + _q(path="/d/f000", prefetch=256))
    n = len(body["prefetched"])
    # The answered file and 63 more are 4 MiB; one more passes it, and the answer stops there.
    assert n == file_answers.PREFETCH_INLINE_BYTES // 65536
    assert [f["entry"]["name"] for f in body["prefetched"]] == names[1:n + 1]


async def test_files_answers_many_paths_in_order_with_errors_in_place(api: Api) -> None:
    contents = await write_dir(api, ["x", "y"])
    body = await api.ok("POST", api.p("files"), json={"paths": ["/d/y", "/d/missing", "/d", "//d//x", "rel"]})
    got = body["files"]
    assert [f["path"] for f in got] == ["/d/y", "/d/missing", "/d", "/d/x", "rel"]
    assert got[4]["error"]["code"] == "invalid_path"
    assert base64.b64decode(got[0]["file"]["blocks"][0]["data"]) == contents["y"]
    assert got[1]["error"]["code"] == "not_found" and "/d/missing" in got[1]["error"]["message"]
    assert got[2]["error"]["code"] == "is_a_directory"
    assert base64.b64decode(got[3]["file"]["blocks"][0]["data"]) == contents["x"]
    await api.fail("POST", api.p("files"), json={"paths": []}, http=400, code="bad_request")
    await api.fail("POST", api.p("files"), json={"paths": ["/a"] * 1001}, http=400, code="bad_request")


async def test_rights_and_tenancy(api: Api) -> None:
    data = random_bytes(64)
    await api.ok("POST", api.p("commit"), json=change("/mine", data))
    reader = make_token(api.hub, read_only=True)
    before = snapshot(api.hub)
    status, body = await api.call("POST", api.p("commit"), json=change("/by-reader", random_bytes(10)),
                                  token=reader)
    assert status == 403, body
    assert snapshot(api.hub) == before
    # A reader may read, with the bytes.
    status, body = await api.call("POST", api.p("files"), json={"paths": ["/mine"]}, token=reader)
    assert status == 200 and body["files"][0]["file"]["blocks"][0]["data"] == b64(data)
    stranger = make_token(api.hub, workspace="acme", filespaces=["theirs"])
    for method, path, kw in (
        ("GET", api.p("file") + "?" + _q(path="/mine", prefetch=4), {}),
        ("POST", api.p("files"), {"json": {"paths": ["/mine"]}}),
        ("POST", api.p("blocks/urls"), {"json": {"op": "get", "hashes": [digest_of(data)]}}),
    ):
        status, body = await api.call(method, path, token=stranger, **kw)
        assert status == 404, (path, body)
        assert b64(data) not in str(body)


async def test_a_large_batch_is_decoded_beside_the_loop(api: Api) -> None:
    """64 files of 60 KiB (3.75 MiB of inline bytes: decoded in a thread) land in one call."""
    contents = {f"/big{i}": random_bytes(60_000) for i in range(64)}
    payload = json.dumps({"commits": [change(p, d) for p, d in contents.items()]}).encode()
    body = await api.ok("POST", api.p("commits"), data=io.BytesIO(payload),
                        headers={"Content-Type": "application/json"})
    assert len(body["results"]) == 64
    stored = block_data_rows(api)
    assert all(stored[digest_of(d)] == d for d in contents.values())
    assert len(file_blocks_rows(api)) == 64


async def test_a_batch_that_creates_then_changes_one_file_sees_its_own_rows(api: Api) -> None:
    """Rows of files created in a batch are written in bulk, before a later commit of the
    same batch on that file reads them (its slots, its version footprint)."""
    fs = api.small  # 64 KiB blocks: slot 1 starts at 65536
    a, b, c = random_bytes(65536), random_bytes(1000), random_bytes(500)
    first = {"path": "/f", "size": 65536, "blocks": [inline_block(a)], "replace": True, "change_id": "a" * 8}
    grow = {"path": "/f", "size": 66536, "blocks": [inline_block(b, index=1)], "base_version": 1,
            "mode": "existing", "change_id": "b" * 8}
    other = change("/g", c, change_id="c" * 8)
    again = dict(first)  # the same change id twice in one batch: applied once
    body = await api.ok("POST", api.p("commits", fs), json={"commits": [first, grow, other, again]})
    results = body["results"]
    assert [r["entry"]["version"] for r in results] == [1, 2, 1, 1]
    assert results[3].get("replayed") is True and results[3]["seq"] == results[0]["seq"]
    assert [r["seq"] for r in results[:3]] == [results[0]["seq"] + i for i in range(3)]
    assert await api.read("/f", fs) == a + b
    info = await api.file("/f", fs)
    assert [blk["used"] for blk in info["blocks"]] == [65536, 1000]
    changes = (await api.ok("GET", api.p("changes", fs) + "?since=0"))["changes"]
    assert [(ch["op"], ch["path"], ch["version"]) for ch in changes] == [
        ("create", "/f", 1), ("modify", "/f", 2), ("create", "/g", 1)]
    # A refused change in a batch leaves nothing of the batch behind.
    before = snapshot(api.hub)
    status, body = await api.call("POST", api.p("commits", fs), json={"commits": [
        change("/h", random_bytes(10)), change("/g", random_bytes(10), mode="exclusive")]})
    assert status == 409 and body["error"]["code"] == "exists"
    assert snapshot(api.hub) == before
    status, body = await api.call("POST", api.p("commits", fs), json={"commits": [
        change("/h", random_bytes(10)), change("/no-dir/x", random_bytes(10)),
        {**change("/i", random_bytes(10)), "mtime": "soon"}]})
    assert status == 404 and "/no-dir" in body["error"]["message"]
    status, body = await api.call("POST", api.p("commits", fs), json={"commits": [
        change("/h", random_bytes(10)), {**change("/i", random_bytes(10)), "mtime": "soon"}]})
    assert status == 400 and "mtime" in body["error"]["message"]
    assert snapshot(api.hub) == before
