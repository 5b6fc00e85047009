"""SQLite group commit: nothing is answered, written or read, before its commit is fsynced.

The store's connections run SQLite's ``NORMAL``; under the default ``FULL`` a
:class:`~lucidlink.hub.store.wal_sync.WalSyncer` fsyncs the WAL on a thread of its own.
These tests give the store an ``fsync`` that records the order of events and can be
held or made to fail, then count: every acknowledged write had an fsync that started
after its transaction's work and ended before the acknowledgement; a read never returns
a commit whose fsync has not ended; concurrent writes share fsyncs; a failed fsync fails
everything after it; ``NORMAL`` never fsyncs. Counts and orders, never timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lucidlink.exceptions import HubUnavailableError
from lucidlink.hub.store.sqlite import SqliteStore

pytestmark = pytest.mark.asyncio


class RecordingFsync:
    """An ``fsync`` that logs its start and end among the test's own events, and can be
    held (until released) or made to fail."""

    def __init__(self, events: list[tuple[str, int]]) -> None:
        self.events = events
        self.calls = 0
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail = False

    def __call__(self, fd: int) -> None:
        with self.lock:
            self.calls += 1
            number = self.calls
            self.events.append(("fsync_start", number))
        self.entered.set()
        assert self.gate.wait(60), "the test never released the fsync"
        if self.fail:
            raise OSError(errno.EIO, "injected: the disk failed")
        os.fsync(fd)
        with self.lock:
            self.events.append(("fsync_end", number))


async def open_store(tmp_path: Path, fsync: RecordingFsync,
                     synchronous: str = "FULL") -> SqliteStore:
    store = SqliteStore(tmp_path / "metadata.sqlite3", synchronous=synchronous, fsync=fsync)
    await store.open()
    return store


@contextlib.asynccontextmanager
async def recorded(tmp_path: Path, synchronous: str = "FULL") -> AsyncIterator[
        tuple[SqliteStore, RecordingFsync, list[tuple[str, int]]]]:
    """A store whose fsyncs are recorded among ``events``; closed (fsync released) after."""
    events: list[tuple[str, int]] = []
    fsync = RecordingFsync(events)
    store = await open_store(tmp_path, fsync, synchronous)
    try:
        yield store, fsync, events
    finally:
        fsync.gate.set()
        await store.close()


def insert(events: list[tuple[str, int]], key: int) -> Any:
    def fn(tx: Any) -> int:
        tx.execute("INSERT INTO meta (key, value) VALUES (?, 'x')", (f"row-{key:06d}",))
        events.append(("work", key))
        return key
    return fn


def has_row(key: int) -> Any:
    return lambda tx: tx.one(
        "SELECT 1 AS x FROM meta WHERE key = ?", (f"row-{key:06d}",)) is not None


def covered(events: list[tuple[str, int]], key: int) -> bool:
    """Whether an fsync started after ``key``'s work and ended before its acknowledgement."""
    work = events.index(("work", key))
    ack = events.index(("ack", key))
    started = {n for kind, n in events[work:ack] if kind == "fsync_start"}
    return any(kind == "fsync_end" and n in started for kind, n in events[work:ack])


async def test_a_write_is_answered_only_after_an_fsync_that_began_after_it(tmp_path: Path) -> None:
    async with recorded(tmp_path) as (store, fsync, events):
        fsync.gate.clear()
        fsync.entered.clear()
        write = asyncio.ensure_future(store.write(insert(events, 1)))
        assert await asyncio.to_thread(fsync.entered.wait, 60)
        for _ in range(20):  # the loop turns many times: the write stays unanswered
            await asyncio.sleep(0)
        assert not write.done()
        fsync.gate.set()
        assert await write == 1
        events.append(("ack", 1))
        assert covered(events, 1)


