"""PostgreSQL for tests: the server found on 127.0.0.1:5432 (or $LUCIDLINK_TEST_PG_DSN).

``.ci/run`` makes sure one runs (``tools/ensure_postgres.sh``). Each hub gets its own
schema, created and dropped around it, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

DSN_ENV = "LUCIDLINK_TEST_PG_DSN"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", "postgres"]


def _base_dsn() -> str:
    return os.environ.get(DSN_ENV, DEFAULT_DSN)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The DSN of a reachable PostgreSQL; fails under CI, skips elsewhere, when there is none."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed (pip install -e '.[test]')")
    dsn = _base_dsn()
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not reachable at {dsn} ({exc}); run tools/ensure_postgres.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return dsn


@contextmanager
def fresh_schema(dsn: str) -> Iterator[str]:
    """A DSN whose search_path is a new, empty schema; the schema is dropped afterwards."""
    import psycopg

    schema = "lucid_" + uuid.uuid4().hex[:12]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in dsn else "?"
    try:
        yield f"{dsn}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=BACKENDS)
def metadata_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Every hub-backed behaviour runs on both metadata stores: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        yield None
        return
    dsn = request.getfixturevalue("postgres_dsn")
    with fresh_schema(dsn) as url:
        yield url


MetadataUrlFactory = Callable[[], str | None]
