"""Blocks: batched signed URLs, verified uploads, ranged reads, URL signatures, and the GC."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lucidlink.directio import DirectReader, LentBuffer
from lucidlink.hub.api import blocks as blocks_api
from lucidlink.hub.blockstore.local import LocalBlockStore
from lucidlink.hub.embedded import EmbeddedHub
from lucidlink.hub.signing import UrlSigner
from tests.conftest import RunningHub
from tests.support.hubfixtures import (
    SMALL_BLOCK,
    Api,
    block_exists,
    block_file,
    body_of,
    digest_of,
    expect_error,
    hub_state,
    random_bytes,
    signer_of,
    snapshot,
)
from tests.support.pgfixture import with_block_stores

pytest_plugins = ["tests.support.hubfixtures"]

pytestmark = pytest.mark.asyncio

MIB4 = 4 * 1024 * 1024


def block_row(api: Api, fs: str, digest: str) -> Any:
    return api.hub.hub.write(
        lambda tx: tx.one("SELECT state, length, last_seen FROM blocks WHERE filespace_id = ? AND hash = ?",
                          (fs, digest))
    )


async def test_urls_are_batched_and_present_blocks_need_no_upload(api: Api) -> None:
    datas = [random_bytes(1000 + i) for i in range(5)]
    digests = [digest_of(d) for d in datas]
    await api.upload(datas[0])
    await api.upload(datas[3])
    body = await api.ok("POST", api.p("blocks/urls"), json={"op": "put", "hashes": digests})
    assert body["present"] == sorted([digests[0], digests[3]])
    assert set(body["urls"]) == {digests[1], digests[2], digests[4]}
    assert body["expires"] > time.time() + 800  # the default TTL is 900 s
    for digest, url in body["urls"].items():
        assert f"/v1/blocks/{api.fs}/{digest}?op=put&exp=" in url and "&sig=" in url
        assert url.startswith(api.hub.url)
    body = await api.ok("POST", api.p("blocks/urls"), json={"op": "get", "hashes": digests})
    assert set(body["urls"]) == set(digests) and body["present"] == []
    assert (await api.ok("POST", api.p("blocks/urls"), json={"op": "get", "hashes": []}))["urls"] == {}
    await api.fail("POST", api.p("blocks/urls"), 400, "bad_request", "1024",
                   json={"op": "get", "hashes": [digests[0]] * 1025})


async def test_put_is_idempotent_and_a_full_4mib_block_round_trips(api: Api) -> None:
    data = random_bytes(MIB4)  # arrives in many chunks
    digest = digest_of(data)
    url = await api.block_url(digest, "put")
    for _ in range(2):
        status, body = await api.url("PUT", url, data=data)
        assert status == 201 and body == {"hash": digest, "length": MIB4}
    assert block_file(api.hub, api.fs, digest).read_bytes() == data
    status, got = await api.url("GET", await api.block_url(digest))
    assert status == 200 and got == data


async def test_put_verifies_the_hash(api: Api) -> None:
    data = random_bytes(5000)
    digest = digest_of(data)
    url = await api.block_url(digest, "put")
    before = snapshot(api.hub)
    damaged = data[:-1] + bytes([data[-1] ^ 1])  # never the same bytes (b"\0" was, once in 256)
    status, body = await api.url("PUT", url, data=damaged)
    err = expect_error(status, body, 422, "hash_mismatch", "nothing was stored", digest[:12])
    assert err["details"]["expected"] == digest and err["details"]["actual"] == digest_of(damaged)
    assert snapshot(api.hub) == before
    assert not block_file(api.hub, api.fs, digest).exists()
    assert block_row(api, api.fs, digest) is None
    await api.fail("POST", api.p("commit"), 409, "block_missing", json={
        "path": "/f", "size": 5000, "blocks": [{"index": 0, "hash": digest, "length": 5000}]})
    status, body = await api.url("PUT", url, data=b"")
    expect_error(status, body, 400, "bad_request", "empty")
    assert snapshot(api.hub) == before


async def test_oversized_block_is_413(api: Api) -> None:
    data = random_bytes(SMALL_BLOCK + 1)
    url = await api.block_url(digest_of(data), "put", fs=api.small)
    before = snapshot(api.hub)
    status, body = await api.url("PUT", url, data=data)
    expect_error(status, body, 413, "payload_too_large", str(SMALL_BLOCK))

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: caught while reading
        for i in range(0, len(data), 8192):
            yield data[i : i + 8192]

    status, body = await api.url("PUT", url, data=chunked())
    expect_error(status, body, 413, "payload_too_large", str(SMALL_BLOCK))
    assert snapshot(api.hub) == before
    # Exactly one block size is fine.
    exact = data[:SMALL_BLOCK]
    status, _ = await api.url("PUT", await api.block_url(digest_of(exact), "put", fs=api.small), data=exact)
    assert status == 201


async def test_ranged_and_full_get(api: Api) -> None:
    data = bytes(range(256)) * 40
    url = await api.block_url(await api.upload(data))
    async with api.raw.session.get(url) as resp:
        assert resp.status == 200 and await resp.read() == data
        assert resp.headers["Content-Type"] == "application/octet-stream"
        assert "immutable" in resp.headers["Cache-Control"]
    for rng, expect in [("bytes=0-9", data[:10]), ("bytes=100-199", data[100:200]),
                        ("bytes=-5", data[-5:]), ("bytes=10230-", data[10230:])]:
        async with api.raw.session.get(url, headers={"Range": rng}) as resp:
            assert resp.status == 206, rng
            assert await resp.read() == expect, rng
            assert resp.headers["Content-Range"].startswith("bytes ")
    async with api.raw.session.get(url, headers={"Range": "bytes=20000-"}) as resp:
        assert resp.status == 416
    missing = await api.block_url(digest_of(b"not uploaded"))
    status, body = await api.url("GET", missing)
    expect_error(status, body, 404, "not_found", "not in the block store")


async def test_a_whole_block_is_read_into_memory_and_a_larger_one_streamed(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole-block GET reads the block in a worker thread (past the page cache: see
    directio.DirectReader) and answers from memory; a block over the in-memory limit, and
    a GET while the store's memory slots are all taken, are streamed from the file. Every
    answer is the block, exactly."""
    data = random_bytes(2 * 1024 * 1024 + 3)  # past the page cache, with a ragged end
    url = await api.block_url(await api.upload(data))
    reads: list[bool] = []
    real = DirectReader.lend

    def spied(self: DirectReader, path: Any, limit: int) -> Any:
        found = real(self, path, limit)
        reads.append(found is not None)
        return found

    monkeypatch.setattr(DirectReader, "lend", spied)
    async with api.raw.session.get(url) as resp:
        assert resp.status == 200 and await resp.read() == data
        assert resp.headers["Content-Length"] == str(len(data))
        assert "immutable" in resp.headers["Cache-Control"]
    assert reads == [True]
    monkeypatch.setattr(blocks_api, "_WHOLE_IN_MEMORY", 1024 * 1024)
    async with api.raw.session.get(url) as resp:
        assert resp.status == 200 and await resp.read() == data
    assert reads == [True, False]  # over the limit: the file response streamed it
    monkeypatch.setattr(blocks_api, "_WHOLE_IN_MEMORY", 16 * 1024 * 1024)
    monkeypatch.setattr(LocalBlockStore, "MEMORY_ANSWERS", 0)  # every memory slot taken
    async with api.raw.session.get(url) as resp:
        assert resp.status == 200 and await resp.read() == data
    assert reads == [True, False]  # not read into memory


