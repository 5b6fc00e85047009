"""Local paths and filespace paths behind one small interface, so commands are written once.

Writes are atomic on both sides: bytes go to a hidden temporary name next to the
target (``.NAME.lucidlink-part-XXXXXXXX``) that is renamed over the target only when
complete, and removed when the copy fails or is interrupted. The SDK has no way to
abandon a file open for writing, so an abandoned filespace temporary is truncated to
zero bytes before it is closed (nothing but an empty commit reaches the hub) and then
deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from typing import BinaryIO, Protocol, cast

import attrs
import click

import lucidlink
from lucidlink.commands.urls import RemoteURL
from lucidlink.exceptions import NotADirectoryFilespaceError, PathExistsError, PathNotFoundError

PART_MARK = ".lucidlink-part-"
"""What the temporary name of a file being written contains."""


@attrs.frozen
class Entry:
    """A file or directory as the commands see it (times in nanoseconds)."""

    name: str
    is_dir: bool
    size: int
    mtime_ns: int
    is_link: bool = False
    """A filespace's symbolic link (recursive copies skip it: :func:`walk`)."""


class Place(Protocol):
    """A path on one side (local or in a filespace)."""

    @property
    def name(self) -> str:
        """The last component."""

    def child(self, name: str) -> Place:
        """The place ``name`` inside this directory."""

    def parent(self) -> Place:
        """The directory holding this place."""

    def stat(self) -> Entry | None:
        """What is here, or ``None``."""

    def children(self) -> list[Entry]:
        """The entries of this directory, by name."""

    def mkdir(self, parents: bool = False) -> None:
        """Create this directory (``parents``: and missing parents; no error if it exists)."""

    def remove(self, recursive: bool = False) -> None:
        """Delete this file, or this directory (with ``recursive``, and what is in it)."""

    def open_read(self) -> BinaryIO:
        """This file's bytes."""

    def atomic_write(
        self, mtime_ns: int | None = None
    ) -> contextlib.AbstractContextManager[BinaryIO]:
        """A writer whose bytes appear here, all at once, only when the block ends cleanly."""


def _part_name(name: str) -> str:
    return f".{name}{PART_MARK}{secrets.token_hex(4)}"


@attrs.frozen
class LocalPlace:
    """A path on this machine."""

    path: str

    def __str__(self) -> str:
        return self.path

    @property
    def name(self) -> str:
        """The last component."""
        return os.path.basename(os.path.normpath(self.path))

    def child(self, name: str) -> LocalPlace:
        """The place ``name`` inside this directory."""
        return LocalPlace(os.path.join(self.path, name))

    def parent(self) -> LocalPlace:
        """The directory holding this place."""
        return LocalPlace(os.path.dirname(os.path.abspath(self.path)))

    def stat(self) -> Entry | None:
        """What is here, or ``None``."""
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        is_dir = os.path.isdir(self.path)
        return Entry(self.name, is_dir, 0 if is_dir else st.st_size, st.st_mtime_ns)

    def children(self) -> list[Entry]:
        """The entries of this directory, by name."""
        out = []
        with os.scandir(self.path) as it:
            for d in it:
                st = d.stat()
                is_dir = d.is_dir()
                out.append(Entry(d.name, is_dir, 0 if is_dir else st.st_size, st.st_mtime_ns))
        return sorted(out, key=lambda e: e.name)

    def mkdir(self, parents: bool = False) -> None:
        """Create this directory."""
        if parents:
            os.makedirs(self.path, exist_ok=True)
        else:
            os.mkdir(self.path)

    def remove(self, recursive: bool = False) -> None:
        """Delete this file or directory."""
        if os.path.isdir(self.path) and not os.path.islink(self.path):
            if recursive:
                shutil.rmtree(self.path)
            else:
                os.rmdir(self.path)
        else:
            os.unlink(self.path)

    def open_read(self) -> BinaryIO:
        """This file's bytes."""
        return open(self.path, "rb")

    @contextlib.contextmanager
    def atomic_write(self, mtime_ns: int | None = None) -> Iterator[BinaryIO]:
        """Write to a hidden temporary next to the target; rename it over the target at the end."""
        tmp = self.parent().child(_part_name(self.name)).path
        try:
            with open(tmp, "xb") as f:
                yield f
            if mtime_ns is not None:
                os.utime(tmp, ns=(mtime_ns, mtime_ns))
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


