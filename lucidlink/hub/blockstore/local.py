"""The embedded block store: a directory in the hub's data dir, served by the hub."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import anyio.to_thread
import structlog

from lucidlink.directio import AlignedBuffers, DirectReader, DirectWriter, LentBuffer
from lucidlink.hub import disk
from lucidlink.hub.blockstore.base import BlockStore
from lucidlink.hub.signing import UrlSigner

log = structlog.get_logger("lucidlink.hub")


class LocalBlockStore(BlockStore):
    """Blocks as files ``<root>/<filespace-id>/<hash[:2]>/<hash>`` (files 0600, directories 0700).

    A block is written durably before :meth:`write_verified` returns: to a temporary
    file that is fsynced, renamed into place, and whose directory is then fsynced (as
    is the parent of every directory on the way, once per process). A reader never
    sees a partial block, a retried upload is harmless, and a block the hub has called
    present survives a crash of the hub or of the machine.

    A block is written past the page cache where the file system allows it
    (:mod:`lucidlink.directio`): it is written once, and copying it into fresh
    page-cache pages cost the hub a third of its CPU per GiB uploaded. It is read back
    the same way (:meth:`lend_block`), so serving a block fills no fresh page-cache page
    either; at most :data:`MEMORY_ANSWERS` blocks are held in memory at once for that
    (:meth:`memory_slot`).
    """

    engine = "local"
    serves_blocks = True
    MEMORY_ANSWERS = 32
    """Blocks read whole into memory to answer GETs at once, each held until it is sent
    (128 MiB with 4 MiB blocks); past it, a GET streams from the file."""

    IDLE_BUFFERS = 8
    """Aligned 4 MiB buffers kept mapped while unused (32 MiB): as many as a reader's
    read-ahead asks for at once, so blocks lent to GETs reuse warm pages."""

    def __init__(self, root: Path | str, signer: UrlSigner | None = None) -> None:
        self.root = Path(root)
        self._root_text = str(self.root)
        self._signer = signer
        # Block files are written once and read past the page cache, through one set of
        # aligned buffers.
        self.buffers = AlignedBuffers(idle=self.IDLE_BUFFERS)
        """The aligned buffers its writes and reads share (tests count their reuse)."""
        self._writer = DirectWriter(buffers=self.buffers)
        self._reader = DirectReader(buffers=self.buffers)
        self._memory_answers = 0
        # Directories whose own entry this process has made durable (fsync of the parent).
        self._durable_dirs: set[Path] = set()

    def _open(self) -> None:
        disk.private_dir(self.root)
        for fs_dir in self._subdirs(self.root):
            disk.tighten(fs_dir, disk.PRIVATE_DIR)
            for prefix_dir in self._subdirs(fs_dir):
                disk.tighten(prefix_dir, disk.PRIVATE_DIR)

    @staticmethod
    def _subdirs(path: Path) -> list[Path]:
        with os.scandir(path) as entries:
            return [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]

    @property
    def signer(self) -> UrlSigner:
        """Signs and checks this store's block URLs (the hub sets it on start: see :meth:`use_signer`)."""
        if self._signer is None:
            raise RuntimeError("the block store has no signing key yet; the hub gives it one when it starts")
        return self._signer

    def use_signer(self, signer: UrlSigner) -> None:
        """Sign with ``signer`` unless the store was made with one.

        The hub's key is known only once its metadata store is open (hubs sharing a
        PostgreSQL store keep it there), after the block store was made.
        """
        if self._signer is None:
            self._signer = signer

    async def open(self) -> None:
        """Create the directory (0700), or tighten an existing tree's directories to 0700."""
        await anyio.to_thread.run_sync(self._open)

    async def close(self) -> None:
        """Free the aligned buffers (the writes' and the reads')."""
        self._writer.close()

    @contextlib.contextmanager
    def memory_slot(self) -> Iterator[bool]:
        """Whether one more block may be read into memory to answer a GET (see
        :data:`MEMORY_ANSWERS`); hold the slot until the answer is sent. Event loop only."""
        if self._memory_answers >= self.MEMORY_ANSWERS:
            yield False
            return
        self._memory_answers += 1
        try:
            yield True
        finally:
            self._memory_answers -= 1

    async def lend_block(self, filespace_id: str, digest: str,
                         limit: int) -> LentBuffer | bytes | None:
        """A block's whole file (off the event loop); ``None`` when it is not in this store
        or longer than ``limit`` bytes. Its bytes are not checked against ``digest``: the
        reader does that. A block read past the page cache in one piece stays in the
        aligned buffer it was read into (give it back once sent:
        :meth:`~lucidlink.directio.LentBuffer.give_back`); any other comes as ``bytes``."""
        return await anyio.to_thread.run_sync(
            self._reader.lend, self.path_of(filespace_id, digest), limit)

    async def read_range(self, filespace_id: str, digest: str, ranges: slice,
                         limit: int) -> tuple[slice, int, bytes] | None:
        """``(ranges, block size, the bytes of the range)`` of a block (off the event loop);
        ``None`` when it is not in this store, the range is open at its start or empty, or
        longer than ``limit`` bytes (then the caller streams the file)."""
        return await anyio.to_thread.run_sync(
            self._reader.read_range, self.path_of(filespace_id, digest), ranges, limit)

    def path_of(self, filespace_id: str, digest: str) -> Path:
        """Where a block lives on disk."""
        # One parse of the joined text (three "/" joins parse three times), per block GET.
        return Path(f"{self._root_text}/{filespace_id}/{digest[:2]}/{digest}")

    def signed_url(self, base_url: str, filespace_id: str, digest: str, op: str, ttl: float) -> str:
        return self.signer.sign(base_url, filespace_id, digest, op, ttl)

    def _durable_dir(self, directory: Path) -> None:
        """Make sure ``directory`` and its entry in its parent are on disk (up to the root)."""
        if directory in self._durable_dirs or directory == self.root:
            return
        self._durable_dir(directory.parent)
        if not disk.make_dirs(directory):
            # It existed: maybe made by a concurrent upload that has not synced it yet,
            # or by a hub that crashed before it did.
            disk.fsync_dir(directory.parent)
        self._durable_dirs.add(directory)

    def _write(self, filespace_id: str, digest: str,
               data: bytes | Sequence[bytes | memoryview]) -> None:
        final = self.path_of(filespace_id, digest)
        self._durable_dir(final.parent)
        if final.exists():
            # Its bytes were fsynced before the rename, but the writer that renamed it
            # may not have synced the directory yet.
            disk.fsync_dir(final.parent)
            return
        tmp = final.with_name(f".{digest}.{uuid.uuid4().hex}.tmp")
        try:
            disk.write_synced(tmp, data, self._writer)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        disk.fsync_dir(final.parent)

    async def write_verified(self, filespace_id: str, digest: str,
                             data: bytes | Sequence[bytes | memoryview]) -> None:
        """Store bytes already checked against ``digest``, durably (off the event loop).

        ``data`` is the bytes, or the pieces they were received in, in order (written
        one after the other, never joined).

        Raises ``OSError`` when the disk refuses (full, read-only, I/O error); then no
        block file is left behind.
        """
        try:
            await anyio.to_thread.run_sync(self._write, filespace_id, digest, data)
        except OSError as exc:
            log.error("hub.block.write_failed", filespace=filespace_id, block=digest,
                      errno=exc.errno, error=str(exc))
            raise

    async def delete(self, filespace_id: str, digests: list[str]) -> None:
        def _delete() -> None:
            for digest in digests:
                try:
                    self.path_of(filespace_id, digest).unlink()
                except FileNotFoundError:
                    pass

        await anyio.to_thread.run_sync(_delete)

    async def exists(self, filespace_id: str, digest: str) -> bool:
        return await anyio.to_thread.run_sync(self.path_of(filespace_id, digest).exists)
