"""The scale-out metadata store: PostgreSQL, shared by several hub processes.

The hub's transactional functions run unchanged (they speak portable SQL with ``?``
placeholders, translated to psycopg's ``%s`` here). Writes run at SERIALIZABLE
isolation and are retried on serialization failures, which gives them the same
one-at-a-time semantics SQLite's single writer gives: invariants that span rows (a
commit only references live blocks, the GC only marks unreferenced ones, lock grants
are in ticket order) hold across hub processes. Each worker thread owns a connection.

Two things cross hub processes outside transactions: change notifications
(:meth:`PostgresStore.subscribe`, LISTEN/NOTIFY on a channel per schema, so a commit
through one hub wakes long-polls on every hub) and exclusive passes
(:meth:`PostgresStore.exclusive`, an advisory lock, so one hub at a time collects
garbage). Each uses a connection of its own on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import structlog

from lucidlink.exceptions import BadRequestError, ConfigurationError
from lucidlink.hub.store.base import SCHEMA_VERSION, MetadataStore, Row
from lucidlink.hub.store.schema import SORTED_COLUMNS, schema

T = TypeVar("T")

SCHEMA = schema("BIGSERIAL PRIMARY KEY", ' COLLATE "C"', "BYTEA")

_RETRIES = 30
_RELAY_BACKOFF_MAX = 5.0

log = structlog.get_logger("lucidlink.hub")


def _sql(sql: str) -> str:
    # The hub's SQL never contains a literal '?' or '%'; placeholders only.
    return sql.replace("?", "%s")


class _PgTx:
    """A :class:`~lucidlink.hub.store.base.Tx` over one psycopg connection."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        cur = self._conn.execute(_sql(sql), params)
        return cur.fetchone() if cur.description else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._conn.execute(_sql(sql), params).fetchall()  # type: ignore[no-any-return]

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        from psycopg.rows import tuple_row

        with self._conn.cursor(row_factory=tuple_row) as cur:
            return cur.execute(_sql(sql), params).fetchall()  # type: ignore[no-any-return]

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
        self._schema = ""  # current_schema(), read when the store opens
        self._origin = uuid.uuid4().hex  # tells this hub's own notifications from others'
        self._deliver: Callable[[str], None] | None = None
        self._outbox: set[str] = set()
        self._outbox_ready: asyncio.Event | None = None
        self._relays: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._meta_conn: Any = None  # psycopg.AsyncConnection of meta_value, on the loop
        self._meta_lock: asyncio.Lock | None = None
        self._meta_next: dict[str, asyncio.Future[str | None]] = {}
        self._meta_tasks: set[asyncio.Task[None]] = set()

    @property
    def _channel(self) -> str:
        # Channels are database-wide; hubs on other schemas of the database are not ours.
        return "lucidlink_" + hashlib.sha256(self._schema.encode()).hexdigest()[:24]

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

    def _init_schema(self) -> str:
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
            return str(conn.execute("SELECT current_schema() AS s").fetchone()["s"])

    async def open(self) -> None:
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="lucidhub-pg")
        loop = asyncio.get_running_loop()
        self._loop, self._meta_lock = loop, asyncio.Lock()
        self._schema = await loop.run_in_executor(self._pool, self._init_schema)
        if self._deliver is not None:
            self._outbox_ready = asyncio.Event()
            self._relays = [asyncio.create_task(self._listen()), asyncio.create_task(self._send())]

    def subscribe(self, deliver: Callable[[str], None]) -> Callable[[str], None]:
        """Relay change keys between the hubs on this store; returns the function that publishes.

        Keys other hubs publish are handed to ``deliver`` on the event loop (a hub's own
        are not); published keys are coalesced and sent as NOTIFYs in the background.
        Call before :meth:`open`. Delivery is best effort: a notification sent while
        the listening connection was down is lost, so waiters must also re-read
        periodically (the journal's and the lock waits' long-polls do).
        """
        self._deliver = deliver
        return self._publish

    def _publish(self, key: str) -> None:
        if self._outbox_ready is not None:
            self._outbox.add(key)
            self._outbox_ready.set()

    async def _listen(self) -> None:
        import psycopg

        failures = 0
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
                try:
                    await conn.execute(f'LISTEN "{self._channel}"')
                    failures = 0
                    async for note in conn.notifies():
                        origin, _, key = note.payload.partition("\n")
                        if origin != self._origin and self._deliver is not None:
                            self._deliver(key)
                finally:
                    await conn.close()
            except (psycopg.Error, OSError) as exc:
                failures += 1
                delay = min(_RELAY_BACKOFF_MAX, 0.1 * 2**failures)
                log.warning("hub.changes.listen_failed", error=str(exc)[:200], retry_in=delay)
                await asyncio.sleep(delay)

    async def _send(self) -> None:
        import psycopg

        assert self._outbox_ready is not None
        conn: Any = None
        failures = 0
        try:
            while True:
                await self._outbox_ready.wait()
                self._outbox_ready.clear()
                payloads = [f"{self._origin}\n{key}" for key in sorted(self._outbox)]
                self._outbox.clear()
                try:
                    if conn is None or conn.closed:
                        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
                    await conn.execute("SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p",
                                       (self._channel, payloads))
                    failures = 0
                except (psycopg.Error, OSError) as exc:
                    # Dropped, not resent: the waiters' periodic re-read finds the change.
                    failures += 1
                    delay = min(_RELAY_BACKOFF_MAX, 0.1 * 2**failures)
                    log.warning("hub.changes.notify_failed", error=str(exc)[:200], retry_in=delay)
                    if conn is not None:
                        await conn.close()
                    conn = None
                    await asyncio.sleep(delay)
        finally:
            if conn is not None:
                await conn.close()

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str, *, wait: bool = True,
                        poll: float = 0.2) -> AsyncIterator[bool]:
        """Hold the lock ``name`` against every hub on this store's schema; yields whether held.

        A PostgreSQL advisory lock on a connection of its own, so a hub that dies holding
        it lets it go with the connection. ``wait=False`` yields ``False`` at once when
        another hub holds it; ``wait=True`` checks every ``poll`` seconds until it is free.
        """
        import psycopg

        # Keys (7412, hash): 7412 sets the hub's locks apart from others' (7411: schema creation).
        scoped = f"{self._schema}:{name}"
        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        try:
            while True:
                cur = await conn.execute("SELECT pg_try_advisory_lock(7412, hashtext(%s))",
                                         (scoped,))
                row = await cur.fetchone()
                held = bool(row and row[0])
                if held or not wait:
                    break
                await asyncio.sleep(poll)
            try:
                yield held
            finally:
                if held and not conn.closed:
                    with contextlib.suppress(psycopg.Error):
                        await conn.execute("SELECT pg_advisory_unlock(7412, hashtext(%s))",
                                           (scoped,))
        finally:
            await conn.close()

    async def meta_value(self, key: str) -> str | None:
        """One ``meta`` row, read on the event loop's own connection: no thread hop.

        The calls that arrive before the next query for ``key`` is sent share it, and it is
        sent after all of them arrived (autocommit: a fresh snapshot), so each sees what
        was committed before it began. If that connection fails, the read goes through
        the worker threads instead (and the connection is made again next time).
        """
        if self._pool is None:
            raise RuntimeError("the metadata store is closed")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            return await super().meta_value(key)
        pending = self._meta_next.get(key)
        if pending is None:
            pending = self._meta_next[key] = loop.create_future()
            pending.add_done_callback(lambda f: f.cancelled() or f.exception())
            task = loop.create_task(self._read_meta(key, pending))
            self._meta_tasks.add(task)
            task.add_done_callback(self._meta_tasks.discard)
        try:
            return await asyncio.shield(pending)
        except Exception:
            return await super().meta_value(key)

    async def _read_meta(self, key: str, pending: asyncio.Future[str | None]) -> None:
        import psycopg

        assert self._meta_lock is not None
        try:
            async with self._meta_lock:  # one query at a time on the connection
                if self._meta_next.get(key) is pending:
                    del self._meta_next[key]  # from here on, callers wait for the next query
                try:
                    if self._meta_conn is None or self._meta_conn.closed:
                        self._meta_conn = await psycopg.AsyncConnection.connect(
                            self.dsn, autocommit=True)
                    cur = await self._meta_conn.execute(
                        "SELECT value FROM meta WHERE key = %s", (key,))
                    row = await cur.fetchone()
                except BaseException:
                    conn, self._meta_conn = self._meta_conn, None
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            await conn.close()
                    raise
                pending.set_result(None if row is None else str(row[0]))
        except Exception as exc:
            pending.set_exception(exc)  # each waiter reads through the worker threads
        finally:
            if not pending.done():  # cancelled (the store is closing)
                pending.set_exception(RuntimeError("the metadata store is closing"))

    async def close(self) -> None:
        tasks, self._meta_tasks = self._meta_tasks, set()
        for meta_task in tasks:
            meta_task.cancel()
        for meta_task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await meta_task
        self._meta_next.clear()
        if self._meta_conn is not None:
            with contextlib.suppress(Exception):
                await self._meta_conn.close()
            self._meta_conn = None
        relays, self._relays = self._relays, []
        for task in relays:
            task.cancel()
        for task in relays:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._outbox_ready = None
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
