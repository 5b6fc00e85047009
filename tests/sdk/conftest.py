"""Fixtures of the SDK tests: one hub and one linked blocking daemon per module."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

import lucidlink
from lucidlink.hub.embedded import EmbeddedHub
from tests.sdk.test_sdk_processes import Worker
from tests.support.sdkfixtures import SMALL_BLOCK, SdkHub

_names = itertools.count()


def unique(prefix: str = "t") -> str:
    """A name no other test of this process uses."""
    return f"{prefix}{next(_names)}-{os.getpid()}"


@pytest.fixture(scope="module")
def mhub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SdkHub]:
    """Like ``sdk_hub``, shared by the tests of this module that do not need a fresh hub."""
    with EmbeddedHub(tmp_path_factory.mktemp("hub"), gc_interval_seconds=3600) as hub:
        token = hub.init("demo", ["small"], block_size=SMALL_BLOCK)
        hub.init("demo", ["big"])
        ro = hub.init("demo", [], read_only=True)
        yield SdkHub(hub.url, token, ro, hub)


@pytest.fixture(scope="module")
def mspace(mhub: SdkHub) -> Iterator[lucidlink.Filespace]:
    """Filespace ``small`` linked on one blocking daemon for the whole module."""
    # A short flush delay: a read after a close waits for it (see
    # test_sync_all_does_not_wait_for_the_flush_delay).
    with lucidlink.create_daemon(hub_url=mhub.url, config={"fs.flush.delay_ms": "5"}) as daemon:
        workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=mhub.token))
        with workspace.link_filespace(name="small") as filespace:
            yield filespace


@pytest.fixture
def lingering_workers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Worker threads that keep every job's function and arguments, as an idle anyio
    worker keeps its last one for a moment after reporting (the loop may run on first)."""
    kept: list[tuple[Any, ...]] = []
    real = anyio.to_thread.run_sync

    async def keeping(func: Any, *args: Any, **kwargs: Any) -> Any:
        kept.append((func, args))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", keeping)
    return kept


@pytest.fixture
def worker(sdk_hub: SdkHub, tmp_path: Path) -> Iterator[Worker]:
    """Daemon "a" in a child process, linked to ``small`` on ``sdk_hub``."""
    w = Worker(tmp_path, "a", hub_url=sdk_hub.url, token=sdk_hub.token, filespaces=["small"])
    try:
        yield w
    finally:
        w.stop()