@attrs.frozen(eq=False)
class RemotePlace:
    """A path in a linked filespace."""

    url: RemoteURL
    fs: lucidlink.Filesystem

    def __str__(self) -> str:
        return str(self.url)

    @property
    def name(self) -> str:
        """The last component."""
        return self.url.name

    def child(self, name: str) -> RemotePlace:
        """The place ``name`` inside this directory."""
        return RemotePlace(self.url.child(name), self.fs)

    def parent(self) -> RemotePlace:
        """The directory holding this place."""
        return RemotePlace(self.url.parent(), self.fs)

    def stat(self) -> Entry | None:
        """What is here, or ``None``."""
        try:
            e = self.fs.get_entry(self.url.path)
        except (PathNotFoundError, NotADirectoryFilespaceError):
            return None
        return Entry(self.name, e.is_dir(), e.size, e.mtime, e.is_link())

    def children(self) -> list[Entry]:
        """The entries of this directory, by name."""
        return sorted(
            (
                Entry(e.name, e.is_dir(), e.size, e.mtime, e.is_link())
                for e in self.fs.read_dir(self.url.path)
            ),
            key=lambda e: e.name,
        )

    def mkdir(self, parents: bool = False) -> None:
        """Create this directory (the SDK always creates parents; checked here without)."""
        if not parents:
            parent = self.parent().stat()
            if parent is None or not parent.is_dir:
                raise PathNotFoundError(
                    f"{self.url.parent()}: no such directory; pass -p to create missing parents",
                    path=self.url.parent().path,
                )
            if self.stat() is not None:
                raise PathExistsError(
                    f"{self.url} already exists; pass -p to accept an existing directory",
                    path=self.url.path,
                )
        self.fs.create_dir(self.url.path)

    def remove(self, recursive: bool = False) -> None:
        """Delete this file or directory."""
        entry = self.stat()
        if entry is not None and entry.is_dir:
            self.fs.delete_dir(self.url.path, recursive=recursive)
        else:
            self.fs.delete(self.url.path)

    def open_read(self) -> BinaryIO:
        """This file's bytes."""
        return cast(BinaryIO, self.fs.open(self.url.path, "rb"))

    @contextlib.contextmanager
    def atomic_write(self, mtime_ns: int | None = None) -> Iterator[BinaryIO]:
        """Write to a hidden temporary next to the target; move it over the target at the end.

        ``mtime_ns`` is ignored: the SDK cannot set a file's modification time.
        """
        tmp = self.url.parent().child(_part_name(self.name)).path
        f = cast(BinaryIO, self.fs.open(tmp, "wb"))
        try:
            yield f
        except BaseException:
            with contextlib.suppress(Exception):
                f.truncate(0)
                f.close()
            with contextlib.suppress(Exception):
                self.fs.delete(tmp)
            raise
        try:
            f.close()
            self.fs.move(tmp, self.url.path, overwrite=True)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.delete(tmp)
            raise


def same_filespace(a: Place, b: Place) -> bool:
    """Whether both places are in one filespace (so a copy needs no bytes moved)."""
    return (
        isinstance(a, RemotePlace)
        and isinstance(b, RemotePlace)
        and (a.url.workspace, a.url.filespace) == (b.url.workspace, b.url.filespace)
    )


def sha256(place: Place, chunk: int = 4 << 20) -> str:
    """The SHA-256 of a file's bytes (read through; the SDK exposes no stored hash)."""
    digest = hashlib.sha256()
    with place.open_read() as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def walk(
    place: Place, prefix: str = "", *, hide_parts: bool = True, links: str = "keep"
) -> dict[str, Entry]:
    """Everything under a directory, by ``/``-separated relative path (parents first).

    ``hide_parts`` leaves out the temporaries of copies in progress. A filespace's
    symbolic links are listed (``links="keep"``), or left out for copies: ``"warn"`` says
    so on stderr, ``"skip"`` silently. Copies do not follow links (a link to a directory
    could loop) and a local directory cannot hold a filespace's link.
    """
    out: dict[str, Entry] = {}
    for entry in place.children():
        if hide_parts and PART_MARK in entry.name:
            continue
        if entry.is_link and links != "keep":
            if links == "warn":
                click.echo(
                    f"lucidlink: warning: skipped {place.child(entry.name)}: a symbolic link "
                    "(name its target to copy what it points to)",
                    err=True,
                )
            continue
        rel = f"{prefix}{entry.name}"
        out[rel] = entry
        if entry.is_dir:
            out.update(walk(place.child(entry.name), rel + "/", hide_parts=hide_parts, links=links))
    return out


def resolve_rel(place: Place, rel: str) -> Place:
    """The place at relative path ``rel`` (``/``-separated) under ``place``."""
    for part in rel.split("/"):
        place = place.child(part)
    return place
