"""What the SDK and the hub both use: the default address, file modes, ETag form and
the rows of a listing page.

One home for each, so the two sides cannot drift apart. Nothing here imports the rest
of the package.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["BINARY_MODES", "DEFAULT_HOST", "DEFAULT_HUB_URL", "DEFAULT_PORT", "LIST_ROW_COLUMNS",
           "entries_from_rows", "normalize_etag"]

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


LIST_ROW_COLUMNS: tuple[str, ...] = ("id", "name", "type", "size", "mtime", "ctime", "version")
"""The fields of each row of a listing page (``GET .../list?form=rows``), in order."""


def entries_from_rows(directory: str, rows: Iterable[Any],
                      extra: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The entry JSON of the children of ``directory`` from :data:`LIST_ROW_COLUMNS` rows,
    with what links and Connect files add (``extra``, by name) merged in: how the hub
    builds a listing's entries and how the SDK reads the rows form back."""
    prefix = "" if directory == "/" else directory
    out = [{"id": r[0], "path": f"{prefix}/{r[1]}", "name": r[1], "type": r[2], "size": r[3],
            "mtime": r[4], "ctime": r[5], "version": r[6]} for r in rows]
    for e in out if extra else ():
        e.update(extra.get(e["name"], ()))
    return out
