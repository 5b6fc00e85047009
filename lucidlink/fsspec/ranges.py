"""``cat_ranges``: many byte ranges of many files, each file's ranges on one version.

A file is opened once; its ranges are sorted by offset and dealt to up to
:data:`RANGE_STREAMS` concurrent read handles reopened on that same version
(:meth:`~lucidlink.aio.AsyncFile.reopen`, no hub call), so neighbouring ranges reuse a
block already in memory and dense ranges get the core's read-ahead; the block URLs of
all of them are signed in one batch first. Ranges in the same block cost one download.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from lucidlink.aio.file import AsyncFile
from lucidlink.fsspec.connection import Connection
from lucidlink.fsspec.paths import byte_limits, strip_protocol

#: Concurrent read streams per file in ``cat_ranges``.
RANGE_STREAMS = 16

Result = bytes | BaseException | None


def _per_path(values: int | Iterable[int] | None, n: int) -> list[int | None]:
    return list(values) if isinstance(values, Iterable) else [values] * n


async def read_ranges(
    conn: Connection,
    paths: list[str],
    starts: int | Iterable[int] | None,
    ends: int | Iterable[int] | None,
) -> list[Result]:
    """The bytes of ``paths[i][starts[i]:ends[i]]``, or the exception reading them raised."""
    if not isinstance(paths, list):
        raise TypeError("paths must be a list")
    n = len(paths)
    starts_list, ends_list = _per_path(starts, n), _per_path(ends, n)
    if len(starts_list) != n or len(ends_list) != n:
        raise ValueError("paths, starts and ends must have the same length")
    out: list[Result] = [None] * n
    by_path: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        by_path.setdefault(strip_protocol(p), []).append(i)

    async def one_file(path: str, indices: list[int]) -> None:
        try:
            filespace, loc = await conn.target(path, "read")
            await filespace.refresh()
            base = await filespace.fs.open(loc.inner, "rb")
        except Exception as exc:
            for i in indices:
                out[i] = exc
            return
        async with base:
            spans = {i: byte_limits(starts_list[i], ends_list[i], base.size) for i in indices}
            order = sorted(
                (i for i in indices if spans[i][1] > spans[i][0]), key=lambda i: spans[i]
            )
            try:
                await base.prepare_ranges(spans[i] for i in order)
            except Exception as exc:
                for i in indices:
                    out[i] = exc
                return
            for i in indices:
                if spans[i][1] <= spans[i][0]:
                    out[i] = b""
            if not order:
                return
            share = -(-len(order) // min(len(order), RANGE_STREAMS))
            await asyncio.gather(
                *(
                    _stream(base, [(i, *spans[i]) for i in order[k : k + share]], out)
                    for k in range(0, len(order), share)
                )
            )

    await asyncio.gather(*(one_file(p, idx) for p, idx in by_path.items()))
    return out


async def _stream(base: AsyncFile, group: list[tuple[int, int, int]], out: list[Result]) -> None:
    """Read ``(index, start, end)`` ranges, in order, through one handle on ``base``'s version."""
    async with base.reopen() as handle:
        for i, lo, hi in group:
            buffer = bytearray(hi - lo)
            try:
                await handle.seek(lo)
                del buffer[await handle.readinto(buffer) :]
                out[i] = bytes(buffer)
            except Exception as exc:
                out[i] = exc
