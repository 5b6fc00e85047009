"""lucidlink/prefault.py: pages faulted in ahead, never a byte changed."""

from __future__ import annotations

import ctypes
import mmap
import os
import sys

import pytest

from lucidlink import prefault
from lucidlink.prefault import Prefault

MIB = 1 << 20
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's madvise")


def _resident_kib(start: int, end: int) -> int:
    """Resident KiB of the mappings overlapping ``[start, end)``, from /proc/self/smaps:
    counted from the page tables when read (VmRSS may lag the faults behind it)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(maxsplit=1)[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo < end and hi > start
            elif inside and head == "Rss:":
                total += int(line.split()[1])
    return total


@linux
def test_the_pages_of_a_fresh_buffer_are_mapped_before_any_write() -> None:
    if prefault._madvise is None:
        pytest.skip("this kernel has no MADV_POPULATE_WRITE")
    # An anonymous mapping of its own, never touched: nothing resident yet. (A BytesIO's
    # buffer is not: getbuffer() copies the shared bytes into it first.)
    fresh = mmap.mmap(-1, 64 * MIB)
    view = memoryview(fresh)
    start = ctypes.addressof(ctypes.c_char.from_buffer(fresh))
    before = _resident_kib(start, start + 64 * MIB)
    done = Prefault(view).run()
    grown = _resident_kib(start, start + 64 * MIB) - before
    assert before < 4 * 1024, before
    assert done >= 64 * MIB - 8192
    assert grown >= 60 * 1024, grown
    assert view == bytes(64 * MIB)  # faulted in, never written
    view.release()
    fresh.close()


@linux
def test_contents_are_untouched_and_stop_ends_it_early() -> None:
    data = bytearray(os.urandom(16 * MIB))
    copy = bytes(data)
    view = memoryview(data)
    p = Prefault(view)
    assert p.run() > 0 and data == copy
    p.stop()
    assert p.run() == 0 and data == copy


def test_what_cannot_be_faulted_in_is_left_alone() -> None:
    assert Prefault(memoryview(bytes(4 * MIB))).run() == 0  # read-only
    assert Prefault(memoryview(bytearray(100))).run() == 0  # less than two pages
