"""The block cache: writes off the reader's path, one full check per process and change."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from lucidlink.aio import cache as cache_mod
from lucidlink.aio.cache import BlockCache

pytestmark = pytest.mark.asyncio

FS = "fs1"


def _block(n: int = 256 * 1024) -> tuple[bytes, str]:
    data = os.urandom(n)
    return data, hashlib.sha256(data).hexdigest()


def _count_full_hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The lengths of what the cache hashes with SHA-256 from now on (a full check each)."""
    hashed: list[int] = []
    real = hashlib.sha256

    def counting(data: bytes = b"") -> object:
        hashed.append(len(data))
        return real(data)

    monkeypatch.setattr(cache_mod.hashlib, "sha256", counting)
    return hashed


async def _cached(tmp_path: Path) -> tuple[BlockCache, bytes, str, Path]:
    cache = BlockCache(tmp_path, 1 << 30)
    await cache.open()
    data, digest = _block()
    await cache.put(FS, digest, data)
    await cache.drain()
    return cache, data, digest, tmp_path / FS / digest


async def test_a_put_is_served_while_its_write_is_pending(tmp_path: Path) -> None:
    cache = BlockCache(tmp_path, 1 << 30)
    await cache.open()
    data, digest = _block()
    await cache.put(FS, digest, data)
    assert cache.contains(FS, digest) and cache.size == len(data)
    assert await cache.get(FS, digest, digest=digest) == data
    await cache.drain()
    assert (tmp_path / FS / digest).read_bytes() == data
    assert await cache.get(FS, digest, digest=digest) == data


async def test_a_block_this_process_wrote_is_not_hashed_again_on_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The identity remembered at write is the file's after its rename (which moves the
    ctime): the first read compares a sample, not a full hash."""
    cache, data, digest, path = await _cached(tmp_path)
    hashed = _count_full_hashes(monkeypatch)
    assert await cache.get(FS, digest, digest=digest) == data
    assert hashed == []


async def test_a_rewritten_file_is_verified_again_even_with_its_mtime_restored(
    tmp_path: Path,
) -> None:
    cache, data, digest, path = await _cached(tmp_path)
    assert await cache.get(FS, digest, digest=digest) == data  # remembered as verified
    st = path.stat()
    damaged = bytearray(data)
    damaged[len(data) // 2 + 17] ^= 1  # one bit, far from any fixed sample
    fd = os.open(path, os.O_WRONLY)  # in place: the same inode
    os.pwrite(fd, damaged, 0)
    os.close(fd)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the ctime still moves
    assert await cache.get(FS, digest, digest=digest) is None
    assert not cache.contains(FS, digest) and not path.exists()


async def test_damage_in_a_sampled_window_is_caught_without_a_full_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, data, digest, path = await _cached(tmp_path)
    known = cache._verified[f"{FS}/{digest}"]
    # Damage that leaves the file's identity as it was (as bit rot below the file system
    # would): the remembered identity matches, so only the sample can notice.
    damaged = bytearray(data)
    damaged[known.offsets[1] + 5] ^= 0xFF
    monkeypatch.setattr(cache_mod.os, "pread", lambda fd, n, off: bytes(damaged[off:off + n]))
    assert await cache.get(FS, digest, digest=digest) is None
    assert not cache.contains(FS, digest)


async def test_a_new_process_verifies_each_entry_fully_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, data, digest, path = await _cached(tmp_path)
    fresh = BlockCache(tmp_path, 1 << 30)  # what the next run of the daemon finds
    await fresh.open()
    hashed = _count_full_hashes(monkeypatch)
    assert await fresh.get(FS, digest, digest=digest) == data
    assert await fresh.get(FS, digest, digest=digest) == data
    assert hashed == [len(data)]  # the first read, not the second
    # Damaged while this process was not looking: the first read notices.
    other = BlockCache(tmp_path, 1 << 30)
    await other.open()
    path.write_bytes(b"\0" * len(data))
    assert await other.get(FS, digest, digest=digest) is None


async def test_a_truncated_file_is_dropped(tmp_path: Path) -> None:
    cache, data, digest, path = await _cached(tmp_path)
    assert await cache.get(FS, digest, digest=digest) == data
    os.truncate(path, len(data) - 1)
    assert await cache.get(FS, digest, digest=digest) is None


async def test_an_entry_evicted_while_pending_leaves_no_file(tmp_path: Path) -> None:
    cache = BlockCache(tmp_path, 300 * 1024)
    await cache.open()
    first, d1 = _block()
    second, d2 = _block()
    await cache.put(FS, d1, first)
    await cache.put(FS, d2, second)  # evicts the first, maybe before it reached the disk
    await cache.drain()
    assert not cache.contains(FS, d1) and not (tmp_path / FS / d1).exists()
    assert await cache.get(FS, d2, digest=d2) == second
    assert cache.size == len(second)


async def test_large_blocks_are_written_past_the_page_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 4 MiB block goes out with O_DIRECT (where the file system allows it), a small one
    through the page cache; both read back exactly and are verified as before."""
    from lucidlink import directio

    direct_opens = []
    real_open = os.open

    def counting_open(path: object, flags: int, *args: object) -> int:
        if flags & directio._O_DIRECT:
            direct_opens.append(str(path))
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(directio.os, "open", counting_open)
    writer = directio.DirectWriter()
    cache = BlockCache(tmp_path, 1 << 30, writer)
    await cache.open()
    big, big_digest = _block(4 * 1024 * 1024)
    small, small_digest = _block(100_000)
    await cache.put(FS, big_digest, big)
    await cache.put(FS, small_digest, small)
    await cache.drain()
    assert (tmp_path / FS / big_digest).read_bytes() == big
    assert (tmp_path / FS / small_digest).read_bytes() == small
    assert oct((tmp_path / FS / big_digest).stat().st_mode & 0o777) == "0o600"
    if writer.direct:  # this file system took O_DIRECT
        assert len(direct_opens) == 1  # the large block only
    fresh = BlockCache(tmp_path, 1 << 30)  # the next process checks both in full
    await fresh.open()
    assert await fresh.get(FS, big_digest, digest=big_digest) == big
    assert await fresh.get(FS, small_digest, digest=small_digest) == small
    writer.close()
