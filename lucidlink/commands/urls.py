"""What a command's path arguments name: a local path or ``lucidlink://WS/FS/PATH``."""

from __future__ import annotations

import attrs

from lucidlink.commands.errors import UsageProblem
from lucidlink.exceptions import InvalidPathError
from lucidlink.paths import normalize_path, parent_and_name

SCHEME = "lucidlink://"
"""The prefix of a filespace URL."""


@attrs.frozen
class RemoteURL:
    """A place in a filespace, or (with an empty ``filespace``) a workspace."""

    workspace: str
    filespace: str
    path: str = "/"
    trailing_slash: bool = False
    """Whether the URL ended in ``/`` (``cp a lucidlink://w/f/dir/`` means "into dir")."""

    def __str__(self) -> str:
        if not self.filespace:
            return f"{SCHEME}{self.workspace}"
        inner = "" if self.path == "/" else self.path
        return f"{SCHEME}{self.workspace}/{self.filespace}{inner}"

    @property
    def name(self) -> str:
        """The last path component (the filespace's name at its root)."""
        return parent_and_name(self.path)[1] or self.filespace

    def child(self, name: str) -> RemoteURL:
        """The URL of ``name`` inside this one."""
        return attrs.evolve(self, path=normalize_path(f"{self.path}/{name}"), trailing_slash=False)

    def parent(self) -> RemoteURL:
        """The URL of the directory holding this one."""
        return attrs.evolve(self, path=parent_and_name(self.path)[0], trailing_slash=False)


def is_remote(arg: str) -> bool:
    """Whether ``arg`` is a ``lucidlink://`` URL."""
    return arg.startswith(SCHEME)


def parse_remote(arg: str, *, need_filespace: bool = True) -> RemoteURL:
    """Parse ``lucidlink://WORKSPACE/FILESPACE/PATH``; :class:`UsageProblem` when malformed."""
    if not is_remote(arg):
        raise UsageProblem(
            f"{arg!r} is not a filespace URL; write {SCHEME}WORKSPACE/FILESPACE/PATH"
        )
    rest = arg[len(SCHEME) :]
    parts = [p for p in rest.split("/") if p]
    if not parts or (need_filespace and len(parts) < 2):
        raise UsageProblem(f"{arg!r} names no filespace; write {SCHEME}WORKSPACE/FILESPACE/PATH")
    try:
        path = normalize_path("/" + "/".join(parts[2:]))
    except InvalidPathError as exc:
        raise UsageProblem(f"{arg}: {exc}") from None
    return RemoteURL(parts[0], parts[1] if len(parts) > 1 else "", path, rest.endswith("/"))
