"""Metadata stores: where the hub keeps its namespace, versions, tokens and journal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lucidlink.exceptions import ConfigurationError
from lucidlink.hub.store.base import MetadataStore, Row, Tx

if TYPE_CHECKING:
    from lucidlink.hub.config import HubSettings

__all__ = ["MetadataStore", "Row", "Tx", "create_metadata_store"]


def create_metadata_store(settings: HubSettings) -> MetadataStore:
    """SQLite in the data dir by default; PostgreSQL when ``metadata_url`` says so."""
    url = settings.metadata_url
    if not url or url.startswith("sqlite:"):
        from lucidlink.hub.store.sqlite import SqliteStore

        return SqliteStore(url[len("sqlite:"):] if url else settings.metadata_path,
                           synchronous=settings.sqlite_synchronous)
    if url.startswith(("postgresql://", "postgres://")):
        from lucidlink.hub.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ConfigurationError(
        f"metadata URL {url!r} is not supported: use postgresql://user@host:port/database, "
        "or leave it unset for SQLite in the data dir"
    )
