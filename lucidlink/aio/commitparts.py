"""How the write-back flusher cuts its queue into commit requests, and orders them.

Pure functions over the queue (:class:`~lucidlink.aio.writeback.WriteBack` owns it): the
next request's changes, whether two requests touch related paths (then the later one
waits, so one path's changes land in queue order), and the predicate a flush waits on.
"""

from __future__ import annotations

from collections.abc import Callable

from lucidlink.aio.pending import PendingCommit

BATCH = 256
"""Changes in one commit request, at most."""
INLINE_REQUEST_BYTES = 960_000
"""A commit request carrying small blocks' bytes stays under about this many bytes of JSON
(aiohttp warns about bodies over 1 MiB given as bytes, which a JSON body is)."""


def next_part(queue: dict[str, PendingCommit], sent: set[str],
               inline_max: int) -> tuple[list[PendingCommit], bool]:
    """The next request's changes, and whether any unsent change is left after them.

    From the head of ``queue``, past those in ``sent``: at most :data:`BATCH` changes
    and, when small blocks travel inline (``inline_max`` > 0), about
    :data:`INLINE_REQUEST_BYTES` of JSON (at least one change).
    """
    part: list[PendingCommit] = []
    size = 0
    for commit in queue.values():
        if commit.id in sent:
            continue
        cost = 0
        if inline_max > 0:
            cost = 300 + 2 * len(commit.path.encode()) + sum(
                n * 4 // 3 + 100 for off, n in commit.to_upload.values() if n <= inline_max)
        if part and (len(part) >= BATCH or size + cost > INLINE_REQUEST_BYTES):
            return part, True
        part.append(commit)
        size += cost
    return part, False


def all_left(targets: list[str], queue: dict[str, PendingCommit]) -> Callable[[], bool]:
    """A predicate: whether none of ``targets`` is in ``queue`` any more. Changes leave
    for good and mostly in order, so it moves past the ones gone and checks each once:
    a flush of n changes costs O(n) in all, not O(n) at every resolved batch."""
    left = 0

    def done() -> bool:
        nonlocal left
        while left < len(targets) and targets[left] not in queue:
            left += 1
        return left == len(targets)

    return done


def _ancestors(path: str) -> list[str]:
    out = []
    parent = path.rpartition("/")[0]
    while parent:
        out.append(parent)
        parent = parent.rpartition("/")[0]
    return out


def related(first: set[str], second: set[str]) -> bool:
    """Whether a path of ``second`` is one of ``first``, or above or under one of them."""
    above_first = set(first)
    for path in first:
        above_first.update(_ancestors(path))
    return any(p in above_first or any(a in first for a in _ancestors(p)) for p in second)
