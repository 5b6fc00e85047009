"""Hub settings, with the documented defaults."""

from __future__ import annotations

import os
from pathlib import Path

import attrs

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8470
"""The hub's documented default port (loopback)."""
METADATA_URL_ENV = "LUCIDHUB_METADATA_URL"
"""Environment variable naming the metadata store when ``--metadata-url`` is not given."""
DEFAULT_HUB_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
"""Where the SDK looks for a hub when neither ``hub_url=`` nor ``LUCIDLINK_HUB_URL`` is given."""


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
    gc_grace_seconds: float = 3600.0
    """Unreferenced blocks are kept this long after their last upload or mention."""
    max_json_bytes: int = 16 * 1024 * 1024
    long_poll_max_seconds: float = 60.0
    shutdown_timeout_seconds: float = 10.0
    metadata_url: str | None = None
    """``postgresql://...`` to keep metadata in PostgreSQL; default: SQLite in the data dir."""

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
