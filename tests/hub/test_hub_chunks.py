"""Chunk digests (POST .../blocks/chunks): recorded from verified bytes, computed on demand for
blocks stored before, in the background for blocks uploaded straight to S3, never answered
across filespaces, readable with a read-only token."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest

from lucidlink.exceptions import IntegrityError
from lucidlink.hub.api.chunks import ON_DEMAND_PER_CALL
from lucidlink.hub.core.chunks import CHUNK_SIZE
from lucidlink.hub.state import Hub
from lucidlink.hub.uploads import confirm_uploads
from tests.support.hubfixtures import (
    Api,
    block_file,
    digest_of,
    hub_state,
    make_token,
    random_bytes,
)
from tests.support.pgfixture import with_block_stores

pytest_plugins = ["tests.support.hubfixtures"]

pytestmark = pytest.mark.asyncio

MIB4 = 4 * 1024 * 1024


def expected(data: bytes) -> str:
    """The hex the hub must answer: each chunk's SHA-256, concatenated."""
    return b"".join(hashlib.sha256(data[i:i + CHUNK_SIZE]).digest()
                    for i in range(0, len(data), CHUNK_SIZE)).hex()


def chunk_rows(api: Api) -> dict[str, Any]:
    rows = api.hub.hub.write(
        lambda tx: tx.all("SELECT hash, chunk_size, digests FROM block_chunks"))
    return {r["hash"]: (r["chunk_size"], bytes(r["digests"]).hex()) for r in rows}


async def ask(api: Api, hashes: list[str], fs: str | None = None, token: str | None = None) -> Any:
    kw = {"token": token} if token else {}
    return await api.ok("POST", api.p("blocks/chunks", fs), json={"hashes": hashes}, **kw)


async def test_uploads_record_the_digests_of_their_chunks(api: Api) -> None:
    datas = [random_bytes(MIB4), random_bytes(3 * CHUNK_SIZE + 17), random_bytes(100)]
    digests = [await api.upload(d) for d in datas]
    rows = chunk_rows(api)
    for data, digest in zip(datas, digests, strict=True):
        assert rows[digest] == (CHUNK_SIZE, expected(data))
    body = await ask(api, [*digests, digest_of(b"never uploaded")])
    assert body["chunk_size"] == CHUNK_SIZE and body["deferred"] == []
    assert body["digests"] == {d: expected(x) for d, x in zip(digests, datas, strict=True)}
    assert len(bytes.fromhex(body["digests"][digests[0]])) == 64 * 32
    # A refused upload records nothing.
    other = random_bytes(5000)
    url = await api.block_url(digest_of(other), "put")
    status, _ = await api.url("PUT", url, data=other[:-1] + bytes([other[-1] ^ 1]))
    assert status == 422 and digest_of(other) not in chunk_rows(api)
    assert (await ask(api, []))["digests"] == {}
    await api.fail("POST", api.p("blocks/chunks"), 400, "bad_request", "1024",
                   json={"hashes": [digests[0]] * 1025})
    await api.fail("POST", api.p("blocks/chunks"), 400, "bad_request", "'XYZ'",
                   json={"hashes": ["XYZ"]})


async def test_a_full_batch_answers_every_block_it_names_once(api: Api) -> None:
    """1,024 hashes (more than one statement's worth): the blocks among them, repeated or
    not, each answered once; the hashes of no block in neither list."""
    datas = [random_bytes(CHUNK_SIZE + i) for i in range(3)]
    digests = [await api.upload(d) for d in datas]
    unknown = [digest_of(b"never %d" % i) for i in range(1024 - 5)]
    hashes = [digests[0], *unknown[:600], digests[1], digests[0], *unknown[600:], digests[2],
              digests[1]]
    assert len(hashes) == 1024
    body = await ask(api, hashes)
    assert body["digests"] == {d: expected(x) for d, x in zip(digests, datas, strict=True)}
    assert body["deferred"] == []


async def test_blocks_stored_before_get_their_digests_on_demand(api: Api) -> None:
    datas = [random_bytes(CHUNK_SIZE * 2 + i) for i in range(ON_DEMAND_PER_CALL + 3)]
    digests = [await api.upload(d) for d in datas]
    api.hub.hub.write(lambda tx: tx.execute("DELETE FROM block_chunks"))  # as before this change
    body = await ask(api, digests)
    # At most ON_DEMAND_PER_CALL are computed per call (each is a read of the block file);
    # the others are deferred to the next call, not refused.
    assert list(body["digests"]) == digests[:ON_DEMAND_PER_CALL]
    assert body["deferred"] == digests[ON_DEMAND_PER_CALL:]
    body = await ask(api, digests)
    assert body["deferred"] == []
    assert body["digests"] == {d: expected(x) for d, x in zip(digests, datas, strict=True)}
    assert chunk_rows(api) == {
        d: (CHUNK_SIZE, expected(x)) for d, x in zip(digests, datas, strict=True)}


