"""Blocks in an S3 bucket (SeaweedFS): presigned transfers, commit checks, GC, no hub bytes.

The behaviour both block stores share runs on both through the ``block_stores`` marker
(tests/support/pgfixture.py); these are the cases only the S3 store has.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

import lucidlink.aio
from lucidlink.aio.blocks import BlockIO
from lucidlink.hub.api.app_keys import HUB_KEY
from lucidlink.hub.core import files
from lucidlink.hub.embedded import EmbeddedHub
from tests.support.hubfixtures import (
    Api,
    block_exists,
    digest_of,
    expect_error,
    hub_state,
    random_bytes,
)
from tests.support.s3fixtures import hub_s3_settings
from tests.support.sdkfixtures import SMALL_BLOCK, SdkHub
from tests.support.seaweed import SeaweedS3

pytest_plugins = ["tests.support.hubfixtures"]

pytestmark = pytest.mark.asyncio
s3_only = pytest.mark.parametrize(
    ("metadata_url", "block_store"), [("sqlite", "s3")], indirect=True, ids=["sqlite-s3"])
"""The ``api`` and ``hub`` fixtures on SQLite and the session's SeaweedFS."""


def one_block(path: str, digest: str, length: int) -> dict[str, Any]:
    return {"path": path, "size": length,
            "blocks": [{"index": 0, "hash": digest, "length": length}]}


def row(api: Api, digest: str) -> Any:
    return api.hub.hub.write(lambda tx: tx.one(
        "SELECT state, length FROM blocks WHERE filespace_id = ? AND hash = ?", (api.fs, digest)))


async def put_urls(api: Api, *digests: str) -> dict[str, Any]:
    return await api.ok("POST", api.p("blocks/urls"), json={"op": "put", "hashes": list(digests)})


@s3_only
async def test_put_urls_are_presigned_s3_urls_with_the_checksum_header(
        api: Api, seaweed: SeaweedS3) -> None:
    data = random_bytes(5000)
    digest = digest_of(data)
    body = await put_urls(api, digest)
    url = body["urls"][digest]
    assert url.startswith(f"{seaweed.endpoint}/{seaweed.bucket}/") and f"/{api.fs}/{digest}?" in url
    checksum = base64.b64encode(bytes.fromhex(digest)).decode()
    assert body["headers"] == {digest: {"x-amz-checksum-sha256": checksum}}
    assert dict(row(api, digest)) == {"state": "uploading", "length": 0}  # GC grace starts now
    get = await api.ok("POST", api.p("blocks/urls"), json={"op": "get", "hashes": [digest]})
    assert get["urls"][digest].startswith(seaweed.endpoint) and get["headers"] == {}
    assert (await api.ok("GET", "/healthz"))["blocks"] == "s3"


@s3_only
async def test_a_commit_of_a_block_never_uploaded_is_block_missing(api: Api) -> None:
    digest = digest_of(b"never sent")
    await put_urls(api, digest)
    err = await api.fail("POST", api.p("commit"), 409, "block_missing",
                         json=one_block("/f", digest, 10))
    assert err["details"]["missing"] == [digest]
    assert row(api, digest)["state"] == "uploading"
    assert not await api.exists("/f")


@s3_only
async def test_a_commit_makes_the_upload_live_after_checking_the_bucket(api: Api) -> None:
    data = random_bytes(3000)
    digest = await api.upload(data)
    assert row(api, digest)["state"] == "uploading"
    await api.ok("POST", api.p("commits"), json={"commits": [one_block("/f", digest, 3000)]})
    assert dict(row(api, digest)) == {"state": "live", "length": 3000}
    assert await api.read("/f") == data
    assert (await put_urls(api, digest))["present"] == [digest]


