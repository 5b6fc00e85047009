"""The embedded metadata store: one SQLite database in WAL mode in the hub's data dir.

Writes run on one dedicated thread with one connection (SQLite has a single writer;
funnelling writes through one thread avoids ``database is locked`` retries), reads on
a small pool of threads with a connection each (WAL lets them run beside the writer).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from lucidlink.hub.store.base import SCHEMA_VERSION, MetadataStore, Row

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workspaces (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS filespaces (
    id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    name TEXT NOT NULL, block_size INTEGER NOT NULL, created INTEGER NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0, root_id INTEGER,
    UNIQUE (workspace_id, name));
CREATE TABLE IF NOT EXISTS tokens (
    key_id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    secret_hash TEXT NOT NULL, filespaces TEXT, read_only INTEGER NOT NULL,
    admin INTEGER NOT NULL, created INTEGER NOT NULL, revoked INTEGER, description TEXT);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, filespace_id TEXT NOT NULL REFERENCES filespaces(id),
    key_id TEXT NOT NULL, client TEXT, created INTEGER NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    id INTEGER PRIMARY KEY, filespace_id TEXT NOT NULL, parent_id INTEGER,
    name TEXT NOT NULL, type TEXT NOT NULL, size INTEGER NOT NULL DEFAULT 0,
    mtime INTEGER NOT NULL, ctime INTEGER NOT NULL, version INTEGER NOT NULL DEFAULT 1,
    UNIQUE (parent_id, name));
CREATE INDEX IF NOT EXISTS nodes_filespace ON nodes (filespace_id, type);
CREATE TABLE IF NOT EXISTS file_blocks (
    node_id INTEGER NOT NULL, idx INTEGER NOT NULL, filespace_id TEXT NOT NULL,
    hash TEXT NOT NULL, length INTEGER NOT NULL, used INTEGER NOT NULL,
    PRIMARY KEY (node_id, idx));
CREATE INDEX IF NOT EXISTS file_blocks_hash ON file_blocks (filespace_id, hash);
CREATE TABLE IF NOT EXISTS blocks (
    filespace_id TEXT NOT NULL, hash TEXT NOT NULL, length INTEGER NOT NULL,
    state TEXT NOT NULL, last_seen INTEGER NOT NULL,
    PRIMARY KEY (filespace_id, hash));
CREATE TABLE IF NOT EXISTS changes (
    filespace_id TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER NOT NULL,
    op TEXT NOT NULL, node_id INTEGER, type TEXT, path TEXT NOT NULL, new_path TEXT,
    size INTEGER, version INTEGER, session_id TEXT,
    PRIMARY KEY (filespace_id, seq));
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS locks (
    id TEXT PRIMARY KEY, filespace_id TEXT NOT NULL, path TEXT NOT NULL,
    session_id TEXT NOT NULL, mode TEXT NOT NULL, state TEXT NOT NULL,
    ticket INTEGER NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS locks_path ON locks (filespace_id, path, ticket);
CREATE INDEX IF NOT EXISTS locks_session ON locks (session_id);
-- Connect (lucidlink/hub/connect.py): data stores and the files linked from them.
CREATE TABLE IF NOT EXISTS data_stores (
    id TEXT PRIMARY KEY, filespace_id TEXT NOT NULL REFERENCES filespaces(id),
    name TEXT NOT NULL, kind TEXT NOT NULL, access_key TEXT NOT NULL,
    secret_sealed TEXT NOT NULL, config TEXT NOT NULL, key_id TEXT NOT NULL,
    rekey_state TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL,
    UNIQUE (filespace_id, name));
CREATE TABLE IF NOT EXISTS external_files (
    node_id INTEGER PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
    filespace_id TEXT NOT NULL, store_id TEXT NOT NULL REFERENCES data_stores(id),
    object_id TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT, checksum TEXT,
    object_mtime INTEGER, linked INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS external_files_store ON external_files (store_id, node_id);
-- end Connect
"""


class _SqliteTx:
    """A :class:`~lucidlink.hub.store.base.Tx` over one sqlite3 connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self._conn.execute(sql, params).fetchone()  # type: ignore[no-any-return]

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)


class SqliteStore(MetadataStore):
    """Metadata in ``<data-dir>/metadata.sqlite3`` (WAL)."""

    engine = "sqlite"

    def __init__(self, path: Path | str, *, readers: int = 2) -> None:
        self.path = Path(path)
        self._readers = readers
        self._writer: ThreadPoolExecutor | None = None
        self._reader_pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode is durable across process crashes; only an OS crash or
        # power loss can drop the last transactions.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    def _thread_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _init_schema(self) -> None:
        conn = self._thread_conn()
        conn.executescript(SCHEMA)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
            (str(SCHEMA_VERSION),),
        )

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="lucidhub-sqlite-writer")
        self._reader_pool = ThreadPoolExecutor(self._readers, thread_name_prefix="lucidhub-sqlite-reader")
        await asyncio.get_running_loop().run_in_executor(self._writer, self._init_schema)

    async def close(self) -> None:
        for pool in (self._writer, self._reader_pool):
            if pool is not None:
                await asyncio.get_running_loop().run_in_executor(None, pool.shutdown, True)
        self._writer = self._reader_pool = None
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.execute("PRAGMA optimize")
            except sqlite3.Error:
                pass
            conn.close()

    def _run_tx(self, begin: str, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        conn = self._thread_conn()
        conn.execute(begin)
        try:
            result = fn(_SqliteTx(conn), *args, **kwargs)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._writer is None:
            raise RuntimeError("the metadata store is closed")
        return await asyncio.get_running_loop().run_in_executor(
            self._writer, self._run_tx, "BEGIN IMMEDIATE", fn, args, kwargs
        )

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._reader_pool is None:
            raise RuntimeError("the metadata store is closed")
        return await asyncio.get_running_loop().run_in_executor(
            self._reader_pool, self._run_tx, "BEGIN", fn, args, kwargs
        )