async def test_a_damaged_block_file_gets_no_digests(api: Api) -> None:
    data = random_bytes(3 * CHUNK_SIZE)
    digest = await api.upload(data)
    api.hub.hub.write(lambda tx: tx.execute("DELETE FROM block_chunks"))
    path = block_file(api.hub, api.fs, digest)
    damaged = bytearray(path.read_bytes())
    damaged[CHUNK_SIZE + 5] ^= 1
    path.write_bytes(bytes(damaged))
    body = await ask(api, [digest])
    assert body["digests"] == {} and body["deferred"] == []  # read it whole: the client is told
    assert chunk_rows(api) == {}


async def test_digests_are_never_answered_across_filespaces_or_workspaces(api: Api) -> None:
    data = random_bytes(2 * CHUNK_SIZE)
    digest = await api.upload(data)
    other = await api.raw.filespace_id("other")
    assert (await ask(api, [digest], fs=other))["digests"] == {}
    assert (await ask(api, [digest], fs=api.small))["digests"] == {}
    # Another workspace's token neither reaches this filespace nor learns about the hash.
    stranger = make_token(api.hub, workspace="acme", filespaces=["theirs"], admin=True)
    theirs = await api.raw.filespace_id("theirs", token=stranger)
    await api.fail("POST", api.p("blocks/chunks"), 404, "filespace_not_found",
                   json={"hashes": [digest]}, token=stranger)
    assert (await ask(api, [digest], fs=theirs, token=stranger))["digests"] == {}
    # A token limited to another filespace of the same workspace neither.
    limited = make_token(api.hub, filespaces=["other"])
    await api.fail("POST", api.p("blocks/chunks"), 404, "filespace_not_found",
                   json={"hashes": [digest]}, token=limited)
    # Not even on demand: the other filespace's block file is not its own.
    api.hub.hub.write(lambda tx: tx.execute("DELETE FROM block_chunks"))
    assert (await ask(api, [digest], fs=other))["digests"] == {}
    assert chunk_rows(api) == {}


async def test_a_read_only_token_may_read_digests(api: Api) -> None:
    data = random_bytes(CHUNK_SIZE + 1)
    digest = await api.upload(data)
    reader = make_token(api.hub, read_only=True)
    assert (await ask(api, [digest], token=reader))["digests"] == {digest: expected(data)}


async def test_the_gc_deletes_the_digests_of_the_blocks_it_collects(api: Api) -> None:
    kept = random_bytes(2 * CHUNK_SIZE)
    await api.write("/kept", [kept])
    garbage = await api.upload(random_bytes(2 * CHUNK_SIZE))
    assert set(chunk_rows(api)) == {digest_of(kept), garbage}
    assert await api.gc(grace=0) == 1
    assert set(chunk_rows(api)) == {digest_of(kept)}
    assert (await ask(api, [garbage]))["digests"] == {}


