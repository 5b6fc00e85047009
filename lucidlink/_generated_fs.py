# Generated from lucidlink.aio by tools/generate_sync.py: do not edit.
"""Blocking twins of the classes and factories of :mod:`lucidlink.aio`.

Each class wraps an instance of its ``Async`` counterpart and runs its coroutines on
the background event loop (:mod:`lucidlink._loop`); the runtime is :mod:`lucidlink._facade`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import lucidlink.aio as _aio
from lucidlink import _facade, _loop
from lucidlink._facade import FilesystemFacade
from lucidlink.aio import (
    DataStoreInfo,
    DirEntry,
    ExternalFileLink,
    FilespaceSize,
    FilespaceStatistics,
    LinkedFilesResult,
    LockInfo,
    S3Credentials,
    S3DataStoreConfig,
)

__all__ = ["Filesystem", "Connect"]


class Filesystem(FilesystemFacade):
    """File and directory operations on one linked filespace (paths are absolute, ``/``-separated)."""

    __slots__ = ()
    _async_class = _aio.AsyncFilesystem
    _async: _aio.AsyncFilesystem

    def get_entry(self, path: str) -> DirEntry:
        """The entry at ``path`` (a link's own: not followed); ``FileNotFoundError`` if missing."""
        return _loop.run(self._async.get_entry(path))

    def file_exists(self, path: str) -> bool:
        """Whether ``path`` is an existing file (links followed; not through a dangling one)."""
        return _loop.run(self._async.file_exists(path))

    def dir_exists(self, path: str) -> bool:
        """Whether ``path`` is an existing directory (links followed)."""
        return _loop.run(self._async.dir_exists(path))

    def read_dir(self, path: str = "/") -> list[DirEntry]:
        """The entries of a directory, by name."""
        return _loop.run(self._async.read_dir(path))

    def list_dir(self, path: str = "/") -> list[str]:
        """The names in a directory, sorted."""
        return _loop.run(self._async.list_dir(path))

    def create_symlink(self, target_path: str, link_path: str) -> None:
        """Create the link ``link_path`` to ``target_path`` (absolute, or relative to the link)."""
        return _loop.run(self._async.create_symlink(target_path, link_path))

    def read_symlink(self, link_path: str) -> str:
        """The target of the link ``link_path``; ``NotASymlinkError`` (``EINVAL``) if not a link."""
        return _loop.run(self._async.read_symlink(link_path))

    def create_dir(self, path: str, *, parents: bool = True, exist_ok: bool = True) -> None:
        """Create a directory, by default with any missing parents and no error if it exists.

        Like :func:`os.makedirs`; ``parents=False`` raises ``FileNotFoundError`` when
        the parent is missing, ``exist_ok=False`` ``FileExistsError`` when the path
        exists (as :func:`os.mkdir` does with both).
        """
        return _loop.run(self._async.create_dir(path, parents=parents, exist_ok=exist_ok))

    def delete(self, path: str) -> None:
        """Delete a file; ``IsADirectoryError`` for a directory (use :meth:`delete_dir`)."""
        return _loop.run(self._async.delete(path))

    def delete_dir(self, path: str, recursive: bool = False) -> None:
        """Delete a directory; with ``recursive`` everything in it too, in one hub call."""
        return _loop.run(self._async.delete_dir(path, recursive))

    def move(self, src: str, dst: str, overwrite: bool = True) -> None:
        """Rename/move (one update), replacing as POSIX ``rename`` unless ``overwrite=False``."""
        return _loop.run(self._async.move(src, dst, overwrite))

    def copy_file(self, src: str, dst: str, overwrite: bool = True) -> None:
        """Copy a file without moving bytes (the copy shares blocks); a link is copied as a link."""
        return _loop.run(self._async.copy_file(src, dst, overwrite))

    def truncate(self, path: str, size: int) -> None:
        """Shrink or extend a file to ``size`` bytes (extension reads as zeros; links followed)."""
        return _loop.run(self._async.truncate(path, size))

    def read_file(self, path: str) -> bytes:
        """The whole content of a file."""
        return _loop.run(self._async.read_file(path))

    def read_files(self, paths: list[str]) -> list[bytes]:
        """The whole contents of several files, in order, in as few hub calls as possible.

        Each path reads as :meth:`read_file` would (links followed); the first path
        that fails raises its error, as ``read_file`` of it would.
        """
        return _loop.run(self._async.read_files(paths))

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
        return self._async.write_file_nowait(path, data)

    def can_write_nowait(self, path: str) -> bool:
        """Whether :meth:`write_file_nowait` may queue a small write of ``path`` now: the
        filespace is linked with a read-write token on a daemon that journals no changes,
        and the metadata cache proves the parent a directory and ``path`` absent or a
        plain file. Safe from any thread; it changes nothing.
        """
        return self._async.can_write_nowait(path)

    def get_statistics(self) -> FilespaceStatistics:
        """Counts and sizes of the whole filespace."""
        return _loop.run(self._async.get_statistics())

    def get_size(self) -> FilespaceSize:
        """Sizes of the whole filespace."""
        return _loop.run(self._async.get_size())

    def get_locks(self, path: str | None = None) -> list[LockInfo]:
        """Locks held and awaited on ``path`` or every path (another token's ``session_id``: "")."""
        return _loop.run(self._async.get_locks(path))

    def create(self, path: str) -> int:
        """Create an empty file; return a handle id for the byte-range lock methods.

        ``FileExistsError`` if it exists. Handles last as long as the filespace link.
        """
        return _loop.run(self._async.create(path))

    def open_handle(self, path: str) -> int:
        """A handle id on an existing file, for the byte-range lock methods (ours only)."""
        return _loop.run(self._async.open_handle(path))

    def lock_byte_range(
        self,
        handle_id: int,
        offset: int,
        length: int,
        lock_type: str = "exclusive",
        blocking: bool = True,
    ) -> bool:
        """Lock bytes ``[offset, offset+length)`` (``length`` 0: to the end) of a handle's file.

        Enforced by the hub across clients; ``False`` if not ``blocking`` and another
        handle holds an overlapping range (shared ranges overlap shared ones).
        """
        return _loop.run(
            self._async.lock_byte_range(handle_id, offset, length, lock_type, blocking)
        )

    def unlock_byte_range(self, handle_id: int, offset: int, length: int) -> None:
        """Release the handle's byte-range locks lying within ``[offset, offset+length)``."""
        return _loop.run(self._async.unlock_byte_range(handle_id, offset, length))

    def unlock_all_byte_ranges(self, handle_id: int) -> None:
        """Release every byte-range lock the handle holds."""
        return _loop.run(self._async.unlock_all_byte_ranges(handle_id))


class Connect(_facade.Facade):
    """Connect operations of one linked filespace (``filespace.connect``)."""

    __slots__ = ()
    _async_class = _aio.AsyncConnect
    _async: _aio.AsyncConnect

    def are_data_stores_available(self) -> bool:
        """Whether this filespace can have data stores and linked files (Connect).

        LucidLink answers ``False`` for filespaces too old for Connect or where it is
        not configured; tools call it before any other Connect method. This hub
        serves Connect on every filespace, so the answer is ``True`` unless the hub
        has no Connect endpoints (an older hub). Any token that may use the filespace
        may ask; other errors (a revoked token, an unreachable hub) are raised.
        """
        return _loop.run(self._async.are_data_stores_available())

    def add_data_store(self, name: str, config: S3DataStoreConfig) -> DataStoreInfo:
        """Add an S3 data store to the filespace (admin token).

        The hub first checks that the store answers and the bucket exists (HeadBucket)
        and raises ``ConfigurationError`` saying which setting is wrong when not
        (``err.details["field"]``, ``err.details["reason"]``); ``FileExistsError``
        when the name is taken. The returned info carries no secret key.
        """
        return _loop.run(self._async.add_data_store(name, config))

    def list_data_stores(self) -> list[DataStoreInfo]:
        """The filespace's data stores, by name (``secret_key`` is always ``""``)."""
        return _loop.run(self._async.list_data_stores())

    def get_data_store(self, name: str) -> DataStoreInfo | None:
        """One data store, or ``None`` if the filespace has none of that name.

        The secret key is returned to admin tokens only; other tokens get ``""``.
        """
        return _loop.run(self._async.get_data_store(name))

    def rekey_data_store(
        self,
        name: str,
        credentials: S3Credentials | str | None = None,
        new_secret_key: str | None = None,
        *,
        new_access_key: str | None = None,
    ) -> DataStoreInfo:
        """Replace a data store's credentials (admin token); checked against the bucket first.

        Give them as ``S3Credentials(access_key=..., secret_key=...)``, or as
        ``new_access_key=..., new_secret_key=...`` (LucidLink's two forms), or as
        ``(name, access_key, secret_key)``. Linked files keep working: their next reads
        get URLs signed with the new keys. Returns the store's new info.
        """
        return _loop.run(
            self._async.rekey_data_store(
                name, credentials, new_secret_key, new_access_key=new_access_key
            )
        )

    def remove_data_store(self, name: str, force: bool = False) -> None:
        """Remove a data store (admin token).

        Refused (``FilespaceError``, ``err.details["linked_files"]``) while files are
        linked to it, unless ``force=True``, which unlinks them first. Objects in S3
        are never touched.
        """
        return _loop.run(self._async.remove_data_store(name, force))

    def link_file(
        self,
        file_path: str,
        data_store_name: str,
        object_id: str,
        size: int | None = None,
        checksum: str = "",
    ) -> DirEntry:
        """Link an S3 object as the read-only file ``file_path`` (one hub call; parents are created).

        Without ``size`` the hub asks S3 for the size, ETag and modification time. With
        ``size`` and ``checksum`` (best: the object's ETag as S3 lists it) it trusts
        them and makes no S3 call, which is what bulk linking wants. ``checksum=""``
        (the default, as in LucidLink's SDK) means not given; ``size`` without a
        checksum is refused (``ConfigurationError``). Linking over an
        existing path (``FileExistsError``), to a missing store or object
        (``NotFoundError``) fails and changes nothing.
        """
        return _loop.run(
            self._async.link_file(file_path, data_store_name, object_id, size, checksum)
        )

    def link_files(self, links: Iterable[ExternalFileLink | Mapping[str, Any]]) -> list[DirEntry]:
        """Link many objects: :class:`~lucidlink.types.ExternalFileLink` values, or dicts of
        ``link_file``'s arguments.

        Sent in batches of :data:`LINK_BATCH`, each one hub call and one transaction
        (all of a batch land or none); when a batch fails, the batches before it stay
        linked and the error says how many.
        """
        return _loop.run(self._async.link_files(links))

    def unlink_file(self, file_path: str) -> None:
        """Remove a linked file (the S3 object is not touched); ``ValueError`` for a regular file."""
        return _loop.run(self._async.unlink_file(file_path))

    def list_external_files(
        self, data_store_name: str, limit: int = 100, cursor: str | None = ""
    ) -> LinkedFilesResult:
        """One page of at most ``limit`` (1 to 5000) files linked to a data store, in link order.

        Pass ``cursor`` from the previous page while ``has_more`` (``""`` or ``None``:
        the first page). ``file_ids[i]`` equals ``DirEntry.file_id_external`` of that
        file. Pages are stable:
        links added or removed meanwhile never make a file appear twice or be skipped.
        """
        return _loop.run(self._async.list_external_files(data_store_name, limit, cursor))

    def count_external_files(self, data_store_name: str) -> int:
        """How many files are linked to a data store."""
        return _loop.run(self._async.count_external_files(data_store_name))