@s3_only
async def test_the_store_refuses_bytes_that_do_not_match_the_checksum(api: Api) -> None:
    data = random_bytes(4000)
    digest = digest_of(data)
    body = await put_urls(api, digest)
    url, headers = body["urls"][digest], body["headers"][digest]
    async with api.raw.session.put(url, data=data[:-1] + bytes([data[-1] ^ 1]), headers=headers) as resp:
        assert resp.status == 400 and b"BadDigest" in await resp.read()
    async with api.raw.session.put(url, data=data) as resp:  # the header is part of the signature
        assert resp.status == 403
    assert not block_exists(api.hub, api.fs, digest)
    await api.fail("POST", api.p("commit"), 409, "block_missing",
                   json=one_block("/f", digest, 4000))
    async with api.raw.session.put(url, data=data, headers=headers) as resp:
        assert resp.status == 200
    await api.ok("POST", api.p("commit"), json=one_block("/f", digest, 4000))
    assert await api.read("/f") == data


@s3_only
async def test_the_hub_serves_no_blocks_and_moves_no_bytes(api: Api) -> None:
    data = random_bytes(SMALL_BLOCK)
    await api.write("/f", [data], fs=api.small)
    assert await api.read("/f", fs=api.small) == data
    digest = digest_of(data)
    local_url = f"{api.hub.url}/v1/blocks/{api.small}/{digest}?op=get&exp=1&sig={'0' * 64}"
    status, body = await api.url("GET", local_url)
    expect_error(status, body, 404, "not_found", "object store")
    assert hub_state(api.hub).metrics.block_bytes in ({}, {"in": 0, "out": 0})
    async with api.raw.session.get(api.hub.url + "/metrics") as resp:
        text = await resp.text()
    samples = [line for line in text.splitlines() if line.startswith("lucidhub_block_bytes_total")]
    assert all(float(line.split()[-1]) == 0 for line in samples), samples


@s3_only
async def test_gc_deletes_from_the_bucket_after_grace_and_finishes_an_interrupted_pass(
        api: Api) -> None:
    kept, orphan, crashed = random_bytes(100), random_bytes(200), random_bytes(300)
    await api.write("/kept", [kept])
    await api.write("/gone", [orphan])
    await api.write("/crashed", [crashed])
    await api.ok("POST", api.p("delete"), json={"path": "/gone"})
    await api.ok("POST", api.p("delete"), json={"path": "/crashed"})
    # A pass that crashed after marking (step 1), before deleting the object (step 2).
    api.hub.hub.write(lambda tx: tx.execute(
        "UPDATE blocks SET state = 'deleting' WHERE hash = ?", (digest_of(crashed),)))
    assert block_exists(api.hub, api.fs, digest_of(crashed))
    # Meanwhile an upload of that block is told to retry, and a commit naming it fails.
    await api.fail("POST", api.p("blocks/urls"), 503, "hub_unavailable", "garbage-collected",
                   json={"op": "put", "hashes": [digest_of(crashed)]})
    assert await api.gc(grace=3600) == 1  # the interrupted pass only; "gone" is within grace
    assert not block_exists(api.hub, api.fs, digest_of(crashed))
    assert block_exists(api.hub, api.fs, digest_of(orphan))
    assert await api.gc(grace=0) == 1
    assert not block_exists(api.hub, api.fs, digest_of(orphan))
    assert row(api, digest_of(orphan)) is None
    assert block_exists(api.hub, api.fs, digest_of(kept)) and await api.read("/kept") == kept
    await api.write("/crashed", [crashed])  # uploads work again once the row is gone
    assert await api.read("/crashed") == crashed


