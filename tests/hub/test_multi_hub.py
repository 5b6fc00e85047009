"""Several hub processes sharing one PostgreSQL metadata store (and one data dir)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

import lucidlink.aio as aio
from lucidlink.exceptions import LockTimeoutError
from lucidlink.hub.api.app_keys import HUB_KEY
from lucidlink.hub.collector import collect_garbage
from lucidlink.hub.embedded import EmbeddedHub
from tests.support.pgfixture import fresh_schema

WAKE_BOUND = 0.5
"""Seconds within which a long-poll on one hub answers a change made through another
(NOTIFY; the periodic re-read alone takes up to a second)."""


async def on(hub: EmbeddedHub, coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` on ``hub``'s loop without blocking this one."""
    assert hub._loop is not None
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, hub._loop))


@pytest.mark.asyncio
async def test_two_hubs_share_namespace_journal_and_locks(
    tmp_path: Path, postgres_dsn: str
) -> None:
    with (
        fresh_schema(postgres_dsn) as url,
        EmbeddedHub(tmp_path / "hub", metadata_url=url, gc_interval_seconds=3600) as hub_a,
        EmbeddedHub(tmp_path / "hub", metadata_url=url, gc_interval_seconds=3600) as hub_b,
    ):
        token = hub_a.init("demo", ["data"])
        creds = aio.ServiceAccountCredentials(token=token)
        async with (
            aio.create_daemon(hub_url=hub_a.url) as da,
            aio.create_daemon(hub_url=hub_b.url) as db,
        ):
            fa = await (await da.authenticate(creds)).link_filespace(name="data")
            fb = await (await db.authenticate(creds)).link_filespace(name="data")
            # A change committed through hub A is read through hub B.
            await fa.fs.write_file("/shared.bin", b"via hub A")
            await fa.sync_all()
            await fb.sync_all()
            assert await fb.fs.read_file("/shared.bin") == b"via hub A"
            # A lock granted by hub A holds against a waiter on hub B, which gets it on release.
            holder = await fa.fs.open("/shared.bin", "r+b", lock_type="exclusive")
            with pytest.raises(LockTimeoutError):
                await fb.fs.open("/shared.bin", "rb", lock_type="shared", lock_timeout=0.5)
            waiter = asyncio.ensure_future(
                fb.fs.open("/shared.bin", "rb", lock_type="shared", lock_timeout=30)
            )
            await asyncio.sleep(0.5)
            assert not waiter.done()
            await holder.write(b"VIA")
            await holder.close()
            reader = await asyncio.wait_for(waiter, 10)
            assert await reader.read() == b"VIA hub A"
            await reader.close()
            # A long-poll on hub B wakes at once for a change made through hub A.
            for i in range(3):
                seq = (await fb._call("GET", "/changes", params={"since": "0"}))["seq"]
                poll = asyncio.create_task(
                    fb._call("GET", "/changes", params={"since": str(seq), "wait": "10"})
                )
                await asyncio.sleep(0.2)
                started = time.monotonic()
                await fa.fs.create_dir(f"/new{i}")
                body = await asyncio.wait_for(poll, 5)
                assert [c["path"] for c in body["changes"]] == [f"/new{i}"]
                assert time.monotonic() - started < WAKE_BOUND


@pytest.mark.asyncio
async def test_one_garbage_collector_at_a_time(tmp_path: Path, postgres_dsn: str) -> None:
    with (
        fresh_schema(postgres_dsn) as url,
        EmbeddedHub(tmp_path / "a", metadata_url=url, gc_interval_seconds=3600) as hub_a,
        EmbeddedHub(tmp_path / "b", metadata_url=url, gc_interval_seconds=3600) as hub_b,
    ):
        state_a, state_b = hub_a.app[HUB_KEY], hub_b.app[HUB_KEY]  # type: ignore[index]
        async with state_a.store.exclusive("gc") as held:  # hub A is collecting
            assert held
            # Hub B's periodic pass is skipped; a requested one waits for A's to end.
            started = time.monotonic()
            assert await on(hub_b, collect_garbage(state_b, wait=False)) == 0
            assert time.monotonic() - started < 2
            waiting = asyncio.ensure_future(on(hub_b, collect_garbage(state_b)))
            await asyncio.sleep(0.6)
            assert not waiting.done()
        assert await asyncio.wait_for(waiting, 10) == 0
        # Free again: either hub collects, and the lock is given back after each pass.
        assert await on(hub_a, collect_garbage(state_a, wait=False)) == 0
        async with state_b.store.exclusive("gc", wait=False) as held:
            assert held


async def _wake_time(fa: Any, fb: Any, path: str) -> float:
    """Seconds from a commit through ``fa``'s hub to the answer of a long-poll on ``fb``'s."""
    seq = (await fb._call("GET", "/changes", params={"since": "0"}))["seq"]
    poll = asyncio.create_task(
        fb._call("GET", "/changes", params={"since": str(seq), "wait": "10"})
    )
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await fa.fs.create_dir(path)
    body = await asyncio.wait_for(poll, 5)
    assert [c["path"] for c in body["changes"]] == [path]
    return time.monotonic() - started


@pytest.mark.asyncio
async def test_change_relay_survives_a_lost_connection(tmp_path: Path, postgres_dsn: str) -> None:
    """The listening connection is cut: long-polls fall back to the periodic re-read
    (bounded), and the hub reconnects and wakes them at once again."""
    import psycopg

    with fresh_schema(postgres_dsn) as url, \
            EmbeddedHub(tmp_path / "hub", metadata_url=url, gc_interval_seconds=3600) as hub_a, \
            EmbeddedHub(tmp_path / "hub", metadata_url=url, gc_interval_seconds=3600) as hub_b:
        creds = aio.ServiceAccountCredentials(token=hub_a.init("demo", ["data"]))
        async with aio.create_daemon(hub_url=hub_a.url) as da, \
                aio.create_daemon(hub_url=hub_b.url) as db:
            fa = await (await da.authenticate(creds)).link_filespace(name="data")
            fb = await (await db.authenticate(creds)).link_filespace(name="data")
            assert await _wake_time(fa, fb, "/before") < WAKE_BOUND
            channel = hub_b.app[HUB_KEY].store._channel  # type: ignore[index]
            with psycopg.connect(postgres_dsn, autocommit=True) as admin:
                cut = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query = %s", (f'LISTEN "{channel}"',)).fetchall()
            assert len(cut) == 2  # both hubs' listeners
            assert await _wake_time(fa, fb, "/during") < 1.0 + WAKE_BOUND
            deadline = time.monotonic() + 10
            while await _wake_time(fa, fb, f"/after{time.monotonic()}") >= WAKE_BOUND:
                assert time.monotonic() < deadline, "the change relay did not reconnect"
