"""Private, durable files and directories in the hub's data dir.

Invariants the hub's data dir keeps (``docs/architecture.md``, "Durability"):

* **Private.** Directories are 0700 and files 0600, whatever the process umask (a
  umask only removes bits, so modes are also set explicitly after creation). A data
  dir that an older hub or an operator left looser is tightened on start, with a
  warning naming the path and its old mode.
* **Durable.** A file survives a crash only when its bytes *and* the directory entry
  that names it reach the disk: so a new file is written to a temporary name, fsynced,
  renamed (or linked) into place, and its directory is fsynced; a new directory is
  made durable by fsyncing its parent.

Every function here blocks on the disk: call it from a worker thread
(``anyio.to_thread.run_sync``), never on the event loop.
"""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Sequence
from pathlib import Path

import structlog

from lucidlink.directio import DirectWriter

PRIVATE_DIR = 0o700
"""Mode of every directory the hub creates."""
PRIVATE_FILE = 0o600
"""Mode of every file the hub creates."""

log = structlog.get_logger("lucidlink.hub")
_BUFFERED = DirectWriter(direct=False)
"""How small files and files without a writer of their own are written (page cache)."""


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (created, renamed, removed names) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents (0700), each made durable in its parent.

    Returns the directories this call created. A directory another thread or process
    created meanwhile still has its parent fsynced here: its creator may not have
    done so yet, and the caller is about to rely on it.
    """
    missing: list[Path] = []
    here = path
    while not here.exists():
        missing.append(here)
        here = here.parent
    created = []
    for directory in reversed(missing):
        try:
            os.mkdir(directory, PRIVATE_DIR)
        except FileExistsError:
            pass
        else:
            os.chmod(directory, PRIVATE_DIR)
            created.append(directory)
        fsync_dir(directory.parent)
    return created


def tighten(path: Path, mode: int) -> bool:
    """Drop the permission bits of an existing ``path`` beyond ``mode``; warn when there were some.

    Returns whether the mode changed (``False`` also when ``path`` does not exist).
    """
    try:
        current = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return False
    if not current & ~mode:
        return False
    try:
        os.chmod(path, current & mode)
    except PermissionError:  # not ours (a shared mount): say so, but keep serving
        log.warning("hub.permissions.loose", path=str(path), mode=oct(current),
                    fix=f"chmod {oct(mode)[2:]} it; the hub's data dir should be private")
        return False
    log.warning("hub.permissions.tightened", path=str(path), was=oct(current),
                now=oct(current & mode), why="the hub's data dir is private: dirs 0700, files 0600")
    return True


def private_dir(path: Path) -> None:
    """Create ``path`` (0700, durably) or tighten it to 0700 if it exists with looser modes."""
    if not make_dirs(path):
        tighten(path, PRIVATE_DIR)


def private_file(path: Path) -> None:
    """Create an empty file 0600 (durably) unless it exists; tighten an existing one to 0600.

    For files another library then fills in (the SQLite database, whose ``-wal`` and
    ``-shm`` files SQLite creates with the database file's mode).
    """
    make_dirs(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        tighten(path, PRIVATE_FILE)
        return
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


def create_file(path: Path, data: bytes) -> bool:
    """Create ``path`` (0600) holding exactly ``data``, durably; ``False`` if it already exists.

    The bytes are written and fsynced under a temporary name and then hard-linked into
    place, so ``path`` never exists empty or half-written (a crash leaves either
    nothing or the whole file) and of two concurrent creators exactly one wins.
    """
    make_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write_synced(tmp, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True


def write_synced(path: Path, data: bytes | memoryview | Sequence[bytes | memoryview],
                 writer: DirectWriter | None = None) -> None:
    """Write a new file (0600, exclusive) and fsync its bytes; the caller makes its name durable.

    ``data`` is the bytes, or a sequence of pieces written one after the other (an upload
    as it was received, never joined). With ``writer``, a large file's aligned bytes go
    past the page cache (:mod:`lucidlink.directio`).
    """
    parts = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        (writer or _BUFFERED).pwrite(fd, path, parts, 0)
        os.fsync(fd)
    finally:
        os.close(fd)
