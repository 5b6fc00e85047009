"""Shared fixtures: real hubs on free loopback ports, started and stopped per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from lucidlink.hub.embedded import EmbeddedHub

pytest_plugins = ["tests.support.hubclient", "tests.support.hubfixtures", "tests.support.sdkfixtures", "tests.support.pgfixture", "tests.support.seaweed"]


@attrs.frozen
class RunningHub:
    """A hub started for a test, with an admin read-write token on workspace ``demo``."""

    hub: EmbeddedHub
    url: str
    token: str
    workspace: str
    filespaces: tuple[str, ...]
    data_dir: Path


@pytest.fixture
def hub(tmp_path: Path, metadata_url: str | None,
        block_store: dict[str, str]) -> Iterator[RunningHub]:
    """A fresh embedded hub with filespaces ``data`` and ``other``, once per metadata store
    (and per block store in tests marked ``with_block_stores``: tests/support/pgfixture.py)."""
    data_dir = tmp_path / "hub"
    with EmbeddedHub(data_dir, gc_interval_seconds=3600, metadata_url=metadata_url,
                     **block_store) as embedded:
        token = embedded.init("demo", ["data", "other"], admin=True)
        yield RunningHub(embedded, embedded.url, token, "demo", ("data", "other"), data_dir)


@pytest.fixture(autouse=True, scope="session")
def _quiet_hub_logs() -> None:
    """Keep the embedded hubs' per-request info logs out of failure reports."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
