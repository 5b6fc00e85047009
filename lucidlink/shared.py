"""What the SDK and the hub both use: the default address, file modes and ETag form.

One home for each, so the two sides cannot drift apart. Nothing here imports the rest
of the package.
"""

from __future__ import annotations

__all__ = ["BINARY_MODES", "DEFAULT_HOST", "DEFAULT_HUB_URL", "DEFAULT_PORT", "normalize_etag"]

DEFAULT_HOST = "127.0.0.1"
"""The hub's default listening address (loopback)."""
DEFAULT_PORT = 8470
"""The hub's documented default port."""
DEFAULT_HUB_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
"""Where the SDK looks for a hub when neither ``hub_url=`` nor ``LUCIDLINK_HUB_URL`` is given."""

BINARY_MODES: tuple[str, ...] = ("rb", "wb", "ab", "xb", "r+b", "w+b", "a+b", "x+b")
"""The binary ``open`` modes every file face accepts, in the order error messages list them."""


def normalize_etag(value: str | None) -> str | None:
    """An ETag without quotes or weak marker, lowercased (``None`` and ``""`` give ``None``)."""
    if value is None:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"').lower() or None