async def _get_raw(url: str, *, read_slowly: bool = False, stop_after: int | None = None) -> bytes:
    """GET ``url`` over a plain socket with a small receive buffer; ``read_slowly``
    reads the body in small pieces with pauses (the hub's transport must hold what the
    socket does not take); ``stop_after`` closes the connection after that many body bytes."""
    parts = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port, limit=1 << 16)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    writer.write(f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                 "Connection: close\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:100]
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    body = bytearray()
    try:
        while len(body) < length:
            if stop_after is not None and len(body) >= stop_after:
                return bytes(body)
            chunk = await reader.read(16 * 1024 if read_slowly else 1 << 20)
            if not chunk:
                break
            body += chunk
            if read_slowly:
                await asyncio.sleep(0.002)
        return bytes(body)
    finally:
        writer.close()


async def _block_urls(session: Any, hub: RunningHub, datas: list[bytes]) -> list[str]:
    """Upload each block to ``hub``'s first filespace; return their signed GET URLs."""
    headers = {"Authorization": f"Bearer {hub.token}"}
    async with session.get(hub.url + "/v1/filespaces", headers=headers) as resp:
        fs = (await resp.json())["filespaces"][0]["id"]
    urls = []
    for data in datas:
        digest = digest_of(data)
        for op in ("put", "get"):
            async with session.post(hub.url + f"/v1/filespaces/{fs}/blocks/urls", headers=headers,
                                    json={"op": op, "hashes": [digest]}) as resp:
                url = (await resp.json())["urls"][digest]
            if op == "put":
                async with session.put(url, data=body_of(data)) as resp:
                    assert resp.status == 201
        urls.append(url)
    return urls


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
async def test_blocks_sent_from_lent_buffers_arrive_exact(
        make_hub: Any, http_session: Any, event_loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole-block GETs are sent from the aligned buffer the block was read into, and the
    buffer serves the next GET only once the connection has let go of it. With readers
    fast, slow (the transport holds most of the block) and gone mid-body, all at once,
    every body that arrives whole is its block, byte for byte; and sequential GETs reuse
    one buffer rather than map fresh memory for each. On both loops the hub runs on
    (uvloop's transport keeps what it has not sent yet by reference)."""
    hub = make_hub(event_loop=event_loop)
    datas = [random_bytes(MIB4 - 7 * i) for i in range(6)]
    urls = await _block_urls(http_session, hub, datas)
    buffers = hub_state(hub).blocks.buffers
    loans: list[bool] = []  # each loan's end: whether the buffer may be lent again
    give_back = LentBuffer.give_back

    def spied(self: LentBuffer, reuse: bool) -> None:
        loans.append(reuse)
        give_back(self, reuse)

    monkeypatch.setattr(LentBuffer, "give_back", spied)
    async def loans_ended(count: int) -> list[bool]:
        # A reader may have every byte before the hub's handler has ended the loan.
        for _ in range(500):
            if len(loans) >= count:
                break
            await asyncio.sleep(0.01)
        return loans[:count]

    mapped = buffers.mapped
    for i in range(8):  # one at a time: a buffer or two, lent again and again
        assert await _get_raw(urls[i % 6]) == datas[i % 6]
    assert await loans_ended(8) == [True] * 8
    assert buffers.mapped - mapped <= 2
    for i in range(4):  # slow readers: the send waits until the socket took every byte,
        assert await _get_raw(urls[i], read_slowly=True) == datas[i]
    assert await loans_ended(12) == [True] * 12  # so the buffer is known free, lent again
    for i in range(4):  # readers gone mid-body (the kernel may have taken every byte by
        # then, and the loan ended well; else the buffer is dropped, never lent again)
        body = await _get_raw(urls[i], read_slowly=True, stop_after=256 * 1024)
        assert body == datas[i][:len(body)]
    assert len(await loans_ended(16)) == 16
    jobs = []
    for _ in range(3):
        for i in range(6):
            jobs.append((i, "fast", _get_raw(urls[i])))
            jobs.append(((i + 1) % 6, "slow", _get_raw(urls[(i + 1) % 6], read_slowly=True)))
            jobs.append(((i + 2) % 6, "gone", _get_raw(urls[(i + 2) % 6], read_slowly=True,
                                                       stop_after=256 * 1024)))
    bodies = await asyncio.gather(*(job for _, _, job in jobs))
    wrong = 0
    for (i, kind, _), body in zip(jobs, bodies, strict=True):
        wrong += body != (datas[i][:len(body)] if kind == "gone" else datas[i])
    assert wrong == 0
    for i in range(6):  # the buffers the vanished readers left are never lent half-sent
        assert await _get_raw(urls[i]) == datas[i]


async def test_expired_url(api: Api) -> None:
    data = random_bytes(100)
    digest = await api.upload(data)
    signer = signer_of(api.hub)
    expired = signer.sign(api.hub.url, api.fs, digest, "get", -10)
    status, body = await api.url("GET", expired)
    err = expect_error(status, body, 403, "bad_signature", "expired", "fresh URL")
    assert err["details"] == {"expired": True}
    fresh = signer.sign(api.hub.url, api.fs, digest, "get", 60)
    status, got = await api.url("GET", fresh)
    assert status == 200 and got == data
    new = random_bytes(100)
    expired_put = signer.sign(api.hub.url, api.fs, digest_of(new), "put", -1)
    status, body = await api.url("PUT", expired_put, data=new)
    expect_error(status, body, 403, "bad_signature", "expired")
    assert not block_file(api.hub, api.fs, digest_of(new)).exists()


async def test_forged_and_altered_urls(api: Api) -> None:
    data = random_bytes(100)
    digest = await api.upload(data)
    url = await api.block_url(digest)
    base, _, query = url.partition("?")
    params = dict(p.split("=") for p in query.split("&"))
    bad_sig = "0" * 64 if params["sig"][0] != "0" else "1" * 64
    forged = UrlSigner(b"k" * 32).sign(api.hub.url, api.fs, digest, "get", 60)
    cases = {
        "wrong signature": f"{base}?op=get&exp={params['exp']}&sig={bad_sig}",
        "another key": forged,
        "exp extended": f"{base}?op=get&exp={int(params['exp']) + 1000}&sig={params['sig']}",
        "no signature": f"{base}?op=get&exp={params['exp']}",
        "no expiry": f"{base}?op=get&sig={params['sig']}",
        "other block": url.replace(digest, digest_of(b"other")),
    }
    for name, bad in cases.items():
        status, body = await api.url("GET", bad)
        expect_error(status, body, 403, "bad_signature", "URL")
        assert name
    # The same hash, altered to another op: refused before and after the MAC.
    status, body = await api.url("GET", url.replace("op=get", "op=put"))
    expect_error(status, body, 403, "bad_signature", "'put'")


async def test_get_url_cannot_be_used_to_put(api: Api) -> None:
    data = random_bytes(100)
    digest = digest_of(data)
    get_url = await api.block_url(digest, "get")
    before = snapshot(api.hub)
    status, body = await api.url("PUT", get_url, data=data)
    expect_error(status, body, 403, "bad_signature", "signed for 'get'")
    # And a put URL with its op rewritten to get is no longer genuine.
    put_url = await api.block_url(digest, "put")
    status, body = await api.url("PUT", put_url.replace("op=put", "op=get"), data=data)
    expect_error(status, body, 403, "bad_signature")
    status, body = await api.url("GET", put_url)
    expect_error(status, body, 403, "bad_signature", "signed for 'put'")
    assert snapshot(api.hub) == before


async def test_url_of_one_filespace_does_not_open_another(api: Api) -> None:
    data = random_bytes(100)
    digest = await api.upload(data)  # in "data"
    await api.upload(data, fs=api.small)  # the same bytes also exist in "small"
    url = await api.block_url(digest)
    status, body = await api.url("GET", url.replace(api.fs, api.small))
    expect_error(status, body, 403, "bad_signature")
    new = random_bytes(100)
    put = await api.block_url(digest_of(new), "put")
    before = snapshot(api.hub)
    status, body = await api.url("PUT", put.replace(api.fs, api.small), data=new)
    expect_error(status, body, 403, "bad_signature")
    assert snapshot(api.hub) == before


async def test_signed_urls_use_the_public_url(make_hub: Any, http_session: Any) -> None:
    hub = make_hub(public_url="https://files.example.com/")
    async with http_session.get(hub.url + "/v1/filespaces", headers={"Authorization": f"Bearer {hub.token}"}) as r:
        fs = (await r.json())["filespaces"][0]["id"]
    async with http_session.post(hub.url + f"/v1/filespaces/{fs}/blocks/urls", json={"op": "get", "hashes": ["a" * 64]},
                            headers={"Authorization": f"Bearer {hub.token}"}) as r:
        url = (await r.json())["urls"]["a" * 64]
    assert url.startswith(f"https://files.example.com/v1/blocks/{fs}/{'a' * 64}?op=get&exp=")


async def test_url_ttl_setting(make_hub: Any, http_session: Any) -> None:
    hub = make_hub(url_ttl_seconds=60)
    headers = {"Authorization": f"Bearer {hub.token}"}
    async with http_session.get(hub.url + "/v1/filespaces", headers=headers) as r:
        fs = (await r.json())["filespaces"][0]["id"]
    async with http_session.post(hub.url + f"/v1/filespaces/{fs}/blocks/urls", json={"op": "put", "hashes": ["b" * 64]},
                            headers=headers) as r:
        body = await r.json()
    exp = int(body["urls"]["b" * 64].split("exp=")[1].split("&")[0])
    assert abs(exp - (time.time() + 60)) < 5 and body["expires"] == exp


# -- garbage collection ------------------------------------------------------------------


@with_block_stores
async def test_gc_deletes_unreferenced_and_keeps_referenced_blocks(api: Api) -> None:
    kept_data, orphan_data = random_bytes(3000), random_bytes(2000)
    await api.write("/kept", [kept_data])
    kept = digest_of(kept_data)
    orphan = await api.upload(orphan_data)
    assert block_exists(api.hub, api.fs, orphan)
    stats = await api.ok("GET", api.p("statistics"))
    assert stats["block_count"] == 1 and stats["storage_size"] == 3000  # counts referenced blocks
    # Within the grace period nothing goes.
    assert await api.gc(grace=3600) == 0
    assert block_exists(api.hub, api.fs, orphan)
    assert await api.gc(grace=0) == 1
    assert not block_exists(api.hub, api.fs, orphan)
    assert block_row(api, api.fs, orphan) is None
    assert block_exists(api.hub, api.fs, kept)
    assert await api.read("/kept") == kept_data
    # The collected block is unknown again: put asks for an upload, a commit naming it fails.
    body = await api.ok("POST", api.p("blocks/urls"), json={"op": "put", "hashes": [orphan, kept]})
    assert list(body["urls"]) == [orphan] and body["present"] == [kept]
    await api.fail("POST", api.p("commit"), 409, "block_missing", json={
        "path": "/o", "size": 2000, "blocks": [{"index": 0, "hash": orphan, "length": 2000}]})
    # S3: the upload URL recorded an upload (never made), which the GC then collects.
    assert await api.gc(grace=0) == (0 if hub_state(api.hub).blocks.serves_blocks else 1)


@with_block_stores
async def test_gc_collects_blocks_of_deleted_files(api: Api) -> None:
    a, b = random_bytes(1000), random_bytes(1500)
    await api.mkdir("/d")
    await api.write("/d/a", [a])
    await api.write("/d/b", [b])
    await api.write("/shared", [b])  # the same block, referenced twice
    stats = await api.ok("GET", api.p("statistics"))
    assert (stats["block_count"], stats["storage_size"], stats["data_size"]) == (2, 2500, 4000)
    await api.ok("POST", api.p("delete"), json={"path": "/d", "recursive": True})
    stats = await api.ok("GET", api.p("statistics"))
    assert (stats["block_count"], stats["storage_size"], stats["data_size"]) == (1, 1500, 1500)
    assert await api.gc() == 1
    assert not block_exists(api.hub, api.fs, digest_of(a))
    assert block_exists(api.hub, api.fs, digest_of(b))
    await api.ok("POST", api.p("delete"), json={"path": "/shared"})
    assert await api.gc() == 1
    stats = await api.ok("GET", api.p("statistics"))
    assert (stats["block_count"], stats["storage_size"], stats["file_count"]) == (0, 0, 0)
    assert snapshot(api.hub)["block_files"] == []


@with_block_stores
async def test_gc_of_a_block_replaced_in_a_file(api: Api) -> None:
    old, new = random_bytes(100), random_bytes(100)
    await api.write("/f", [old])
    await api.write("/f", [new])
    assert await api.gc() == 1
    assert not block_exists(api.hub, api.fs, digest_of(old))
    assert await api.read("/f") == new


async def test_present_answer_protects_a_block_from_gc(api: Api) -> None:
    data = random_bytes(100)
    digest = await api.upload(data)
    # Pretend the unreferenced block was last seen long ago.
    api.hub.hub.write(lambda tx: tx.execute("UPDATE blocks SET last_seen = 0 WHERE hash = ?", (digest,)))
    body = await api.ok("POST", api.p("blocks/urls"), json={"op": "put", "hashes": [digest]})
    assert body["present"] == [digest]
    # The client will commit it without uploading: a GC now must keep it.
    assert await api.gc(grace=60) == 0
    await api.ok("POST", api.p("commit"), json={
        "path": "/f", "size": 100, "blocks": [{"index": 0, "hash": digest, "length": 100}]})
    assert await api.read("/f") == data


async def test_upload_during_deletion_is_told_to_retry(api: Api) -> None:
    data = random_bytes(100)
    digest = await api.upload(data)
    url = signer_of(api.hub).sign(api.hub.url, api.fs, digest, "put", 60)  # a retried upload
    # The GC has marked the block (step 1) but not yet forgotten it.
    api.hub.hub.write(lambda tx: tx.execute("UPDATE blocks SET state = 'deleting' WHERE hash = ?", (digest,)))
    status, body = await api.url("PUT", url, data=data)
    expect_error(status, body, 503, "hub_unavailable", "garbage-collected", "retry")
    await api.fail("POST", api.p("commit"), 409, "block_missing", json={
        "path": "/f", "size": 100, "blocks": [{"index": 0, "hash": digest, "length": 100}]})
    assert await api.gc() == 1  # finishes the interrupted run: bytes and row go
    assert not block_file(api.hub, api.fs, digest).exists()
    status, _ = await api.url("PUT", url, data=data)
    assert status == 201
    assert block_row(api, api.fs, digest)["state"] == "live"
    await api.ok("POST", api.p("commit"), json={
        "path": "/f", "size": 100, "blocks": [{"index": 0, "hash": digest, "length": 100}]})


async def test_gc_runs_in_the_background(tmp_path: Any) -> None:
    with EmbeddedHub(tmp_path / "hub", gc_interval_seconds=0.2, url_ttl_seconds=0, gc_grace_seconds=0) as hub:
        hub.init("demo", ["data"])
        fs = hub.write(lambda tx: tx.one("SELECT id FROM filespaces")["id"])
        from lucidlink.hub.core import files

        hub.write(files.begin_upload, fs, "c" * 64, 10)
        hub.write(files.finish_upload, fs, "c" * 64)
        path = tmp_path / "hub" / "blocks" / fs / "cc" / ("c" * 64)
        path.parent.mkdir(parents=True)
        path.write_bytes(b"0123456789")
        for _ in range(200):  # the GC runs every 0.2 s; allow 10 s
            if not path.exists():
                break
            await asyncio.sleep(0.05)
        assert not path.exists()
