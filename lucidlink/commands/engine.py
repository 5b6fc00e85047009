"""Parallel copies with one progress bar, stopped cleanly by Ctrl-C.

Copies run on a thread pool over the blocking SDK (its calls share one event loop, so
threads only add concurrency). Ctrl-C reaches the main thread, which sets a stop flag
the workers check between chunks; each worker then abandons its copy (the atomic
writer removes its temporary), and the main thread raises :class:`Interrupted` once
all have stopped. Nothing partial is ever visible at a target path.
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence

import attrs
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from lucidlink.commands.errors import Interrupted
from lucidlink.commands.stores import Place, RemotePlace, same_filespace

CHUNK = 4 << 20
"""Bytes per read and write (the filespace's default block size)."""
PROGRESS_ENV = "LUCIDLINK_PROGRESS"
"""``1`` forces progress bars (even when stdout is not a terminal), ``0`` turns them off."""
DEFAULT_JOBS = 4
"""Copies run at once by default."""


@attrs.frozen
class Job:
    """One file to copy."""

    src: Place
    dst: Place
    size: int
    mtime_ns: int | None = None


class _Stop(Exception):
    """Raised inside a worker's copy when the run is being stopped."""


@attrs.frozen
class Options:
    """How transfers run: parallelism and progress display."""

    jobs: int = DEFAULT_JOBS
    progress: bool | None = None
    """``True``/``False`` to force; ``None``: on when stdout is a terminal."""
    quiet: bool = False
    bwlimit: int = 0
    """Bytes per second for all copies together; 0: no limit."""

    def show_progress(self) -> bool:
        """Whether to draw progress bars."""
        if self.quiet:
            return False
        env = os.environ.get(PROGRESS_ENV, "")
        if self.progress is not None:
            return self.progress
        if env in ("0", "1"):
            return env == "1"
        return sys.stdout.isatty()


def _progress(options: Options) -> Progress | None:
    if not options.show_progress():
        return None
    console = Console(
        stderr=True,
        force_terminal=True if options.progress or os.environ.get(PROGRESS_ENV) == "1" else None,
    )
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


class Limiter:
    """Holds copies to ``rate`` bytes per second in total (thread-safe)."""

    def __init__(self, rate: int) -> None:
        self._rate = rate
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._sent = 0

    def take(self, n: int, stop: threading.Event) -> None:
        """Account ``n`` bytes; sleep until they fit under the rate (or ``stop`` is set)."""
        if self._rate <= 0:
            return
        with self._lock:
            self._sent += n
            due = self._start + self._sent / self._rate
        stop.wait(max(0.0, due - time.monotonic()))


def copy_one(
    job: Job, stop: threading.Event, advance: Callable[[int], None], limiter: Limiter | None = None
) -> None:
    """Copy one file: inside one filespace without moving bytes, else streamed atomically."""
    if same_filespace(job.src, job.dst):
        assert isinstance(job.src, RemotePlace) and isinstance(job.dst, RemotePlace)
        job.dst.fs.copy_file(job.src.url.path, job.dst.url.path, overwrite=True)
        advance(job.size)
        return
    with job.src.open_read() as reader, job.dst.atomic_write(job.mtime_ns) as writer:
        while True:
            if stop.is_set():
                raise _Stop
            block = reader.read(CHUNK)
            if not block:
                break
            writer.write(block)
            advance(len(block))
            if limiter is not None:
                limiter.take(len(block), stop)


def run_jobs(jobs: Sequence[Job], options: Options, label: str = "copying") -> None:
    """Run the copies in parallel; the first failure stops the rest and is raised."""
    if not jobs:
        return
    stop = threading.Event()
    progress = _progress(options)
    task = None
    if progress is not None:
        progress.start()
        task = progress.add_task(label, total=sum(j.size for j in jobs))

    def advance(n: int) -> None:
        if progress is not None and task is not None:
            progress.advance(task, n)

    pool = concurrent.futures.ThreadPoolExecutor(
        max(1, options.jobs), thread_name_prefix="lucidlink-copy"
    )
    limiter = Limiter(options.bwlimit) if options.bwlimit else None
    futures = [pool.submit(copy_one, job, stop, advance, limiter) for job in jobs]
    try:
        _wait(futures, stop)
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        if progress is not None:
            progress.stop()


def _wait(futures: list[concurrent.futures.Future[None]], stop: threading.Event) -> None:
    pending = set(futures)
    try:
        while pending:
            done, pending = concurrent.futures.wait(
                pending, timeout=0.2, return_when=concurrent.futures.FIRST_EXCEPTION
            )
            for future in done:
                exc = future.exception()
                if exc is not None and not isinstance(exc, _Stop):
                    stop.set()
                    raise exc
    except KeyboardInterrupt:
        stop.set()
        # Let every worker remove its temporary before reporting.
        concurrent.futures.wait(futures)
        raise Interrupted(
            "interrupted; copies in progress were abandoned and no partial file was left behind"
        ) from None