async def test_a_read_never_shows_a_commit_before_its_fsync_ended(tmp_path: Path) -> None:
    async with recorded(tmp_path) as (store, fsync, events):
        # Nothing pending: reads answer at once, even with the fsync held.
        fsync.gate.clear()
        assert await store.read_short(has_row(1)) is False
        assert await store.read(has_row(1)) is False
        assert await store.meta_value("row-000001") is None

        fsync.entered.clear()
        write = asyncio.ensure_future(store.write(insert(events, 1)))
        assert await asyncio.to_thread(fsync.entered.wait, 60)  # committed, not yet durable
        reads = [asyncio.ensure_future(store.read_short(has_row(1))),
                 asyncio.ensure_future(store.read(has_row(1))),
                 asyncio.ensure_future(store.meta_value("row-000001"))]
        for _ in range(20):
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)  # the pooled read's thread has finished its query by now
        assert [r.done() for r in reads] == [False, False, False]
        fsync.gate.set()
        assert await write == 1
        assert await asyncio.gather(*reads) == [True, True, "x"]


async def test_concurrent_writes_share_fsyncs_and_each_is_covered(tmp_path: Path) -> None:
    async with recorded(tmp_path) as (store, fsync, events):
        fsync.calls = 0

        async def one(key: int) -> None:
            assert await store.write(insert(events, key)) == key
            events.append(("ack", key))

        await asyncio.gather(*(one(k) for k in range(200)))
        assert all(covered(events, k) for k in range(200))
        assert 1 <= fsync.calls < 200  # grouped: fewer fsyncs than commits
        assert await store.read(lambda tx: tx.one(
            "SELECT COUNT(*) AS n FROM meta WHERE key LIKE 'row-%'")["n"]) == 200


async def test_a_failed_fsync_fails_that_write_and_everything_after(tmp_path: Path) -> None:
    events: list[tuple[str, int]] = []
    fsync = RecordingFsync(events)
    store = await open_store(tmp_path, fsync)
    try:
        await store.write(insert(events, 1))  # durable before the failure
        fsync.fail = True
        with pytest.raises(HubUnavailableError,
                           match="could not fsync .*restart the hub") as caught:
            await store.write(insert(events, 2))
        assert isinstance(caught.value, ConnectionError)  # what a Python caller catches
        with pytest.raises(HubUnavailableError):
            await store.write(insert(events, 3))
        with pytest.raises(HubUnavailableError):
            await store.read_short(has_row(1))
        with pytest.raises(HubUnavailableError):
            await store.read(has_row(1))
    finally:
        await store.close()
    # After a restart the store serves again, from what the disk holds.
    healthy = await open_store(tmp_path, RecordingFsync([]))
    try:
        assert await healthy.read(has_row(1)) is True
    finally:
        await healthy.close()


async def test_close_fsyncs_the_last_commits(tmp_path: Path) -> None:
    events: list[tuple[str, int]] = []
    fsync = RecordingFsync(events)
    store = await open_store(tmp_path, fsync)
    writes = [asyncio.ensure_future(store.write(insert(events, k))) for k in range(20)]
    await asyncio.sleep(0)
    await store.close()
    assert sorted(await asyncio.gather(*writes)) == list(range(20))
    last_work = max(i for i, e in enumerate(events) if e[0] == "work")
    assert any(kind == "fsync_end" for kind, _ in events[last_work:])


async def test_normal_never_fsyncs_on_commit(tmp_path: Path) -> None:
    async with recorded(tmp_path, "NORMAL") as (store, fsync, events):
        for k in range(10):
            await store.write(insert(events, k))
        assert await store.read(has_row(9)) is True
        assert fsync.calls == 0


async def test_every_connection_runs_normal_under_both_levels(tmp_path: Path) -> None:
    """FULL's fsync is the syncer's, so SQLite's own is off on every connection."""
    level = lambda tx: int(tx.one("PRAGMA synchronous")["synchronous"])  # noqa: E731
    for synchronous in ("FULL", "NORMAL"):
        (tmp_path / synchronous).mkdir()
        store = await open_store(tmp_path / synchronous, RecordingFsync([]), synchronous)
        try:
            assert (await store.write(level), await store.read(level),
                    await store.read_short(level)) == (1, 1, 1)
        finally:
            await store.close()
