"""fsspec for filespaces: ``lucidlink://<workspace>/<filespace>/<path>``.

>>> fs = fsspec.filesystem("lucidlink", token="sa_live:...")      # hub: LUCIDLINK_HUB_URL
>>> fs.ls("lucidlink://demo/production-data/")
>>> pd.read_csv("lucidlink://demo/production-data/a.csv", storage_options={"token": ...})

:class:`LucidLinkFileSystem` is an :class:`fsspec.asyn.AsyncFileSystem` whose ``_``
coroutines are written directly on the async core (:mod:`lucidlink.aio`); fsspec
derives the blocking methods from them. Decisions worth knowing:

Loops
    Used synchronously, an instance runs its coroutines on the SDK's one background
    loop (:func:`lucidlink._loop.get_loop`), the loop the blocking SDK uses too, so
    there is one set of connections per process. With ``asynchronous=True`` it runs on
    the caller's loop (``await fs._ls(...)``); its daemon is bound to the first loop
    that uses it and is dropped, unused, if that loop has closed when another one
    calls. Nothing is connected at construction: the daemon starts, and each
    filespace of the workspace is linked, on first use (under an :class:`asyncio.Lock`).

File objects
    ``open`` returns the standard :mod:`io` stack over the core's own file:
    :class:`io.BufferedReader` / :class:`io.BufferedWriter` / :class:`io.BufferedRandom`
    (subclassed here to carry ``fs``/``path``/``size`` and transaction hooks) over
    :class:`lucidlink._fileio.RawFile`, the SDK's ``io.RawIOBase`` adapter of an
    :class:`~lucidlink.aio.AsyncFile`. Not :class:`fsspec.spec.AbstractBufferedFile`:
    its read caches and upload buffer would duplicate what the core already does per
    stream (read-ahead of blocks that grows with sequential access, a bounded on-disk
    block cache, writes staged on disk and uploaded in the background while the writer
    continues), so a second layer would only add copies and memory. The result is
    what the builtin ``open`` returns, so pandas, pyarrow and ``io.TextIOWrapper``
    behave as with local files; ``wb`` is memory-bounded and ``rb`` seeks freely.

Consistency
    Writes are committed when the file closes (``commit_on_close=True``, the
    default): ``close``, ``pipe``, ``put`` and ``cp`` return once the change is in the
    hub, so another process (a Dask worker, another machine) sees it at once, as with
    an object store. ``commit_on_close=False`` leaves commits to the daemon's
    background flusher (faster for many small files; ``close()`` or the finalizer
    commits the rest).

Listing cache
    fsspec's ``dircache`` (``use_listings_cache``, ``listings_expiry_time``,
    ``max_paths``) holds listings; every mutating call of this instance, a written
    file's close included, invalidates the path, everything under it and every
    parent, and a listing that raced with a mutation is not stored. Changes made by
    other clients are seen after ``refresh=True``, ``invalidate_cache()`` or expiry.

Lifetime
    Instances are shared per process by fsspec's instance cache and pickle as their
    storage options (never their daemon). ``close()`` commits pending writes of every
    linked filespace and stops the daemon; the instance stays usable and reconnects
    on next use. A :func:`weakref.finalize` does the same at interpreter exit, bounded
    in time, and only removes the sandbox directory when the loop is gone.

Ranges
    ``cat_ranges`` fetches each file's block list once, signs the URLs of every block
    the ranges need in one batch, sorts the ranges and deals them to up to
    :data:`RANGE_STREAMS` concurrent read handles on that one version, so ranges in
    the same block cost one download and dense ranges get the core's read-ahead.

Core internals used
    Until the async core offers them publicly: ``AsyncFilespace._call``/``_before``
    (the ``/file`` block list, ``mkdir`` without ``exist_ok``), ``_writeback.flush()``
    (commit on close), ``_blocks.prepare_get_urls``, the ``AsyncFile`` constructor
    (handles on one version), ``AsyncFile`` internals to abort a failed upload, and a
    retry around reads for a core bug (see :func:`_read_at`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import hashlib
import io
import json
import os
import posixpath
import shutil
import sys
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable
from glob import has_magic
from types import TracebackType
from typing import Any, TypeVar

import anyio.to_thread
import attrs
from fsspec.asyn import AsyncFileSystem, sync, sync_wrapper  # type: ignore[import-untyped]
from fsspec.callbacks import DEFAULT_CALLBACK, Callback  # type: ignore[import-untyped]
from fsspec.utils import isfilelike, stringify_path, tokenize  # type: ignore[import-untyped]

from lucidlink._log import get_logger
from lucidlink import _loop
from lucidlink._fileio import DEFAULT_BUFFER_SIZE, RawFile
from lucidlink.aio.daemon import AsyncDaemon, create_daemon
from lucidlink.aio.file import AsyncFile, BlockRef
from lucidlink.aio.filespace import AsyncFilespace
from lucidlink.aio.workspace import AsyncWorkspace
from lucidlink.exceptions import (
    AccessDeniedError,
    ConfigurationError,
    FilespaceNotFoundError,
    IsADirectoryFilespaceError,
    PathExistsError,
    PathNotFoundError,
)
from lucidlink.paths import normalize_path
from lucidlink.shared import BINARY_MODES
from lucidlink.types import DirEntry, ServiceAccountCredentials, SyncMode

__all__ = ["LucidLinkAsyncFile", "LucidLinkFileSystem", "WorkspaceMismatchError"]

log = get_logger("lucidlink")

T = TypeVar("T")

PROTOCOL = "lucidlink"
TOKEN_ENV = "LUCIDLINK_TOKEN"
#: Bytes moved per step by put/get and cross-filespace copies.
CHUNK = 4 * 1024 * 1024
#: Concurrent read streams per file in ``cat_ranges``.
RANGE_STREAMS = 16
#: Longest wait for the exit-time commit of pending writes, in seconds.
EXIT_TIMEOUT = 30.0


class WorkspaceMismatchError(AccessDeniedError):
    """A URL names a workspace other than the token's."""

    code = "workspace_mismatch"


