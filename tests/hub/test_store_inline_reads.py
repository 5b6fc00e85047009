"""SQLite's short reads run inline on the event loop: right while a long write is open.

A write transaction held open on the writer thread (rows inserted, not committed) must
not show through to inline reads, nor hold them up; once it commits, the very next
inline read sees all of it. Counts, never timings.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from lucidlink.hub.store.sqlite import SqliteStore

pytestmark = pytest.mark.asyncio

ROWS = 500


def count(tx: Any) -> int:
    row = tx.one("SELECT COUNT(*) AS n FROM meta WHERE key LIKE 'row-%'")
    assert row is not None
    return int(row["n"])


def rows_in_one_transaction(tx: Any, started: threading.Event, release: threading.Event,
                            first: int) -> int:
    """Insert ``ROWS`` rows, then hold the transaction open until released."""
    tx.executemany("INSERT INTO meta (key, value) VALUES (?, 'x')",
                   [(f"row-{i:06d}",) for i in range(first, first + ROWS)])
    started.set()
    assert release.wait(60), "the test never released the writer"
    return ROWS


async def test_a_long_write_neither_shows_through_nor_blocks_inline_reads(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "metadata.sqlite3")
    await store.open()
    try:
        loop_thread = threading.get_ident()
        seen_threads: list[int] = []

        def count_where(tx: Any) -> int:
            seen_threads.append(threading.get_ident())
            return count(tx)

        for round_ in range(3):
            started, release = threading.Event(), threading.Event()
            write = asyncio.ensure_future(store.write(
                rows_in_one_transaction, started, release, round_ * ROWS))
            assert await asyncio.to_thread(started.wait, 60)
            # The writer holds its transaction (and SQLite's write lock): inline reads
            # answer from the last committed snapshot, many times over.
            for _ in range(50):
                assert await store.read_short(count_where) == round_ * ROWS
            assert await store.read(count) == round_ * ROWS
            release.set()
            assert await write == ROWS
            # Committed: the very next inline read sees every row.
            assert await store.read_short(count_where) == (round_ + 1) * ROWS
        assert set(seen_threads) == {loop_thread}  # inline: no hop to a reader thread
    finally:
        await store.close()


async def test_a_failed_write_leaves_inline_reads_right(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "metadata.sqlite3")
    await store.open()
    try:
        def half_then_fail(tx: Any) -> None:
            tx.executemany("INSERT INTO meta (key, value) VALUES (?, 'x')",
                           [(f"row-{i:06d}",) for i in range(ROWS)])
            raise ValueError("refused after half the work")

        with pytest.raises(ValueError):
            await store.write(half_then_fail)
        assert await store.read_short(count) == 0
        with pytest.raises(IndexError):  # an error in an inline read leaves no transaction open
            await store.read_short(lambda tx: tx.one("SELECT 1 AS x")["y"])
        assert await store.read_short(count) == 0
    finally:
        await store.close()
