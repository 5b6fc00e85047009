"""Write-once files: large aligned writes and whole reads go past the page cache, and the bytes
are always right."""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from lucidlink import directio
from lucidlink.directio import ALIGN, DIRECT_MIN, AlignedBuffers, DirectReader, DirectWriter

MIB = 1024 * 1024


def _direct_supported(directory: Path) -> bool:
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return False
    probe = directory / "probe"
    probe.touch()
    try:
        os.close(os.open(probe, os.O_WRONLY | flag))
    except OSError:
        return False
    finally:
        probe.unlink()
    return True


class Opens:
    """Counts the O_DIRECT descriptors the staging module opens."""

    def __init__(self) -> None:
        self.direct = 0


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> Opens:
    seen = Opens()
    real_open = os.open

    def counting_open(path: object, flags: int, *args: object) -> int:
        if flags & getattr(os, "O_DIRECT", 0):
            seen.direct += 1
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(directio.os, "open", counting_open)
    return seen


@pytest.fixture
def staged(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    path = tmp_path / "staging-file"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        yield fd, path
    finally:
        os.close(fd)


def _fail_direct_opens(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """Make every ``O_DIRECT`` open fail with ``code`` (as a refusing file system would)."""
    real_open = os.open
    flag = directio._O_DIRECT

    def failing_open(target: object, flags: int, *args: object) -> int:
        if flags & flag:
            raise OSError(code, os.strerror(code))
        return real_open(target, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(directio.os, "open", failing_open)


def _read(fd: int, size: int) -> bytes:
    return os.pread(fd, size, 0)


@pytest.mark.parametrize(("pos", "size"), [
    (0, 4 * MIB),                        # whole, aligned
    (0, 9 * MIB + 4096),                 # more than one buffer piece
    (100, 3 * MIB + 7),                  # unaligned head and tail around an aligned middle
    (ALIGN, DIRECT_MIN),                 # exactly the minimum
])
def test_large_writes_land_exactly(staged: tuple[int, Path], opens: Opens, pos: int, size: int) -> None:
    fd, path = staged
    writer = DirectWriter()
    data = os.urandom(size)
    writer.pwrite(fd, path, memoryview(data), pos)
    assert _read(fd, pos + size) == bytes(pos) + data
    if _direct_supported(path.parent):
        assert opens.direct >= 1 and writer.direct
    writer.close()


@pytest.mark.parametrize("pos", [0, 100, ALIGN])
def test_pieces_land_as_the_joined_bytes(staged: tuple[int, Path], opens: Opens, pos: int) -> None:
    """An upload written in the pieces it was received in, cut anywhere: the file holds the
    joined bytes, whatever the pieces' edges and the aligned middle's edges."""
    fd, path = staged
    supported, probes = _direct_supported(path.parent), opens.direct
    writer = DirectWriter()
    rng = random.Random(pos)
    for round_ in range(6):
        data = os.urandom(rng.randrange(DIRECT_MIN, 10 * MIB))
        cuts = sorted(rng.sample(range(1, len(data)), rng.randrange(0, 40)))
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        pieces.insert(rng.randrange(len(pieces) + 1), b"")  # an empty piece changes nothing
        at = pos + round_ * 11 * MIB
        writer.pwrite(fd, path, pieces, at)
        assert os.pread(fd, len(data), at) == data
    if supported:
        assert opens.direct - probes == 6
    writer.close()


def test_small_and_misaligned_writes_use_the_page_cache(staged: tuple[int, Path], opens: Opens) -> None:
    fd, path = staged
    writer = DirectWriter()
    small = os.urandom(DIRECT_MIN - 1)
    writer.pwrite(fd, path, memoryview(small), 0)
    # 1 MiB + 100 bytes from offset 100: its aligned middle is under 1 MiB.
    odd = os.urandom(DIRECT_MIN + 100)
    writer.pwrite(fd, path, memoryview(odd), DIRECT_MIN + 100)
    assert opens.direct == 0
    assert _read(fd, 2 * DIRECT_MIN + 200) == small + bytes(101) + odd


def test_switched_off_writes_through_the_page_cache(staged: tuple[int, Path], opens: Opens) -> None:
    fd, path = staged
    writer = DirectWriter(direct=False)
    data = os.urandom(4 * MIB)
    writer.pwrite(fd, path, memoryview(data), 0)
    assert opens.direct == 0 and not writer.direct
    assert _read(fd, len(data)) == data


def test_direct_and_buffered_writes_of_one_range_stay_coherent(staged: tuple[int, Path]) -> None:
    """The kernel's rule the design leans on: a direct write replaces cached pages of its
    range, and a later buffered write over it is what a read sees."""
    fd, path = staged
    writer = DirectWriter()
    first = os.urandom(2 * MIB)
    os.pwrite(fd, first, 0)  # cached, dirty
    second = os.urandom(2 * MIB)
    writer.pwrite(fd, path, memoryview(second), 0)  # direct over it
    assert _read(fd, 2 * MIB) == second
    patch = os.urandom(5000)
    writer.pwrite(fd, path, memoryview(patch), 12345)  # small: buffered, over the direct bytes
    expected = bytearray(second)
    expected[12345:12345 + len(patch)] = patch
    assert _read(fd, 2 * MIB) == bytes(expected)


def test_a_file_system_refusing_o_direct_at_open(staged: tuple[int, Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    fd, path = staged
    monkeypatch.setattr(directio, "_O_DIRECT", 0o40000)  # as on Linux, even where absent
    _fail_direct_opens(monkeypatch, errno.EINVAL)
    writer = DirectWriter()
    data = os.urandom(2 * MIB)
    writer.pwrite(fd, path, memoryview(data), 0)
    assert _read(fd, len(data)) == data
    assert not writer.direct  # remembered: the next write does not try again


def test_a_file_system_refusing_the_alignment_midway(staged: tuple[int, Path],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """EINVAL after a first piece went out: the whole range is written again, buffered."""
    fd, path = staged
    real_pwrite = os.pwrite
    direct_fds: set[int] = set()
    real_open = os.open

    def tracking_open(target: object, flags: int, *args: object) -> int:
        got = real_open(target, flags, *args)  # type: ignore[arg-type]
        if flags & getattr(os, "O_DIRECT", 0):
            direct_fds.add(got)
        return got

    calls = {"direct": 0}

    def flaky_pwrite(target: int, data: object, offset: int) -> int:
        if target in direct_fds:
            calls["direct"] += 1
            if calls["direct"] == 2:
                raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(target, data, offset)  # type: ignore[arg-type]

    monkeypatch.setattr(directio.os, "open", tracking_open)
    monkeypatch.setattr(directio.os, "pwrite", flaky_pwrite)
    if not _direct_supported(path.parent):
        pytest.skip("this file system refuses O_DIRECT outright (covered above)")
    writer = DirectWriter()
    old = os.urandom(9 * MIB)
    real_pwrite(fd, old, 0)
    data = os.urandom(9 * MIB)
    writer.pwrite(fd, path, memoryview(data), 0)
    assert calls["direct"] == 2
    assert _read(fd, len(data)) == data
    assert not writer.direct


def test_other_errors_are_raised(staged: tuple[int, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    fd, path = staged
    if not _direct_supported(path.parent):
        pytest.skip("this file system refuses O_DIRECT")
    _fail_direct_opens(monkeypatch, errno.ENOSPC)
    writer = DirectWriter()
    with pytest.raises(OSError) as info:
        writer.pwrite(fd, path, memoryview(os.urandom(2 * MIB)), 0)
    assert info.value.errno == errno.ENOSPC
    assert writer.direct  # a full disk says nothing about O_DIRECT


def test_an_error_with_every_buffer_in_use_is_raised_as_it_is(
        staged: tuple[int, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The buffer of a failed write is let go while the error's traceback still holds a view
    of it: the error the caller sees is the disk's, not a BufferError."""
    fd, path = staged
    if not _direct_supported(path.parent):
        pytest.skip("this file system refuses O_DIRECT")
    writer = DirectWriter()
    monkeypatch.setattr(directio, "_IDLE_BUFFERS", 0)  # every buffer is unmapped on return
    real_pwrite = os.pwrite

    def failing(target: int, data: object, offset: int) -> int:
        if target != fd:
            raise OSError(errno.EIO, "Input/output error")
        return real_pwrite(target, data, offset)  # type: ignore[arg-type]

    monkeypatch.setattr(directio.os, "pwrite", failing)
    with pytest.raises(OSError) as info:
        writer.pwrite(fd, path, memoryview(os.urandom(2 * MIB)), 0)
    assert info.value.errno == errno.EIO


def test_pieces_written_short_are_written_again_from_where_they_stopped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``pwritev`` may write fewer bytes than asked, ending inside a piece or between two."""
    real = os.pwritev
    cuts = iter([5, 4096, 1, 70_000] * 50)

    def short_pwritev(fd: int, buffers: list[memoryview], pos: int) -> int:
        limit = next(cuts)
        taken, room = [], limit
        for b in buffers:
            if room <= 0:
                break
            taken.append(b[:room])
            room -= len(b)
        return real(fd, taken, pos)

    monkeypatch.setattr(directio.os, "pwritev", short_pwritev)
    pieces = [os.urandom(random.randrange(0, 9000)) for _ in range(40)]
    path = tmp_path / "pieces.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        DirectWriter(direct=False).pwrite(fd, path, pieces, 3)
    finally:
        os.close(fd)
    assert path.read_bytes() == bytes(3) + b"".join(pieces)


# -- whole reads (the hub serving a block) ---------------------------------------------


def _file_of(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "block"
    path.write_bytes(data)
    return path


class Reads:
    """Counts the reads a :class:`DirectReader` makes, by kind of descriptor."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.direct = self.buffered = 0
        self._direct_fds: set[int] = set()
        real_open, real_preadv, real_pread = os.open, os.preadv, os.pread

        def tracking_open(target: object, flags: int, *args: object) -> int:
            fd = real_open(target, flags, *args)  # type: ignore[arg-type]
            if flags & getattr(os, "O_DIRECT", 0):
                self._direct_fds.add(fd)
            else:
                self._direct_fds.discard(fd)
            return fd

        def counting_preadv(fd: int, buffers: object, offset: int, *args: object) -> int:
            if fd in self._direct_fds:
                self.direct += 1
            else:
                self.buffered += 1
            return real_preadv(fd, buffers, offset, *args)  # type: ignore[arg-type]

        def counting_pread(fd: int, size: int, offset: int) -> bytes:
            self.buffered += 1
            return real_pread(fd, size, offset)

        monkeypatch.setattr(directio.os, "open", tracking_open)
        monkeypatch.setattr(directio.os, "preadv", counting_preadv)
        monkeypatch.setattr(directio.os, "pread", counting_pread)


@pytest.mark.parametrize("size", [
    4 * MIB,                 # a whole default block
    4 * MIB - 100,           # the last block of a file: not a whole number of pages
    DIRECT_MIN,              # the smallest read past the page cache
    9 * MIB + 7,             # more than one buffer piece, the last one ragged
])
def test_whole_reads_return_the_file_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             size: int) -> None:
    data = os.urandom(size)
    path = _file_of(tmp_path, data)
    reads = Reads(monkeypatch)
    reader = DirectReader()
    assert reader.read(path, 16 * MIB) == data
    if _direct_supported(tmp_path):
        assert reads.direct >= -(-size // (4 * MIB)) and reads.buffered == 0
        assert reader.direct
    assert reader.read(path, 16 * MIB) == data  # the buffer, reused, holds nothing stale


def test_small_files_are_read_through_the_page_cache(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(DIRECT_MIN - 1)
    path = _file_of(tmp_path, data)
    reads = Reads(monkeypatch)
    assert DirectReader().read(path, 16 * MIB) == data
    assert reads.direct == 0
    assert DirectReader().read(_file_of(tmp_path / "..", b""), 16 * MIB) == b""


def test_a_missing_or_too_long_file_reads_as_none(tmp_path: Path) -> None:
    reader = DirectReader()
    assert reader.read(tmp_path / "absent", 16 * MIB) is None
    path = _file_of(tmp_path, os.urandom(2 * MIB))
    assert reader.read(path, 2 * MIB - 1) is None
    assert reader.read(path, 2 * MIB) is not None


def test_a_file_system_refusing_o_direct_reads_through_the_page_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(5 * MIB)
    path = _file_of(tmp_path, data)
    monkeypatch.setattr(directio, "_O_DIRECT", 0o40000)  # as on Linux, even where absent
    _fail_direct_opens(monkeypatch, errno.EINVAL)
    reader = DirectReader()
    assert reader.read(path, 16 * MIB) == data
    assert not reader.direct  # remembered: the next read does not try again
    assert reader.read(path, 16 * MIB) == data


def test_a_short_direct_read_is_resumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A direct read may return fewer bytes than asked: an aligned count is resumed from
    where it stopped; an unaligned one (a direct read cannot resume there) has the piece
    read again through the page cache."""
    if not _direct_supported(tmp_path):
        pytest.skip("this file system refuses O_DIRECT")
    data = os.urandom(6 * MIB + 5)
    path = _file_of(tmp_path, data)
    real_preadv = os.preadv
    cuts = iter([3 * ALIGN, 5 * ALIGN + 1])  # an aligned short read, then an unaligned one
    offsets: list[int] = []

    def short_preadv(fd: int, buffers: list[memoryview], offset: int, *args: object) -> int:
        offsets.append(offset)
        cut = next(cuts, None)
        if cut is None:
            return real_preadv(fd, buffers, offset, *args)
        got = real_preadv(fd, [buffers[0][:cut - cut % ALIGN]], offset)
        tail = cut % ALIGN  # a few bytes more, off alignment, as a file system may return
        buffers[0][got:got + tail] = data[offset + got:offset + got + tail]
        return got + tail

    monkeypatch.setattr(directio.os, "preadv", short_preadv)
    reader = DirectReader()
    assert reader.read(path, 16 * MIB) == data
    assert offsets[:2] == [0, 3 * ALIGN]  # resumed where the short read stopped
    assert reader.direct  # a short read says nothing about O_DIRECT
    assert reader.read(path, 16 * MIB) == data


def test_read_errors_are_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not _direct_supported(tmp_path):
        pytest.skip("this file system refuses O_DIRECT")
    path = _file_of(tmp_path, os.urandom(2 * MIB))

    def failing(fd: int, buffers: object, offset: int, *args: object) -> int:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(directio.os, "preadv", failing)
    reader = DirectReader()
    with pytest.raises(OSError) as info:
        reader.read(path, 16 * MIB)
    assert info.value.errno == errno.EIO
    assert reader.direct  # an I/O error says nothing about O_DIRECT


def test_a_reader_and_a_writer_share_their_buffers(tmp_path: Path, staged: tuple[int, Path]) -> None:
    buffers = AlignedBuffers()
    writer, reader = DirectWriter(buffers=buffers), DirectReader(buffers=buffers)
    fd, path = staged
    data = os.urandom(4 * MIB)
    writer.pwrite(fd, path, memoryview(data), 0)
    assert reader.read(path, 4 * MIB) == data
    taken = buffers.take()  # the one both used, idle again
    buffers.give(taken)
    writer.close()
    reader.read(path, 4 * MIB)  # a closed pool makes new buffers as needed


# -- lent reads: a block sent from the buffer it was read into ---------------------------


@pytest.mark.parametrize("size", [4 * MIB, 4 * MIB - 100, DIRECT_MIN])
def test_a_lent_read_is_the_file_and_its_buffer_serves_the_next_one(
        tmp_path: Path, size: int) -> None:
    if not _direct_supported(tmp_path):
        pytest.skip("this file system refuses O_DIRECT")
    buffers = AlignedBuffers()
    reader = DirectReader(buffers=buffers)
    for _ in range(5):
        data = os.urandom(size)
        lent = reader.lend(_file_of(tmp_path, data), 16 * MIB)
        assert isinstance(lent, directio.LentBuffer)
        assert lent.view == data  # not a stale byte of the round before
        lent.give_back(reuse=True)
        lent.give_back(reuse=True)  # once only: the second is nothing
        with pytest.raises(ValueError):
            lent.view.tobytes()  # released with the loan
    assert buffers.mapped == 1  # one buffer, lent five times


def test_a_buffer_given_back_while_still_viewed_is_never_reused(tmp_path: Path) -> None:
    if not _direct_supported(tmp_path):
        pytest.skip("this file system refuses O_DIRECT")
    buffers = AlignedBuffers()
    reader = DirectReader(buffers=buffers)
    first = os.urandom(2 * MIB)
    lent = reader.lend(_file_of(tmp_path, first), 16 * MIB)
    assert isinstance(lent, directio.LentBuffer)
    held = lent.view[:]  # a view a transport still keeps, say
    lent.give_back(reuse=False)
    second = os.urandom(2 * MIB)
    again = reader.lend(_file_of(tmp_path, second), 16 * MIB)
    assert isinstance(again, directio.LentBuffer) and again.view == second
    assert held == first  # the dropped buffer was not overwritten
    assert buffers.mapped == 2
    again.give_back(reuse=True)
    held.release()


def test_what_cannot_be_lent_is_read_as_bytes(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    reader = DirectReader()
    small = os.urandom(DIRECT_MIN - 1)  # through the page cache
    assert reader.lend(_file_of(tmp_path, small), 16 * MIB) == small
    large = os.urandom(9 * MIB + 7)  # more than one buffer: copied out piece by piece
    assert reader.lend(_file_of(tmp_path, large), 16 * MIB) == large
    assert reader.lend(tmp_path / "absent", 16 * MIB) is None
    assert reader.lend(_file_of(tmp_path, large), 9 * MIB) is None  # over the limit
    monkeypatch.setattr(directio, "_O_DIRECT", 0o40000)  # as on Linux, even where absent
    _fail_direct_opens(monkeypatch, errno.EINVAL)
    data = os.urandom(3 * MIB)
    assert reader.lend(_file_of(tmp_path, data), 16 * MIB) == data  # refused: bytes
    assert not reader.direct
