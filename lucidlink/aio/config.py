"""Daemon settings: ``create_daemon(config={...})`` keys, parsed and validated up front."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import yarl

from lucidlink.aio.transport import HubRing
from lucidlink.exceptions import ConfigurationError
from lucidlink.shared import DEFAULT_HUB_URL

HUB_URL_ENV = "LUCIDLINK_HUB_URL"


def _flag(value: object) -> bool:
    """A yes/no setting: a bool, or "true"/"false"/"1"/"0"/"yes"/"no" (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _FLAG_WORDS:
        return _FLAG_WORDS[value.strip().lower()]
    raise ValueError(f"not a yes/no value: {value!r}")


_FLAG_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

# key -> (attribute, converter, description)
_KEYS: dict[str, tuple[str, Callable[[Any], Any], str]] = {
    "fs.cache.size": ("cache_mb", int, "on-disk block cache size in MB (default 1024)"),
    "fs.readahead.max_blocks": (
        "readahead_max_blocks",
        int,
        "largest read-ahead window, in blocks (default 8)",
    ),
    "fs.upload.concurrency": (
        "upload_concurrency",
        int,
        "concurrent block uploads per daemon (default 8)",
    ),
    "fs.download.concurrency": (
        "download_concurrency",
        int,
        "concurrent block downloads per daemon (default 16)",
    ),
    "fs.flush.delay_ms": (
        "flush_delay_ms",
        int,
        "longest delay between close and commit, ms (default 200)",
    ),
    "fs.sync.timeout": (
        "sync_timeout",
        float,
        "seconds sync_all() waits for closed files to be committed (default 60)",
    ),
    "fs.direct_writes": (
        "direct_writes",
        _flag,
        "large aligned staging and cache writes skip the page cache: true or false (default true)",
    ),
    "fs.statahead": (
        "statahead",
        _flag,
        "a second stat missing the cache in one directory lists it (up to 256 entries) and "
        "answers its next stats from the listing: true or false (default true)",
    ),
    "hub.timeout": ("hub_timeout", float, "seconds before a hub request is abandoned (default 60)"),
    "hub.retries": ("hub_retries", int, "retries of a failed idempotent hub request (default 4)"),
}


@attrs.frozen
class DaemonConfig:
    """Validated daemon settings.

    ``hub_url`` is the hub as the user gave it: one URL, or several separated by commas
    (hubs sharing one metadata store); ``hub_urls`` is that list, parsed; ``hubs`` is
    the daemon's :class:`~lucidlink.aio.transport.HubRing` over it, which remembers which
    hub is current for every connection of the daemon.
    """

    hub_url: str
    hub_urls: tuple[str, ...] = attrs.field()
    cache_mb: int = 1024
    readahead_max_blocks: int = 8
    upload_concurrency: int = 8
    download_concurrency: int = 16
    flush_delay_ms: int = 200
    sync_timeout: float = 60.0
    hub_timeout: float = 60.0
    hub_retries: int = 4
    direct_writes: bool = True
    statahead: bool = True
    hubs: HubRing = attrs.field(init=False, eq=False, repr=False)

    @hub_urls.default
    def _default_hub_urls(self) -> tuple[str, ...]:
        return parse_hub_urls(self.hub_url)

    @hubs.default
    def _ring(self) -> HubRing:
        return HubRing(self.hub_urls)

    @classmethod
    def build(cls, hub_url: str | None, config: Mapping[str, Any] | None) -> DaemonConfig:
        """Resolve the hub URL (argument, ``LUCIDLINK_HUB_URL``, default) and parse ``config``.

        The hub URL may list several hubs, separated by commas; a bad entry is refused
        with a :class:`~lucidlink.exceptions.ConfigurationError` naming it.
        """
        url = hub_url or os.environ.get(HUB_URL_ENV) or DEFAULT_HUB_URL
        urls = parse_hub_urls(url)
        values: dict[str, Any] = {}
        for key, raw in (config or {}).items():
            if key not in _KEYS:
                known = ", ".join(f"{k} ({d})" for k, (_, _, d) in _KEYS.items())
                raise ConfigurationError(f"unknown daemon setting {key!r}; known settings: {known}")
            attr, conv, desc = _KEYS[key]
            try:
                value = conv(raw)
            except (TypeError, ValueError):
                raise ConfigurationError(
                    f"setting {key}={raw!r} is invalid: expected {desc}"
                ) from None
            if not isinstance(value, bool) and value <= 0:
                raise ConfigurationError(f"setting {key}={raw!r} must be positive: {desc}")
            values[attr] = value
        given = url.strip()
        return cls(hub_url=given.rstrip("/") if len(urls) == 1 else given, hub_urls=urls, **values)


def parse_hub_urls(value: object) -> tuple[str, ...]:
    """The hubs of a ``hub_url`` value: one URL or several separated by commas, in order.

    Each must be an ``http://`` or ``https://`` URL with a host (a path prefix is kept,
    for a hub behind a proxy; a query or fragment is refused); trailing slashes are
    dropped and repeats ignored. Raises :class:`~lucidlink.exceptions.ConfigurationError`
    naming the first bad entry.
    """
    if not isinstance(value, str):
        raise ConfigurationError(
            f"hub_url {value!r} must be a string: an http:// or https:// URL, "
            "or several separated by commas",
            field="hub_url",
        )
    entries = value.split(",")
    urls: list[str] = []
    for index, raw in enumerate(entries, 1):
        entry = raw.strip()
        where = f"entry {index} of hub_url {value!r}" if len(entries) > 1 else f"hub_url {value!r}"
        if not entry:
            raise ConfigurationError(
                f"{where} is empty; separate hub URLs with single commas, "
                "e.g. 'http://hub-a:8470,http://hub-b:8470'",
                field="hub_url",
            )
        problem = _url_problem(entry)
        if problem:
            raise ConfigurationError(
                f"{where} ({entry!r}) {problem}; give an http:// or https:// URL "
                "such as 'http://hub-a:8470'",
                field="hub_url",
            )
        url = entry.rstrip("/")
        if url not in urls:
            urls.append(url)
    return tuple(urls)


def _url_problem(entry: str) -> str | None:
    """Why ``entry`` is not a usable hub URL, or ``None``."""
    if not entry.startswith(("http://", "https://")):
        return "must start with http:// or https://"
    try:
        url = yarl.URL(entry)
        url.port  # noqa: B018 - an out-of-range port raises here
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if not url.host or any(c.isspace() for c in entry):
        return "has no valid host name"
    if url.query_string or url.fragment:
        return "must not carry a query or fragment"
    return None
