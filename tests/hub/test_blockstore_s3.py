"""The S3 block store against a real SeaweedFS: presigned URLs as clients use them,
checksum enforcement and verification, keys, deletes, and how it refuses bad settings."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import os
import uuid
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import yarl

from lucidlink.exceptions import (
    BadRequestError,
    ConfigurationError,
    IntegrityError,
    PathNotFoundError,
)
from lucidlink.hub.blockstore.s3 import (
    CHECKSUM_HEADER,
    PresignedRequest,
    S3BlockStore,
    checksum_of,
)
from lucidlink.hub.blockstore.s3_settings import S3Settings
from lucidlink.hub.s3 import client as connect_s3
from lucidlink.hub.s3.sigv4 import presign
from tests.support.s3fixtures import delete_bucket, s3_block_store, s3_blocks, s3_env  # noqa: F401
from tests.support.seaweed import SeaweedS3

FS = "0123456789abcdef0123456789abcdef"
OTHER_FS = "fedcba9876543210fedcba9876543210"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
KEYS = {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}


def block(size: int = 4096) -> tuple[bytes, str]:
    data = os.urandom(size)
    return data, hashlib.sha256(data).hexdigest()


async def send(method: str, url: str, data: bytes | None = None,
               headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """What a client does with a presigned URL: send it as it is, with aiohttp."""
    async with aiohttp.ClientSession() as http, http.request(
            method, yarl.URL(url, encoded=True), data=data, headers=headers or {}) as resp:
        return resp.status, await resp.read()


async def upload(request: PresignedRequest, data: bytes) -> tuple[int, bytes]:
    return await send("PUT", request.url, data, dict(request.headers))


# -- settings (no server) ----------------------------------------------------------------


def test_from_url_takes_bucket_prefix_and_the_standard_variables() -> None:
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:8333/", "AWS_REGION": "eu-west-3",
           "AWS_SESSION_TOKEN": "TOK", **KEYS}
    s = S3Settings.from_url("s3://blocks/a/b/", env)
    assert (s.bucket, s.prefix, s.endpoint, s.region) == (
        "blocks", "a/b", "http://127.0.0.1:8333", "eu-west-3")
    assert (s.access_key, s.secret_key, s.session_token) == ("AK", "SK", "TOK")
    assert s.path_style and s.allow_http  # an endpoint: path-style; http on loopback: allowed
    assert s.url == "s3://blocks/a/b"
    assert "SK" not in repr(s) and "TOK" not in repr(s) and "SK" not in repr(S3BlockStore(s))

    # Overrides win; AWS_ENDPOINT_URL_S3 beats AWS_ENDPOINT_URL; AWS_DEFAULT_REGION is the fallback.
    env = {"AWS_ENDPOINT_URL": "https://a.example", "AWS_ENDPOINT_URL_S3": "https://s3.example",
           "AWS_DEFAULT_REGION": "ap-south-1", **KEYS}
    s = S3Settings.from_url("s3://blocks", env)
    assert (s.prefix, s.endpoint, s.region, s.allow_http) == (
        "", "https://s3.example", "ap-south-1", False)
    s = S3Settings.from_url("s3://blocks", env, endpoint="https://o.example", region="r1",
                            access_key="A2", secret_key="S2", path_style=False)
    assert (s.endpoint, s.region, s.access_key, s.secret_key, s.path_style) == (
        "https://o.example", "r1", "A2", "S2", False)

    # No endpoint: AWS, virtual-hosted, us-east-1 unless told.
    s = S3Settings.from_url("s3://blocks/p", KEYS)
    assert (s.endpoint, s.region, s.path_style, s.where) == ("", "us-east-1", False,
                                                             "https://s3.us-east-1.amazonaws.com")
    assert s.object_url("p/x y") == "https://blocks.s3.us-east-1.amazonaws.com/p/x%20y"


@pytest.mark.parametrize(("url", "env", "kw", "field"), [
    ("http://blocks/p", {}, {}, "block_store"),
    ("s3:///p", {}, {}, "block_store"),
    ("s3://AK:SK@blocks/p", {}, {}, "block_store"),
    ("s3://blocks/p?endpoint=x", {}, {}, "block_store"),
    ("s3://b/p", {}, {}, "bucket"),
    ("s3://blocks/a/../b", {}, {}, "prefix"),
    ("s3://blocks/a//b", {}, {}, "prefix"),
    ("s3://blocks/p", {"AWS_ACCESS_KEY_ID": ""}, {}, "access_key"),
    ("s3://blocks/p", {"AWS_SECRET_ACCESS_KEY": ""}, {}, "access_key"),
    ("s3://blocks/p", {"AWS_ENDPOINT_URL": "http://10.1.2.3:9000"}, {}, "endpoint"),
    ("s3://blocks/p", {}, {"endpoint": "https://s3.example/sub"}, "endpoint"),
    ("s3://blocks/p", {}, {"endpoint": "ftp://s3.example"}, "endpoint"),
    ("s3://blocks/p", {}, {"allow_http": False, "endpoint": "http://127.0.0.1:1"}, "endpoint"),
])
def test_from_url_refuses_settings_that_cannot_work(url: str, env: dict[str, str],
                                                    kw: dict[str, object], field: str) -> None:
    environ = {**KEYS, **env}
    with pytest.raises(ConfigurationError) as info:
        S3Settings.from_url(url, environ, **kw)  # type: ignore[arg-type]
    assert info.value.details["field"] == field
    assert "SK" not in str(info.value)


def test_http_elsewhere_than_loopback_needs_allow_http() -> None:
    env = {"AWS_ENDPOINT_URL": "http://10.1.2.3:9000", **KEYS}
    assert S3Settings.from_url("s3://blocks", env, allow_http=True).allow_http


def test_presign_matches_the_aws_documented_example_and_the_connect_presigner() -> None:
    now = datetime.datetime(2013, 5, 24, tzinfo=datetime.timezone.utc)
    url = presign("GET", "https://examplebucket.s3.amazonaws.com/test.txt", region="us-east-1",
                  access_key="AKIAIOSFODNN7EXAMPLE", secret_key=AWS_SECRET, expires=86400, now=now)
    assert url.endswith(
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    target = connect_s3.S3Target(bucket="examplebucket", access_key="AKIAIOSFODNN7EXAMPLE",
                                 secret_key=AWS_SECRET, region="us-east-1",
                                 endpoint="https://s3.amazonaws.com", virtual=True)
    assert connect_s3.presign(target, "GET", "test.txt", 86400, now=now) == url


def test_upload_urls_sign_the_checksum_header_and_the_session_token() -> None:
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_SESSION_TOKEN": "TOK", **KEYS}
    store = S3BlockStore.from_url("s3://blocks/pre", env)
    digest = hashlib.sha256(b"x").hexdigest()
    request = store.upload_request(FS, digest, 60)
    assert request.headers == {CHECKSUM_HEADER: checksum_of(digest)}
    assert base64.b64decode(checksum_of(digest)) == hashlib.sha256(b"x").digest()  # raw, not hex
    url = urlsplit(request.url)
    assert url.path == f"/blocks/pre/{FS}/{digest}"
    query = parse_qs(url.query)
    assert query["X-Amz-SignedHeaders"] == [f"host;{CHECKSUM_HEADER}"]
    assert query["X-Amz-Security-Token"] == ["TOK"]
    assert query["X-Amz-Expires"] == ["60"]


@pytest.mark.parametrize("path_style", [True, False])
def test_our_urls_and_obstores_agree(path_style: bool) -> None:
    env = {"AWS_ENDPOINT_URL": "https://s3.example:9443", **KEYS}
    store = S3BlockStore.from_url("s3://blocks/a/b", env, path_style=path_style)
    digest = "ab" * 32
    ours = urlsplit(store.upload_request(FS, digest, 60).url)
    theirs = urlsplit(store.signed_url("", FS, digest, "get", 60))
    assert (ours.scheme, ours.netloc, ours.path) == (theirs.scheme, theirs.netloc, theirs.path)
    assert ours.path.endswith(f"/a/b/{FS}/{digest}")


def test_obstore_ignores_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # obstore reads AWS_* of the process for what it is not given: a token or an endpoint
    # there must not leak into URLs made from explicit settings.
    monkeypatch.setenv("AWS_SESSION_TOKEN", "stray-token")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://stray.example")
    monkeypatch.setenv("AWS_SKIP_SIGNATURE", "true")
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", **KEYS}
    url = S3BlockStore.from_url("s3://blocks", env).signed_url("", FS, "ab" * 32, "get", 60)
    assert url.startswith(f"http://127.0.0.1:1/blocks/{FS}/") and "X-Amz-Signature=" in url
    assert "stray" not in url


def test_keys_are_scoped_per_filespace_and_checked() -> None:
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", **KEYS}
    store = S3BlockStore.from_url("s3://blocks/pre", env)
    digest = "ab" * 32
    assert store.key(FS, digest) == f"pre/{FS}/{digest}"
    assert store.key(OTHER_FS, digest) == f"pre/{OTHER_FS}/{digest}"
    bad = [("../" + FS[3:], digest), (FS, "../" + digest[3:]), (FS, digest.upper()), ("", digest)]
    for fs, dg in bad:
        with pytest.raises(BadRequestError):
            store.key(fs, dg)
    with pytest.raises(BadRequestError):
        store.signed_url("", FS, digest, "delete", 60)


# -- against SeaweedFS -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_presigned_put_then_get_round_trip(s3_blocks: S3BlockStore) -> None:  # noqa: F811
    assert s3_blocks.enforces_checksums is True  # SeaweedFS checks x-amz-checksum-sha256
    blocks = dict(block(n)[::-1] for n in (1, 4096, 100_000))
    puts = await s3_blocks.sign_urls("", FS, list(blocks), "put", 60)
    assert set(puts) == set(blocks)
    answers = await asyncio.gather(*(upload(puts[d], blocks[d]) for d in blocks))
    assert [status for status, _ in answers] == [200] * 3
    gets = await s3_blocks.sign_urls("", FS, list(blocks), "get", 60)
    for digest, data in blocks.items():
        assert gets[digest].headers == {}
        assert await send("GET", gets[digest].url) == (200, data)
        assert await s3_blocks.verify(FS, digest, len(data))
        assert not await s3_blocks.verify(FS, digest, len(data) + 1)
    assert await s3_blocks.sign_urls("", FS, [], "get", 60) == {}


@pytest.mark.asyncio
async def test_ranged_get_on_a_presigned_url(s3_blocks: S3BlockStore) -> None:  # noqa: F811
    data, digest = block(1 << 20)
    await s3_blocks.put(FS, digest, data)
    url = s3_blocks.signed_url("", FS, digest, "get", 60)
    async with aiohttp.ClientSession() as http:
        async with http.get(yarl.URL(url, encoded=True),
                            headers={"Range": "bytes=1000-1999"}) as resp:
            assert resp.status == 206
            assert resp.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
            assert await resp.read() == data[1000:2000]
        async with http.get(yarl.URL(url, encoded=True), headers={"Range": "bytes=-10"}) as resp:
            assert (resp.status, await resp.read()) == (206, data[-10:])


@pytest.mark.asyncio
async def test_expired_urls_are_refused(s3_blocks: S3BlockStore) -> None:  # noqa: F811
    data, digest = block()
    an_hour_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    status, body = await upload(s3_blocks.upload_request(FS, digest, 60, now=an_hour_ago), data)
    assert status == 403 and b"expired" in body
    assert not await s3_blocks.exists(FS, digest)
    await s3_blocks.put(FS, digest, data)
    url = s3_blocks.signed_url("", FS, digest, "get", 1)  # obstore's signer: no backdating
    await asyncio.sleep(2.1)
    status, body = await send("GET", url)
    assert status == 403 and b"expired" in body


@pytest.mark.asyncio
async def test_the_store_refuses_bytes_that_do_not_match(s3_blocks: S3BlockStore) -> None:  # noqa: F811
    data, digest = block()
    request = (await s3_blocks.sign_urls("", FS, [digest], "put", 60))[digest]
    status, body = await upload(request, data[:-1] + bytes([data[-1] ^ 1]))
    assert status == 400 and b"BadDigest" in body
    # The header is signed: leaving it out, or sending another value, breaks the signature.
    assert (await send("PUT", request.url, data))[0] == 403
    other = {CHECKSUM_HEADER: checksum_of(hashlib.sha256(b"other").hexdigest())}
    assert (await send("PUT", request.url, b"other", other))[0] == 403
    assert not await s3_blocks.exists(FS, digest)
    assert not await s3_blocks.verify(FS, digest, len(data))
    assert (await upload(request, data))[0] == 200
    assert await s3_blocks.verify(FS, digest, len(data))


@pytest.mark.asyncio
async def test_verify_reads_what_the_store_kept_no_checksum_for(s3_blocks: S3BlockStore,  # noqa: F811
                                                               seaweed: SeaweedS3) -> None:
    # Objects written without a checksum header (as on a store that ignores it).
    good, good_digest = block()
    await seaweed.put(s3_blocks.key(FS, good_digest), good)
    bad, bad_digest = block()
    await seaweed.put(s3_blocks.key(FS, bad_digest), os.urandom(len(bad)))
    assert await s3_blocks.verify(FS, good_digest, len(good))
    assert not await s3_blocks.verify(FS, bad_digest, len(bad))
    assert not await s3_blocks.verify(FS, block()[1], 4096)  # missing
    with pytest.raises(IntegrityError, match="damaged"):
        await s3_blocks.get(FS, bad_digest)


@pytest.mark.asyncio
async def test_a_store_that_does_not_enforce_checksums_has_its_blocks_read(
        s3_blocks: S3BlockStore, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    data, digest = block()
    await s3_blocks.put(FS, digest, data)  # the object keeps a checksum of its bytes
    reads: list[str] = []
    real = s3_blocks._read

    async def counted(fs: str, d: str) -> bytes:
        reads.append(d)
        return await real(fs, d)

    monkeypatch.setattr(s3_blocks, "_read", counted)
    assert await s3_blocks.verify(FS, digest, len(data)) and reads == []
    # A store that kept the checksum a client claimed without checking the bytes: its
    # checksum proves nothing, so the hub reads the block.
    monkeypatch.setattr(s3_blocks, "enforces_checksums", False)
    assert await s3_blocks.verify(FS, digest, len(data)) and reads == [digest]


@pytest.mark.asyncio
async def test_exists_delete_and_batch_delete(s3_blocks: S3BlockStore) -> None:  # noqa: F811
    blocks = dict(block(100)[::-1] for _ in range(5))
    for digest, data in blocks.items():
        await s3_blocks.put(FS, digest, data)
        assert await s3_blocks.exists(FS, digest)
    digests = list(blocks)
    await s3_blocks.delete(FS, digests[:1] + [block()[1]])  # a missing one is ignored
    assert not await s3_blocks.exists(FS, digests[0])
    # More than one DeleteObjects request's worth (1000 keys), most of them missing.
    missing = [hashlib.sha256(b"%d" % i).hexdigest() for i in range(1100)]
    await s3_blocks.delete(FS, digests[1:] + missing)
    assert not any([await s3_blocks.exists(FS, d) for d in digests])
    await s3_blocks.delete(FS, [])


@pytest.mark.asyncio
async def test_server_side_get_and_put(s3_blocks: S3BlockStore) -> None:  # noqa: F811
    data, digest = block(300_000)
    with pytest.raises(IntegrityError, match="nothing was stored"):
        await s3_blocks.put(FS, digest, data + b"!")
    with pytest.raises(PathNotFoundError, match=digest[:12]):
        await s3_blocks.get(FS, digest)
    await s3_blocks.put(FS, digest, data)
    await s3_blocks.put(FS, digest, data)  # idempotent
    assert await s3_blocks.get(FS, digest) == data
    assert await s3_blocks.verify(FS, digest, len(data))  # obstore sent the checksum


@pytest.mark.asyncio
async def test_keys_of_one_filespace_never_reach_another(s3_blocks: S3BlockStore,  # noqa: F811
                                                        seaweed: SeaweedS3) -> None:
    data, digest = block()
    await s3_blocks.put(FS, digest, data)
    assert await seaweed.get(f"{s3_blocks.settings.prefix}/{FS}/{digest}") == data
    assert not await s3_blocks.exists(OTHER_FS, digest)
    assert (await send("GET", s3_blocks.signed_url("", OTHER_FS, digest, "get", 60)))[0] == 404
    await s3_blocks.delete(OTHER_FS, [digest])
    assert await s3_blocks.exists(FS, digest)


@pytest.mark.asyncio
async def test_open_creates_a_missing_bucket_only_when_allowed(seaweed: SeaweedS3) -> None:
    bucket = f"lucid-new-{uuid.uuid4().hex[:8]}"
    refused = s3_block_store(seaweed, bucket=bucket, create_bucket=False)
    expected = f"bucket '{bucket}' does not exist at {seaweed.endpoint}"
    with pytest.raises(ConfigurationError, match=expected) as info:
        await refused.open()
    assert info.value.details == {"field": "bucket", "reason": "bucket_not_found"}
    store = s3_block_store(seaweed, bucket=bucket)
    await store.open()
    try:
        data, digest = block()
        assert (await upload(store.upload_request(FS, digest, 60), data))[0] == 200
        assert await store.get(FS, digest) == data
        await store.delete(FS, [digest])
        again = s3_block_store(seaweed, bucket=bucket)
        await again.open()  # exists now: nothing to create
        await again.close()
    finally:
        await store.close()
        await delete_bucket(seaweed, bucket)


@pytest.mark.asyncio
@pytest.mark.parametrize(("env", "field", "reason"), [
    ({"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, "secret_key", "signature_mismatch"),
    ({"AWS_ACCESS_KEY_ID": "AKIANOBODY"}, "access_key", "invalid_access_key"),
    ({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, "endpoint", "unreachable"),
])
async def test_open_names_what_is_wrong(seaweed: SeaweedS3, env: dict[str, str], field: str,
                                        reason: str) -> None:
    store = S3BlockStore.from_url(f"s3://{seaweed.bucket}/x", s3_env(seaweed, **env))
    with pytest.raises(ConfigurationError) as info:
        await store.open()
    assert info.value.details == {"field": field, "reason": reason}
    message = str(info.value)
    assert store.settings.where in message and ("AWS_" in message)
    assert "not-the-secret" not in message


@pytest.mark.asyncio
async def test_open_refuses_credentials_that_may_not_write(seaweed: SeaweedS3) -> None:
    env = s3_env(seaweed, AWS_ACCESS_KEY_ID=seaweed.reader_access_key,
                 AWS_SECRET_ACCESS_KEY=seaweed.reader_secret_key)
    store = S3BlockStore.from_url(f"s3://{seaweed.bucket}/x", env)
    with pytest.raises(ConfigurationError, match="s3:PutObject") as info:
        await store.open()
    assert info.value.details == {"field": "access_key", "reason": "access_denied"}
    assert seaweed.reader_access_key in str(info.value) and seaweed.bucket in str(info.value)


@pytest.mark.asyncio
async def test_open_leaves_no_probe_behind(s3_blocks: S3BlockStore,  # noqa: F811
                                           seaweed: SeaweedS3) -> None:
    query = {"list-type": "2", "prefix": s3_blocks.settings.prefix + "/"}
    listing = seaweed.url("GET", "", **query)
    status, body = await send("GET", str(listing))
    assert status == 200 and b"<Key>" not in body and b"<KeyCount>0</KeyCount>" in body
