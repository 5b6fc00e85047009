"""The file system: file contents, copies and moves, file objects, the instance's lifetime.

Reading and reshaping the namespace is inherited from
:class:`~lucidlink.fsspec.namespace.NamespaceFileSystem`; the daemon, workspace and
filespaces come from a :class:`~lucidlink.fsspec.connection.Connection`.
"""

from __future__ import annotations

import asyncio
import io
import os
import posixpath
import uuid
import weakref
from collections.abc import Awaitable, Callable
from glob import has_magic
from types import TracebackType
from typing import Any

import anyio.to_thread
from fsspec.asyn import sync, sync_wrapper  # type: ignore[import-untyped]
from fsspec.callbacks import DEFAULT_CALLBACK, Callback  # type: ignore[import-untyped]
from fsspec.utils import isfilelike, tokenize  # type: ignore[import-untyped]

from lucidlink import _loop
from lucidlink._fileio import DEFAULT_BUFFER_SIZE, RawFile
from lucidlink.aio.file import AsyncFile
from lucidlink.aio.filespace import AsyncFilespace
from lucidlink.exceptions import ConfigurationError, PathExistsError
from lucidlink.fsspec.connection import Connection, close_at_exit
from lucidlink.fsspec.files import (
    CHUNK,
    LucidLinkAsyncFile,
    LucidLinkBufferedRandom,
    LucidLinkBufferedReader,
    LucidLinkBufferedWriter,
    next_chunk,
)
from lucidlink.fsspec.namespace import NamespaceFileSystem
from lucidlink.fsspec.paths import Location, byte_limits, not_here
from lucidlink.fsspec.ranges import read_ranges
from lucidlink.shared import BINARY_MODES

TOKEN_ENV = "LUCIDLINK_TOKEN"


