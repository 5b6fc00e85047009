"""The hub's S3 client (SigV4 presigner, HeadBucket/HeadObject) and the config validators."""

from __future__ import annotations

import datetime
import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import yarl

from lucidlink.exceptions import ConfigurationError, NotFoundError
from lucidlink.hub.s3 import client as s3
from lucidlink.types import ExternalFileLink, S3DataStoreConfig, bucket_name_problem
from tests.support.seaweed import SeaweedS3

# The example of the AWS documentation ("Authenticating Requests: Using Query Parameters").
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_SIGNATURE = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"


def test_presign_matches_the_aws_documented_example() -> None:
    target = s3.S3Target(bucket="examplebucket", access_key="AKIAIOSFODNN7EXAMPLE", secret_key=AWS_SECRET,
                         region="us-east-1", endpoint="https://s3.amazonaws.com", virtual=True)
    url = s3.presign(target, "GET", "test.txt", 86400,
                     now=datetime.datetime(2013, 5, 24, tzinfo=datetime.timezone.utc))
    assert url == (
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        f"&X-Amz-Signature={AWS_SIGNATURE}"
    )


def test_presign_addressing_encoding_and_expiry() -> None:
    aws = s3.S3Target(bucket="b-1", access_key="AK", secret_key="SK", region="eu-west-2")
    url = urlsplit(s3.presign(aws, "GET", "a b/ü+c.txt", 10**9))
    assert (url.scheme, url.netloc) == ("https", "s3.eu-west-2.amazonaws.com")
    assert url.path == "/b-1/a%20b/%C3%BC%2Bc.txt"
    query = parse_qs(url.query)
    assert query["X-Amz-Expires"] == [str(s3.MAX_EXPIRES)]  # capped at SigV4's 7 days
    assert query["X-Amz-Credential"][0].endswith("/eu-west-2/s3/aws4_request")
    local = s3.S3Target(bucket="b-1", access_key="AK", secret_key="SK", endpoint="http://127.0.0.1:8333")
    assert s3.presign(local, "HEAD", "", 60).startswith("http://127.0.0.1:8333/b-1?")
    assert "/us-east-1/" in parse_qs(urlsplit(s3.presign(local, "GET", "k", 60)).query)["X-Amz-Credential"][0]
    virtual = s3.S3Target(bucket="b-1", access_key="AK", secret_key="SK", endpoint="https://minio.example:443",
                          virtual=True)
    assert s3.presign(virtual, "GET", "k", 60).startswith("https://b-1.minio.example/k?")
    assert "SK" not in repr(local)


def test_etags() -> None:
    assert s3.normalize_etag('W/"ABC"') == "abc" and s3.normalize_etag(None) is None
    assert s3.looks_like_etag('"d41d8cd98f00b204e9800998ecf8427e"')
    assert s3.looks_like_etag("d41d8cd98f00b204e9800998ecf8427e-12")
    assert not s3.looks_like_etag("abc123")


GOOD = dict(access_key="AKIA123", secret_key="s/+=", bucket_name="my-bucket", region="us-east-1")


@pytest.mark.parametrize(("overrides", "field"), [
    (dict(bucket_name="My-Bucket"), "bucket_name"),
    (dict(bucket_name="-bucket"), "bucket_name"),
    (dict(bucket_name="b" * 64), "bucket_name"),
    (dict(bucket_name="xn--bucket"), "bucket_name"),
    (dict(bucket_name="bucket-s3alias"), "bucket_name"),
    (dict(region="", endpoint=""), "region"),
    (dict(endpoint="s3.example.com"), "endpoint"),
    (dict(endpoint="https://"), "endpoint"),
    (dict(url_expiration_minutes=-5), "url_expiration_minutes"),
    (dict(url_expiration_minutes=1.5), "url_expiration_minutes"),
    (dict(use_virtual_addressing=1), "use_virtual_addressing"),
    (dict(access_key=None), "access_key"),
    (dict(secret_key=""), "secret_key"),
])
def test_config_validation_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        S3DataStoreConfig(**{**GOOD, **overrides})
    assert err.value.details["field"] == field
    assert isinstance(err.value, ValueError) and field in str(err.value)


def test_config_defaults_and_valid_forms() -> None:
    config = S3DataStoreConfig(**GOOD)
    assert (config.endpoint, config.url_expiration_minutes, config.use_virtual_addressing) == ("", 10080, False)
    S3DataStoreConfig(access_key="a", secret_key="b", bucket_name="a.b-c", endpoint="https://[::1]:9000")
    assert bucket_name_problem("abc") is None and bucket_name_problem("1.2.3.4")
    with pytest.raises(AttributeError):
        config.region = "x"  # type: ignore[misc]
    link = ExternalFileLink("//a///b", "st", "k")
    assert link.file_path == "/a/b" and link.size is None


@pytest.mark.asyncio
async def test_head_bucket_and_object_against_seaweedfs(seaweed: SeaweedS3) -> None:
    key = seaweed.prefix() + "dir with space/ünï+cödé&=?.bin"
    data = os.urandom(1000)
    etag = await seaweed.put(key, data)
    assert await seaweed.get(key) == data  # the signer handles keys that need encoding
    async with s3.session() as http:
        await s3.check_bucket(http, seaweed.target())
        info = await s3.head_object(http, seaweed.target(), key, "st")
        assert info.size == 1000 and info.etag == etag and info.mtime
        with pytest.raises(NotFoundError, match="does not exist in bucket"):
            await s3.head_object(http, seaweed.target(), key + ".missing", "st")
        with pytest.raises(ConfigurationError) as err:
            await s3.check_bucket(http, seaweed.target("missing-bucket"))
        assert err.value.details == {"field": "bucket_name", "reason": "bucket_not_found"}
        # A ranged GET on a presigned URL, as the SDK does it.
        url = yarl.URL(s3.presign(seaweed.target(), "GET", key, 60), encoded=True)
        async with aiohttp.ClientSession() as client, client.get(url, headers={"Range": "bytes=10-19"}) as resp:
            assert resp.status == 206 and await resp.read() == data[10:20]
            assert resp.headers["Content-Range"] == "bytes 10-19/1000"
