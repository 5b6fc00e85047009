"""The metadata store interface.

The hub's logic is written once, as plain functions that take a :class:`Tx` and speak
portable SQL (``?`` placeholders, ``ON CONFLICT``, ``RETURNING``, ``WITH RECURSIVE``,
nothing engine-specific). A store runs such a function inside one transaction on a
worker thread of its own, so the event loop never waits on the database (except short
reads an engine can answer faster inline, :meth:`MetadataStore.read_short`). SQLite is
the embedded engine; PostgreSQL drops in by implementing this same interface.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

Row = Mapping[str, Any]
"""A result row, addressed by column name."""


class Tx(Protocol):
    """One open transaction."""

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """Run a query and return its first row, or ``None``."""

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a query and return every row."""

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query and return every row as a plain tuple, in the order of its columns.

        For pages of many rows: a tuple is built in C, a mapping per row costs as much as
        the query itself (1,000 listing rows in SQLite: 2.9 ms as tuples, 5.6 ms as rows).
        """

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement and return the number of rows it changed."""

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run a statement once per parameter row."""


class MetadataStore(abc.ABC):
    """Runs the hub's transactional functions against one database."""

    #: Name of the engine, for logs and ``/healthz``.
    engine: str = "abstract"

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and create or migrate the schema."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish in-flight work and close every connection cleanly."""

    @abc.abstractmethod
    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(tx, *args, **kwargs)`` in a read-write transaction; commit, or roll back on error."""

    @abc.abstractmethod
    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(tx, *args, **kwargs)`` in a read-only transaction (a consistent snapshot)."""

    async def read_short(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """:meth:`read` for a short read: a few rows found by key, or one bounded page of
        an index range (a listing page), never a scan.

        An engine that can answer it without leaving the event loop for less than a thread
        hop costs does (SQLite: inline, on a connection of the loop's own); the others run
        it as :meth:`read`. Never for a read whose cost grows with the data beyond a page
        (statistics, recursive walks, GC scans): those would hold the loop.
        """
        return await self.read(fn, *args, **kwargs)

    async def meta_value(self, key: str) -> str | None:
        """The ``meta`` row ``key`` as committed when the call began (or later), or ``None``.

        The cheapest read an engine has, for a value checked on every request (the auth
        generation): :meth:`read_short` by default.
        """
        return await self.read_short(meta_value, key)


def meta_value(tx: Tx, key: str) -> str | None:
    """The value of the ``meta`` row ``key``, or ``None``."""
    row = tx.one("SELECT value FROM meta WHERE key = ?", (key,))
    return None if row is None else str(row["value"])


MAX_INT64 = 2**63 - 1
"""The largest integer the metadata store holds; bigger numbers in a request are refused."""
SCHEMA_VERSION = 1


INSERT_CHUNK = 500
"""Rows per multi-row ``INSERT``: few round trips, statements of bounded size."""


def rows_in(tx: Tx, sql: str, head: Sequence[Any], values: Sequence[Any]) -> list[Row]:
    """``sql`` (ending in ``IN ({marks})``) for ``values`` in chunks of at most
    :data:`INSERT_CHUNK`, with the ``head`` parameters first; the rows of every chunk."""
    rows: list[Row] = []
    for start in range(0, len(values), INSERT_CHUNK):
        chunk = values[start:start + INSERT_CHUNK]
        rows += tx.all(sql.format(marks=",".join("?" * len(chunk))), (*head, *chunk))
    return rows


def insert_rows(tx: Tx, head: str, row: str, rows: list[tuple[Any, ...]], tail: str = "") -> list[Row]:
    """Multi-row ``INSERT ... VALUES (...), (...)`` in chunks: far fewer round trips than one per row."""
    out: list[Row] = []
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start:start + INSERT_CHUNK]
        sql = head + ",".join([row] * len(chunk)) + tail
        params = [value for r in chunk for value in r]
        if tail:
            out += tx.all(sql, params)
        else:
            tx.execute(sql, params)
    return out
