"""The embedded metadata store: one SQLite database in WAL mode in the hub's data dir.

Writes run on one dedicated thread with one connection (SQLite has a single writer;
funnelling writes through one thread avoids ``database is locked`` retries), reads on
a small pool of threads with a connection each (WAL lets them run beside the writer).

Short reads (:meth:`SqliteStore.read_short`: a few rows found by key, the bulk of the
hub's requests) run inline on the calling thread, the event loop's, on a connection of
its own: a read of a WAL database never waits for the writer (it reads the snapshot of
its ``BEGIN``), and a lookup of a few rows in the page cache costs tens of microseconds,
less than the two thread switches and the contention for the GIL a hop to a reader
thread costs. The one case where a WAL reader waits (a lock held for WAL recovery or a
truncating checkpoint) is bounded by a short busy timeout, after which the read goes to
the reader pool. The transaction runs to its end without awaiting, so nothing else on
the loop interleaves with it.

Durability: ``FULL`` by default, so a transaction is on disk (WAL fsynced) before the hub
answers, and before any read could show it: the connections run SQLite's ``NORMAL`` and
:class:`~lucidlink.hub.store.wal_sync.WalSyncer` fsyncs the WAL on a thread of its own,
once for every commit that ended before (group commit), while the writer goes on.
``NORMAL`` is an opt-in (``sqlite_synchronous``) that answers without waiting for the
fsync: it survives a hub crash but may lose the last transactions to an OS crash or
power loss. A
transaction whose ``COMMIT`` fails is rolled back, so the writer keeps serving. The
database file is created 0600 before SQLite opens it: SQLite gives its ``-wal`` and
``-shm`` files the database file's mode.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from lucidlink.exceptions import ConfigurationError
from lucidlink.hub import disk
from lucidlink.hub.store.base import SCHEMA_VERSION, MetadataStore, Row
from lucidlink.hub.store.schema import schema
from lucidlink.hub.store.wal_checkpoint import WRITER_AUTOCHECKPOINT_PAGES, WalCheckpointer
from lucidlink.hub.store.wal_sync import WalSyncer

T = TypeVar("T")

SCHEMA = schema("INTEGER PRIMARY KEY")
WRITER_CACHE_KIB = 64 * 1024
"""The writer's page cache (SQLite's default is 2 MiB). Each small file inserts into three
indexes keyed by block hash, so a commit dirties pages all over them; once they outgrow
the cache every insert read its leaf back from the OS and SQLite spilled dirty pages to
the WAL mid-transaction (rounds of 1,000 small files slowed from 3,200 to 2,100 files/s
as a database grew to 14,000 files; with this cache and 0.5 s checkpoints, rounds 7-14
held a median of 2,575-2,753 against 2,369-2,502)."""
READER_CACHE_KIB = 16 * 1024
"""Every other connection's page cache: reads touch fewer pages, and there are several."""
INLINE_BUSY_SECONDS = 0.02
"""How long an inline read waits on a lock (WAL recovery, a truncating checkpoint) before
it hands the read to the reader pool instead of holding the event loop any longer."""


