"""The scale-out metadata store: PostgreSQL, shared by several hub processes.

The hub's transactional functions run unchanged (they speak portable SQL with ``?``
placeholders, translated to psycopg's ``%s`` here). Writes run at SERIALIZABLE
isolation and are retried on serialization failures, which gives them the same
one-at-a-time semantics SQLite's single writer gives: invariants that span rows (a
commit only references live blocks, the GC only marks unreferenced ones, lock grants
are in ticket order) hold across hub processes. Each worker thread owns a connection.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from lucidlink.exceptions import ConfigurationError
from lucidlink.hub.store.base import SCHEMA_VERSION, MetadataStore, Row

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workspaces (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS filespaces (
    id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    name TEXT NOT NULL, block_size BIGINT NOT NULL, created BIGINT NOT NULL,
    seq BIGINT NOT NULL DEFAULT 0, root_id BIGINT,
    UNIQUE (workspace_id, name));
CREATE TABLE IF NOT EXISTS tokens (
    key_id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    secret_hash TEXT NOT NULL, filespaces TEXT, read_only INTEGER NOT NULL,
    admin INTEGER NOT NULL, created BIGINT NOT NULL, revoked BIGINT, description TEXT);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, filespace_id TEXT NOT NULL REFERENCES filespaces(id),
    key_id TEXT NOT NULL, client TEXT, created BIGINT NOT NULL, expires BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    id BIGSERIAL PRIMARY KEY, filespace_id TEXT NOT NULL, parent_id BIGINT,
    name TEXT NOT NULL, type TEXT NOT NULL, size BIGINT NOT NULL DEFAULT 0,
    mtime BIGINT NOT NULL, ctime BIGINT NOT NULL, version BIGINT NOT NULL DEFAULT 1,
    UNIQUE (parent_id, name));
CREATE INDEX IF NOT EXISTS nodes_filespace ON nodes (filespace_id, type);
CREATE TABLE IF NOT EXISTS file_blocks (
    node_id BIGINT NOT NULL, idx BIGINT NOT NULL, filespace_id TEXT NOT NULL,
    hash TEXT NOT NULL, length BIGINT NOT NULL, used BIGINT NOT NULL,
    PRIMARY KEY (node_id, idx));
CREATE INDEX IF NOT EXISTS file_blocks_hash ON file_blocks (filespace_id, hash);
CREATE TABLE IF NOT EXISTS blocks (
    filespace_id TEXT NOT NULL, hash TEXT NOT NULL, length BIGINT NOT NULL,
    state TEXT NOT NULL, last_seen BIGINT NOT NULL,
    PRIMARY KEY (filespace_id, hash));
CREATE TABLE IF NOT EXISTS changes (
    filespace_id TEXT NOT NULL, seq BIGINT NOT NULL, time BIGINT NOT NULL,
    op TEXT NOT NULL, node_id BIGINT, type TEXT, path TEXT NOT NULL, new_path TEXT,
    size BIGINT, version BIGINT, session_id TEXT,
    PRIMARY KEY (filespace_id, seq));
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS locks (
    id TEXT PRIMARY KEY, filespace_id TEXT NOT NULL, path TEXT NOT NULL,
    session_id TEXT NOT NULL, mode TEXT NOT NULL, state TEXT NOT NULL,
    ticket BIGINT NOT NULL, created BIGINT NOT NULL, expires BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS locks_path ON locks (filespace_id, path, ticket);
CREATE INDEX IF NOT EXISTS locks_session ON locks (session_id);
CREATE TABLE IF NOT EXISTS data_stores (
    id TEXT PRIMARY KEY, filespace_id TEXT NOT NULL REFERENCES filespaces(id),
    name TEXT NOT NULL, kind TEXT NOT NULL, access_key TEXT NOT NULL,
    secret_sealed TEXT NOT NULL, config TEXT NOT NULL, key_id TEXT NOT NULL,
    rekey_state TEXT NOT NULL, created BIGINT NOT NULL, updated BIGINT NOT NULL,
    UNIQUE (filespace_id, name));
CREATE TABLE IF NOT EXISTS external_files (
    node_id BIGINT PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
    filespace_id TEXT NOT NULL, store_id TEXT NOT NULL REFERENCES data_stores(id),
    object_id TEXT NOT NULL, size BIGINT NOT NULL, etag TEXT, checksum TEXT,
    object_mtime BIGINT, linked BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS external_files_store ON external_files (store_id, node_id);
"""

_RETRIES = 30


def _sql(sql: str) -> str:
    # The hub's SQL never contains a literal '?' or '%'; placeholders only.
    return sql.replace("?", "%s")


class _PgTx:
    """A :class:`~lucidlink.hub.store.base.Tx` over one psycopg connection."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        cur = self._conn.execute(_sql(sql), params)
        return cur.fetchone() if cur.description else None  # type: ignore[no-any-return]

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._conn.execute(_sql(sql), params).fetchall()  # type: ignore[no-any-return]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self._conn.execute(_sql(sql), params).rowcount)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self._conn.cursor() as cur:
                cur.executemany(_sql(sql), rows)


class PostgresStore(MetadataStore):
    """Metadata in a PostgreSQL database (``postgresql://user@host:port/db``)."""

    engine = "postgresql"

    def __init__(self, dsn: str, *, threads: int = 4) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigurationError(
                "the PostgreSQL store needs psycopg: pip install 'lucidlink[postgres]'"
            ) from None
        self.dsn = dsn
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._conns: list[Any] = []
        self._lock = threading.Lock()

    def _conn(self) -> Any:
        import psycopg
        from psycopg.rows import dict_row

        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self.dsn, row_factory=dict_row, autocommit=True)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def _init_schema(self) -> None:
        conn = self._conn()
        with conn.transaction():
            # Several hubs may start at once: serialise schema creation.
            conn.execute("SELECT pg_advisory_xact_lock(7411)")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', %s) ON CONFLICT (key) DO NOTHING",
                (str(SCHEMA_VERSION),),
            )

    async def open(self) -> None:
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="lucidhub-pg")
        await asyncio.get_running_loop().run_in_executor(self._pool, self._init_schema)

    async def close(self) -> None:
        if self._pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown, True)
            self._pool = None
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()

    def _run(self, write: bool, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        import psycopg.errors

        conn = self._conn()
        for attempt in range(_RETRIES):
            try:
                conn.execute(
                    "BEGIN ISOLATION LEVEL SERIALIZABLE" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                )
                try:
                    result = fn(_PgTx(conn), *args, **kwargs)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result
            except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected,
                    psycopg.errors.UniqueViolation) as exc:
                # A concurrent transaction won; run the whole function again on fresh data.
                # (A unique violation here is two hubs racing to create the same name;
                # the retry sees the winner's row and answers as SQLite would.)
                if attempt == _RETRIES - 1:
                    raise RuntimeError(f"the metadata store stayed contended after {_RETRIES} tries") from exc
                time.sleep(min(0.2, 0.002 * 2**attempt) * random.random())
        raise AssertionError("unreachable")

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._pool is None:
            raise RuntimeError("the metadata store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._run, True, fn, args, kwargs)

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._pool is None:
            raise RuntimeError("the metadata store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._run, False, fn, args, kwargs)
