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

from lucidlink.exceptions import BadRequestError, ConfigurationError
from lucidlink.hub.store.base import SCHEMA_VERSION, MetadataStore, Row
from lucidlink.hub.store.schema import SORTED_COLUMNS, schema

T = TypeVar("T")

SCHEMA = schema("BIGSERIAL PRIMARY KEY", ' COLLATE "C"')

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
                sql = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--"))
                if sql.strip():
                    conn.execute(sql)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', %s) ON CONFLICT (key) DO NOTHING",
                (str(SCHEMA_VERSION),),
            )
            # Tables an older hub made sort names in the database's default collation.
            for table, column in SORTED_COLUMNS:
                row = conn.execute(
                    "SELECT collation_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = %s AND column_name = %s",
                    (table, column),
                ).fetchone()
                if row is not None and row["collation_name"] != "C":
                    conn.execute(f'ALTER TABLE {table} ALTER COLUMN {column} TYPE TEXT COLLATE "C"')

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
            except psycopg.DataError as exc:
                # A value PostgreSQL cannot hold (a NUL in text, a number out of range) that
                # validation let through: the request's fault, not the hub's (SQLite would store it).
                raise BadRequestError(f"a value in the request cannot be stored: {exc}") from None
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