@s3_only
async def test_gc_deletes_in_batches(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    blobs = [random_bytes(50 + i) for i in range(12)]
    for i, blob in enumerate(blobs):
        await api.write(f"/f{i}", [blob])
        await api.ok("POST", api.p("delete"), json={"path": f"/f{i}"})
    store = hub_state(api.hub).blocks
    calls: list[int] = []
    real = store.delete

    async def counted(fs: str, digests: list[str]) -> None:
        calls.append(len(digests))
        await real(fs, digests)

    monkeypatch.setattr(store, "delete", counted)
    assert await api.gc(grace=0) == 12
    assert calls == [12]  # one DeleteObjects request, not twelve
    assert not any(block_exists(api.hub, api.fs, digest_of(b)) for b in blobs)


async def test_presigned_urls_expire(tmp_path: Path, seaweed: SeaweedS3) -> None:
    with EmbeddedHub(tmp_path / "hub", gc_interval_seconds=3600, url_ttl_seconds=1,
                     gc_grace_seconds=1, **hub_s3_settings(seaweed)) as hub:
        token = hub.init("demo", ["data"])
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            async with http.get(hub.url + "/v1/filespaces") as resp:
                fs = (await resp.json())["filespaces"][0]["id"]
            data = b"expiring"
            digest = digest_of(data)
            async with http.post(hub.url + f"/v1/filespaces/{fs}/blocks/urls",
                                 json={"op": "put", "hashes": [digest]}) as resp:
                body = await resp.json()
            await asyncio.sleep(2.2)
            async with aiohttp.ClientSession() as s3, s3.put(
                    body["urls"][digest], data=data, headers=body["headers"][digest]) as resp:
                assert resp.status == 403, await resp.text()


# -- the SDK against an S3 block store ----------------------------------------------------


@pytest.fixture
def s3_sdk_hub(tmp_path: Path, seaweed: SeaweedS3) -> Iterator[SdkHub]:
    """A hub on S3 whose URLs live 2 s (the grace may not be shorter)."""
    with EmbeddedHub(tmp_path / "sdkhub", gc_interval_seconds=3600, url_ttl_seconds=2,
                     gc_grace_seconds=2, **hub_s3_settings(seaweed)) as hub:
        token = hub.init("demo", ["small"], block_size=SMALL_BLOCK)
        yield SdkHub(hub.url, token, token, hub)


@pytest_asyncio.fixture
async def s3_filespace(s3_sdk_hub: SdkHub) -> AsyncIterator[Any]:
    async with lucidlink.aio.create_daemon(hub_url=s3_sdk_hub.url) as daemon:
        credentials = lucidlink.aio.ServiceAccountCredentials(token=s3_sdk_hub.token)
        ws = await daemon.authenticate(credentials)
        async with ws.link_filespace(name="small") as filespace:
            yield filespace


async def test_the_client_sends_damaged_bytes_again(
        s3_filespace: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real = BlockIO._put_signed
    damaged: list[str] = []

    async def damage_once(self: BlockIO, url: str, headers: Any, data: Any, retries: Any) -> None:
        if url not in damaged:  # the first try of each block arrives with one byte changed
            damaged.append(url)
            data = bytes(data[:-1]) + bytes([data[-1] ^ 1])
        await real(self, url, headers, data, retries)

    monkeypatch.setattr(BlockIO, "_put_signed", damage_once)
    s3_filespace._link.writeback.set_inline_limit(0)  # every block uploaded, none in its commit
    data = os.urandom(2 * SMALL_BLOCK + 10)
    await s3_filespace.fs.write_file("/f.bin", data)
    await s3_filespace.sync_all()
    # Every block's first bytes arrived damaged, were refused and sent again. A block may
    # be sent damaged more than once (a background upload of the write and the
    # flusher's upload race, each on its own URL); the file still lands intact.
    hashes = [hashlib.sha256(data[i:i + SMALL_BLOCK]).hexdigest()
              for i in range(0, len(data), SMALL_BLOCK)]
    assert len(hashes) == 3 and len(damaged) >= 3
    assert all(any(h in url for url in damaged) for h in hashes), damaged
    assert await s3_filespace.fs.read_file("/f.bin") == data


async def test_the_client_asks_for_a_fresh_url_when_one_expired(
        s3_filespace: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real = BlockIO._put_urls
    calls: list[int] = []

    async def slow_first(self: BlockIO, hashes: list[str], best_effort: bool = False) -> Any:
        urls = await real(self, hashes, best_effort)
        calls.append(len(urls))
        if len(calls) == 1:
            await asyncio.sleep(3)  # the URLs expire (2 s) before they are used
        return urls

    monkeypatch.setattr(BlockIO, "_put_urls", slow_first)
    s3_filespace._link.writeback.set_inline_limit(0)  # uploaded, not carried in its commit
    data = os.urandom(100)
    await s3_filespace.fs.write_file("/f.bin", data)
    await s3_filespace.sync_all()
    assert len(calls) >= 2
    assert await s3_filespace.fs.read_file("/f.bin") == data


async def test_a_hub_on_postgresql_and_s3_needs_no_data_dir(
        seaweed: SeaweedS3, postgres_dsn: str) -> None:
    from tests.support.pgfixture import fresh_schema

    with fresh_schema(postgres_dsn) as url, EmbeddedHub(
            None, metadata_url=url, gc_interval_seconds=3600, **hub_s3_settings(seaweed)) as hub:
        assert hub.settings.data_dir is None
        hub.init("demo", ["data"])
        fs = hub.write(lambda tx: tx.one("SELECT id FROM filespaces")["id"])
        hub.write(files.begin_direct_uploads, fs, ["a" * 64])
        assert hub.write(files.uploading_blocks, fs, ["a" * 64, "b" * 64]) == ["a" * 64]


async def test_a_block_missing_from_the_bucket_is_reported_missing(
        s3_sdk_hub: SdkHub, s3_filespace: Any) -> None:
    data = os.urandom(1000)
    s3_filespace._link.writeback.set_inline_limit(0)  # in the bucket, not with the metadata
    await s3_filespace.fs.write_file("/f.bin", data)
    await s3_filespace.sync_all()
    store = s3_sdk_hub.hub.app[HUB_KEY].blocks  # type: ignore[index]
    fs_id = s3_filespace.id
    s3_sdk_hub.hub.call(store.delete(fs_id, [digest_of(data)]))  # lost by the store
    async with lucidlink.aio.create_daemon(hub_url=s3_sdk_hub.url) as daemon:  # nothing cached
        credentials = lucidlink.aio.ServiceAccountCredentials(token=s3_sdk_hub.token)
        ws = await daemon.authenticate(credentials)
        async with ws.link_filespace(name="small") as reader:
            with pytest.raises(FileNotFoundError, match="not in the block store"):
                await reader.fs.read_file("/f.bin")


async def test_random_reads_of_s3_blocks_fetch_verified_chunks(
        tmp_path: Path, seaweed: SeaweedS3) -> None:
    """Blocks uploaded straight to the bucket get chunk digests (the hub reads each back
    once), so a small random read fetches a chunk range, not its whole block."""
    from lucidlink.aio import pages
    from lucidlink.hub.core.chunks import CHUNK_SIZE

    block = 1024 * 1024  # 16 chunks a block
    blocks = 6
    data = os.urandom(blocks * block)
    with EmbeddedHub(tmp_path / "hub", gc_interval_seconds=3600, **hub_s3_settings(seaweed)) as hub:
        token = hub.init("demo", ["mid"], block_size=block)
        credentials = lucidlink.aio.ServiceAccountCredentials(token=token)
        async with lucidlink.aio.create_daemon(hub_url=hub.url) as daemon:
            ws = await daemon.authenticate(credentials)
            async with ws.link_filespace(name="mid") as writer:
                await writer.fs.write_file("/r.bin", data)
                await writer.sync_all()
        state = hub.app[HUB_KEY]  # type: ignore[index]
        for _ in range(200):  # the background digests of the commit's blocks
            if state.digests.computed >= blocks:
                break
            await asyncio.sleep(0.05)
        assert state.digests.computed == blocks
        async with lucidlink.aio.create_daemon(hub_url=hub.url) as daemon:  # nothing cached
            ws = await daemon.authenticate(credentials)
            async with ws.link_filespace(name="mid") as reader:
                wrong = 0
                async with reader.fs.open("/r.bin", "rb") as f:
                    for b, c in ((4, 3), (1, 9), (5, 0), (0, 15)):
                        off = b * block + c * CHUNK_SIZE + 777
                        await f.seek(off)
                        wrong += await f.read(100) != data[off:off + 100]
                page_reader = pages.reader_for(reader._link.blocks)
                assert page_reader is not None
                assert wrong == 0
                assert page_reader.fetched == 4 * CHUNK_SIZE  # a chunk each, no block