class LucidLinkFileSystem(NamespaceFileSystem):
    """fsspec for the filespaces of one workspace: ``lucidlink://<workspace>/<filespace>/<path>``.

    ``lucidlink://`` lists the token's workspace, ``lucidlink://<workspace>`` its
    filespaces (as directories); one instance serves every filespace of the workspace.

    Parameters
    ----------
    token
        A service-account token ``sa_live:...``; default ``$LUCIDLINK_TOKEN``.
    hub_url
        The hub; else ``$LUCIDLINK_HUB_URL``; else the documented default.
    sandboxed, root_path, persist_files, config
        As for :func:`lucidlink.aio.create_daemon` (the daemon this instance starts).
    auto_mkdir
        Create missing parent directories when writing (as object stores behave).
    commit_on_close
        Commit a written file before ``close`` returns, so other clients see it at
        once (default). ``False`` leaves it to the daemon's background flusher.
    asynchronous
        Run on the caller's event loop (``await fs._ls(...)``) instead of the SDK's.
    loop, batch_size
        fsspec's own: the event loop of an ``asynchronous`` instance, and how many
        coroutines its bulk calls run at once.
    **kwargs
        fsspec's other options, such as the directory-listing cache settings
        ``use_listings_cache``, ``listings_expiry_time`` and ``max_paths``.
    """

    # Its public home: the entry point, pickles (Dask) and reprs name it there.
    __module__ = "lucidlink.fsspec"

    def __init__(
        self,
        *,
        token: str | None = None,
        hub_url: str | None = None,
        sandboxed: bool = True,
        root_path: str | None = None,
        persist_files: bool = False,
        config: dict[str, Any] | None = None,
        auto_mkdir: bool = True,
        commit_on_close: bool = True,
        asynchronous: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        token = token or os.environ.get(TOKEN_ENV)
        if not token:
            raise ConfigurationError(
                "no service-account token: pass token='sa_live:...' (in storage_options for "
                f"pandas and Dask) or set {TOKEN_ENV}"
            )
        if asynchronous:
            loop = None
        else:
            sdk_loop = _loop.get_loop()
            if loop is not None and loop is not sdk_loop:
                raise ConfigurationError(
                    "LucidLinkFileSystem runs blocking calls on the SDK's own loop; do not pass "
                    "loop=, or pass asynchronous=True to use the running loop"
                )
            loop = sdk_loop
        self._generation = 0
        super().__init__(asynchronous=asynchronous, loop=loop, batch_size=batch_size, **kwargs)
        self.auto_mkdir = auto_mkdir
        self.commit_on_close = commit_on_close
        self._conn = Connection(
            token,
            {
                "sandboxed": sandboxed,
                "root_path": root_path,
                "persist_files": persist_files,
                "hub_url": hub_url,
                "config": config,
            },
        )
        self._finalizer = weakref.finalize(self, close_at_exit, self._conn)

    # -- reading contents ----------------------------------------------------------------

    async def _checksum(self, path: str) -> int:
        """Stable for one content version: a hash of the size and the block hashes."""
        loc = await self._conn.location(path)
        if loc.depth == 3:
            filespace = await self._conn.filespace_at(loc)
            try:
                async with filespace.fs.open(loc.inner, "rb") as f:
                    return int(f.fingerprint()[:32], 16)
            except IsADirectoryError:
                pass
        return int(tokenize(await self._info(path, refresh=True)), 16)

    async def _cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        filespace, loc = await self._conn.target(path, "read")
        await filespace.refresh()
        async with filespace.fs.open(loc.inner, "rb") as f:
            lo, hi = byte_limits(start, end, f.size)
            buffer = bytearray(hi - lo)
            if buffer:
                await f.seek(lo)
                del buffer[await f.readinto(buffer) :]
            return bytes(buffer)

    async def _cat(
        self, path: str | list[str], recursive: bool = False, on_error: str = "raise",
        batch_size: int | None = None, **kwargs: Any,
    ) -> bytes | dict[str, bytes | BaseException]:
        """Whole files; a list of plain paths is read with ``read_files`` (one hub call per
        1,000 files, small files' bytes inline). Anything else, or a batch that fails, is
        read file by file as fsspec does, so each path gets its own result or error."""
        if (isinstance(path, list) and len(path) > 1 and not recursive and not kwargs
                and not any(has_magic(p) for p in path)):
            stripped = [self._strip_protocol(p) for p in path]
            unique = sorted(set(stripped))
            try:
                contents = await self._read_many(unique)
            except Exception:  # noqa: BLE001 - each path then reports its own error
                contents = None
            if contents is not None:
                return dict(zip(unique, contents, strict=True))
        return await super()._cat(path, recursive=recursive, on_error=on_error,  # type: ignore[no-any-return]
                                  batch_size=batch_size, **kwargs)

    async def _read_many(self, paths: list[str]) -> list[bytes]:
        """The contents of ``paths`` (files of filespaces), one ``read_files`` per filespace."""
        groups: dict[str, tuple[AsyncFilespace, list[int], list[str]]] = {}
        for i, p in enumerate(paths):
            filespace, loc = await self._conn.target(p, "read")
            group = groups.setdefault(filespace.id, (filespace, [], []))
            group[1].append(i)
            group[2].append(loc.inner)
        out: list[bytes] = [b""] * len(paths)
        for filespace, indexes, inner in groups.values():
            await filespace.refresh()
            for i, data in zip(indexes, await filespace.fs.read_files(inner), strict=True):
                out[i] = data
        return out

    async def _cat_ranges(
        self,
        paths: list[str],
        starts: int | list[int] | None,
        ends: int | list[int] | None,
        max_gap: int | None = None,
        batch_size: int | None = None,
        on_error: str = "return",
        **kwargs: Any,
    ) -> list[bytes | BaseException]:
        """Read many byte ranges; each file's ranges share one version of it.

        A file's ranges are sorted by offset and dealt to up to
        :data:`~lucidlink.fsspec.ranges.RANGE_STREAMS` concurrent read handles, so
        neighbouring ranges reuse a block already in memory and dense ranges trigger
        the core's read-ahead; the block URLs of all of them are signed in one batch
        first. ``max_gap`` is accepted and not needed: ranges in the same block already
        cost one download.
        """
        out = await read_ranges(self._conn, paths, starts, ends)
        if on_error != "return":
            for result in out:
                if isinstance(result, BaseException):
                    raise result
        return out  # type: ignore[return-value]  # every slot is filled

    async def _get_file(
        self, rpath: str, lpath: Any, callback: Callback = DEFAULT_CALLBACK, **kwargs: Any
    ) -> None:
        try:
            filespace, loc = await self._conn.target(rpath, "download")
            afile = await filespace.fs.open(loc.inner, "rb")
        except IsADirectoryError:
            if isfilelike(lpath):
                raise
            await anyio.to_thread.run_sync(lambda: os.makedirs(lpath, exist_ok=True))
            return
        async with afile:
            callback.set_size(afile.size)
            own = not isfilelike(lpath)
            local = await anyio.to_thread.run_sync(open, lpath, "wb") if own else lpath
            try:
                while chunk := await next_chunk(afile):
                    await anyio.to_thread.run_sync(local.write, chunk)
                    callback.relative_update(len(chunk))
            finally:
                if own:
                    await anyio.to_thread.run_sync(local.close)

    # -- writing contents ----------------------------------------------------------------

    async def _open_handle(self, path: str, mode: str) -> LucidLinkAsyncFile:
        if mode not in BINARY_MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(BINARY_MODES)}")
        filespace, loc = await self._conn.target(path, "open")
        if mode == "rb":
            await filespace.refresh()

        async def opener() -> AsyncFile:
            return await filespace.fs.open(loc.inner, mode)

        afile = await (self._with_parent(filespace, loc, opener) if mode[0] in "wxa" else opener())
        return LucidLinkAsyncFile(self, filespace, loc.name(), afile)

    async def open_async(self, path: str, mode: str = "rb", **kwargs: Any) -> LucidLinkAsyncFile:
        """Open a file on the running loop: ``async with await fs.open_async(p) as f``."""
        return await self._open_handle(path, mode)

    async def _write_from(
        self,
        path: str,
        mode: str,
        chunks: Callable[[], Awaitable[bytes]],
        callback: Callback = DEFAULT_CALLBACK,
    ) -> None:
        """Write a file from successive chunks (``b""`` ends); nothing is committed on failure."""
        handle = await self._open_handle(path, mode)
        try:
            while True:
                chunk = await chunks()
                if not chunk:
                    break
                await handle.write(chunk)
                callback.relative_update(len(chunk))
        except BaseException:
            await handle.abort()
            raise
        await handle.close()

    async def _pipe_file(
        self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any
    ) -> None:
        handle = await self._open_handle(path, "xb" if mode == "create" else "wb")
        try:
            await handle.write(value)
        except BaseException:
            await handle.abort()
            raise
        await handle.close()

    async def _put_file(
        self,
        lpath: str,
        rpath: str,
        callback: Callback = DEFAULT_CALLBACK,
        mode: str = "overwrite",
        **kwargs: Any,
    ) -> None:
        if await anyio.to_thread.run_sync(os.path.isdir, lpath):
            await self._makedirs(rpath, exist_ok=True)
            return
        local = await anyio.to_thread.run_sync(open, lpath, "rb")
        try:
            size = await anyio.to_thread.run_sync(lambda: os.fstat(local.fileno()).st_size)
            callback.set_size(size)
            await self._write_from(
                rpath,
                "xb" if mode == "create" else "wb",
                lambda: anyio.to_thread.run_sync(local.read, CHUNK),
                callback,
            )
        finally:
            await anyio.to_thread.run_sync(local.close)

    async def _touch(self, path: str, truncate: bool = True, **kwargs: Any) -> None:
        """Create an empty file; with ``truncate=False``, set an existing file's mtime to now."""
        if not truncate:
            filespace, loc = await self._conn.target(path, "touch")
            try:
                entry = await filespace.fs.get_entry(loc.inner)
            except FileNotFoundError:
                pass
            else:
                if entry.is_file():
                    await filespace.fs.truncate(loc.inner, entry.size)  # same content, new mtime
                    self.invalidate_cache(loc.name())
                return
        await self._pipe_file(path, b"")

    # -- copies and moves ------------------------------------------------------------------

    async def _cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copy a file; inside one filespace on the hub, sharing blocks (no bytes move)."""
        src_loc = await self._conn.location(path1)
        if src_loc.depth <= 2:  # a filespace root within a recursive copy
            await self._makedirs(path2, exist_ok=True)
            return
        src_fs = await self._conn.filespace_at(src_loc)
        dst_fs, dst_loc = await self._conn.target(path2, "overwrite")
        try:
            if src_fs is dst_fs:
                try:
                    await self._with_parent(
                        dst_fs, dst_loc, lambda: dst_fs.fs.copy_file(src_loc.inner, dst_loc.inner)
                    )
                except IsADirectoryError:
                    if not await src_fs.fs.dir_exists(src_loc.inner):
                        raise
                    await self._makedirs(path2, exist_ok=True)
            else:
                await self._copy_across(src_fs, src_loc, path2)
        finally:
            self.invalidate_cache(dst_loc.name())

    async def _copy_across(self, src_fs: AsyncFilespace, src_loc: Location, path2: str) -> None:
        """Copy a file to another filespace: its bytes are streamed through this client."""
        try:
            source = await src_fs.fs.open(src_loc.inner, "rb")
        except IsADirectoryError:
            await self._makedirs(path2, exist_ok=True)
            return
        async with source:
            await self._write_from(path2, "wb", lambda: next_chunk(source))

    async def _mv_file(self, path1: str, path2: str) -> None:
        """Move one file or directory; inside one filespace a single rename on the hub."""
        src_loc = await self._conn.location(path1)
        dst_loc = await self._conn.location(path2)
        for loc in (src_loc, dst_loc):
            if loc.depth <= 2:
                raise not_here(loc, "move")
        src_fs = await self._conn.filespace_at(src_loc)
        dst_fs = await self._conn.filespace_at(dst_loc)
        try:
            if src_fs is dst_fs:
                await self._with_parent(
                    dst_fs, dst_loc, lambda: dst_fs.fs.move(src_loc.inner, dst_loc.inner)
                )
            elif await src_fs.fs.dir_exists(src_loc.inner):
                await self._copy(src_loc.name(), dst_loc.name(), recursive=True, on_error="raise")
                await self._rm_one(src_loc.name(), recursive=True)
            else:
                await self._copy_across(src_fs, src_loc, dst_loc.name())
                await self._rm_one(src_loc.name(), recursive=False)
        finally:
            self.invalidate_cache(src_loc.name())
            self.invalidate_cache(dst_loc.name())

    async def _mv(
        self,
        path1: str | list[str],
        path2: str | list[str],
        recursive: bool = False,
        maxdepth: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Move files or directories; native renames, no copies, inside a filespace.

        ``mv(a, b)`` renames ``a`` to ``b``, or into ``b`` when ``b`` is an existing
        directory or ends with ``/`` (a directory moves whole, with or without
        ``recursive``). Lists move pairwise; a list or glob into a directory moves each
        match into it (directories only with ``recursive``). With ``maxdepth``, fsspec's
        copy-then-delete is used, the copy still sharing blocks on the hub.
        """
        if maxdepth is not None:
            await self._copy(path1, path2, recursive=recursive, maxdepth=maxdepth, on_error="raise")
            await self._rm(path1, recursive=recursive)
            return
        if isinstance(path1, list) and isinstance(path2, list):
            if len(path1) != len(path2):
                raise ValueError("mv of two lists needs lists of the same length")
            await asyncio.gather(*(self._mv_file(a, b) for a, b in zip(path1, path2, strict=True)))
            return
        if not isinstance(path2, str):
            raise TypeError("path2 must be a string unless path1 is a list of the same length")
        dst = self._strip_protocol(path2)
        into = path2.endswith("/") or await self._isdir(dst)
        if isinstance(path1, str) and not has_magic(self._strip_protocol(path1)):
            src = self._strip_protocol(path1)
            if src == dst:
                return
            await self._info(src)  # FileNotFoundError before anything changes
            await self._mv_file(src, posixpath.join(dst, posixpath.basename(src)) if into else dst)
            return
        sources = await self._expand_path(path1)
        if not recursive:
            sources = [s for s in sources if not await self._isdir(s)]
        if not sources:
            return
        await self._makedirs(dst, exist_ok=True)
        await asyncio.gather(
            *(self._mv_file(s, posixpath.join(dst, posixpath.basename(s))) for s in sources)
        )

    # -- file objects ----------------------------------------------------------------------

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> io.BufferedIOBase:
        """A buffered file over the core's streaming file (see :mod:`lucidlink.fsspec`)."""
        if self.asynchronous:
            raise NotImplementedError(
                "this LucidLinkFileSystem is asynchronous: use 'await fs.open_async(path, mode)'"
            )
        if mode not in BINARY_MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(BINARY_MODES)}")
        path = self._strip_protocol(path)
        target, transaction_path = path, None
        if not autocommit and mode != "rb":
            # An fsspec transaction: write beside the target, rename into place at commit.
            if mode not in ("wb", "xb"):
                raise NotImplementedError(
                    f"mode {mode!r} is not supported inside a transaction; use 'wb'"
                )
            if mode == "xb" and self.exists(path):
                raise PathExistsError(f"{path} already exists (opened with 'x')", path=path)
            parent, name = posixpath.split(path)
            target = transaction_path = f"{parent}/.{name}.{uuid.uuid4().hex[:12]}.lucidlink-tx"
            mode = "wb"
        raw = RawFile(sync(self.loop, self._open_handle, target, mode))
        kind: type[LucidLinkBufferedReader | LucidLinkBufferedWriter | LucidLinkBufferedRandom]
        if "+" in mode:
            kind = LucidLinkBufferedRandom
        elif mode == "rb":
            kind = LucidLinkBufferedReader
        else:
            kind = LucidLinkBufferedWriter
        return kind(
            raw,
            block_size or DEFAULT_BUFFER_SIZE,
            fs=self,
            path=path,
            transaction_path=transaction_path,
        )

    # -- lifetime --------------------------------------------------------------------------

    async def _close(self) -> None:
        """Commit pending writes of every linked filespace and stop the daemon."""
        try:
            await self._conn.close()
        finally:
            self.invalidate_cache()

    def close(self) -> None:
        """Commit pending writes of every linked filespace and stop the daemon.

        The instance stays usable: the next call starts a new daemon.
        """
        if self.asynchronous:
            raise RuntimeError("this LucidLinkFileSystem is asynchronous: use 'await fs._close()'")
        sync(self.loop, self._close)

    def __enter__(self) -> LucidLinkFileSystem:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> LucidLinkFileSystem:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    # Blocking twins of coroutines fsspec does not mirror on its own.
    mv = sync_wrapper(_mv)
    mv_file = sync_wrapper(_mv_file)
    touch = sync_wrapper(_touch)
    checksum = sync_wrapper(_checksum)
