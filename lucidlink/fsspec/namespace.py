"""The namespace half of the file system: paths, listings, ``info``, mkdir and rm.

:class:`NamespaceFileSystem` holds what only reads or reshapes the tree of
workspace, filespaces, directories and files; :class:`~lucidlink.fsspec.LucidLinkFileSystem`
adds file contents, copies and moves, file objects and the instance's lifetime.

Listing cache: fsspec's ``dircache`` (``use_listings_cache``, ``listings_expiry_time``,
``max_paths``) holds listings; every mutating call of the instance, a written file's
close included, invalidates the path, everything under it and every parent, and a
listing that raced with a mutation is not stored. Changes made by other clients are
seen after ``refresh=True``, ``invalidate_cache()`` or expiry.
"""

from __future__ import annotations

import asyncio
import datetime
import posixpath
from collections.abc import Awaitable, Callable
from glob import has_magic
from typing import Any, TypeVar

from fsspec.asyn import AsyncFileSystem, sync_wrapper  # type: ignore[import-untyped]

from lucidlink._log import get_logger
from lucidlink.aio.filespace import AsyncFilespace
from lucidlink.exceptions import PathExistsError, PathNotFoundError
from lucidlink.fsspec.connection import Connection
from lucidlink.fsspec.paths import (
    PROTOCOL,
    Location,
    dir_info,
    entry_info,
    not_here,
    strip_protocol,
    utc,
)

log = get_logger("lucidlink")

T = TypeVar("T")


