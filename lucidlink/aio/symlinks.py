"""Symbolic links on the client: creating, reading and following them.

The hub resolves links (``GET .../entry?follow=true``: every link on the way, in one read
transaction, at most 40; see ``docs/architecture.md``). The client asks it only when an
answer says a link is in the way: ``open`` reads ``/file`` as before, and follows when
the entry it gets is a link or a parent turns out not to be a directory. So reading a
plain file costs no extra round trip.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lucidlink.exceptions import (
    InvalidPathError,
    NotADirectoryFilespaceError,
    NotASymlinkError,
    PathNotFoundError,
    TooManyLinksError,
)
from lucidlink.paths import normalize_path

if TYPE_CHECKING:
    from lucidlink.aio.link import FilespaceLink

MAX_FOLLOWS = 40
"""Re-opens after a link before giving up (the hub resolves a chain in one answer; only
links changed between two calls need more than one)."""


class FollowLink(Exception):
    """Raised inside ``open`` when the path is a link: re-open at ``path`` (its resolution)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


async def create(link: FilespaceLink, target_path: str, link_path: str) -> dict[str, Any]:
    """Create the link ``link_path`` pointing to ``target_path``; returns the hub's entry."""
    if not isinstance(target_path, str):
        raise InvalidPathError(f"a link target must be a string, not {type(target_path).__name__}")
    path = normalize_path(link_path)
    link.require_writable(f"create the link {path}")
    await link.before(path, "exact")
    body = await link.call("POST", "/symlink", json={"path": path, "target": target_path})
    return dict(body)


async def read(link: FilespaceLink, link_path: str) -> str:
    """The target text of the link ``link_path`` (not followed)."""
    path = normalize_path(link_path)
    await link.before(path, "exact")
    entry = await link.call("GET", "/entry", params={"path": path})
    if entry["type"] != "link":
        kind = "directory" if entry["type"] == "dir" else "file"
        raise NotASymlinkError(f"{path} is a {kind}, not a symbolic link", path=path)
    return str(entry["target"])


async def resolve(link: FilespaceLink, path: str) -> dict[str, Any]:
    """The entry ``path`` leads to once every link on the way is followed (its ``path``
    is the canonical one); ``FileNotFoundError`` for a dangling link, ``TooManyLinksError``
    (``ELOOP``) for a loop."""
    path = normalize_path(path)
    await link.before(path, "exact")
    params = {"path": path, "follow": "true"}
    try:
        return dict(await link.call("GET", "/entry", params=params))
    except PathNotFoundError:
        if not link.writeback.pending_paths:
            raise
    # Read-your-writes: the target may be a file this daemon wrote and has not committed.
    await link.before("/", "all")
    return dict(await link.call("GET", "/entry", params=params))


async def resolve_or_none(link: FilespaceLink, path: str) -> dict[str, Any] | None:
    """:func:`resolve`, or ``None`` when nothing is there (missing, dangling, a loop), as
    ``os.path.exists`` answers."""
    try:
        return await resolve(link, path)
    except (PathNotFoundError, NotADirectoryFilespaceError, TooManyLinksError):
        return None


async def followed(
    link: FilespaceLink, path: str, err: BaseException | None = None
) -> FollowLink:
    """The :class:`FollowLink` to raise for ``path`` (a link, or under one); re-raises ``err``
    (what the plain lookup said) when no link is in the way."""
    entry = await resolve(link, path)
    if entry["path"] == path and err is not None:
        raise err
    # The same path when it stopped being a link meanwhile: open it again (bounded by MAX_FOLLOWS).
    return FollowLink(entry["path"])


def too_many(path: str) -> TooManyLinksError:
    """The error for an ``open`` that re-opened after links :data:`MAX_FOLLOWS` times."""
    return TooManyLinksError(
        f"opening {path} followed more than {MAX_FOLLOWS} symbolic links; fix the links", path=path
    )
