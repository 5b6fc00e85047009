"""``filespace.fs``: the namespace and file operations of a linked filespace."""

from __future__ import annotations

import asyncio
import warnings
from typing import TYPE_CHECKING, Any

from lucidlink.aio import symlinks
from lucidlink.aio._util import AwaitableContext
from lucidlink.aio.blockref import BlockRef
from lucidlink.aio.dirlearn import DirectoryLearner
from lucidlink.aio.file import MEM_WRITE_MAX, AsyncFile
from lucidlink.aio.locks import DEFAULT_LOCK_TIMEOUT, HeldLock, acquire
from lucidlink.aio.metacache import FileAnswer
from lucidlink.aio.pending import PendingCommit, whole_block
from lucidlink.aio.ranges import RangeLocks
from lucidlink.exceptions import (
    ConfigurationError,
    IsADirectoryFilespaceError,
    LucidLinkError,
    NotADirectoryFilespaceError,
    PathExistsError,
    PathNotFoundError,
    ReadOnlyError,
)
from lucidlink.paths import join_path, normalize_path, parent_and_name
from lucidlink.shared import BINARY_MODES
from lucidlink.types import DirEntry, FilespaceSize, FilespaceStatistics, LockInfo, LockType

if TYPE_CHECKING:
    from lucidlink.aio.link import FilespaceLink

_PAGE = 5000
_READERS = 32
"""Files ``read_files`` reads at once when their bytes are not inline."""
LEGACY_MODES = {"r": "rb", "w": "w+b", "a": "a+b"}
"""The binary modes of ``open_legacy``'s modes."""


_TYPES = {"file": "file", "external": "file", "dir": "dir", "link": "link"}
"""``DirEntry.type`` of each hub node type (a Connect file is a file)."""


def entry_from_json(data: dict[str, Any]) -> DirEntry:
    """A :class:`DirEntry` from the hub's entry JSON."""
    kind = data["type"]
    # The hub lists linked files (LinkedFilesResult.file_ids) by their entry id, so
    # that id is also the entry's external id: llconnect's mirror matches the two.
    # Positional arguments (the order of DirEntry's fields): a listing builds thousands.
    return DirEntry(data["name"], int(data["size"]), _TYPES.get(kind, "unknown"), str(data["id"]),
                    int(data["id"]) if kind == "external" else 0, int(data["ctime"]),
                    int(data["mtime"]), data["path"], data.get("target", ""))


def _inline_content(answer: Any) -> bytes | None:
    """A plain file's whole content when its answer holds every byte inline."""
    if answer is None or isinstance(answer, LucidLinkError):
        return None
    if answer.info["entry"]["type"] != "file" or answer.info.get("external"):
        return None
    return answer.content()  # type: ignore[no-any-return]


def _read_only(path: str) -> ReadOnlyError:
    return ReadOnlyError(f"{path} is linked from a Connect data store and is read-only; open it with 'rb', or "
                         "write to another path", path=path)


