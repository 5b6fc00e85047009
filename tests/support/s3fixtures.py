"""S3 block stores on the test SeaweedFS of ``tests/support/seaweed.py``.

``s3_blocks`` is an opened :class:`~lucidlink.hub.blockstore.s3.S3BlockStore` on the
session's bucket under a fresh key prefix, closed after the test. Import it into a test
module, or register the module (``pytest_plugins = [..., "tests.support.s3fixtures"]``); the
plain helpers build stores and settings for the cases a fixture does not fit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio

from lucidlink.hub.blockstore.s3 import S3BlockStore
from tests.support.seaweed import SeaweedS3


def s3_env(server: SeaweedS3, **changes: str) -> dict[str, str]:
    """The ``AWS_*`` variables that reach ``server`` as its admin identity, with ``changes``."""
    env = {"AWS_ENDPOINT_URL": server.endpoint, "AWS_REGION": server.region,
           "AWS_ACCESS_KEY_ID": server.access_key, "AWS_SECRET_ACCESS_KEY": server.secret_key}
    env.update(changes)
    return env


def s3_block_store(server: SeaweedS3, *, bucket: str | None = None, prefix: str | None = None,
                   create_bucket: bool = True, **overrides: Any) -> S3BlockStore:
    """A store (not opened) on ``bucket`` (the session's) under ``prefix`` (a fresh one)."""
    prefix = (server.prefix() if prefix is None else prefix).strip("/")
    url = f"s3://{bucket or server.bucket}" + (f"/{prefix}" if prefix else "")
    return S3BlockStore.from_url(url, s3_env(server), create_bucket=create_bucket, **overrides)


def hub_s3_settings(server: SeaweedS3, prefix: str | None = None) -> dict[str, str]:
    """``HubSettings`` keywords for an S3 block store on ``server`` under a fresh prefix."""
    prefix = (server.prefix() if prefix is None else prefix).strip("/")
    return {"block_store": f"s3://{server.bucket}/{prefix}", "s3_endpoint_url": server.endpoint,
            "s3_region": server.region, "s3_access_key_id": server.access_key,
            "s3_secret_access_key": server.secret_key}


async def delete_bucket(server: SeaweedS3, bucket: str) -> None:
    """Delete an empty bucket a test made (SeaweedFS gives every bucket its own volumes)."""
    url = server.url("DELETE", "", bucket)
    async with aiohttp.ClientSession() as http, http.delete(url) as resp:
        assert resp.status in (200, 204), (resp.status, await resp.text())


@pytest_asyncio.fixture
async def s3_blocks(seaweed: SeaweedS3) -> AsyncIterator[S3BlockStore]:
    """An opened S3 block store on the session's SeaweedFS, under a fresh key prefix."""
    store = s3_block_store(seaweed)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
