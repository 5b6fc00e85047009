"""Bad input gets a clear 4xx naming the problem, and changes nothing.

Each case runs against a populated filespace; the whole store (every table and every
block file) is compared before and after the refused request.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.support.hubfixtures import Api, digest_of, expect_error, q, snapshot

pytest_plugins = ["tests.support.hubfixtures"]

pytestmark = pytest.mark.asyncio

LONG_NAME = "n" * 256
LONG_UTF8_NAME = "é" * 128  # 128 characters, 256 bytes
LONG_PATH = "/" + "/".join(["d" * 200] * 21)  # 4221 bytes, every name short enough
H = "a" * 64


@pytest_asyncio.fixture
async def populated(api: Api) -> AsyncIterator[Api]:
    await api.mkdir("/dir/sub")
    await api.write("/file", [b"content"])
    await api.write("/dir/inner", [b"inner"])
    yield api


# (id, method, route, kwargs for the call, status, code, words the message names)
CASES: list[tuple[str, str, str, dict[str, Any], int, str, tuple[str, ...]]] = [
    # -- path syntax
    ("dotdot", "POST", "mkdir", {"json": {"path": "/dir/../x"}}, 400, "invalid_path", ("'..'", "/dir/../x")),
    ("dot", "POST", "mkdir", {"json": {"path": "/dir/./x"}}, 400, "invalid_path", ("'.'",)),
    ("dotdot-query", "GET", "entry?path=/dir/..", {}, 400, "invalid_path", ("'..'",)),
    ("dotdot-move", "POST", "move", {"json": {"src": "/file", "dst": "/../file2"}}, 400, "invalid_path", ("'..'",)),
    ("dot-commit", "POST", "commit", {"json": {"path": "/./f", "size": 0}}, 400, "invalid_path", ("'.'",)),
    ("mkdir-root", "POST", "mkdir", {"json": {"path": "/", "exist_ok": False}}, 409, "exists", ("root",)),
    ("delete-root", "POST", "delete", {"json": {"path": "/", "recursive": True}}, 400, "invalid_path", ("root",)),
    ("delete-empty", "POST", "delete", {"json": {"path": ""}}, 400, "invalid_path", ("root",)),
    ("commit-root", "POST", "commit", {"json": {"path": "/", "size": 0}}, 400, "invalid_path", ("root",)),
    ("move-to-root", "POST", "move", {"json": {"src": "/file", "dst": "/"}}, 400, "invalid_path", ("root",)),
    ("copy-to-root", "POST", "copy", {"json": {"src": "/file", "dst": "//"}}, 400, "invalid_path", ("root",)),
    ("truncate-root", "POST", "truncate", {"json": {"path": "/", "size": 0}}, 400, "invalid_path", ("root",)),
    ("long-name", "POST", "mkdir", {"json": {"path": "/dir/" + LONG_NAME}}, 400, "invalid_path", ("255 bytes",)),
    ("long-utf8-name", "POST", "commit", {"json": {"path": "/" + LONG_UTF8_NAME, "size": 0}}, 400, "invalid_path",
     ("255 bytes",)),
    ("long-name-query", "GET", "entry?path=/" + LONG_NAME, {}, 400, "invalid_path", ("255 bytes",)),
    ("long-path", "POST", "mkdir", {"json": {"path": LONG_PATH}}, 400, "invalid_path", ("4221 bytes", "4096")),
    ("long-path-query", "GET", "list?path=" + LONG_PATH, {}, 400, "invalid_path", ("4096",)),
    ("nul-json", "POST", "mkdir", {"json": {"path": "/a\x00b"}}, 400, "invalid_path", ("NUL",)),
    ("nul-query", "GET", "entry?path=/a%00b", {}, 400, "invalid_path", ("NUL",)),
    ("nul-move", "POST", "move", {"json": {"src": "/file", "dst": "/x\x00"}}, 400, "invalid_path", ("NUL",)),
    ("bad-utf8-query", "GET", "entry?path=/%FF", {}, 400, "invalid_path", ("'path'", "UTF-8")),
    ("bad-utf8-query-list", "GET", "list?path=/dir%C3", {}, 400, "invalid_path", ("UTF-8",)),
    ("bad-utf8-body", "POST", "mkdir", {"data": b'{"path": "/\xff\xfe"}'}, 400, "bad_request", ("UTF-8",)),
    ("lone-surrogate", "POST", "mkdir", {"data": b'{"path": "/\\udc80"}'}, 400, "invalid_path", ("surrogate",)),
    ("path-not-string", "POST", "mkdir", {"json": {"path": ["/a"]}}, 400, "invalid_path", ("string", "list")),
    ("path-missing", "POST", "mkdir", {"json": {}}, 400, "bad_request", ("'path' is required",)),
    ("path-missing-query", "GET", "entry", {}, 400, "bad_request", ("'path' is required",)),
    ("dst-missing", "POST", "move", {"json": {"src": "/file"}}, 400, "bad_request", ("'dst' is required",)),
    ("src-missing", "POST", "copy", {"json": {"dst": "/x"}}, 400, "bad_request", ("'src' is required",)),
    # -- a file where a directory is expected, and the reverse
    ("mkdir-under-file", "POST", "mkdir", {"json": {"path": "/file/sub"}}, 409, "not_a_directory", ("/file",)),
    ("list-file", "GET", "list?path=/file", {}, 409, "not_a_directory", ("/file",)),
    ("stat-under-file", "GET", "entry?path=/file/x", {}, 409, "not_a_directory", ("/file",)),
    ("commit-under-file", "POST", "commit", {"json": {"path": "/file/x", "size": 0}}, 409, "not_a_directory",
     ("/file",)),
    ("move-under-file", "POST", "move", {"json": {"src": "/dir", "dst": "/file/dir"}}, 409, "not_a_directory",
     ("/file",)),
    ("delete-file-as-dir", "POST", "delete", {"json": {"path": "/file", "type": "dir"}}, 409, "not_a_directory",
     ("/file",)),
    ("read-dir-as-file", "GET", "file?path=/dir", {}, 409, "is_a_directory", ("/dir",)),
    ("commit-to-dir", "POST", "commit", {"json": {"path": "/dir", "size": 0}}, 409, "is_a_directory", ("/dir",)),
    ("truncate-dir", "POST", "truncate", {"json": {"path": "/dir", "size": 0}}, 409, "is_a_directory", ("/dir",)),
    ("copy-dir", "POST", "copy", {"json": {"src": "/dir", "dst": "/d2"}}, 409, "is_a_directory", ("/dir",)),
    ("copy-over-dir", "POST", "copy", {"json": {"src": "/file", "dst": "/dir"}}, 409, "is_a_directory", ("/dir",)),
    ("delete-dir-as-file", "POST", "delete", {"json": {"path": "/dir", "type": "file"}}, 409, "is_a_directory",
     ("/dir",)),
    # -- malformed bodies
    ("malformed-json", "POST", "mkdir", {"data": b'{"path": "/x",}'}, 400, "bad_request", ("not valid JSON",)),
    ("truncated-json", "POST", "mkdir", {"data": b'{"path": "/x"'}, 400, "bad_request", ("not valid JSON",)),
    ("array-json", "POST", "mkdir", {"data": b'["/x"]'}, 400, "bad_request", ("JSON object",)),
    ("string-json", "POST", "commit", {"data": b'"/x"'}, 400, "bad_request", ("JSON object",)),
    ("number-json", "POST", "delete", {"data": b"5"}, 400, "bad_request", ("JSON object",)),
    ("null-json", "POST", "move", {"data": b"null"}, 400, "bad_request", ("JSON object",)),
    ("deep-json", "POST", "mkdir", {"data": b"[" * 100_000 + b"]" * 100_000}, 400, "bad_request", ("nested",)),
    ("empty-body", "POST", "commit", {"data": b""}, 400, "bad_request", ("'path'",)),
    # -- wrong types and values
    ("parents-type", "POST", "mkdir", {"json": {"path": "/x", "parents": "yes"}}, 400, "bad_request",
     ("'parents'", "boolean")),
    ("exist-ok-type", "POST", "mkdir", {"json": {"path": "/x", "exist_ok": 1}}, 400, "bad_request", ("'exist_ok'",)),
    ("recursive-type", "POST", "delete", {"json": {"path": "/dir", "recursive": "no"}}, 400, "bad_request",
     ("'recursive'",)),
    ("delete-type", "POST", "delete", {"json": {"path": "/dir", "type": "link"}}, 400, "bad_request", ("'type'",)),
    ("overwrite-type", "POST", "move", {"json": {"src": "/file", "dst": "/f2", "overwrite": []}}, 400, "bad_request",
     ("'overwrite'",)),
    ("size-type", "POST", "commit", {"json": {"path": "/f", "size": "10"}}, 400, "bad_request", ("'size'",)),
    ("size-negative", "POST", "commit", {"json": {"path": "/f", "size": -1}}, 400, "bad_request", ("'size'",)),
    ("size-float", "POST", "commit", {"json": {"path": "/f", "size": 1.5}}, 400, "bad_request", ("'size'",)),
    ("size-bool", "POST", "commit", {"json": {"path": "/f", "size": True}}, 400, "bad_request", ("'size'",)),
    ("size-huge", "POST", "commit", {"json": {"path": "/f", "size": 2**64}}, 400, "bad_request", ("'size'",)),
    ("mode", "POST", "commit", {"json": {"path": "/f", "size": 0, "mode": "append"}}, 400, "bad_request",
     ("'mode'", "append")),
    ("mtime", "POST", "commit", {"json": {"path": "/f", "size": 0, "mtime": "now"}}, 400, "bad_request", ("'mtime'",)),
    ("mtime-huge", "POST", "commit", {"json": {"path": "/f", "size": 0, "mtime": 10**30}}, 400, "bad_request",
     ("'mtime'",)),
    ("replace-type", "POST", "commit", {"json": {"path": "/file", "size": 0, "replace": "yes"}}, 400, "bad_request",
     ("'replace'",)),
    ("base-version-type", "POST", "commit", {"json": {"path": "/file", "size": 0, "base_version": "1"}}, 400,
     "bad_request", ("'base_version'",)),
    ("blocks-type", "POST", "commit", {"json": {"path": "/f", "size": 1, "blocks": {}}}, 400, "bad_request",
     ("'blocks'",)),
    ("block-type", "POST", "commit", {"json": {"path": "/f", "size": 1, "blocks": [H]}}, 400, "bad_request",
     ("each block",)),
    ("block-index", "POST", "commit", {"json": {"path": "/f", "size": 1, "blocks": [
        {"index": -1, "hash": H, "length": 1}]}}, 400, "bad_request", ("index",)),
    ("block-hash", "POST", "commit", {"json": {"path": "/f", "size": 1, "blocks": [
        {"index": 0, "hash": H.upper(), "length": 1}]}}, 400, "bad_request", ("hash", "SHA-256")),
    ("block-length-zero", "POST", "commit", {"json": {"path": "/f", "size": 1, "blocks": [
        {"index": 0, "hash": H, "length": 0}]}}, 400, "bad_request", ("length",)),
    ("block-length-big", "POST", "commit", {"json": {"path": "/f", "size": 1, "blocks": [
        {"index": 0, "hash": H, "length": 4 * 1024 * 1024 + 1}]}}, 400, "bad_request", ("length",)),
    ("block-past-size", "POST", "commit", {"json": {"path": "/f", "size": 10, "blocks": [
        {"index": 1, "hash": H, "length": 1}]}}, 400, "bad_request", ("beyond the new size",)),
    ("block-twice", "POST", "commit", {"json": {"path": "/f", "size": 10, "blocks": [
        {"index": 0, "hash": H, "length": 1}, {"index": 0, "hash": H, "length": 2}]}}, 400, "bad_request",
     ("twice",)),
    ("commits-type", "POST", "commits", {"json": {"commits": {"path": "/f"}}}, 400, "bad_request", ("'commits'",)),
    ("commits-empty", "POST", "commits", {"json": {"commits": []}}, 400, "bad_request", ("non-empty",)),
    ("commits-item", "POST", "commits", {"json": {"commits": [{"path": "/f", "size": 0}, "x"]}}, 400, "bad_request",
     ("JSON object",)),
    ("truncate-size", "POST", "truncate", {"json": {"path": "/file", "size": "0"}}, 400, "bad_request", ("'size'",)),
    ("truncate-size-missing", "POST", "truncate", {"json": {"path": "/file"}}, 400, "bad_request", ("'size'",)),
    ("limit-zero", "GET", "list?path=/&limit=0", {}, 400, "bad_request", ("'limit'", "5000")),
    ("limit-big", "GET", "list?path=/&limit=5001", {}, 400, "bad_request", ("'limit'",)),
    ("limit-text", "GET", "list?path=/&limit=ten", {}, 400, "bad_request", ("'limit'", "integer")),
    ("since-negative", "GET", "changes?since=-1", {}, 400, "bad_request", ("'since'",)),
    ("since-huge", "GET", "changes?since=" + "9" * 30, {}, 400, "bad_request", ("'since'",)),
    ("wait-big", "GET", "changes?wait=3600", {}, 400, "bad_request", ("'wait'",)),
    ("urls-op", "POST", "blocks/urls", {"json": {"op": "delete", "hashes": [H]}}, 400, "bad_request", ("'op'",)),
    ("urls-hashes-type", "POST", "blocks/urls", {"json": {"op": "get", "hashes": H}}, 400, "bad_request",
     ("'hashes'",)),
    ("urls-hash", "POST", "blocks/urls", {"json": {"op": "put", "hashes": [H, "xyz"]}}, 400, "bad_request",
     ("'xyz'", "SHA-256")),
    ("urls-hash-int", "POST", "blocks/urls", {"json": {"op": "put", "hashes": [1]}}, 400, "bad_request",
     ("SHA-256",)),
    ("session-client", "POST", "sessions", {"json": {"client": 5}}, 400, "bad_request", ("'client'",)),
]


GROUPS: dict[str, list[tuple[Any, ...]]] = {}
for _case in CASES:
    GROUPS.setdefault(_case[2].split("?")[0], []).append(_case)


@pytest.mark.parametrize("group", sorted(GROUPS))
async def test_bad_input_is_refused_and_changes_nothing(populated: Api, group: str) -> None:
    # The cases of one route against one hub (a hub per case cost CI over a minute); every
    # case is checked, and a failure names it.
    api = populated
    for name, method, route, kwargs, status, code, words in GROUPS[group]:
        before = snapshot(api.hub)
        seq = await api.seq()
        try:
            await api.fail(method, api.p(route), status, code, *words, **kwargs)
        except AssertionError as exc:
            raise AssertionError(f"case {name!r}: {exc}") from exc
        assert snapshot(api.hub) == before, f"case {name!r} changed the store"
        assert await api.seq() == seq, f"case {name!r} wrote to the journal"
        # The hub still answers normally afterwards.
        assert sorted(await api.names("/")) == ["dir", "file"], f"after case {name!r}"


ADMIN_CASES = [
    ("grace-negative", {"grace_seconds": -1}),
    ("grace-text", {"grace_seconds": "0"}),
    ("grace-bool", {"grace_seconds": True}),
    ("grace-huge", {"grace_seconds": 1e300}),
]


@pytest.mark.parametrize("body", [c[1] for c in ADMIN_CASES], ids=[c[0] for c in ADMIN_CASES])
async def test_bad_gc_arguments(populated: Api, body: dict[str, Any]) -> None:
    api = populated
    await api.upload(b"unreferenced")
    before = snapshot(api.hub)
    await api.fail("POST", "/v1/admin/gc", 400, "bad_request", "'grace_seconds'", json=body)
    assert snapshot(api.hub) == before


async def test_non_finite_json_numbers(populated: Api) -> None:
    api = populated
    before = snapshot(api.hub)
    for raw in (b'{"grace_seconds": NaN}', b'{"grace_seconds": Infinity}'):
        await api.fail("POST", "/v1/admin/gc", 400, "bad_request", "'grace_seconds'", data=raw)
    await api.fail("POST", api.p("commit"), 400, "bad_request", "'size'", data=b'{"path": "/f", "size": NaN}')
    assert snapshot(api.hub) == before


async def test_oversized_json_bodies(make_hub: Any, http_session: Any) -> None:
    hub = make_hub(max_json_bytes=1024)
    headers = {"Authorization": f"Bearer {hub.token}"}
    async with http_session.get(hub.url + "/v1/filespaces", headers=headers) as r:
        fs = next(f["id"] for f in (await r.json())["filespaces"] if f["name"] == "data")
    base = f"{hub.url}/v1/filespaces/{fs}"
    state = {"hub": hub}
    before = snapshot(state["hub"])

    async def post(route: str, data: Any) -> tuple[int, Any]:
        async with http_session.post(f"{base}/{route}", data=data,
                                headers={**headers, "Content-Type": "application/json"}) as r:
            return r.status, await r.json()

    big = json.dumps({"path": "/x", "pad": "p" * 2000}).encode()
    status, body = await post("mkdir", big)
    expect_error(status, body, 413, "payload_too_large", str(len(big)), "1024")

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: caught while reading
        for i in range(0, len(big), 100):
            yield big[i : i + 100]

    status, body = await post("mkdir", chunked())
    expect_error(status, body, 413, "payload_too_large", "1024")
    commits = json.dumps({"commits": [{"path": f"/f{i}", "size": 0} for i in range(100)]}).encode()
    status, body = await post("commits", commits)
    expect_error(status, body, 413, "payload_too_large")
    assert snapshot(hub) == before
    # A body just within the limit is accepted.
    fits = json.dumps({"path": "/x", "pad": "p" * 900}).encode()
    assert len(fits) <= 1024
    status, body = await post("mkdir", fits)
    assert status == 200 and body["path"] == "/x"


async def test_large_json_body_within_the_limit(api: Api) -> None:
    """A body that arrives in many TCP chunks is read whole (about 1 MB of commits)."""
    digest = await api.upload(b"x")
    changes = [{"path": f"/f{i:05d}", "size": 1, "blocks": [{"index": 0, "hash": digest, "length": 1}],
                "pad": "p" * 100} for i in range(5000)]
    raw = json.dumps({"commits": changes}).encode()
    assert len(raw) > 1024 * 1024
    body = await api.ok("POST", api.p("commits"), data=io.BytesIO(raw),
                        headers={"Content-Type": "application/json"})
    assert len(body["results"]) == 5000
    listed = await api.ok("GET", api.p("list") + "?" + q(path="/", limit=5000))
    assert len(listed["entries"]) == 5000


async def test_unknown_routes_and_methods_use_the_envelope(api: Api) -> None:
    await api.fail("GET", "/v1/nothing/here", 404, "route_not_found", "/v1/nothing/here")
    await api.fail("PUT", api.p("mkdir"), 405, "method_not_allowed", "PUT")
    await api.fail("GET", api.p("mkdir"), 405, "method_not_allowed")
    digest = digest_of(b"x")
    await api.fail("GET", f"/v1/blocks/{api.fs}/{digest.upper()}?op=get&exp=1&sig=0", 400, "bad_request",
                   "SHA-256")


class _Body:
    """Just enough of an aiohttp request for :func:`json_body`."""

    def __init__(self, raw: bytes) -> None:
        self.content_length = len(raw)
        self.content = self
        self._raw = raw

    async def read(self, n: int) -> bytes:
        out, self._raw = self._raw[:n], self._raw[n:]
        return out


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        (b'{"a": 1.0, "b": [2.0, {"c": 3.5}], "e": -1e2}', {"a": 1, "b": [2, {"c": 3.5}], "e": -100}),
        # Past 64 bits orjson gives a float; the value must still come out exact.
        (b'{"size": 18446744073709551617}', {"size": 2**64 + 1}),
        (b'{"size": -9223372036854775809}', {"size": -(2**63) - 1}),
        (b'{"size": 9007199254740993}', {"size": 2**53 + 1}),
        (b'{"path": "/\\u00e9", "n": [1, 2]}', {"path": "/\u00e9", "n": [1, 2]}),
    ],
)
async def test_json_body_reads_numbers_as_the_handlers_expect(raw: bytes, parsed: Any) -> None:
    from lucidlink.hub.api.http import json_body

    got = await json_body(_Body(raw), 1 << 20)  # type: ignore[arg-type]
    assert got == parsed
    assert [type(v) for v in got.values()] == [type(v) for v in parsed.values()]