class AsyncFilesystem:
    """File and directory operations on one linked filespace (paths are absolute, ``/``-separated)."""

    def __init__(self, link: FilespaceLink) -> None:
        self._link = link
        self._ranges = RangeLocks(link)
        self._infos = link.files
        self._learner = DirectoryLearner(link)

    def __repr__(self) -> str:
        return f"<AsyncFilesystem of {self._link.full_name}>"

    async def _call(self, method: str, suffix: str, **kw: Any) -> Any:
        return await self._link.call(method, suffix, **kw)

    # -- reading the namespace ---------------------------------------------------------

    async def get_entry(self, path: str) -> DirEntry:
        """The entry at ``path`` (a link's own: not followed); ``FileNotFoundError`` if missing."""
        path = normalize_path(path)
        await self._link.before(path, "exact")
        cache = self._link.metacache
        found = cache.entry(path)
        if found is None and self._link.config.statahead:
            found = await self._learner.stat_ahead(path)
        if found is None:
            ticket = cache.ticket()
            found = await self._call("GET", "/entry", params={"path": path})
            cache.put_entry(ticket, found)
        return entry_from_json(found)

    async def _cached_kind(self, path: str) -> str | None:
        """The type of a cached entry at ``path`` that is not a link, or ``None``."""
        path = normalize_path(path)
        await self._link.before(path, "exact")
        found = self._link.metacache.entry(path)
        return None if found is None or found["type"] == "link" else str(found["type"])

    async def file_exists(self, path: str) -> bool:
        """Whether ``path`` is an existing file (links followed; not through a dangling one)."""
        kind = await self._cached_kind(path)
        if kind is not None:
            return kind in ("file", "external")
        entry = await symlinks.resolve_or_none(self._link, path)
        return entry is not None and entry_from_json(entry).is_file()

    async def dir_exists(self, path: str) -> bool:
        """Whether ``path`` is an existing directory (links followed)."""
        kind = await self._cached_kind(path)
        if kind is not None:
            return kind == "dir"
        entry = await symlinks.resolve_or_none(self._link, path)
        return entry is not None and entry_from_json(entry).is_dir()

    async def read_dir(self, path: str = "/") -> list[DirEntry]:
        """The entries of a directory, by name."""
        path = normalize_path(path)
        await self._link.before(path, "children")
        cache = self._link.metacache
        found = cache.listing(path)
        if found is None:
            found = await self._learner.listing(path, _PAGE, complete=True)
            assert found is not None
        return [entry_from_json(e) for e in found]

    async def list_dir(self, path: str = "/") -> list[str]:
        """The names in a directory, sorted."""
        return [e.name for e in await self.read_dir(path)]

    # -- symbolic links ----------------------------------------------------------------

    async def create_symlink(self, target_path: str, link_path: str) -> None:
        """Create the link ``link_path`` to ``target_path`` (absolute, or relative to the link)."""
        await symlinks.create(self._link, target_path, link_path)

    async def read_symlink(self, link_path: str) -> str:
        """The target of the link ``link_path``; ``NotASymlinkError`` (``EINVAL``) if not a link."""
        return await symlinks.read(self._link, link_path)

    # -- changing the namespace --------------------------------------------------------

    async def create_dir(self, path: str, *, parents: bool = True, exist_ok: bool = True) -> None:
        """Create a directory, by default with any missing parents and no error if it exists.

        Like :func:`os.makedirs`; ``parents=False`` raises ``FileNotFoundError`` when
        the parent is missing, ``exist_ok=False`` ``FileExistsError`` when the path
        exists (as :func:`os.mkdir` does with both).
        """
        path = normalize_path(path)
        self._link.require_writable("create directories")
        await self._link.before(path, "exact")
        await self._call(
            "POST", "/mkdir", json={"path": path, "parents": parents, "exist_ok": exist_ok}
        )

    async def delete(self, path: str) -> None:
        """Delete a file; ``IsADirectoryError`` for a directory (use :meth:`delete_dir`)."""
        path = normalize_path(path)
        await self._link.before(path, "exact")
        await self._call("POST", "/delete", json={"path": path, "type": "file"})

    async def delete_dir(self, path: str, recursive: bool = False) -> None:
        """Delete a directory; with ``recursive`` everything in it too, in one hub call."""
        path = normalize_path(path)
        await self._link.before(path, "subtree")
        await self._call("POST", "/delete", json={"path": path, "type": "dir", "recursive": recursive})

    async def move(self, src: str, dst: str, overwrite: bool = True) -> None:
        """Rename/move (one update), replacing as POSIX ``rename`` unless ``overwrite=False``."""
        src, dst = normalize_path(src), normalize_path(dst)
        await self._link.before(src, "subtree")
        await self._link.before(dst, "subtree")
        await self._call("POST", "/move", json={"src": src, "dst": dst, "overwrite": overwrite})

    async def copy_file(self, src: str, dst: str, overwrite: bool = True) -> None:
        """Copy a file without moving bytes (the copy shares blocks); a link is copied as a link."""
        src, dst = normalize_path(src), normalize_path(dst)
        await self._link.before(src, "exact")
        await self._link.before(dst, "exact")
        await self._call("POST", "/copy", json={"src": src, "dst": dst, "overwrite": overwrite})

    async def truncate(self, path: str, size: int) -> None:
        """Shrink or extend a file to ``size`` bytes (extension reads as zeros; links followed)."""
        path = normalize_path(path)
        if not isinstance(size, int) or size < 0:
            raise ConfigurationError(f"truncate size must be a non-negative integer, not {size!r}")
        await self._link.before(path, "exact")
        try:
            await self._call("POST", "/truncate", json={"path": path, "size": size})
        except (IsADirectoryFilespaceError, NotADirectoryFilespaceError) as err:  # a link?
            target = (await symlinks.followed(self._link, path, err)).path
            await self._link.before(target, "exact")
            await self._call("POST", "/truncate", json={"path": target, "size": size})

    # -- contents ----------------------------------------------------------------------

    def open(self, path: str, mode: str = "rb", lock_type: str = "",
             lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT) -> AwaitableContext[AsyncFile]:
        """Open a file, like the builtin ``open``.

        Blocking: ``with fs.open(p, "w") as f`` with every builtin mode, text ones
        included, and ``buffering``/``encoding``/``errors``/``newline``. Async:
        ``async with fs.open(p, "rb") as f`` (or ``f = await fs.open(...)``) with the
        binary modes ``rb wb ab xb r+b w+b a+b x+b``. A written file is committed
        after ``close`` (within ``fs.flush.delay_ms``); ``filespace.sync_all()`` waits
        for it.

        ``lock_type`` ``"shared"`` or ``"exclusive"`` takes a whole-file lock, held
        until the handle closes, waiting up to ``lock_timeout`` seconds (``None``: for
        ever, ``0``: not at all) before raising ``LockTimeoutError`` (a
        ``TimeoutError``). A locked handle's changes are committed before ``close``
        returns and the lock is released.
        """
        return AwaitableContext(self._open(path, mode, lock_type, lock_timeout))

    async def _open(self, path: str, mode: str, lock_type: str, lock_timeout: float | None,
                    follows: int = 0) -> AsyncFile:
        if mode not in BINARY_MODES:
            raise ConfigurationError(
                f"mode {mode!r} is not a binary mode ({', '.join(BINARY_MODES)}); async files are "
                "binary, the blocking API adds text modes"
            )
        try:
            lock = LockType(lock_type or "")
        except ValueError:
            raise ConfigurationError(
                f"lock_type {lock_type!r} is invalid; use '', 'shared' or 'exclusive'"
            ) from None
        if lock_timeout is not None and (not isinstance(lock_timeout, (int, float)) or lock_timeout < 0):
            raise ConfigurationError(f"lock_timeout must be None or a number >= 0, not {lock_timeout!r}")
        path = normalize_path(path)
        if path == "/":
            raise IsADirectoryFilespaceError("/ is a directory; it cannot be opened as a file", path=path)
        self._link.check_linked()
        if mode[0] != "r":
            self._link.require_writable(f"open {path} for writing")
        if mode[0] != "w":
            await self._link.before(path, "exact")
        held = None
        if lock is not LockType.NONE:
            if lock is LockType.EXCLUSIVE:
                self._link.require_writable(f"lock {path} exclusively")
            held = await acquire(self._link, path, lock, must_exist=mode[0] == "r",
                                 timeout=lock_timeout)
        try:
            return await self._open_locked(path, mode, held)
        except symlinks.FollowLink as link:  # the path is a link (or under one): open its target
            if held is not None:
                await held.release()
            if follows >= symlinks.MAX_FOLLOWS:
                raise symlinks.too_many(path) from None
            return await self._open(link.path, mode, lock_type, lock_timeout, follows + 1)
        except BaseException:
            if held is not None:
                await held.release()
            raise

    async def _open_locked(self, path: str, mode: str, held: HeldLock | None) -> AsyncFile:
        info = None
        if mode[0] in "ra":
            try:
                # A lock holder reads what the last holder committed: the hub's answer,
                # not one the journal may not have corrected yet.
                answer = await self._infos.get(path) if mode == "rb" and held is None else None
                if answer is None:
                    info = await self._call("GET", "/file", params={"path": path})
                else:
                    info = self._accepted(answer)
            except PathNotFoundError:
                if mode[0] == "r":
                    raise
            except NotADirectoryFilespaceError as err:  # perhaps a link on the way
                raise await symlinks.followed(self._link, path, err) from None
            if info is not None and info["entry"]["type"] == "link":
                raise await symlinks.followed(self._link, path)
        if info is None:
            await self._check_creatable(path, exclusive=mode[0] == "x")
        return self._handle(path, mode, info, held)

    def _accepted(self, answer: FileAnswer) -> dict[str, Any]:
        """The answer's JSON, once the block store knows the blocks it carried (a read
        then takes them from memory instead of downloading them)."""
        for digest, data in answer.inline.items():
            self._link.blocks.accept_inline(digest, data)
        return answer.info

    def _handle(self, path: str, mode: str, info: dict[str, Any] | None,
                held: HeldLock | None) -> AsyncFile:
        block_size = info["block_size"] if info else self._link.block_size
        entry = info["entry"] if info else None
        blocks: Any = {b["index"]: BlockRef(b["hash"], b["length"], b["used"]) for b in info["blocks"]} if info else {}
        source = None
        if info and info.get("external"):  # Connect: slots are ranges of an S3 object
            if mode != "rb":
                raise _read_only(path)
            blocks, source = self._link.external.open(path, info)
        handle = AsyncFile(
            self._link, path, mode,
            size=entry["size"] if entry else 0,
            version=entry["version"] if entry else None,
            block_size=block_size,
            blocks=blocks,
            exists=info is not None,
            lock=held,
            source=source,
        )
        self._link.open_files.add(handle)
        return handle

    async def _check_creatable(self, path: str, *, exclusive: bool) -> None:
        if exclusive and path in self._link.writeback.pending_paths:
            raise PathExistsError(f"{path} already exists (opened with 'x')", path=path)
        if await self._learner.known_creatable(path, exclusive=exclusive):
            return
        try:
            entry = await self.get_entry(path)
        except PathNotFoundError as err:
            parent, _ = parent_and_name(path)
            state = err.details.get("parent")
            if state == "missing":
                raise PathNotFoundError(
                    f"cannot create {path}: the directory {parent} does not exist; create it with create_dir",
                    path=path,
                ) from None
            if state == "file":
                raise NotADirectoryFilespaceError(f"cannot create {path}: {parent} is a file", path=path) from None
            return
        except NotADirectoryFilespaceError as err:
            parent, name = parent_and_name(path)
            found = await symlinks.resolve_or_none(self._link, parent)  # a link to a directory?
            if found is not None and found["type"] == "dir" and found["path"] != parent:
                raise symlinks.FollowLink(join_path(found["path"], name)) from None
            raise NotADirectoryFilespaceError(f"cannot create {path}: {err}", path=path) from None
        if exclusive:  # as the builtin: O_CREAT|O_EXCL on anything that exists is EEXIST
            raise PathExistsError(f"{path} already exists (opened with 'x')", path=path)
        if entry.is_link():  # writing through a link writes its target (a dangling one: error)
            raise await symlinks.followed(self._link, path)
        if entry.is_dir():
            raise IsADirectoryFilespaceError(f"{path} is a directory; it cannot be opened as a file", path=path)
        if entry.file_id_external:
            raise _read_only(path)

    def open_legacy(self, path: str, mode: str = "r") -> AwaitableContext[AsyncFile]:
        """Deprecated (``DeprecationWarning``): use :meth:`open`.

        LucidLink's legacy open: ``"r"`` reads, ``"w"`` creates or truncates (and reads),
        ``"a"`` appends (and reads); the async form returns the :class:`AsyncFile`, the
        blocking one a ``FileHandle`` reading and writing at explicit offsets.
        """
        warnings.warn("fs.open_legacy() is deprecated; use fs.open()", DeprecationWarning,
                      stacklevel=2)
        if mode not in LEGACY_MODES:
            raise ConfigurationError(f"invalid mode: {mode!r} (open_legacy takes 'r', 'w' or 'a')")
        return self.open(path, LEGACY_MODES[mode])

    async def read_file(self, path: str) -> bytes:
        """The whole content of a file."""
        inner = normalize_path(path)
        if inner != "/":
            self._link.check_linked()
            await self._link.before(inner, "exact")
            try:
                answer = await self._infos.get(inner)
            except LucidLinkError:
                answer = None  # open() raises the error as it always has (or follows a link)
            content = _inline_content(answer)
            if content is not None:
                return content
            if answer is not None and answer.info["entry"]["type"] in ("file", "external"):
                # A file whose blocks are not all inline: read them, no second ask.
                async with self._handle(inner, "rb", self._accepted(answer), None) as f:
                    return await f.read()
        async with self.open(path, "rb") as f:
            return await f.read()

    async def read_files(self, paths: list[str]) -> list[bytes]:
        """The whole contents of several files, in order, in as few hub calls as possible.

        Each path reads as :meth:`read_file` would (links followed); the first path
        that fails raises its error, as ``read_file`` of it would.
        """
        inner = [normalize_path(p) for p in paths]
        self._link.check_linked()
        if any(self._link.writeback.affects(p, "exact") for p in inner):
            await self._link.before("/", "all")
        try:
            answers: list[Any] = await self._infos.many(inner)
        except LucidLinkError:  # a hub without batch reads: one by one
            answers = [None] * len(inner)
        out: list[bytes | None] = [_inline_content(a) for a in answers]
        slow = [i for i, data in enumerate(out) if data is None]
        if slow:
            limit = asyncio.Semaphore(_READERS)

            async def one(i: int) -> bytes:
                async with limit:
                    return await self.read_file(paths[i])

            for i, data in zip(slow, await asyncio.gather(*(one(i) for i in slow)), strict=True):
                out[i] = data
        return [data for data in out if data is not None]

    async def write_file(self, path: str, data: bytes) -> None:
        """Create or replace a file with ``data``."""
        if self.write_file_nowait(path, data):
            # Queued without suspending: yield once, or a loop of small writes would hold
            # the event loop (other tasks, the flusher) until the queue's memory filled.
            await asyncio.sleep(0)
            return
        async with self.open(path, "wb") as f:
            await f.write(data)

    def write_file_nowait(self, path: str, data: bytes) -> bool:
        """Queue a small :meth:`write_file` at once, from any thread, without a trip to
        the event loop; ``False`` (nothing done) when that cannot be decided here. Then
        call :meth:`write_file`, which also raises what is wrong.

        It queues ``bytes`` (or a ``bytearray``, copied) of at most one block and 64 KiB,
        when the daemon journals no changes, the write-back queue has memory for them,
        and the metadata cache proves the parent a directory and ``path`` absent or a
        plain file. The change is the one ``write_file`` would queue, and it is queued
        before anything this thread asks next; ``sync_all`` waits for it. The blocking
        ``write_file`` tries this first, so a loop of small writes makes no thread switch
        per file. Conflicts the cache has not learned of yet are settled by the hub at
        commit, as for any write.
        """
        if not isinstance(data, (bytes, bytearray)) or not 0 < len(data) <= MEM_WRITE_MAX:
            return False
        link = self._link
        if len(data) > link.block_size or not self._nowait_allowed():
            return False
        path = normalize_path(path)
        if not link.metacache.peek_writable_file(path):
            return False
        data = bytes(data)
        blocks, to_upload = whole_block(data)
        commit = PendingCommit.new(
            filespace_id=link.id, path=path, size=len(data), mode="create", replace=True,
            truncate_to=0, blocks=blocks, to_upload=to_upload, staging=None,
            block_size=link.block_size, inline=data)
        return link.writeback.enqueue_nowait(commit)

    def can_write_nowait(self, path: str) -> bool:
        """Whether :meth:`write_file_nowait` may queue a small write of ``path`` now: the
        filespace is linked with a read-write token on a daemon that journals no changes,
        and the metadata cache proves the parent a directory and ``path`` absent or a
        plain file. Safe from any thread; it changes nothing."""
        return self._nowait_allowed() and self._link.metacache.peek_writable_file(
            normalize_path(path))

    def _nowait_allowed(self) -> bool:
        """Whether this link may queue small writes from the calling thread at all: linked
        with a read-write token, on a daemon that journals no changes."""
        link = self._link
        return link.accepting and not link.read_only and not link.services.durable

    # -- statistics --------------------------------------------------------------------

    async def get_statistics(self) -> FilespaceStatistics:
        """Counts and sizes of the whole filespace."""
        await self._link.before("/", "all")
        s = await self._call("GET", "/statistics")
        return FilespaceStatistics(
            file_count=s["file_count"], directory_count=s["directory_count"], symlink_count=s["symlink_count"],
            entries_size=s["entries_size"], data_size=s["data_size"], storage_size=s["storage_size"],
            external_files_size=s["external_files_size"], external_files_count=s["external_files_count"],
        )

    async def get_size(self) -> FilespaceSize:
        """Sizes of the whole filespace."""
        await self._link.before("/", "all")
        s = await self._call("GET", "/statistics")
        return FilespaceSize(
            entries=s["entries"], data=s["data_size"], storage=s["storage_size"],
            external_files_size=s["external_files_size"], external_files_count=s["external_files_count"],
        )

    # -- locks -------------------------------------------------------------------------

    async def get_locks(self, path: str | None = None) -> list[LockInfo]:
        """Locks held and awaited on ``path`` or every path (another token's ``session_id``: "")."""
        params = {"path": normalize_path(path)} if path is not None else None
        body = await self._call("GET", "/locks", params=params)
        return [LockInfo(path=r["path"], mode=r["mode"], state=r["state"], session_id=r["session_id"] or "",
                         client=r["client"] or "", since=r["since"], expires=r["expires"], token=r["token"])
                for r in body["locks"]]

    # -- byte-range locks (lucidlink.aio.ranges) ----------------------------------------

    async def create(self, path: str) -> int:
        """Create an empty file; return a handle id for the byte-range lock methods.

        ``FileExistsError`` if it exists. Handles last as long as the filespace link.
        """
        async with self.open(path, "xb"):
            pass
        await self._link.before(normalize_path(path), "exact")  # committed, as LucidLink's
        return self._ranges.add(normalize_path(path))

    async def open_handle(self, path: str) -> int:
        """A handle id on an existing file, for the byte-range lock methods (ours only)."""
        if not (await self.get_entry(path)).is_file():
            raise IsADirectoryFilespaceError(f"{path} is not a file; only files have handles",
                                             path=path)
        return self._ranges.add(normalize_path(path))

    async def lock_byte_range(self, handle_id: int, offset: int, length: int,
                              lock_type: str = "exclusive", blocking: bool = True) -> bool:
        """Lock bytes ``[offset, offset+length)`` (``length`` 0: to the end) of a handle's file.

        Enforced by the hub across clients; ``False`` if not ``blocking`` and another
        handle holds an overlapping range (shared ranges overlap shared ones).
        """
        return await self._ranges.lock(handle_id, offset, length, lock_type, blocking)

    async def unlock_byte_range(self, handle_id: int, offset: int, length: int) -> None:
        """Release the handle's byte-range locks lying within ``[offset, offset+length)``."""
        await self._ranges.unlock(handle_id, offset, length)

    async def unlock_all_byte_ranges(self, handle_id: int) -> None:
        """Release every byte-range lock the handle holds."""
        await self._ranges.unlock(handle_id, None, None)
