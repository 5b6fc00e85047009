"""Daemon settings: ``create_daemon(config={...})`` keys, parsed and validated up front."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs

from lucidlink.exceptions import ConfigurationError
from lucidlink.shared import DEFAULT_HUB_URL

HUB_URL_ENV = "LUCIDLINK_HUB_URL"

# key -> (attribute, converter, description)
_KEYS: dict[str, tuple[str, type, str]] = {
    "fs.cache.size": ("cache_mb", int, "on-disk block cache size in MB (default 1024)"),
    "fs.readahead.max_blocks": ("readahead_max_blocks", int, "largest read-ahead window, in blocks (default 8)"),
    "fs.upload.concurrency": ("upload_concurrency", int, "concurrent block uploads per daemon (default 8)"),
    "fs.download.concurrency": ("download_concurrency", int, "concurrent block downloads per daemon (default 16)"),
    "fs.flush.delay_ms": ("flush_delay_ms", int, "longest delay between close and commit, ms (default 200)"),
    "fs.sync.timeout": ("sync_timeout", float,
                        "seconds sync_all() waits for closed files to be committed (default 60)"),
    "hub.timeout": ("hub_timeout", float, "seconds before a hub request is abandoned (default 60)"),
    "hub.retries": ("hub_retries", int, "retries of a failed idempotent hub request (default 4)"),
}


@attrs.frozen
class DaemonConfig:
    """Validated daemon settings."""

    hub_url: str
    cache_mb: int = 1024
    readahead_max_blocks: int = 8
    upload_concurrency: int = 8
    download_concurrency: int = 16
    flush_delay_ms: int = 200
    sync_timeout: float = 60.0
    hub_timeout: float = 60.0
    hub_retries: int = 4

    @classmethod
    def build(cls, hub_url: str | None, config: Mapping[str, Any] | None) -> DaemonConfig:
        """Resolve the hub URL (argument, ``LUCIDLINK_HUB_URL``, default) and parse ``config``."""
        url = hub_url or os.environ.get(HUB_URL_ENV) or DEFAULT_HUB_URL
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"hub_url {url!r} must be an http:// or https:// URL")
        values: dict[str, Any] = {}
        for key, raw in (config or {}).items():
            if key not in _KEYS:
                known = ", ".join(f"{k} ({d})" for k, (_, _, d) in _KEYS.items())
                raise ConfigurationError(f"unknown daemon setting {key!r}; known settings: {known}")
            attr, conv, desc = _KEYS[key]
            try:
                value = conv(raw)
            except (TypeError, ValueError):
                raise ConfigurationError(f"setting {key}={raw!r} is invalid: expected {desc}") from None
            if value <= 0:
                raise ConfigurationError(f"setting {key}={raw!r} must be positive: {desc}")
            values[attr] = value
        return cls(hub_url=url.rstrip("/"), **values)
