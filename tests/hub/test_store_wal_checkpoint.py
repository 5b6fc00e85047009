"""SQLite's WAL is checkpointed by a thread of its own, not by the writer's commits.

The writer keeps a far higher ``wal_autocheckpoint`` (only a bound on the WAL's size), so
rows written in commits that stay well under SQLite's default 1,000-page threshold reach
the database file only through :class:`~lucidlink.hub.store.wal_checkpoint.WalCheckpointer`.
Every committed row stays readable throughout, also after a reopen. Counts, never timings.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from lucidlink.hub.store.sqlite import SqliteStore
from lucidlink.hub.store.wal_checkpoint import WRITER_AUTOCHECKPOINT_PAGES

pytestmark = pytest.mark.asyncio

COMMITS = 40
ROWS = 4  # 40 commits x 4 rows x 2 KiB: 320 KiB, about 80 pages (under 1,000)
VALUE = "v" * 2048


def insert(tx: Any, first: int) -> None:
    tx.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                   [(f"row-{i:06d}", VALUE) for i in range(first, first + ROWS)])


def count(tx: Any) -> int:
    row = tx.one("SELECT COUNT(*) AS n FROM meta WHERE key LIKE 'row-%'")
    assert row is not None
    return int(row["n"])


def autocheckpoint(tx: Any) -> int:
    row = tx.one("PRAGMA wal_autocheckpoint")
    assert row is not None
    return int(row[0])


async def test_commits_reach_the_database_file_without_the_writer_checkpointing(tmp_path: Path) -> None:
    path = tmp_path / "metadata.sqlite3"
    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.write(autocheckpoint) == WRITER_AUTOCHECKPOINT_PAGES
        before = path.stat().st_size
        for n in range(COMMITS):
            await store.write(insert, n * ROWS)
        assert await store.read(count) == COMMITS * ROWS
        grown = before
        for _ in range(200):  # the checkpoint thread copies the WAL into the file
            grown = path.stat().st_size
            if grown >= before + COMMITS * ROWS * len(VALUE):
                break
            await asyncio.sleep(0.05)
        assert grown >= before + COMMITS * ROWS * len(VALUE), (before, grown)
    finally:
        await store.close()
    reopened = SqliteStore(path)
    await reopened.open()
    try:
        assert await reopened.read(count) == COMMITS * ROWS
    finally:
        await reopened.close()


def checkpoint_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "lucidhub-sqlite-checkpoint"}


async def test_close_stops_the_checkpoint_thread(tmp_path: Path) -> None:
    others = checkpoint_threads()  # other tests' hubs may be running
    store = SqliteStore(tmp_path / "metadata.sqlite3")
    await store.open()
    assert len(checkpoint_threads() - others) == 1
    await store.write(insert, 0)
    await store.close()
    assert not checkpoint_threads() - others
