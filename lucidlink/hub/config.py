"""Hub settings, with the documented defaults."""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from lucidlink.exceptions import ConfigurationError
from lucidlink.shared import DEFAULT_HOST, DEFAULT_PORT

METADATA_URL_ENV = "LUCIDHUB_METADATA_URL"
"""Environment variable naming the metadata store when ``--metadata-url`` is not given."""
SQLITE_SYNCHRONOUS_ENV = "LUCIDHUB_SQLITE_SYNCHRONOUS"
"""Environment variable for ``sqlite_synchronous`` when ``--sqlite-synchronous`` is not given."""
SQLITE_SYNCHRONOUS = ("FULL", "NORMAL")
"""The SQLite ``synchronous`` levels the hub accepts; the first is the default."""


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _check_synchronous(settings: HubSettings, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in SQLITE_SYNCHRONOUS:
        raise ConfigurationError(
            "sqlite_synchronous must be FULL (the default: a committed change survives a power "
            "loss) or NORMAL (faster; the last commits may be lost if the machine crashes), "
            f"not {value!r}",
            field="sqlite_synchronous",
        )


def _check_grace(settings: HubSettings, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= settings.url_ttl_seconds:  # also refuses NaN
        raise ConfigurationError(
            f"gc_grace_seconds ({value:g}) must be at least url_ttl_seconds "
            f"({settings.url_ttl_seconds:g}): the GC must not delete a block while a signed URL to "
            "it may still be used. Raise gc_grace_seconds or lower url_ttl_seconds",
            field="gc_grace_seconds",
        )


@attrs.frozen
class HubSettings:
    """Everything a hub process is configured with."""

    data_dir: Path = attrs.field(converter=Path)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    public_url: str | None = None
    """Base URL written into signed block URLs; by default the URL the request came in on."""
    lease_seconds: float = 30.0
    """Session (and lock) lease length; daemons renew at a third of it."""
    url_ttl_seconds: float = 900.0
    """Lifetime of signed block URLs."""
    gc_interval_seconds: float = 60.0
    gc_grace_seconds: float = attrs.field(default=3600.0, validator=_check_grace)
    """Blocks are kept this long after they were last uploaded, answered "present", or
    stopped being referenced (overwrite, truncate, delete); at least ``url_ttl_seconds``."""
    max_json_bytes: int = 16 * 1024 * 1024
    long_poll_max_seconds: float = 60.0
    shutdown_timeout_seconds: float = 10.0
    metadata_url: str | None = None
    """``postgresql://...`` to keep metadata in PostgreSQL; default: SQLite in the data dir."""
    sqlite_synchronous: str = attrs.field(
        default="FULL", converter=_upper, validator=_check_synchronous
    )
    """SQLite's ``synchronous`` level: ``FULL`` (default; every commit is fsynced, so an
    acknowledged change survives a power loss) or ``NORMAL`` (opt-in; faster, durable
    across a hub crash, but an OS crash or power loss may drop the last commits)."""

    @property
    def metadata_path(self) -> Path:
        """The SQLite database of the embedded metadata store."""
        return self.data_dir / "metadata.sqlite3"

    @property
    def blocks_path(self) -> Path:
        """The directory of the embedded block store."""
        return self.data_dir / "blocks"

    @property
    def key_path(self) -> Path:
        """The hub's URL-signing key."""
        return self.data_dir / "hub.key"


def metadata_url_from_env(explicit: str | None) -> str | None:
    """``--metadata-url`` if given, else ``LUCIDHUB_METADATA_URL``, else ``None`` (SQLite)."""
    return explicit or os.environ.get(METADATA_URL_ENV) or None


def sqlite_synchronous_from_env(explicit: str | None) -> str:
    """``--sqlite-synchronous`` if given, else ``LUCIDHUB_SQLITE_SYNCHRONOUS``, else ``FULL``."""
    return explicit or os.environ.get(SQLITE_SYNCHRONOUS_ENV) or SQLITE_SYNCHRONOUS[0]