@with_block_stores
async def test_an_object_store_that_checks_no_checksum_has_digests_from_the_hubs_read(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = hub_state(api.hub)
    if hub.blocks.serves_blocks:
        pytest.skip("the local store records digests at upload (tested above)")
    other = random_bytes(3 * CHUNK_SIZE)
    read = await api.upload(other)
    monkeypatch.setattr(hub.blocks, "enforces_checksums", False)
    change = {"path": "/read", "size": len(other), "blocks": [
        {"index": 0, "hash": read, "length": len(other)}]}
    assert api.hub.hub.call(confirm_uploads(hub, api.fs, [change])) == 1
    assert (await ask(api, [read]))["digests"] == {read: expected(other)}


async def _s3_hub(api: Api) -> Hub:
    hub = hub_state(api.hub)
    if hub.blocks.serves_blocks or not getattr(hub.blocks, "enforces_checksums", False):
        pytest.skip("blocks verified by the store's checksum: the S3 store")
    return hub


async def _until_recorded(api: Api, digest: str) -> None:
    for _ in range(200):
        if digest in chunk_rows(api):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no digests recorded for {digest[:12]} after 10 s")


@with_block_stores
async def test_blocks_uploaded_straight_to_s3_get_digests_in_the_background(api: Api) -> None:
    """Verified by HEAD, never seen by the hub: it reads them back once for their digests."""
    hub = await _s3_hub(api)
    datas = [random_bytes(2 * CHUNK_SIZE + 3), random_bytes(MIB4)]
    await api.write("/checked", datas)
    digests = [digest_of(d) for d in datas]
    for digest in digests:  # nobody asked: the commit queued them
        await _until_recorded(api, digest)
    assert hub.digests.computed == 2
    assert (await ask(api, digests))["digests"] == {
        d: expected(x) for d, x in zip(digests, datas, strict=True)}


@with_block_stores
async def test_digests_of_s3_blocks_on_demand(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks the background missed (a restart, a full queue) get theirs when asked for."""
    hub = await _s3_hub(api)
    monkeypatch.setattr(hub.digests, "want", lambda *args: None)
    datas = [random_bytes(CHUNK_SIZE + i) for i in range(ON_DEMAND_PER_CALL + 2)]
    await api.write("/late", datas)
    digests = [digest_of(d) for d in datas]
    assert chunk_rows(api) == {}
    body = await ask(api, digests)
    assert body["digests"] == {d: expected(x) for d, x in
                               zip(digests[:ON_DEMAND_PER_CALL], datas, strict=False)}
    assert body["deferred"] == digests[ON_DEMAND_PER_CALL:]
    assert set((await ask(api, body["deferred"]))["digests"]) == set(body["deferred"])


@with_block_stores
async def test_a_damaged_object_gets_no_digests(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Digests only ever come from bytes that hashed to the block's name."""
    hub = await _s3_hub(api)
    monkeypatch.setattr(hub.digests, "want", lambda *args: None)
    data = random_bytes(2 * CHUNK_SIZE)
    await api.write("/damaged", [data])

    async def damaged(filespace_id: str, digest: str) -> bytes:
        raise IntegrityError(f"block {digest[:12]}... hashes to something else")

    monkeypatch.setattr(hub.blocks, "get", damaged)
    body = await ask(api, [digest_of(data)])
    assert body["digests"] == {} and body["deferred"] == []
    assert chunk_rows(api) == {}


@with_block_stores
async def test_a_store_that_fails_for_now_defers_the_digests(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A transient error reading a block is neither a 500 nor "no digests": asked later."""
    hub = await _s3_hub(api)
    monkeypatch.setattr(hub.digests, "want", lambda *args: None)
    data = random_bytes(2 * CHUNK_SIZE)
    await api.write("/flaky", [data])
    real_get = hub.blocks.get
    failures = [ConnectionResetError("the store hung up")]

    async def flaky(filespace_id: str, digest: str) -> bytes:
        if failures:
            raise failures.pop()
        return await real_get(filespace_id, digest)

    monkeypatch.setattr(hub.blocks, "get", flaky)
    body = await ask(api, [digest_of(data)])
    assert body["digests"] == {} and body["deferred"] == [digest_of(data)]
    assert (await ask(api, [digest_of(data)]))["digests"] == {digest_of(data): expected(data)}


@pytest.mark.parametrize("chunk_size", [1024, CHUNK_SIZE])
async def test_pieces_hash_as_the_joined_block(chunk_size: int) -> None:
    """An upload hashed in the pieces it arrived in gives the joined block's name and chunk
    digests, wherever the pieces' edges fall (inside a chunk, on an edge, empty pieces)."""
    import random

    from lucidlink.hub.core.chunks import hash_parts

    rng = random.Random(7)
    for _ in range(60):
        data = rng.randbytes(rng.randrange(1, 5 * chunk_size))
        cuts = sorted(rng.choices(range(len(data) + 1), k=rng.randrange(0, 12)))
        parts = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert b"".join(parts) == data
        whole, digests = hash_parts(parts, chunk_size)
        assert whole == hashlib.sha256(data).hexdigest()
        assert digests == b"".join(hashlib.sha256(data[i:i + chunk_size]).digest()
                                   for i in range(0, len(data), chunk_size))


async def test_a_block_written_from_more_pieces_than_one_writev_takes(tmp_path: Any) -> None:
    """write_synced of pieces (more than the 1,024 one writev call takes) writes them all, in order."""
    import random

    from lucidlink.hub import disk

    rng = random.Random(3)
    parts = [rng.randbytes(rng.randrange(0, 700)) for _ in range(2500)]
    target = tmp_path / "block"
    disk.write_synced(target, parts)
    assert target.read_bytes() == b"".join(parts)


async def test_a_block_written_past_the_page_cache_from_its_pieces(tmp_path: Any) -> None:
    """The hub's block writes (O_DIRECT where the file system takes it): the file holds the
    pieces joined, 0600, whatever their edges."""
    import random

    from lucidlink.directio import DirectWriter
    from lucidlink.hub import disk

    rng = random.Random(5)
    writer = DirectWriter()
    for n, size in enumerate((MIB4, MIB4 - 1, 1024 * 1024 + 4096 + 3, 5000)):
        data = rng.randbytes(size)
        cuts = sorted(rng.sample(range(1, size), min(size - 1, 70)))
        parts = [data[a:b] for a, b in zip([0, *cuts], [*cuts, size], strict=True)]
        target = tmp_path / f"block{n}"
        disk.write_synced(target, parts, writer)
        assert target.read_bytes() == data
        assert target.stat().st_mode & 0o777 == 0o600
    writer.close()