class _SqliteTx:
    """A :class:`~lucidlink.hub.store.base.Tx` over one sqlite3 connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self._conn.execute(sql, params).fetchone()  # type: ignore[no-any-return]

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._conn.cursor()
        cur.row_factory = None
        return cur.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)


class SqliteStore(MetadataStore):
    """Metadata in ``<data-dir>/metadata.sqlite3`` (WAL)."""

    engine = "sqlite"

    def __init__(self, path: Path | str, *, readers: int = 2, synchronous: str = "FULL",
                 fsync: Callable[[int], None] = os.fsync) -> None:
        """``synchronous``: ``FULL`` (answer once durable) or ``NORMAL`` (see the module
        docstring). ``fsync``: how the WAL is made durable under ``FULL`` (tests count it)."""
        if synchronous not in ("FULL", "NORMAL"):
            raise ConfigurationError(
                f"SQLite synchronous must be FULL or NORMAL, not {synchronous!r}"
            )
        self.path = Path(path)
        self.synchronous = synchronous
        self._syncer = WalSyncer(self.path, fsync) if synchronous == "FULL" else None
        self._readers = readers
        self._writer: ThreadPoolExecutor | None = None
        self._reader_pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._checkpointer = WalCheckpointer(self._connect)

    def _connect(self, timeout: float = 30) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=timeout)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # FULL's fsync is the WalSyncer's
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA cache_size=-{READER_CACHE_KIB}")
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    def _thread_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _inline_conn(self) -> sqlite3.Connection:
        """The calling thread's connection for inline reads (short busy timeout)."""
        conn: sqlite3.Connection | None = getattr(self._local, "inline", None)
        if conn is None:
            conn = self._connect(timeout=INLINE_BUSY_SECONDS)
            self._local.inline = conn
        return conn

    def _init_schema(self) -> None:
        disk.private_file(self.path)
        for suffix in ("-wal", "-shm"):  # left by an older hub with looser modes
            disk.tighten(self.path.with_name(self.path.name + suffix), disk.PRIVATE_FILE)
        conn = self._thread_conn()
        # The writer's own checkpoints only bound the WAL; WalCheckpointer does the rest.
        conn.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        conn.executescript(SCHEMA)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
            (str(SCHEMA_VERSION),),
        )
        if self._syncer is not None:
            self._syncer.sync_now()

    async def open(self) -> None:
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="lucidhub-sqlite-writer")
        self._reader_pool = ThreadPoolExecutor(self._readers, thread_name_prefix="lucidhub-sqlite-reader")
        await asyncio.get_running_loop().run_in_executor(self._writer, self._init_schema)
        self._checkpointer.start()
        if self._syncer is not None:
            self._syncer.start()

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._checkpointer.stop)
        for pool in (self._writer, self._reader_pool):
            if pool is not None:
                await asyncio.get_running_loop().run_in_executor(None, pool.shutdown, True)
        if self._syncer is not None:  # after the writer: its last commits are fsynced too
            await asyncio.get_running_loop().run_in_executor(None, self._syncer.stop)
        self._writer = self._reader_pool = None
        with self._conns_lock:
            conns, self._conns = self._conns, []
        self._local = threading.local()  # every thread's cached connection is closed below
        for conn in conns:
            try:
                conn.execute("PRAGMA optimize")
            except sqlite3.Error:
                pass
            conn.close()

    def _run_tx(self, begin: str, fn: Callable[..., T], args: tuple[Any, ...],
                kwargs: dict[str, Any], conn: sqlite3.Connection | None = None) -> T:
        return self._run_numbered(begin, fn, args, kwargs, conn, None)[0]

    def _run_numbered(self, begin: str, fn: Callable[..., T], args: tuple[Any, ...],
                      kwargs: dict[str, Any], conn: sqlite3.Connection | None,
                      syncer: WalSyncer | None) -> tuple[T, int]:
        """Run ``fn`` in one transaction; with ``syncer``, also return the commit's
        number (0 when nothing was committed) for :meth:`WalSyncer.durable`."""
        conn = conn or self._thread_conn()
        conn.execute(begin)
        number = 0
        try:
            result = fn(_SqliteTx(conn), *args, **kwargs)
            if syncer is None:
                conn.execute("COMMIT")
            else:
                number = syncer.begin_commit()
                try:
                    conn.execute("COMMIT")
                finally:
                    syncer.end_commit(number)
        except BaseException:
            # Also when COMMIT itself fails (a deferred constraint, a full disk): left
            # open, the transaction would make every later BEGIN on this thread fail.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result, number

    async def _settled(self) -> None:
        """Wait until every commit a transaction that just ended could have seen is durable."""
        if self._syncer is not None:
            await self._syncer.durable(self._syncer.mark())

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._writer is None:
            raise RuntimeError("the metadata store is closed")
        result, number = await asyncio.get_running_loop().run_in_executor(
            self._writer, self._run_numbered, "BEGIN IMMEDIATE", fn, args, kwargs, None,
            self._syncer,
        )
        self._checkpointer.poke()
        if self._syncer is not None:
            await self._syncer.durable(number)
        return result

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._reader_pool is None:
            raise RuntimeError("the metadata store is closed")
        result = await asyncio.get_running_loop().run_in_executor(
            self._reader_pool, self._run_tx, "BEGIN", fn, args, kwargs
        )
        await self._settled()
        return result

    async def read_short(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a short read inline on the event loop's own connection (see the module docstring)."""
        if self._reader_pool is None:
            raise RuntimeError("the metadata store is closed")
        conn = self._inline_conn()
        try:
            result = self._run_tx("BEGIN", fn, args, kwargs, conn)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            return await self.read(fn, *args, **kwargs)
        await self._settled()
        return result

    async def meta_value(self, key: str) -> str | None:
        """One ``meta`` row, read inline as one autocommit statement (see :meth:`read_short`).

        A lone ``SELECT`` outside a transaction is its own read transaction: it sees every
        commit that ended before it began, as ``BEGIN``/``SELECT``/``COMMIT`` would, in one
        statement instead of three (this runs on every request: the auth generation).
        """
        if self._reader_pool is None:
            raise RuntimeError("the metadata store is closed")
        conn = self._inline_conn()
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            return await super().meta_value(key)
        await self._settled()
        return None if row is None else str(row["value"])
