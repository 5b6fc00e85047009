"""Server-side copies: a file shares its blocks, a symbolic link is copied as a link.

One transaction function for the copy route, dispatching on what ``src`` is; kept apart
from :mod:`lucidlink.hub.core.files` and :mod:`lucidlink.hub.core.links` so that neither
imports the other.
"""

from __future__ import annotations

from typing import Any

from lucidlink.hub.core import files, links, tree
from lucidlink.hub.store.base import Tx


def copy(
    tx: Tx, filespace_id: str, src: str, dst: str, *, overwrite: bool, session_id: str | None
) -> dict[str, Any]:
    """Copy ``src`` to ``dst`` inside the filespace; answers the commit result of ``dst``.

    A link is copied as a link (the same target text, not followed: as ``cp -P``);
    anything else by :func:`lucidlink.hub.core.files.copy`.
    """
    node = tree.get(tx, filespace_id, src)
    if node["type"] == "link":
        return links.copy_link(
            tx, filespace_id, node, src, dst, overwrite=overwrite, session_id=session_id
        )
    return files.copy(tx, filespace_id, src, dst, overwrite=overwrite, session_id=session_id)
