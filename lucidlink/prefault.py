"""Fault in a large buffer's pages ahead of the bytes that will fill it, from a thread.

A large read's result is fresh memory. Each of its pages costs a fault (the kernel
takes a page, zeroes it and maps it) when its first byte lands, and the bytes land from
``recv`` on the event loop's thread: on a 2-vCPU VM, a 256 MiB result spent about as
long in faults as in the copies themselves. ``madvise(MADV_POPULATE_WRITE)`` (Linux
5.14+) takes the same faults without touching the contents; run in a worker thread,
ahead of the receives, it moves that work to another CPU.

It never changes a byte, so the buffer's owner may write into the range at the same
moment. :class:`Prefault` takes the buffer's address under the GIL, once, and releases
its hold on the buffer at once (the owner's view can then be released as usual); the
thread only ever passes that address to the kernel, and the owner waits for the thread
before it frees the buffer. Where the call is missing (another OS, an older kernel) it
is skipped, and the refusal remembered.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import sys
import threading

_MADV_POPULATE_WRITE = 23
_PAGE = mmap.PAGESIZE
_STEP = 4 * 1024 * 1024
"""Bytes per call: small enough to stop soon when asked, large enough to cost little."""

_madvise = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        _madvise = _libc.madvise  # ctypes releases the GIL around the call
        _madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        _madvise.restype = ctypes.c_int
    except (OSError, AttributeError):
        _madvise = None


class Prefault:
    """The whole pages of a writable buffer, to be faulted in by :meth:`run` (blocking)."""

    def __init__(self, view: memoryview) -> None:
        self._stop = threading.Event()
        self.start = self.end = 0
        if _madvise is None or view.readonly or not view.contiguous or len(view) < 2 * _PAGE:
            return
        holder = ctypes.c_char.from_buffer(view)
        try:
            address = ctypes.addressof(holder)
        finally:
            del holder  # its export of ``view`` ends here
        self.start = -(-address // _PAGE) * _PAGE
        self.end = (address + view.nbytes) // _PAGE * _PAGE

    def run(self) -> int:
        """Fault the pages in, in order, until done or :meth:`stop`; returns the bytes done."""
        global _madvise
        done = self.start
        while done < self.end and not self._stop.is_set() and _madvise is not None:
            step = min(_STEP, self.end - done)
            if _madvise(done, step, _MADV_POPULATE_WRITE) != 0:
                if ctypes.get_errno() == errno.EINVAL:  # a kernel without it: never again
                    _madvise = None
                break  # ENOMEM and the like: the receives fault the rest themselves
            done += step
        return done - self.start

    def stop(self) -> None:
        """Ask :meth:`run` to end after its current step."""
        self._stop.set()