# -- where a path points -----------------------------------------------------------------


@attrs.frozen
class _Location:
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


def _entry_info(name: str, entry: DirEntry) -> dict[str, Any]:
    kind = "file" if entry.is_file() else ("directory" if entry.is_dir() else "other")
    info: dict[str, Any] = {
        "name": name,
        "size": entry.size if kind == "file" else 0,
        "type": kind,
        "mtime": entry.mtime / 1e9,
        "ctime": entry.ctime / 1e9,
        "file_id": entry.file_id,
    }
    if entry.file_id_external:
        info["external"] = entry.file_id_external
    return info


def _dir_info(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "size": 0, "type": "directory", **extra}


def _limits(start: int | None, end: int | None, size: int) -> tuple[int, int]:
    """fsspec byte-range semantics: ``None`` is an open end, negatives count from the end."""
    lo = 0 if start is None else (max(0, size + start) if start < 0 else min(start, size))
    hi = size if end is None else (max(0, size + end) if end < 0 else min(end, size))
    return lo, max(lo, hi)


def _utc(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)


def _cancelled_here() -> bool:
    """Whether the running task itself is being cancelled (unknowable before Python 3.11)."""
    cancelling = getattr(asyncio.current_task(), "cancelling", None)
    return cancelling is None or cancelling() > 0


async def _read_at(afile: AsyncFile, offset: int | None, buffer: Any) -> int:
    """``readinto`` at ``offset`` (or the position), surviving another handle's cancellation.

    Works around the core's shared block downloads (``BlockIO.get``): when the handle
    that started a download cancels it (read-ahead dropped on a seek or a close), every
    other handle waiting for that block receives the ``CancelledError`` too. Such a
    foreign cancellation is retried from the same position; a real one propagates.
    """
    start = afile.tell() if offset is None else offset
    for attempt in range(8):
        await afile.seek(start)
        try:
            return await afile.readinto(buffer)
        except asyncio.CancelledError:
            if _cancelled_here() or attempt == 7:
                raise
            log.debug("lucidlink.fsspec.read_retried", path=afile.name, offset=start)
    raise AssertionError("unreachable")


async def _next_chunk(afile: AsyncFile) -> bytes:
    """The next :data:`CHUNK` bytes of a file being streamed (``b""`` at the end)."""
    buffer = bytearray(min(CHUNK, max(0, afile.size - afile.tell())))
    if buffer:
        del buffer[await _read_at(afile, None, buffer) :]
    return bytes(buffer)


