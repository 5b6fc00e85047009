"""Fixtures for SDK tests: a hub with a small-block filespace, and linked async clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_asyncio

import lucidlink.aio
from lucidlink.hub.embedded import EmbeddedHub

SMALL_BLOCK = 64 * 1024


@attrs.frozen
class SdkHub:
    """A hub for SDK tests: filespace ``small`` (64 KiB blocks) and ``big`` (default 4 MiB)."""

    url: str
    token: str
    read_only_token: str
    hub: EmbeddedHub


@pytest.fixture
def sdk_hub(tmp_path: Path, metadata_url: str | None,
            block_store: dict[str, str]) -> Iterator[SdkHub]:
    """A fresh embedded hub with filespaces ``small`` and ``big``, once per metadata store
    (and per block store in tests marked ``with_block_stores``: tests/support/pgfixture.py)."""
    with EmbeddedHub(tmp_path / "hub", gc_interval_seconds=3600, metadata_url=metadata_url,
                     **block_store) as hub:
        token = hub.init("demo", ["small"], block_size=SMALL_BLOCK)
        hub.init("demo", ["big"])
        ro = hub.init("demo", [], read_only=True)
        yield SdkHub(hub.url, token, ro, hub)


@pytest_asyncio.fixture
async def afilespace(sdk_hub: SdkHub, tmp_path: Path) -> AsyncIterator[Any]:
    """A linked async filespace ``small`` on a started daemon."""
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token))
        async with ws.link_filespace(name="small") as filespace:
            yield filespace