class NamespaceFileSystem(AsyncFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """Listings, ``info``, directories and deletion over a :class:`Connection`."""

    protocol = PROTOCOL
    root_marker = ""

    _conn: Connection
    auto_mkdir: bool
    _generation: int
    """Bumped by every invalidation: a listing fetched across one is not cached."""

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        return strip_protocol(path)

    async def _with_parent(
        self, filespace: AsyncFilespace, loc: Location, op: Callable[[], Awaitable[T]]
    ) -> T:
        """Run a creating ``op``; with ``auto_mkdir``, create a missing parent and retry once.

        The retry also covers a parent that a concurrent call (``cp -r`` fans out) created
        meanwhile; when it is the source that is missing, the retry raises again.
        """
        try:
            return await op()
        except FileNotFoundError:
            parent = posixpath.dirname(loc.inner)
            if not self.auto_mkdir or parent == "/":
                raise
        if not await filespace.fs.dir_exists(parent):
            await filespace.fs.create_dir(parent)
            self.invalidate_cache(loc.name(parent))
        return await op()

    # -- cache -----------------------------------------------------------------------------

    def invalidate_cache(self, path: str | None = None) -> None:
        """Forget cached listings of ``path``, everything under it and its parents (all if None)."""
        self._generation += 1
        if path is None:
            self.dircache.clear()
        else:
            name = self._strip_protocol(path)
            for key in list(self.dircache):
                if (
                    key == name
                    or key.startswith(name + "/")
                    or key == ""
                    or name.startswith(key + "/")
                ):
                    self.dircache.pop(key, None)
        super().invalidate_cache(path)

    # -- reading the namespace -----------------------------------------------------------

    async def _ls(
        self, path: str, detail: bool = True, refresh: bool = False, **kwargs: Any
    ) -> list[dict[str, Any]] | list[str]:
        name = self._strip_protocol(path)
        listing: list[dict[str, Any]] | None = None
        if not refresh:
            try:
                listing = self.dircache[name]
            except KeyError:
                pass
        if listing is None:
            generation = self._generation
            listing, is_dir = await self._list(name)
            # A listing that raced with one of our own changes may predate it: not cached.
            if is_dir and generation == self._generation:
                self.dircache[name] = listing
        if detail:
            return [dict(info) for info in listing]
        return [info["name"] for info in listing]

    async def _list(self, path: str) -> tuple[list[dict[str, Any]], bool]:
        loc = await self._conn.location(path)
        if loc.depth == 0:
            workspace = await self._conn.workspace()
            return [dir_info(workspace.name)], True
        if loc.depth == 1:
            workspace = await self._conn.workspace()
            return [
                dir_info(
                    f"{loc.workspace}/{f.name}", created=f.created / 1e9, block_size=f.block_size
                )
                for f in await workspace.list_filespaces()
            ], True
        filespace = await self._conn.filespace_at(loc)
        try:
            entries = await filespace.fs.read_dir(loc.inner)
        except NotADirectoryError:  # fsspec: ls of a file lists the file
            return [entry_info(loc.name(), await filespace.fs.get_entry(loc.inner))], False
        base = "" if loc.inner == "/" else loc.inner
        return [entry_info(loc.name(f"{base}/{e.name}"), e) for e in entries], True

    async def _info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        loc = await self._conn.location(path)
        if loc.depth <= 1:
            return dir_info(loc.name())
        name = loc.name()
        cached = None if kwargs.get("refresh") else self._cached_entry(name)
        if cached is not None:
            return cached
        filespace = await self._conn.current(loc)
        try:
            entry = await filespace.fs.get_entry(loc.inner)
        except NotADirectoryError as err:  # a file stands where a parent should be
            raise PathNotFoundError(f"{name} does not exist: {err}", path=name) from None
        info = entry_info(name, entry)
        if loc.depth == 2:
            info["block_size"] = filespace.block_size
        return info

    async def _islink(self, path: str) -> bool:
        """Whether ``path`` is a symbolic link (``info`` does not follow links)."""
        try:
            return bool((await self._info(path)).get("islink"))
        except FileNotFoundError:
            return False

    async def _lexists(self, path: str) -> bool:
        """Whether anything is at ``path``, a dangling symbolic link included."""
        try:
            await self._info(path)
        except FileNotFoundError:
            return False
        return True

    async def _exists(self, path: str, **kwargs: Any) -> bool:
        """Whether ``path`` exists, symbolic links followed (a dangling one: ``False``)."""
        try:
            info = await self._info(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        if not info.get("islink"):
            return True
        loc = await self._conn.location(path)
        filespace = await self._conn.filespace_at(loc)
        return await filespace.fs.file_exists(loc.inner) or await filespace.fs.dir_exists(loc.inner)

    islink = sync_wrapper(_islink)
    lexists = sync_wrapper(_lexists)

    def _cached_entry(self, name: str) -> dict[str, Any] | None:
        """``name``'s entry in its parent's cached listing; ``FileNotFoundError`` if not in it."""
        try:
            listing = self.dircache[self._parent(name)]
        except KeyError:
            return None
        for info in listing:
            if info["name"] == name:
                return dict(info)
        raise PathNotFoundError(
            f"{name} does not exist (listing of {self._parent(name)})", path=name
        )

    async def _modified(self, path: str) -> datetime.datetime:
        """The last modification time (UTC)."""
        info = await self._info(path)
        if "mtime" not in info:
            raise NotImplementedError(
                f"{info['name'] or PROTOCOL + '://'} is a workspace; it has no times"
            )
        return utc(info["mtime"])

    async def _created(self, path: str) -> datetime.datetime:
        """The creation time (UTC); the hub's ``ctime``, which a rename also sets."""
        info = await self._info(path)
        if "ctime" not in info:
            raise NotImplementedError(
                f"{info['name'] or PROTOCOL + '://'} is a workspace; it has no times"
            )
        return utc(info["ctime"])

    async def _du(
        self,
        path: str,
        total: bool = True,
        maxdepth: int | None = None,
        withdirs: bool = False,
        **kwargs: Any,
    ) -> int | dict[str, int]:
        found = await self._find(path, maxdepth=maxdepth, withdirs=withdirs, detail=True, **kwargs)
        sizes: dict[str, int] = {}
        for name, info in found.items():
            info = info or await self._info(name)  # _find gives {} for a lone file
            sizes[name] = int(info.get("size") or 0)
        return sum(sizes.values()) if total else sizes

    # -- directories -----------------------------------------------------------------------

    async def _mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        loc = await self._conn.location(path)
        if loc.depth <= 2:
            await self._check_top(loc, exist_ok=False)
            return
        filespace = await self._conn.filespace_at(loc)
        try:
            # fsspec's mkdir is not os.makedirs: an existing directory is an error.
            await filespace.fs.create_dir(loc.inner, parents=create_parents, exist_ok=False)
        finally:
            self.invalidate_cache(loc.name())

    async def _makedirs(self, path: str, exist_ok: bool = False) -> None:
        loc = await self._conn.location(path)
        if loc.depth <= 2:
            await self._check_top(loc, exist_ok=exist_ok)
            return
        filespace = await self._conn.filespace_at(loc)
        try:
            await filespace.fs.create_dir(loc.inner, exist_ok=exist_ok)
        finally:
            self.invalidate_cache(loc.name())

    async def _check_top(self, loc: Location, *, exist_ok: bool) -> None:
        """mkdir of a workspace or filespace: they exist, or only the hub can make them."""
        if loc.depth == 2:
            try:
                await self._conn.filespace_at(loc)
            except FileNotFoundError:
                raise not_here(loc, "create") from None
        if not exist_ok:
            raise PathExistsError(f"{loc.shown()} already exists", path=loc.name())

    async def _rmdir(self, path: str) -> None:
        """Remove an empty directory."""
        loc = await self._conn.location(path)
        if loc.depth <= 2:
            raise not_here(loc, "remove")
        filespace = await self._conn.filespace_at(loc)
        try:
            await filespace.fs.delete_dir(loc.inner, recursive=False)
        finally:
            self.invalidate_cache(loc.name())

    # -- deleting --------------------------------------------------------------------------

    async def _rm_file(self, path: str, **kwargs: Any) -> None:
        filespace, loc = await self._conn.target(path, "delete")
        try:
            await filespace.fs.delete(loc.inner)
        finally:
            self.invalidate_cache(loc.name())

    async def _rm_one(self, path: str, recursive: bool) -> None:
        loc = await self._conn.location(path)
        if loc.depth <= 2:
            raise not_here(loc, "delete")
        filespace = await self._conn.filespace_at(loc)
        try:
            try:
                await filespace.fs.delete(loc.inner)
            except IsADirectoryError:
                # A whole tree in one hub call; without recursive only an empty directory.
                await filespace.fs.delete_dir(loc.inner, recursive=recursive)
        finally:
            self.invalidate_cache(loc.name())

    async def _rm(
        self,
        path: str | list[str],
        recursive: bool = False,
        maxdepth: int | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Delete files, and directories (recursively: one hub call per directory tree)."""
        if maxdepth is not None:
            # Only what lies within maxdepth: files, then directories left empty, deepest first.
            expanded = await self._expand_path(path, recursive=recursive, maxdepth=maxdepth)
            infos = [await self._info(p) for p in expanded]
            for info in sorted(
                infos, key=lambda i: (i["type"] == "directory", -i["name"].count("/"))
            ):
                try:
                    await self._rm_one(info["name"], recursive=False)
                except OSError as exc:
                    if info["type"] != "directory":
                        raise
                    log.debug("lucidlink.fsspec.rm_kept_dir", path=info["name"], error=str(exc))
            return
        targets: list[str] = []
        for p in [path] if isinstance(path, str) else list(path):
            if has_magic(self._strip_protocol(p)):
                targets.extend(await self._glob(p))
            else:
                targets.append(self._strip_protocol(p))
        if not targets:
            raise PathNotFoundError(f"nothing matches {path}", path=str(path))
        targets = sorted(set(targets))
        if recursive:  # a directory's removal removes what is under it
            targets = [
                t for t in targets if not any(t.startswith(o + "/") for o in targets if o != t)
            ]
        await asyncio.gather(*(self._rm_one(t, recursive) for t in targets))

    # Blocking twins of coroutines fsspec does not mirror on its own.
    rmdir = sync_wrapper(_rmdir)
    modified = sync_wrapper(_modified)
    created = sync_wrapper(_created)
