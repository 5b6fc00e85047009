"""Hub settings, with the documented defaults."""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from lucidlink.exceptions import ConfigurationError
from lucidlink.hub.eventloop import EVENT_LOOPS, check_event_loop
from lucidlink.shared import DEFAULT_HOST, DEFAULT_PORT

METADATA_URL_ENV = "LUCIDHUB_METADATA_URL"
"""Environment variable naming the metadata store when ``--metadata-url`` is not given."""
SQLITE_SYNCHRONOUS_ENV = "LUCIDHUB_SQLITE_SYNCHRONOUS"
"""Environment variable for ``sqlite_synchronous`` when ``--sqlite-synchronous`` is not given."""
SQLITE_SYNCHRONOUS = ("FULL", "NORMAL")
"""The SQLite ``synchronous`` levels the hub accepts; the first is the default."""
INLINE_BLOCK_MAX_ENV = "LUCIDHUB_INLINE_BLOCK_MAX"
"""Environment variable for ``inline_block_max`` when ``--inline-block-max`` is not given."""
EVENT_LOOP_ENV = "LUCIDHUB_EVENT_LOOP"
"""Environment variable for ``event_loop`` when ``--event-loop`` is not given."""
BLOCK_STORE_ENV = "LUCIDHUB_BLOCK_STORE"
"""Environment variable naming the block store (``s3://BUCKET/PREFIX``) when ``--block-store``
is not given."""


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


def _check_block_store(settings: HubSettings, attribute: attrs.Attribute[str | None],
                       value: str | None) -> None:
    if value is not None and not value.startswith("s3://"):
        raise ConfigurationError(
            f"block store {value!r} is not supported: give s3://BUCKET[/PREFIX] for an S3 bucket, "
            "or leave it unset for a directory in the data dir", field="block_store")


def _check_inline_max(settings: HubSettings, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1024 * 1024:
        raise ConfigurationError(
            f"inline_block_max must be a number of bytes from 0 (off) to 1048576, not {value!r}: "
            "blocks up to it are kept in the metadata store",
            field="inline_block_max")


def _check_loop(settings: HubSettings, attribute: attrs.Attribute[str], value: str) -> None:
    check_event_loop(value)


def _is_postgres(url: str | None) -> bool:
    return url is not None and url.startswith(("postgresql://", "postgres://"))


@attrs.frozen
class HubSettings:
    """Everything a hub process is configured with.

    ``data_dir`` may be left out only when both stores are remote (PostgreSQL metadata
    and an S3 block store): nothing then lives on the hub's disk.
    """

    data_dir: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
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
    inline_block_max: int = attrs.field(default=65536, validator=_check_inline_max)
    """Blocks of at most this many bytes may be committed with their bytes in the commit and
    are then kept in the metadata store (``block_data``), not the block store; 0 disables it."""
    block_store: str | None = attrs.field(default=None, validator=_check_block_store)
    """``s3://BUCKET[/PREFIX]`` to keep blocks in an S3 bucket; default: the data dir."""
    s3_endpoint_url: str | None = None
    """The S3 endpoint (``scheme://host[:port]``); default ``AWS_ENDPOINT_URL``, else AWS S3."""
    s3_region: str | None = None
    """The bucket's region; default ``AWS_REGION``, else ``us-east-1``."""
    s3_access_key_id: str | None = None
    """Default ``AWS_ACCESS_KEY_ID``."""
    s3_secret_access_key: str | None = attrs.field(default=None, repr=False)
    """Default ``AWS_SECRET_ACCESS_KEY``; never logged or shown."""
    event_loop: str = attrs.field(default=EVENT_LOOPS[0], validator=_check_loop)
    """``asyncio`` (default) or ``uvloop`` (the ``uvloop`` extra); see
    :mod:`lucidlink.hub.eventloop`."""

    def __attrs_post_init__(self) -> None:
        if self.data_dir is None and not (self.block_store and _is_postgres(self.metadata_url)):
            kept = [what for what, local in (
                ("the SQLite metadata store", not _is_postgres(self.metadata_url)),
                ("the block directory", not self.block_store)) if local]
            raise ConfigurationError(
                f"the hub needs a data dir for {' and '.join(kept)}: give --data-dir, or keep "
                "metadata in PostgreSQL (--metadata-url) and blocks in S3 (--block-store)",
                field="data_dir")

    def _dir(self) -> Path:
        if self.data_dir is None:
            raise ConfigurationError(
                "this hub has no data dir (its stores are remote); give --data-dir",
                field="data_dir")
        return self.data_dir

    @property
    def metadata_path(self) -> Path:
        """The SQLite database of the embedded metadata store."""
        return self._dir() / "metadata.sqlite3"

    @property
    def blocks_path(self) -> Path:
        """The directory of the embedded block store."""
        return self._dir() / "blocks"

    @property
    def key_path(self) -> Path:
        """The hub's URL-signing key."""
        return self._dir() / "hub.key"


def metadata_url_from_env(explicit: str | None) -> str | None:
    """``--metadata-url`` if given, else ``LUCIDHUB_METADATA_URL``, else ``None`` (SQLite)."""
    return explicit or os.environ.get(METADATA_URL_ENV) or None


def sqlite_synchronous_from_env(explicit: str | None) -> str:
    """``--sqlite-synchronous`` if given, else ``LUCIDHUB_SQLITE_SYNCHRONOUS``, else ``FULL``."""
    return explicit or os.environ.get(SQLITE_SYNCHRONOUS_ENV) or SQLITE_SYNCHRONOUS[0]


def inline_block_max_from_env(explicit: int | None) -> int:
    """``--inline-block-max`` if given, else ``LUCIDHUB_INLINE_BLOCK_MAX``, else 65536."""
    if explicit is not None:
        return explicit
    value = os.environ.get(INLINE_BLOCK_MAX_ENV)
    if not value:
        return 65536
    if not value.isascii() or not value.isdigit():
        raise ConfigurationError(
            f"{INLINE_BLOCK_MAX_ENV}={value!r} is not a number of bytes", field="inline_block_max")
    return int(value)


def event_loop_from_env(explicit: str | None) -> str:
    """``--event-loop`` if given, else ``LUCIDHUB_EVENT_LOOP``, else ``asyncio``."""
    return explicit or os.environ.get(EVENT_LOOP_ENV) or EVENT_LOOPS[0]


def block_store_from_env(explicit: str | None) -> str | None:
    """``--block-store`` if given, else ``LUCIDHUB_BLOCK_STORE``, else ``None`` (the data dir)."""
    value = explicit or os.environ.get(BLOCK_STORE_ENV) or None
    return None if value in (None, "local") else value
