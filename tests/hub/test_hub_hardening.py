"""The hub against hostile or odd input, tenants and deployments (issue 10).

* Unauthenticated input never reaches a 500: signed block URLs with forged, Unicode,
  huge, missing or repeated parameters, malformed hashes and filespace ids, odd
  ``Authorization``, ``Content-Length`` and ``Range`` headers. A refused request
  changes nothing.
* ``/v1/admin/*`` acts only within the caller's workspace.
* Names list in code-point order on every metadata store.
* The URL-signing and Connect keys: created atomically (concurrent creators end up with
  one key), refused when empty or short, shared through the store by hubs on one
  PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yarl

from lucidlink.exceptions import ConfigurationError
from lucidlink.hub import secrets_box, signing
from lucidlink.hub.config import HubSettings
from lucidlink.hub.embedded import EmbeddedHub
from lucidlink.hub.store.postgres import PostgresStore
from tests.support.hubfixtures import (
    Api,
    block_file,
    digest_of,
    hub_state,
    make_token,
    q,
    signer_of,
    snapshot,
)
from tests.support.pgfixture import fresh_schema

pytest_plugins = ["tests.support.hubfixtures"]

DATA = b"hardening block"
HASH = digest_of(DATA)
UPLOAD = b"not uploaded yet"
UPLOAD_HASH = digest_of(UPLOAD)


async def raw_http(url: str, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes as they are (headers no client library would send) and read the answer."""
    u = yarl.URL(url)
    reader, writer = await asyncio.open_connection(u.host, u.port)
    try:
        writer.write(head + b"\r\n" + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


def _url_parts(url: str) -> tuple[str, dict[str, str]]:
    base, _, query = url.partition("?")
    return base, dict(pair.split("=", 1) for pair in query.split("&"))


# -- signed block URLs ---------------------------------------------------------------------

# Query strings replacing a genuine URL's, as sent (already percent-encoded where needed).
BAD_QUERIES: list[tuple[str, str]] = [
    ("superscript-exp", "op={op}&exp=%C2%B2&sig={sig}"),  # "²": isdigit() is true, int() fails
    ("arabic-digits-exp", "op={op}&exp=%D9%A3%D9%A3&sig={sig}"),  # "٣٣": int() accepts them
    ("fullwidth-exp", "op={op}&exp=%EF%BC%91&sig={sig}"),
    ("huge-exp", "op={op}&exp=" + "9" * 400 + "&sig={sig}"),
    ("int64-plus-one-exp", "op={op}&exp=9223372036854775808&sig={sig}"),
    ("negative-exp", "op={op}&exp=-1&sig={sig}"),
    ("float-exp", "op={op}&exp=1e30&sig={sig}"),
    ("spaced-exp", "op={op}&exp=+{exp}&sig={sig}"),
    ("newline-exp", "op={op}&exp={exp}%0A&sig={sig}"),
    ("empty-exp", "op={op}&exp=&sig={sig}"),
    ("missing-exp", "op={op}&sig={sig}"),
    ("missing-sig", "op={op}&exp={exp}"),
    ("missing-op", "exp={exp}&sig={sig}"),
    ("missing-all", ""),
    ("only-ampersands", "&&&"),
    ("keys-without-values", "op&exp&sig"),
    ("non-ascii-sig", "op={op}&exp={exp}&sig=" + "%C3%A9" * 64),
    ("uppercase-sig", "op={op}&exp={exp}&sig={SIG}"),
    ("short-sig", "op={op}&exp={exp}&sig=ab"),
    ("newline-sig", "op={op}&exp={exp}&sig={sig}%0A"),
    ("nul-sig", "op={op}&exp={exp}&sig=%00{sig}"),
    ("bad-utf8-sig", "op={op}&exp={exp}&sig=%FF%FE"),
    ("huge-sig", "op={op}&exp={exp}&sig=" + "a" * 5000),
    ("other-op", "op={other}&exp={exp}&sig={sig}"),
    ("unknown-op", "op=delete&exp={exp}&sig={sig}"),
    ("duplicate-op", "op={op}&op={other}&exp={exp}&sig={sig}"),
    ("duplicate-exp", "op={op}&exp={exp}&exp={exp}&sig={sig}"),
    ("duplicate-sig", "op={op}&exp={exp}&sig={sig}&sig={sig}"),
    ("expired", "op={op}&exp=1&sig={sig}"),
]


def _bad_url(url: str, template: str, op: str) -> yarl.URL:
    base, params = _url_parts(url)
    other = "put" if op == "get" else "get"
    query = template.format(op=op, other=other, exp=params["exp"], sig=params["sig"], SIG=params["sig"].upper())
    return yarl.URL(f"{base}?{query}", encoded=True)


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_signed_url_parameters_never_reach_a_500(api: Api, method: str) -> None:
    await api.upload(DATA)
    op = method.lower()
    digest = HASH if op == "get" else UPLOAD_HASH
    genuine = await api.block_url(digest, op)
    before = snapshot(api.hub)
    for name, template in BAD_QUERIES:
        url = _bad_url(genuine, template, op)
        async with api.raw.session.request(method, url, data=UPLOAD if op == "put" else None) as resp:
            body = await resp.json()
            assert resp.status in (400, 403), (name, resp.status, body)
            assert body["error"]["code"] in ("bad_signature", "bad_request", "invalid_path"), (name, body)
    assert snapshot(api.hub) == before
    # The genuine URL still works.
    status, data = await api.url(method, genuine, UPLOAD if op == "put" else None)
    assert status == (200 if op == "get" else 201), data


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_malformed_hashes_and_filespace_ids_are_refused(api: Api, method: str) -> None:
    await api.upload(DATA)
    genuine = await api.block_url(HASH if method == "GET" else UPLOAD_HASH, method.lower())
    base, _, query = genuine.partition("?")
    prefix = base.rsplit("/", 2)[0]
    bad_hashes = [HASH + "%0A", HASH.upper(), HASH[:-1], HASH + "0", "%C3%A9" * 64, HASH[:-2] + "%FF",
                  HASH[:-1] + "%00", "g" * 64, "%D9%A3" * 64]
    bad_ids = ["x", api.fs + "%0A", "%00" + api.fs[1:], "%FF" * 16, "%C3%A9" * 32, api.fs.upper(), "a" * 5000]
    before = snapshot(api.hub)
    urls = [f"{prefix}/{api.fs}/{h}?{query}" for h in bad_hashes]
    urls += [f"{prefix.rsplit('/', 1)[0]}/blocks/{fs}/{HASH}?{query}" for fs in bad_ids]
    for url in urls:
        async with api.raw.session.request(method, yarl.URL(url, encoded=True), data=DATA) as resp:
            assert resp.status in (400, 403, 404), (url, resp.status, await resp.read())
            assert (await resp.json())["error"]["code"] in ("bad_request", "bad_signature", "not_found",
                                                           "route_not_found")
    assert snapshot(api.hub) == before


# Authorization headers no token parser should choke on, sent with the request as bytes.
BAD_AUTH: list[bytes] = [
    b"Basic dXNlcjpwYXNz",
    b"Bearer",
    b"Bearer ",
    b"Bearer    ",
    b"bearer sa_live:x",
    b"Digest username=x",
    b"Bearer sa_live:\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9:" + b"s" * 32,
    b"Bearer \xff\xfe\xfd",
    b"Bearer sa_live:abcdefgh:" + b"s" * 32 + b"\xed\xa0\x80",
    b"Bearer sa_live:abcdefgh:" + b"s" * 32 + b"\n",
    b"Bearer sa_live:abcdefgh:" + b"s" * 7000,
    b"Bearer sa_live:\x00\x00\x00\x00\x00\x00\x00\x00:" + b"s" * 32,
    b"\xc2\xb2",
]


@pytest.mark.asyncio
async def test_odd_authorization_headers_are_401(api: Api) -> None:
    before = snapshot(api.hub)
    for auth in BAD_AUTH:
        for method, route in (("GET", f"/v1/filespaces/{api.fs}/entry?path=/"), ("POST", "/v1/admin/gc")):
            head = (f"{method} {route} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
                    + b"Authorization: " + auth + b"\r\nContent-Length: 0\r\n")
            status, body = await raw_http(api.hub.url, head)
            assert status in (400, 401), (auth, status, body)
    assert snapshot(api.hub) == before


@pytest.mark.asyncio
async def test_huge_and_malformed_headers_are_refused_by_the_parser(api: Api) -> None:
    genuine = await api.block_url(UPLOAD_HASH, "put")
    target = genuine.split(api.hub.url, 1)[1].encode()
    before = snapshot(api.hub)
    cases = [
        b"X-Big: " + b"h" * 100_000 + b"\r\n",  # one huge header
        b"".join(b"X-H%d: v\r\n" % i for i in range(1000)),  # very many headers
        b"Content-Length: abc\r\n",
        b"Content-Length: -1\r\n",
        b"Content-Length: \xc2\xb2\r\n",
        b"Content-Length: 1e3\r\n",
        b"Content-Length: 3\r\nContent-Length: 4\r\n",
        b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: gzip, chunked, identity\r\n",
    ]
    for extra in cases:
        head = b"PUT " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra
        status, body = await raw_http(api.hub.url, head, b"abc")
        assert 400 <= status < 500, (extra[:60], status, body[:200])
    # A Content-Length beyond any block is refused before a byte of the body is read.
    head = (b"PUT " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Length: 99999999999999999999\r\n")
    status, body = await raw_http(api.hub.url, head)
    assert status in (400, 413), (status, body)
    assert snapshot(api.hub) == before


@pytest.mark.asyncio
async def test_odd_range_headers_never_reach_a_500(api: Api) -> None:
    await api.upload(DATA)
    url = await api.block_url(HASH)
    ranges = ["bytes=abc", "bytes=5-1", "bytes=999999-", "bytes=0-0,2-3", "items=0-1", "bytes=-0", "bytes=",
              "bytes=²-3", "bytes=٣-4", "bytes=0-99999999999999999999999", "bytes=--1", "bytes=-", "bytes=1-2-3",
              "bytes=0-1 ", "b" * 5000]
    for value in ranges:
        async with api.raw.session.get(url, headers={"Range": value}) as resp:
            data = await resp.read()
            assert resp.status in (200, 206, 416), (value, resp.status, data[:200])
            if resp.status == 200:
                assert data == DATA
    async with api.raw.session.get(url, headers={"Range": "bytes=1-3"}) as resp:
        assert resp.status == 206 and await resp.read() == DATA[1:4]


@pytest.mark.asyncio
async def test_query_parameters_given_twice_are_refused(api: Api) -> None:
    await api.fail("GET", api.p("list") + "?path=/&path=/x", 400, "bad_request", "'path'", "twice")
    await api.fail("GET", api.p("changes") + "?since=0&wait=0&since=1", 400, "bad_request", "'since'")


# -- /v1/admin/* stays within the caller's workspace --------------------------------------


def _age_blocks(api: Api) -> None:
    """Make every block row look idle for an hour (the GC's grace is counted from last_seen)."""
    api.hub.hub.write(lambda tx: tx.execute("UPDATE blocks SET last_seen = 0"))


@pytest.mark.asyncio
async def test_admin_gc_collects_only_the_callers_workspace(api: Api) -> None:
    hub = api.hub
    acme_admin = make_token(hub, "acme", admin=True)
    acme_fs = await api.raw.filespace_id("data", token=make_token(hub, "acme", ["data"]))
    other_fs = await api.raw.filespace_id("other")
    ours = await api.upload(b"demo garbage")
    ours_other = await api.upload(b"demo garbage in other", fs=other_fs)
    status, body = await api.call("POST", f"/v1/filespaces/{acme_fs}/blocks/urls", token=acme_admin,
                                  json={"op": "put", "hashes": [digest_of(b"acme garbage")]})
    assert status == 200, body
    async with api.raw.session.put(body["urls"][digest_of(b"acme garbage")], data=b"acme garbage") as resp:
        assert resp.status == 201
    theirs = digest_of(b"acme garbage")
    _age_blocks(api)
    grace = hub_state(hub).settings.url_ttl_seconds
    # An admin token limited to one filespace collects that filespace only.
    only_other = make_token(hub, "demo", ["other"], admin=True)
    status, body = await api.call("POST", "/v1/admin/gc", json={"grace_seconds": grace}, token=only_other)
    assert (status, body) == (200, {"deleted_blocks": 1})
    assert not block_file(hub, other_fs, ours_other).exists() and block_file(hub, api.fs, ours).exists()
    # demo's admin collects demo's garbage, never acme's.
    assert await api.gc(grace) == 1
    assert not block_file(hub, api.fs, ours).exists()
    assert block_file(hub, acme_fs, theirs).exists()
    assert hub.hub.write(lambda tx: tx.one("SELECT state FROM blocks WHERE hash = ?", (theirs,)))["state"] == "live"
    status, body = await api.call("POST", "/v1/admin/gc", json={"grace_seconds": grace}, token=acme_admin)
    assert (status, body) == (200, {"deleted_blocks": 1})
    assert not block_file(hub, acme_fs, theirs).exists()


@pytest.mark.asyncio
async def test_admin_gc_expires_only_the_callers_sessions(api: Api) -> None:
    hub = api.hub
    acme_fs_token = make_token(hub, "acme", ["data"])
    acme_fs = await api.raw.filespace_id("data", token=acme_fs_token)
    ours = (await api.ok("POST", api.p("sessions"), 201, json={}))["session_id"]
    status, body = await api.call("POST", f"/v1/filespaces/{acme_fs}/sessions", json={}, token=acme_fs_token)
    theirs = body["session_id"]
    hub.hub.write(lambda tx: tx.execute("UPDATE sessions SET expires = 0"))
    await api.gc(hub_state(hub).settings.url_ttl_seconds)
    left = hub.hub.write(lambda tx: sorted(r["id"] for r in tx.all("SELECT id FROM sessions")))
    assert ours not in left and theirs in left


# -- names in code-point order -----------------------------------------------------------

NAMES = ["B", "a", "é", "Z", "_", "aa", "A", "ä", "z", "0", "~", "日本", "😀", "É", " x"]


@pytest.mark.asyncio
async def test_names_list_in_code_point_order(api: Api) -> None:
    for name in NAMES:
        await api.mkdir("/" + name)
    expected = sorted(NAMES)  # Python compares str by code point
    assert expected[:5] == [" x", "0", "A", "B", "Z"]
    assert await api.names("/") == expected
    # Page by page (keyset cursor) too.
    seen: list[str] = []
    cursor = None
    while True:
        query = q(path="/", limit=4) + (f"&{q(cursor=cursor)}" if cursor else "")
        body = await api.ok("GET", api.p("list") + "?" + query)
        seen += [e["name"] for e in body["entries"]]
        cursor = body["cursor"]
        if cursor is None:
            break
    assert seen == expected


@pytest.mark.asyncio
async def test_postgres_lists_in_code_point_order_whatever_the_database_collation(
    tmp_path: Path, postgres_dsn: str
) -> None:
    """A database whose default collation is a locale's (ICU en-US sorts "a" before "B")."""
    import psycopg

    db = "lucid_icu_" + os.urandom(4).hex()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        try:
            conn.execute(f"CREATE DATABASE {db} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' "
                         "LOCALE 'C.UTF-8'")
        except psycopg.Error as exc:
            pytest.skip(f"this PostgreSQL cannot make an ICU database: {exc}")
    dsn = postgres_dsn.rsplit("/", 1)[0] + "/" + db
    try:
        with psycopg.connect(dsn) as conn:  # the premise: this database sorts by locale
            assert conn.execute("SELECT 'a' < 'B'").fetchone() == (True,)
        with EmbeddedHub(tmp_path / "hub", metadata_url=dsn, gc_interval_seconds=3600) as hub:
            token = hub.init("demo", ["data"])
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
                async with s.get(hub.url + "/v1/filespaces") as r:
                    fs = (await r.json())["filespaces"][0]["id"]
                for name in NAMES:
                    async with s.post(f"{hub.url}/v1/filespaces/{fs}/mkdir", json={"path": "/" + name}) as r:
                        assert r.status == 200
                async with s.get(f"{hub.url}/v1/filespaces/{fs}/list?path=/") as r:
                    assert [e["name"] for e in (await r.json())["entries"]] == sorted(NAMES)
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def test_postgres_tables_of_an_older_hub_get_code_point_names(tmp_path: Path, postgres_dsn: str) -> None:
    import psycopg

    with fresh_schema(postgres_dsn) as url:
        with psycopg.connect(url, autocommit=True) as conn:  # as an older hub made it
            conn.execute('CREATE TABLE nodes (id BIGSERIAL PRIMARY KEY, filespace_id TEXT NOT NULL, '
                         'parent_id BIGINT, name TEXT COLLATE "en-US-x-icu" NOT NULL, type TEXT NOT NULL, '
                         'size BIGINT NOT NULL DEFAULT 0, mtime BIGINT NOT NULL, ctime BIGINT NOT NULL, '
                         'version BIGINT NOT NULL DEFAULT 1, UNIQUE (parent_id, name))')
            conn.execute("INSERT INTO nodes (filespace_id, parent_id, name, type, mtime, ctime) VALUES "
                         "('f', 1, 'a', 'dir', 0, 0), ('f', 1, 'B', 'dir', 0, 0)")
        store = PostgresStore(url)
        asyncio.run(_open_close(store))
        with psycopg.connect(url) as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM nodes ORDER BY name")]
            collation = conn.execute("SELECT collation_name FROM information_schema.columns "
                                     "WHERE table_schema = current_schema() AND table_name = 'nodes' AND column_name = 'name'").fetchone()
        assert names == ["B", "a"] and collation == ("C",)


async def _open_close(store: Any) -> None:
    await store.open()
    await store.close()


# -- keys ------------------------------------------------------------------------------------


@pytest.fixture
def no_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(signing.KEY_ENV, raising=False)
    monkeypatch.delenv(secrets_box.KEY_ENV, raising=False)


def _race(fn: Any, n: int = 16) -> list[Any]:
    """Run ``fn()`` in ``n`` threads released at the same moment; their results."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = fn()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.usefixtures("no_key_env")
def test_concurrent_creators_of_key_files_end_up_with_one_key(tmp_path: Path) -> None:
    for attempt in range(5):
        path = tmp_path / f"d{attempt}" / "hub.key"
        keys = _race(lambda path=path: signing.load_or_create_key(path))
        assert len(set(keys)) == 1 and keys[0] == bytes.fromhex(path.read_text())
        data_dir = tmp_path / f"c{attempt}"
        keys = _race(lambda data_dir=data_dir: secrets_box.load_or_create_key(data_dir, environ={}))
        assert len(set(keys)) == 1 and keys[0] == bytes.fromhex((data_dir / "connect.key").read_text())
        assert sorted(p.name for p in data_dir.iterdir()) == ["connect.key"]  # no temporary file left


@pytest.mark.usefixtures("no_key_env")
def test_concurrent_hubs_on_one_postgres_store_end_up_with_one_key(tmp_path: Path, postgres_dsn: str) -> None:
    with fresh_schema(postgres_dsn) as url:
        async def resolve(i: int) -> tuple[bytes, bytes]:
            store = PostgresStore(url)
            await store.open()
            try:
                settings = HubSettings(data_dir=tmp_path / f"hub{i}", metadata_url=url)
                return (await signing.resolve_signing_key(settings, store, environ={}),
                        await secrets_box.resolve_connect_key(settings, store, environ={}))
            finally:
                await store.close()

        async def race() -> list[tuple[bytes, bytes]]:
            return list(await asyncio.gather(*(resolve(i) for i in range(8))))

        keys = asyncio.run(race())
        assert len(set(keys)) == 1 and all(len(k) == 32 for k in keys[0])
        assert not any((tmp_path / f"hub{i}" / name).exists() for i in range(8) for name in ("hub.key", "connect.key"))


@pytest.mark.usefixtures("no_key_env")
@pytest.mark.parametrize("content", [b"", b"\n", b"abcd", b"00" * 31, b"z!" * 32, b"\xff\xfe" * 40])
def test_an_empty_or_short_key_file_refuses_to_start(tmp_path: Path, content: bytes) -> None:
    data_dir = tmp_path / "hub"
    data_dir.mkdir(mode=0o700)
    (data_dir / "hub.key").write_bytes(content)
    with pytest.raises(ConfigurationError, match="URL-signing key in .*hub.key"):
        EmbeddedHub(data_dir, gc_interval_seconds=3600).start()
    (data_dir / "hub.key").unlink()
    (data_dir / "connect.key").write_bytes(content)
    with pytest.raises(ConfigurationError, match="Connect key .*connect.key"):
        EmbeddedHub(data_dir, gc_interval_seconds=3600).start()


@pytest.mark.usefixtures("no_key_env")
@pytest.mark.parametrize(("env", "value"), [(signing.KEY_ENV, ""), (signing.KEY_ENV, "00" * 16),
                                            (signing.KEY_ENV, "not a key"), (secrets_box.KEY_ENV, ""),
                                            (secrets_box.KEY_ENV, "00" * 31)])
def test_an_empty_or_short_key_in_the_environment_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigurationError, match=env):
        EmbeddedHub(tmp_path / "hub", gc_interval_seconds=3600).start()


@pytest.mark.usefixtures("no_key_env")
def test_a_short_key_in_the_store_refuses_to_start(tmp_path: Path, postgres_dsn: str) -> None:
    with fresh_schema(postgres_dsn) as url:
        with EmbeddedHub(tmp_path / "a", metadata_url=url, gc_interval_seconds=3600) as hub:
            hub.write(lambda tx: tx.execute("UPDATE meta SET value = 'abcd' WHERE key = ?", (signing.META_KEY,)))
        with pytest.raises(ConfigurationError, match="url_signing_key"):
            EmbeddedHub(tmp_path / "b", metadata_url=url, gc_interval_seconds=3600).start()


@pytest.fixture
def two_pg_hubs(tmp_path: Path, postgres_dsn: str, no_key_env: None) -> Iterator[tuple[EmbeddedHub, EmbeddedHub]]:
    """Two hubs on one PostgreSQL schema, each with its own data dir (as on two hosts)."""
    with fresh_schema(postgres_dsn) as url, \
            EmbeddedHub(tmp_path / "a", metadata_url=url, gc_interval_seconds=3600) as a, \
            EmbeddedHub(tmp_path / "b", metadata_url=url, gc_interval_seconds=3600) as b:
        yield a, b


@pytest.mark.asyncio
async def test_hubs_sharing_postgres_accept_each_others_urls(two_pg_hubs: tuple[EmbeddedHub, EmbeddedHub]) -> None:
    a, b = two_pg_hubs
    token = a.init("demo", ["data"])
    headers = {"Authorization": f"Bearer {token}"}
    for hub in (a, b):
        assert not (hub.settings.data_dir / "hub.key").exists()
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.get(a.url + "/v1/filespaces") as r:
            fs = (await r.json())["filespaces"][0]["id"]

        async def url_from(hub: EmbeddedHub, op: str, digest: str) -> str:
            async with s.post(f"{hub.url}/v1/filespaces/{fs}/blocks/urls", json={"op": op, "hashes": [digest]}) as r:
                return str((await r.json())["urls"][digest])

        # A URL hub A signed is accepted by hub B, and the reverse.
        for signer, server in ((a, b), (b, a)):
            data = os.urandom(100)
            put = (await url_from(signer, "put", digest_of(data))).replace(signer.url, server.url)
            async with s.put(put, data=data) as r:
                assert r.status == 201, await r.text()
            get = (await url_from(signer, "get", digest_of(data))).replace(signer.url, server.url)
            async with s.get(get) as r:
                assert r.status == 200 and await r.read() == data
            async with s.get(get.replace("sig=", "sig=0")) as r:  # and a forged one by neither
                assert r.status == 403
    sa, sb = (signer_of_hub(h) for h in (a, b))
    assert sa.sign("http://x", fs, HASH, "get", 60) == sb.sign("http://x", fs, HASH, "get", 60)


def signer_of_hub(hub: EmbeddedHub) -> signing.UrlSigner:
    from lucidlink.hub.api.app_keys import HUB_KEY

    assert hub.app is not None
    return hub.app[HUB_KEY].blocks.signer  # type: ignore[attr-defined,no-any-return]


@pytest.mark.asyncio
async def test_the_secret_key_variable_signs_on_postgres(
    tmp_path: Path, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = os.urandom(32)
    monkeypatch.setenv(signing.KEY_ENV, key.hex())
    monkeypatch.delenv(secrets_box.KEY_ENV, raising=False)
    with fresh_schema(postgres_dsn) as url, \
            EmbeddedHub(tmp_path / "a", metadata_url=url, gc_interval_seconds=3600) as hub:
        assert signer_of_hub(hub).sign("http://x", "f", HASH, "get", 60) == \
            signing.UrlSigner(key).sign("http://x", "f", HASH, "get", 60)
        assert hub.write(lambda tx: tx.one("SELECT value FROM meta WHERE key = ?", (signing.META_KEY,))) is None
        assert not (tmp_path / "a" / "hub.key").exists()


@pytest.mark.asyncio
async def test_the_sqlite_hub_keeps_its_key_in_the_data_dir(hub: Any, metadata_url: str | None) -> None:
    if metadata_url is not None:
        pytest.skip("the embedded store's behaviour")
    key_file = hub.data_dir / "hub.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert signer_of(hub).sign("http://x", "f", HASH, "get", 60) == \
        signing.UrlSigner(bytes.fromhex(key_file.read_text())).sign("http://x", "f", HASH, "get", 60)


@pytest.mark.asyncio
async def test_unicode_digits_in_integer_parameters_are_400(api: Api) -> None:
    for route in ("list?path=/&limit=%C2%B2", "list?path=/&limit=%D9%A3", "changes?since=%C2%B2",
                  "changes?since=+1", "changes?since=1_0", "list?path=/&limit=", "connect/files?store=s&cursor=%C2%B2",
                  "connect/files?store=s&cursor=%D9%A3"):
        status, body = await api.call("GET", api.p(route))
        assert status == 400 and body["error"]["code"] in ("bad_request", "invalid_configuration"), (route, body)


@pytest.mark.asyncio
async def test_null_where_a_boolean_is_expected_is_refused(api: Api) -> None:
    before = snapshot(api.hub)
    for route, body in (("mkdir", {"path": "/n", "exist_ok": None}), ("mkdir", {"path": "/n", "parents": None}),
                        ("delete", {"path": "/n", "recursive": None}),
                        ("move", {"src": "/n", "dst": "/m", "overwrite": None}), ("mkdir", {"path": "n"}),
                        ("mkdir", {"path": "/n", "exist_ok": "true"})):
        await api.fail("POST", api.p(route), 400, *(("invalid_path",) if body.get("path") == "n" else
                                                     ("bad_request", "boolean")), json=body)
    await api.fail("POST", "/v1/admin/gc", 400, "bad_request", "'grace_seconds'", json={"grace_seconds": None})
    assert snapshot(api.hub) == before


@pytest.mark.asyncio
async def test_a_client_that_resets_mid_body_is_not_a_hub_error(api: Api) -> None:
    data = os.urandom(1000)
    url = yarl.URL(await api.block_url(digest_of(data), op="put"))

    def send_half_and_reset() -> None:
        with socket.create_connection((url.host, url.port)) as sock:
            head = (f"PUT {url.raw_path_qs} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
                    f"Content-Length: {len(data)}\r\nContent-Type: application/octet-stream\r\n\r\n")
            sock.sendall(head.encode() + data[:100])
            time.sleep(0.2)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST

    await asyncio.get_running_loop().run_in_executor(None, send_half_and_reset)
    await asyncio.sleep(0.3)
    status, body = await api.call("GET", "/metrics")
    text = body if isinstance(body, str) else body.decode() if isinstance(body, bytes) else str(body)
    assert 'status="500"' not in text
    assert await api.ok("GET", "/healthz")
