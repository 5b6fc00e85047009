"""The blocking byte-range lock methods of ``Filesystem``, written by hand.

They are one-line delegations like the generated ones, kept here because
``lucidlink/_generated.py`` has no room left under the 600-line module limit; the
generator skips what a base class defines (:mod:`lucidlink._facade`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lucidlink import _loop

if TYPE_CHECKING:
    from lucidlink.aio.filesystem import AsyncFilesystem


class ByteRangeMethods:
    """``create`` and the byte-range locks, run on the background loop."""

    __slots__ = ()
    _async: AsyncFilesystem

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
        _loop.run(self._async.unlock_byte_range(handle_id, offset, length))

    def unlock_all_byte_ranges(self, handle_id: int) -> None:
        """Release every byte-range lock the handle holds."""
        _loop.run(self._async.unlock_all_byte_ranges(handle_id))
