"""The SDK's public value objects: frozen attrs classes with a readable ``str``."""

from __future__ import annotations

import enum
from typing import Any

import attrs

from lucidlink.tokens import parse_token


class SyncMode(str, enum.Enum):
    """When a linked filespace pushes and pulls changes on its own."""

    SYNC_ALL = "all"
    """``unlink()`` and leaving ``with`` call ``sync_all()`` first (the default)."""
    SYNC_NONE = "none"
    """Nothing is forced; the background flusher still commits closed files."""

    def __str__(self) -> str:
        return self.value


class LockType(str, enum.Enum):
    """Whole-file lock taken by ``open(..., lock_type=...)``."""

    NONE = ""
    SHARED = "shared"
    EXCLUSIVE = "exclusive"

    def __str__(self) -> str:
        return self.value


@attrs.frozen(repr=False)
class ServiceAccountCredentials:
    """A service-account token, ``sa_live:<key-id>:<secret>``.

    Raises ``ValueError`` when the token is malformed. The repr never shows the secret.
    """

    token: str = attrs.field()

    @token.validator
    def _check(self, attribute: Any, value: str) -> None:
        parse_token(value)

    @property
    def key_id(self) -> str:
        """The public part of the token."""
        return parse_token(self.token).key_id

    def __repr__(self) -> str:
        return f"ServiceAccountCredentials(key_id={self.key_id!r}, secret='***')"

    __str__ = __repr__


def _ns_str(ns: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc).isoformat(timespec="seconds")


@attrs.frozen
class DirEntry:
    """One entry of a directory listing (times in nanoseconds since the epoch)."""

    name: str
    size: int
    type: str
    """``"file"``, ``"dir"``, ``"link"`` or ``"unknown"``."""
    file_id: int
    file_id_external: str
    """For a Connect file, ``<data-store>:<object-id>``; empty otherwise."""
    ctime: int
    mtime: int
    path: str = ""

    def is_file(self) -> bool:
        """Whether this is a regular (or Connect) file."""
        return self.type == "file"

    def is_dir(self) -> bool:
        """Whether this is a directory."""
        return self.type == "dir"

    def is_link(self) -> bool:
        """Whether this is a symbolic link (filespaces have none yet)."""
        return self.type == "link"

    def __str__(self) -> str:
        return f"{self.type:4} {self.size:>12}  {_ns_str(self.mtime)}  {self.path or self.name}"


@attrs.frozen
class FilespaceInfo:
    """A filespace of the workspace."""

    id: str
    name: str
    created: int
    """Creation time, nanoseconds since the epoch."""
    block_size: int = 0

    def __str__(self) -> str:
        return f"{self.name} ({self.id}, created {_ns_str(self.created)})"


@attrs.frozen
class FilespaceSize:
    """Sizes of a filespace, in bytes (``entries`` is a count)."""

    entries: int
    data: int
    storage: int
    external_files_size: int
    external_files_count: int

    def __str__(self) -> str:
        return (f"{self.entries} entries, {self.data} bytes of data, {self.storage} bytes stored, "
                f"{self.external_files_count} external files ({self.external_files_size} bytes)")


@attrs.frozen
class FilespaceStatistics:
    """Counts and sizes of a filespace."""

    file_count: int
    directory_count: int
    symlink_count: int
    entries_size: int
    data_size: int
    storage_size: int
    external_files_size: int
    external_files_count: int

    def __str__(self) -> str:
        return (f"{self.file_count} files, {self.directory_count} directories, {self.data_size} bytes "
                f"of data ({self.storage_size} stored), {self.external_files_count} external files")


@attrs.frozen
class LockInfo:
    """A lock held on, or requested for, a path (see ``fs.get_locks``)."""

    path: str
    mode: str
    """``"shared"`` or ``"exclusive"``."""
    state: str
    """``"held"`` or ``"waiting"``."""
    session_id: str
    client: str
    since: int
    expires: int
    token: int
    """The fencing token of the grant."""

    def __str__(self) -> str:
        return f"{self.mode} lock on {self.path} {self.state} by {self.client or self.session_id}"
