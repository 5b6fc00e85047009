"""PostgreSQL for tests: the server found on 127.0.0.1:5432 (or $LUCIDLINK_TEST_PG_DSN).

``.ci/run`` makes sure one runs (``tools/ensure_postgres.sh``). Each hub gets its own
schema, created and dropped around it, so tests never see each other's rows.

Also the block stores: hubs keep blocks in their data dir unless a test is marked
:data:`with_block_stores`, which runs it on three pairs of stores (SQLite + local
directory, PostgreSQL + local directory, SQLite + S3 on the session's SeaweedFS). Only
tests that move block bytes are marked: the S3 pair costs a bucket prefix and presigned
transfers, and the metadata engine does not change what the block store does.
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

BLOCK_STORES = ["local", "s3"]
STORE_PAIRS = [("sqlite", "local"), ("postgres", "local"), ("sqlite", "s3")]
with_block_stores = pytest.mark.block_stores
"""Run a test (or a module's: ``pytestmark = with_block_stores``) that uses a hub on both
block stores; the marked tests that use no hub run once, as before."""


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``block_stores`` marker."""
    config.addinivalue_line(
        "markers", "block_stores: run on SQLite+local, PostgreSQL+local and SQLite+S3 stores")


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give tests marked :data:`with_block_stores` that use a hub the three pairs of stores."""
    if metafunc.definition.get_closest_marker("block_stores") is None:
        return
    if {"metadata_url", "block_store"} <= set(metafunc.fixturenames):
        # As a mark, which pytest applies after this hook, so that the fixture's own
        # params (metadata_url's two engines) give way to it.
        metafunc.definition.add_marker(pytest.mark.parametrize(
            ("metadata_url", "block_store"), STORE_PAIRS, indirect=True,
            ids=[f"{m}-{b}" for m, b in STORE_PAIRS]))


@pytest.fixture
def block_store(request: pytest.FixtureRequest) -> dict[str, str]:
    """The hub settings of the block store under test: ``{}`` (the data dir) unless a test
    is parametrized with ``"s3"`` (:data:`with_block_stores`): then a fresh key prefix in
    the session SeaweedFS's bucket, with the endpoint and credentials to reach it."""
    if getattr(request, "param", "local") == "local":
        return {}
    from tests.support.s3fixtures import hub_s3_settings

    return hub_s3_settings(request.getfixturevalue("seaweed"))
