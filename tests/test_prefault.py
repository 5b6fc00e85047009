"""lucidlink/prefault.py: pages faulted in ahead, never a byte changed."""

from __future__ import annotations

import io
import os
import sys

import pytest

from lucidlink import prefault
from lucidlink.prefault import Prefault

MIB = 1 << 20
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's madvise")


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@linux
def test_the_pages_of_a_fresh_buffer_are_mapped_before_any_write() -> None:
    if prefault._madvise is None:
        pytest.skip("this kernel has no MADV_POPULATE_WRITE")
    out = io.BytesIO(bytes(64 * MIB))  # calloc'd: nothing mapped yet
    view = out.getbuffer()
    before = _rss_kib()
    done = Prefault(view).run()
    grown = _rss_kib() - before
    assert done >= 64 * MIB - 8192
    assert grown >= 60 * 1024, grown
    view.release()  # the address was taken without keeping an export
    assert out.getvalue() == bytes(64 * MIB)


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
