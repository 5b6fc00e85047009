"""Where an fsspec path points, and what fsspec's ``info`` says about it.

``lucidlink://<workspace>/<filespace>/<path>``: the first part names the workspace,
the second a filespace of it, the rest a path inside that filespace. Workspaces and
filespaces list as directories; only the hub creates or removes them.
"""

from __future__ import annotations

import datetime
from typing import Any

import attrs
from fsspec.utils import stringify_path  # type: ignore[import-untyped]

from lucidlink.exceptions import AccessDeniedError, IsADirectoryFilespaceError
from lucidlink.types import DirEntry

PROTOCOL = "lucidlink"


class WorkspaceMismatchError(AccessDeniedError):
    """A URL names a workspace other than the token's."""

    code = "workspace_mismatch"


def strip_protocol(path: Any) -> str:
    """The fsspec name of ``path``: no protocol, no leading or trailing ``/``."""
    path = stringify_path(path)
    for prefix in (f"{PROTOCOL}://", f"{PROTOCOL}::"):
        if path.startswith(prefix):
            path = path[len(prefix) :]
            break
    return str(path).strip("/")


@attrs.frozen
class Location:
    """A stripped path split into workspace, filespace and the path inside it."""

    workspace: str = ""
    filespace: str = ""
    inner: str = ""
    """Canonical ``/``-rooted path in the filespace; ``""`` above filespaces."""

    @property
    def depth(self) -> int:
        """0: above workspaces, 1: a workspace, 2: a filespace's root, 3: inside one."""
        if not self.workspace:
            return 0
        if not self.filespace:
            return 1
        return 2 if self.inner == "/" else 3

    def name(self, inner: str | None = None) -> str:
        """The fsspec name (no protocol) of ``inner`` (default: this location)."""
        inner = self.inner if inner is None else inner
        if not self.workspace:
            return ""
        if not self.filespace:
            return self.workspace
        return f"{self.workspace}/{self.filespace}{'' if inner == '/' else inner}"

    def shown(self) -> str:
        """The name for messages (``lucidlink://`` for the top)."""
        return self.name() or PROTOCOL + "://"


def not_here(loc: Location, what: str) -> AccessDeniedError:
    """The error for changing a workspace or filespace, which only the hub manages."""
    level = "filespace" if loc.depth == 2 else "workspace"
    return AccessDeniedError(
        f"cannot {what} {loc.shown()}: a {level} is managed on the hub "
        f"('lucidlink hub {level} ...'), not through fsspec",
        path=loc.name(),
    )


def not_a_file(loc: Location, what: str) -> IsADirectoryFilespaceError:
    """The error for using a workspace or a filespace root as a file."""
    return IsADirectoryFilespaceError(
        f"{loc.shown()} is a directory (a workspace or filespace root); cannot {what} it",
        path=loc.name(),
    )


def entry_info(name: str, entry: DirEntry) -> dict[str, Any]:
    """fsspec's ``info`` of a file, directory or symbolic link entry.

    A link is not followed: type ``"link"``, ``islink`` true, ``destination`` its target
    (as fsspec's local file system names it) and ``size`` the target text's length.
    """
    kind = "file" if entry.is_file() else ("directory" if entry.is_dir() else "other")
    if entry.is_link():
        kind = "link"
    info: dict[str, Any] = {
        "name": name,
        "size": entry.size if kind in ("file", "link") else 0,
        "type": kind,
        "mtime": entry.mtime / 1e9,
        "ctime": entry.ctime / 1e9,
        "file_id": entry.file_id,
        "islink": kind == "link",
    }
    if entry.is_link():
        info["destination"] = entry.target
    if entry.file_id_external:
        info["external"] = entry.file_id_external
    return info


def dir_info(name: str, **extra: Any) -> dict[str, Any]:
    """fsspec's ``info`` of a directory (a workspace or a filespace at the top levels)."""
    return {"name": name, "size": 0, "type": "directory", **extra}


def byte_limits(start: int | None, end: int | None, size: int) -> tuple[int, int]:
    """fsspec byte-range semantics: ``None`` is an open end, negatives count from the end."""
    lo = 0 if start is None else (max(0, size + start) if start < 0 else min(start, size))
    hi = size if end is None else (max(0, size + end) if end < 0 else min(end, size))
    return lo, max(lo, hi)


def utc(seconds: float) -> datetime.datetime:
    """A POSIX time as an aware UTC datetime."""
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