# -- one version of a file, for concurrent readers ----------------------------------------


class _Version:
    """A file's block list as of one hub call; opens any number of read handles on it.

    ``cat_ranges`` reads many ranges of one file through several handles at once;
    giving them one block list keeps them on one version and costs one hub call.
    """

    def __init__(self, filespace: AsyncFilespace, path: str, body: dict[str, Any]) -> None:
        entry = body["entry"]
        self.filespace = filespace
        self.path = path
        self.size = int(entry["size"])
        self.version = entry["version"]
        self.block_size = int(body["block_size"])
        self.blocks = {
            int(b["index"]): BlockRef(b["hash"], int(b["length"]), int(b["used"]))
            for b in body["blocks"]
        }
        self.external: dict[str, Any] | None = body.get("external")  # a Connect file

    @classmethod
    async def fetch(cls, filespace: AsyncFilespace, path: str) -> _Version:
        await filespace._before(path, "exact")  # read-your-writes: commit this path first
        return cls(filespace, path, await filespace._call("GET", "/file", params={"path": path}))

    async def open(self) -> AsyncFile:
        """A read handle on this version (what ``fs.open(path, "rb")`` builds from ``/file``)."""
        if self.external is not None:  # reads go to the S3 object: the core builds that handle
            return await self.filespace.fs.open(self.path, "rb")
        handle = AsyncFile(
            self.filespace,
            self.path,
            "rb",
            size=self.size,
            version=self.version,
            block_size=self.block_size,
            blocks=dict(self.blocks),
            exists=True,
        )
        self.filespace._open_files.add(handle)
        return handle

    def hashes(self, lo: int, hi: int) -> list[str]:
        """The blocks holding bytes ``[lo, hi)``."""
        if hi <= lo or self.external is not None:
            return []
        slots = range(lo // self.block_size, (hi - 1) // self.block_size + 1)
        return [self.blocks[s].hash for s in slots if s in self.blocks]

    def checksum(self) -> int:
        """Equal for equal content layouts; changes whenever the content does."""
        digest = hashlib.sha256(f"{self.size}:{self.block_size}".encode())
        if self.external is not None:
            digest.update(json.dumps(self.external, sort_keys=True, default=str).encode())
        for index in sorted(self.blocks):
            ref = self.blocks[index]
            digest.update(f";{index}:{ref.hash}:{ref.used}".encode())
        return int(digest.hexdigest()[:32], 16)


# -- the daemon, the workspace and the linked filespaces ----------------------------------


class _Connection:
    """What one file-system instance is connected with; never pickled, restartable."""

    def __init__(self, token: str, daemon_options: dict[str, Any]) -> None:
        self._credentials = ServiceAccountCredentials(token=token)
        self._options = daemon_options
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._daemon: AsyncDaemon | None = None
        self._workspace: AsyncWorkspace | None = None
        self._filespaces: dict[str, AsyncFilespace] = {}
        self._exit_tasks: set[asyncio.Task[None]] = set()

    def _bind(self) -> asyncio.Lock:
        running = asyncio.get_running_loop()
        if self.loop is not running or self._lock is None:
            if self.loop is not None and self.loop is not running and self.loop.is_running():
                raise RuntimeError(
                    "this LucidLinkFileSystem is in use on another running event loop; create one "
                    "instance per loop (pass skip_instance_cache=True)"
                )
            self._abandon()  # whatever was bound to a finished loop cannot be used here
            self.loop = running
            self._lock = asyncio.Lock()
        return self._lock

    async def workspace(self) -> AsyncWorkspace:
        """The token's workspace, starting the daemon and logging in on first use."""
        lock = self._bind()
        if self._workspace is None:
            async with lock:
                if self._workspace is None:
                    daemon = create_daemon(**self._options)
                    await daemon.start()
                    try:
                        workspace = await daemon.authenticate(self._credentials)
                    except BaseException:
                        await daemon.stop()
                        raise
                    self._daemon, self._workspace = daemon, workspace
        return self._workspace

    async def filespace(self, name: str) -> AsyncFilespace:
        """The filespace ``name`` of the workspace, linked on first use."""
        workspace = await self.workspace()
        found = self._filespaces.get(name)
        if found is not None and found.is_linked:
            return found
        assert self._lock is not None
        async with self._lock:
            found = self._filespaces.get(name)
            if found is None or not found.is_linked:
                try:
                    # close() syncs explicitly, so unlinking need not sync a second time.
                    found = await workspace.link_filespace(name=name, sync_mode=SyncMode.SYNC_NONE)
                except FilespaceNotFoundError as err:
                    raise PathNotFoundError(str(err), path=f"{workspace.name}/{name}") from None
                self._filespaces[name] = found
        return found

    async def close(self) -> None:
        """Commit pending writes of every linked filespace, then stop the daemon."""
        if self._daemon is None:
            return
        lock = self._bind()
        async with lock:
            daemon, filespaces = self._daemon, list(self._filespaces.values())
            self._daemon, self._workspace, self._filespaces = None, None, {}
        if daemon is None:
            return
        errors: list[BaseException] = []
        try:
            for filespace in filespaces:
                if filespace.is_linked:
                    try:
                        await filespace.sync_all()
                    except Exception as exc:  # stop the daemon anyway; report after
                        errors.append(exc)
        finally:
            await daemon.stop()
        if errors:
            raise errors[0]

    def close_from_thread(self, timeout: float) -> None:
        """``close`` from any thread (finalizer, exit); never blocks longer than ``timeout``."""
        loop = self.loop
        if self._daemon is None:
            return
        if loop is None or loop.is_closed() or not loop.is_running() or sys.is_finalizing():
            self._abandon()
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:  # garbage collected on the loop's own thread: cannot block here
            task = loop.create_task(self.close())
            self._exit_tasks.add(task)
            task.add_done_callback(self._exit_tasks.discard)
            return
        future = asyncio.run_coroutine_threadsafe(self.close(), loop)
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            log.warning("lucidlink.fsspec.close_timeout", seconds=timeout)
        except Exception as exc:
            log.warning("lucidlink.fsspec.close_failed", error=str(exc))

    def _abandon(self) -> None:
        """Forget a daemon whose loop is gone (its sandbox directory is removed)."""
        daemon = self._daemon
        self._daemon, self._workspace, self._filespaces = None, None, {}
        self._lock = None
        if daemon is not None and daemon.sandboxed and daemon.root_path:
            shutil.rmtree(daemon.root_path, ignore_errors=True)


def _finalize(connection: _Connection) -> None:
    connection.close_from_thread(EXIT_TIMEOUT)


# -- file objects ---------------------------------------------------------------------------


class LucidLinkAsyncFile:
    """An open file of a filespace for fsspec: the core's :class:`AsyncFile`, plus the
    commit and cache invalidation fsspec expects when a written file closes.

    Returned by ``await fs.open_async(path, mode)``; ``fs.open`` wraps it for blocking
    use. Methods are those of :class:`~lucidlink.aio.AsyncFile`.
    """

    def __init__(
        self, fs: LucidLinkFileSystem, filespace: AsyncFilespace, path: str, afile: AsyncFile
    ) -> None:
        self.fs = fs
        self.filespace = filespace
        self.path = path
        self.afile = afile

    @property
    def name(self) -> str:
        """The fsspec path, ``<workspace>/<filespace>/<path>``."""
        return self.path

    @property
    def mode(self) -> str:
        """The binary mode the file was opened with."""
        return self.afile.mode

    @property
    def closed(self) -> bool:
        """Whether the file is closed."""
        return self.afile.closed

    @property
    def size(self) -> int:
        """The file's size as this handle sees it."""
        return self.afile.size

    def readable(self) -> bool:
        """Whether the file was opened for reading."""
        return self.afile.readable()

    def writable(self) -> bool:
        """Whether the file was opened for writing."""
        return self.afile.writable()

    def seekable(self) -> bool:
        """Always ``True``."""
        return self.afile.seekable()

    def tell(self) -> int:
        """The current position."""
        return self.afile.tell()

    async def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (the rest of the file when negative)."""
        if not self.afile.readable():
            return await self.afile.read(size)  # raises the core's error
        left = max(0, self.afile.size - self.afile.tell())
        buffer = bytearray(left if size is None or size < 0 else min(size, left))
        n = await _read_at(self.afile, None, buffer)
        del buffer[n:]
        return bytes(buffer)

    async def readinto(self, buffer: Any) -> int:
        """Read into a writable buffer; return the count (0 at end of file)."""
        if not self.afile.readable():
            return await self.afile.readinto(buffer)
        return await _read_at(self.afile, None, buffer)

    async def write(self, data: Any) -> int:
        """Write bytes; return how many."""
        return await self.afile.write(data)

    async def seek(self, offset: int, whence: int = 0) -> int:
        """Move the position (whence 0, 1 or 2); return it."""
        return await self.afile.seek(offset, whence)

    async def truncate(self, size: int | None = None) -> int:
        """Resize the file (default: to the position)."""
        return await self.afile.truncate(size)

    async def flush(self) -> None:
        """Nothing to do: written bytes are staged at once; ``close`` commits them."""
        await self.afile.flush()

    async def close(self) -> None:
        """Close; a written file is committed before this returns (``commit_on_close``)."""
        if self.afile.closed:
            return
        writable = self.afile.writable()
        try:
            await self.afile.close()
            if writable and self.fs.commit_on_close:
                await self.filespace._writeback.flush()
        finally:
            if writable:
                self.fs.invalidate_cache(self.path)

    async def abort(self) -> None:
        """Close without committing anything this handle wrote (a failed put or copy)."""
        afile = self.afile
        if afile.closed:
            return
        for task in afile._uploads.values():
            task.cancel()
        afile._changed = False  # close() then hands nothing to the write-back queue
        staging = afile._staging_path
        try:
            await afile.close()
        finally:
            if staging is not None:
                await anyio.to_thread.run_sync(lambda: staging.unlink(missing_ok=True))

    async def __aenter__(self) -> LucidLinkAsyncFile:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<LucidLinkAsyncFile {self.path!r} mode={self.mode!r}{state}>"


class _FileMixin:
    """fsspec's file attributes on the :mod:`io` buffered classes."""

    fs: LucidLinkFileSystem
    path: str

    def _attach(
        self, fs: LucidLinkFileSystem, path: str, transaction_path: str | None = None
    ) -> None:
        self.fs = fs
        self.path = path
        self._transaction_path = transaction_path

    @property
    def size(self) -> int:
        """The file's size as this handle sees it (before buffered writes are flushed)."""
        raw: RawFile = getattr(self, "raw")  # noqa: B009  # the io class's, typed there
        afile = raw.async_file
        assert isinstance(afile, LucidLinkAsyncFile)
        return afile.size

    def info(self) -> dict[str, Any]:
        """``fs.info`` of the file."""
        return self.fs.info(self.path)  # type: ignore[no-any-return]

    def commit(self) -> None:
        """End of an fsspec transaction: move the written file into place (one rename)."""
        if self._transaction_path is not None:
            sync(self.fs.loop, self.fs._mv_file, self._transaction_path, self.path)
            self._transaction_path = None

    def discard(self) -> None:
        """End of a failed fsspec transaction: drop the written file."""
        if self._transaction_path is not None:
            try:
                self.fs.rm_file(self._transaction_path)
            except FileNotFoundError:
                pass
            self._transaction_path = None


class LucidLinkBufferedReader(_FileMixin, io.BufferedReader):
    """A file of a filespace opened with ``rb``."""


class LucidLinkBufferedWriter(_FileMixin, io.BufferedWriter):
    """A file of a filespace opened with ``wb``, ``xb`` or ``ab``."""


class LucidLinkBufferedRandom(_FileMixin, io.BufferedRandom):
    """A file of a filespace opened with a ``+`` mode."""


# -- the file system --------------------------------------------------------------------------


class LucidLinkFileSystem(AsyncFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """fsspec access to the filespaces of one workspace: ``lucidlink://<workspace>/<filespace>/<path>``.

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
    use_listings_cache, listings_expiry_time, max_paths
        fsspec's directory-listing cache settings.
    """

    protocol = PROTOCOL
    root_marker = ""

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
        self._conn = _Connection(
            token,
            {
                "sandboxed": sandboxed,
                "root_path": root_path,
                "persist_files": persist_files,
                "hub_url": hub_url,
                "config": config,
            },
        )
        self._finalizer = weakref.finalize(self, _finalize, self._conn)

    # -- paths ---------------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = stringify_path(path)
        for prefix in (f"{PROTOCOL}://", f"{PROTOCOL}::"):
            if path.startswith(prefix):
                path = path[len(prefix) :]
                break
        return path.strip("/")

    async def _location(self, path: str) -> _Location:
        parts = [p for p in self._strip_protocol(path).split("/") if p]
        if not parts:
            return _Location()
        workspace = await self._conn.workspace()
        if parts[0] != workspace.name:
            raise WorkspaceMismatchError(
                f"{PROTOCOL}://{'/'.join(parts)} is in workspace {parts[0]!r}, but this token "
                f"belongs to workspace {workspace.name!r}; use "
                f"{PROTOCOL}://{workspace.name}/<filespace>/<path>, or a token of workspace "
                f"{parts[0]!r}",
                path=path,
            )
        if len(parts) == 1:
            return _Location(parts[0])
        return _Location(parts[0], parts[1], normalize_path("/" + "/".join(parts[2:])))

    async def _filespace(self, loc: _Location) -> AsyncFilespace:
        return await self._conn.filespace(loc.filespace)

    async def _target(self, path: str, what: str) -> tuple[AsyncFilespace, _Location]:
        """A path inside a filespace; ``IsADirectoryError`` for the levels above files."""
        loc = await self._location(path)
        if loc.depth < 3:
            raise IsADirectoryFilespaceError(
                f"{loc.name() or PROTOCOL + '://'} is a directory (a workspace or filespace root); "
                f"cannot {what} it",
                path=loc.name(),
            )
        return await self._filespace(loc), loc

    def _not_here(self, loc: _Location, what: str) -> AccessDeniedError:
        level = "filespace" if loc.depth == 2 else "workspace"
        return AccessDeniedError(
            f"cannot {what} {loc.name() or PROTOCOL + '://'}: a {level} is managed on the hub "
            f"('lucidlink hub {level} ...'), not through fsspec",
            path=loc.name(),
        )

    async def _with_parent(
        self, filespace: AsyncFilespace, loc: _Location, op: Callable[[], Awaitable[T]]
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
        loc = await self._location(path)
        if loc.depth == 0:
            workspace = await self._conn.workspace()
            return [_dir_info(workspace.name)], True
        if loc.depth == 1:
            workspace = await self._conn.workspace()
            return [
                _dir_info(
                    f"{loc.workspace}/{f.name}", created=f.created / 1e9, block_size=f.block_size
                )
                for f in await workspace.list_filespaces()
            ], True
        filespace = await self._filespace(loc)
        try:
            entries = await filespace.fs.read_dir(loc.inner)
        except NotADirectoryError:  # fsspec: ls of a file lists the file
            return [_entry_info(loc.name(), await filespace.fs.get_entry(loc.inner))], False
        base = "" if loc.inner == "/" else loc.inner
        return [_entry_info(loc.name(f"{base}/{e.name}"), e) for e in entries], True

    async def _info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        loc = await self._location(path)
        if loc.depth <= 1:
            return _dir_info(loc.name())
        name = loc.name()
        cached = None if kwargs.get("refresh") else self._cached_entry(name)
        if cached is not None:
            return cached
        filespace = await self._filespace(loc)
        try:
            entry = await filespace.fs.get_entry(loc.inner)
        except NotADirectoryError as err:  # a file stands where a parent should be
            raise PathNotFoundError(f"{name} does not exist: {err}", path=name) from None
        info = _entry_info(name, entry)
        if loc.depth == 2:
            info["block_size"] = filespace.block_size
        return info

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
        return _utc(info["mtime"])

    async def _created(self, path: str) -> datetime.datetime:
        """The creation time (UTC); the hub's ``ctime``, which a rename also sets."""
        info = await self._info(path)
        if "ctime" not in info:
            raise NotImplementedError(
                f"{info['name'] or PROTOCOL + '://'} is a workspace; it has no times"
            )
        return _utc(info["ctime"])

    async def _checksum(self, path: str) -> int:
        """Stable for one content version: a hash of the size and the block hashes."""
        loc = await self._location(path)
        if loc.depth == 3:
            filespace = await self._filespace(loc)
            try:
                return (await _Version.fetch(filespace, loc.inner)).checksum()
            except IsADirectoryError:
                pass
        return int(tokenize(await self._info(path, refresh=True)), 16)

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

    # -- reading contents ----------------------------------------------------------------

    async def _cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        filespace, loc = await self._target(path, "read")
        async with filespace.fs.open(loc.inner, "rb") as f:
            lo, hi = _limits(start, end, f.size)
            buffer = bytearray(hi - lo)
            if buffer:
                del buffer[await _read_at(f, lo, buffer) :]
            return bytes(buffer)

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

        A file's ranges are sorted by offset and dealt to up to :data:`RANGE_STREAMS`
        concurrent read handles, so neighbouring ranges reuse a block already in memory
        and dense ranges trigger the core's read-ahead; the block URLs of all of them are
        signed in one batch first. ``max_gap`` is accepted and not needed: ranges in the
        same block already cost one download.
        """
        if not isinstance(paths, list):
            raise TypeError("paths must be a list")
        n = len(paths)
        starts_list = list(starts) if isinstance(starts, Iterable) else [starts] * n
        ends_list = list(ends) if isinstance(ends, Iterable) else [ends] * n
        if len(starts_list) != n or len(ends_list) != n:
            raise ValueError("paths, starts and ends must have the same length")
        out: list[Any] = [None] * n
        by_path: dict[str, list[int]] = {}
        for i, p in enumerate(paths):
            by_path.setdefault(self._strip_protocol(p), []).append(i)

        async def one_file(path: str, indices: list[int]) -> None:
            try:
                filespace, loc = await self._target(path, "read")
                version = await _Version.fetch(filespace, loc.inner)
                spans = {i: _limits(starts_list[i], ends_list[i], version.size) for i in indices}
                order = sorted(
                    (i for i in indices if spans[i][1] > spans[i][0]), key=lambda i: spans[i]
                )
                hashes = [h for i in order for h in version.hashes(*spans[i])]
                await filespace._blocks.prepare_get_urls(list(dict.fromkeys(hashes)))
            except Exception as exc:
                for i in indices:
                    out[i] = exc
                return
            for i in indices:
                if spans[i][1] <= spans[i][0]:
                    out[i] = b""
            if not order:
                return
            streams = min(len(order), RANGE_STREAMS)
            share = -(-len(order) // streams)

            async def stream(group: list[int]) -> None:
                handle = await version.open()
                try:
                    for i in group:
                        lo, hi = spans[i]
                        buffer = bytearray(hi - lo)
                        try:
                            del buffer[await _read_at(handle, lo, buffer) :]
                            out[i] = bytes(buffer)
                        except Exception as exc:
                            out[i] = exc
                finally:
                    await handle.close()

            await asyncio.gather(
                *(stream(order[k : k + share]) for k in range(0, len(order), share))
            )

        await asyncio.gather(*(one_file(p, idx) for p, idx in by_path.items()))
        if on_error != "return":
            for result in out:
                if isinstance(result, BaseException):
                    raise result
        return out

    async def _get_file(
        self, rpath: str, lpath: Any, callback: Callback = DEFAULT_CALLBACK, **kwargs: Any
    ) -> None:
        try:
            filespace, loc = await self._target(rpath, "download")
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
                while chunk := await _next_chunk(afile):
                    await anyio.to_thread.run_sync(local.write, chunk)
                    callback.relative_update(len(chunk))
            finally:
                if own:
                    await anyio.to_thread.run_sync(local.close)

    # -- writing contents ----------------------------------------------------------------

    async def _open_handle(self, path: str, mode: str) -> LucidLinkAsyncFile:
        if mode not in BINARY_MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(BINARY_MODES)}")
        filespace, loc = await self._target(path, "open")

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
            filespace, loc = await self._target(path, "touch")
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

    # -- changing the namespace ------------------------------------------------------------

    async def _mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        loc = await self._location(path)
        if loc.depth <= 2:
            await self._check_top(loc, exist_ok=False)
            return
        filespace = await self._filespace(loc)
        await filespace._before(loc.inner, "exact")
        try:
            # AsyncFilesystem.create_dir is always parents + exist_ok; fsspec's mkdir is neither.
            await filespace._call(
                "POST",
                "/mkdir",
                json={"path": loc.inner, "parents": create_parents, "exist_ok": False},
            )
        finally:
            self.invalidate_cache(loc.name())

    async def _makedirs(self, path: str, exist_ok: bool = False) -> None:
        loc = await self._location(path)
        if loc.depth <= 2:
            await self._check_top(loc, exist_ok=exist_ok)
            return
        filespace = await self._filespace(loc)
        try:
            if exist_ok:
                await filespace.fs.create_dir(loc.inner)
            else:
                await filespace._before(loc.inner, "exact")
                await filespace._call(
                    "POST", "/mkdir", json={"path": loc.inner, "parents": True, "exist_ok": False}
                )
        finally:
            self.invalidate_cache(loc.name())

    async def _check_top(self, loc: _Location, *, exist_ok: bool) -> None:
        """mkdir of a workspace or filespace: they exist, or only the hub can make them."""
        if loc.depth == 2:
            try:
                await self._filespace(loc)
            except FileNotFoundError:
                raise self._not_here(loc, "create") from None
        if not exist_ok:
            raise PathExistsError(
                f"{loc.name() or PROTOCOL + '://'} already exists", path=loc.name()
            )

    async def _rmdir(self, path: str) -> None:
        """Remove an empty directory."""
        loc = await self._location(path)
        if loc.depth <= 2:
            raise self._not_here(loc, "remove")
        filespace = await self._filespace(loc)
        try:
            await filespace.fs.delete_dir(loc.inner, recursive=False)
        finally:
            self.invalidate_cache(loc.name())

    async def _rm_file(self, path: str, **kwargs: Any) -> None:
        filespace, loc = await self._target(path, "delete")
        try:
            await filespace.fs.delete(loc.inner)
        finally:
            self.invalidate_cache(loc.name())

    async def _rm_one(self, path: str, recursive: bool) -> None:
        loc = await self._location(path)
        if loc.depth <= 2:
            raise self._not_here(loc, "delete")
        filespace = await self._filespace(loc)
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

    async def _cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copy a file; inside one filespace on the hub, sharing blocks (no bytes move)."""
        src_loc = await self._location(path1)
        if src_loc.depth <= 2:  # a filespace root within a recursive copy
            await self._makedirs(path2, exist_ok=True)
            return
        src_fs = await self._filespace(src_loc)
        dst_fs, dst_loc = await self._target(path2, "overwrite")
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

    async def _copy_across(self, src_fs: AsyncFilespace, src_loc: _Location, path2: str) -> None:
        """Copy a file to another filespace: its bytes are streamed through this client."""
        try:
            source = await src_fs.fs.open(src_loc.inner, "rb")
        except IsADirectoryError:
            await self._makedirs(path2, exist_ok=True)
            return
        async with source:
            await self._write_from(path2, "wb", lambda: _next_chunk(source))

    async def _mv_file(self, path1: str, path2: str) -> None:
        """Move one file or directory; inside one filespace a single rename on the hub."""
        src_loc = await self._location(path1)
        dst_loc = await self._location(path2)
        for loc in (src_loc, dst_loc):
            if loc.depth <= 2:
                raise self._not_here(loc, "move")
        src_fs = await self._filespace(src_loc)
        dst_fs = await self._filespace(dst_loc)
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
        """A buffered file over the core's streaming file (see the module docstring)."""
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
        handle = sync(self.loop, self._open_handle, target, mode)
        raw = RawFile(handle)
        buffering = block_size or DEFAULT_BUFFER_SIZE
        buffered: Any
        if "+" in mode:
            buffered = LucidLinkBufferedRandom(raw, buffering)
        elif mode == "rb":
            buffered = LucidLinkBufferedReader(raw, buffering)
        else:
            buffered = LucidLinkBufferedWriter(raw, buffering)
        buffered._attach(self, path, transaction_path)
        return buffered  # type: ignore[no-any-return]

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
    rmdir = sync_wrapper(_rmdir)
    touch = sync_wrapper(_touch)
    modified = sync_wrapper(_modified)
    created = sync_wrapper(_created)
    checksum = sync_wrapper(_checksum)
