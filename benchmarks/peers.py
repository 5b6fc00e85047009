"""lucidlink against the peers a user would pick instead, and against the raw limits.

    .venv/bin/python -m pip install -e '.[all,bench]'
    .venv/bin/python benchmarks/peers.py [--rounds 3] [--mib 256] [--files 1000] [--quick]

One run on this machine starts its own SeaweedFS (S3) and two embedded hubs in child
processes (SQLite metadata; one keeps its blocks in its data dir, the other in the same
SeaweedFS the peers use, so clients move block bytes straight to the bucket), then
measures, per scenario:

* lucidlink, on each hub: the blocking SDK, as the issue asks (loops of ``write_file``/``open``/
  ``read_file``), ``lucidlink.fsspec``, and for the small files also the async core with
  ``CONCURRENCY`` calls in flight, the form the peers' concurrent figures compare with;
* s3fs and obstore against the SeaweedFS; for s3fs several forms, the best one shown;
* raw S3: plain unsigned aiohttp GET/PUT/LIST of the same bytes against the same SeaweedFS
  (the best of a single request and concurrent 4 MiB pieces): what a plain Python HTTP
  client gets from this server. obstore's Rust client may beat it; that is not a bug;
* the local disk: the same bytes written (with fsync, without, and past the page cache
  with ``O_DIRECT``, as lucidlink's staging and the hub's block files are) and read through
  plain files in a temporary directory on the disk that holds the hub's and SeaweedFS's
  data; for the small files also all their bytes in one file, fsync'd once (the disk's
  bandwidth for those bytes, whatever the number of files). Reads come from the page cache
  (the files were just written): plainly, in several threads, and into a result whose
  fresh pages another thread faults in ahead of the copies (as the daemon builds a large
  read's result; fresh pages cost about as much as the copies on this VM). This is the
  physical limit: every byte any engine moves
  is written to this disk or read from this machine's memory by a server on loopback.

``small_write_many`` is ``small_write`` with ten times the files (issue 14 names 1,000
and 10,000). A last scenario, ``stream``, writes a file far larger than a client's memory bound
(``--stream-mib``, 2 GiB) through ``open(wb)`` 8 MiB at a time and reads it back through
``open(rb)`` in a fresh daemon: its goal is the client's peak RSS (at most 300 MiB), the
local disk's same loop its speed's limit; the peers are not run there.

Every case runs in a fresh child process (a fresh client; for lucidlink a new daemon whose
block cache is empty), so its peak RSS is its own: the child's VmHWM, reset just before
the timed part (``/proc/self/clear_refs``), read just after it. It includes the interpreter,
the imports and, in write scenarios, the payload, the same for every engine. The servers'
memory (hub, SeaweedFS) is not counted for anyone. Every file of every round holds fresh
``os.urandom`` bytes, so no dedup or cache flatters anyone; reads check a SHA-256 of what
they got against what was written. Figures are medians of ``--rounds`` rounds, engines in
a rotating order within each round. Before each case every dirty page is written back
(``os.sync``) and the servers are let go idle (:func:`settle`), so no case pays for the
background work of the one before it. A figure better than the best local disk form of its
scenario is reported as a benchmark bug. No thresholds: it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import hashlib
import io
import math
import mmap
import multiprocessing
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _hubproc import HubProcess, add_event_loop_flag, quiet_logs  # noqa: E402
from _seaweed import Seaweed  # noqa: E402

from lucidlink.prefault import Prefault  # noqa: E402

MiB = 1024 * 1024
KiB = 1024
CHUNK = 4 * MiB
"""Write and range size for the large file: the hub's block size."""
SMALL = 4 * KiB
REGION = 4 * MiB
CONCURRENCY = 32
"""Concurrent requests of obstore and the raw limit for the small files."""
DISK_THREADS = 4
"""Threads reading the page cache at once: a multi-threaded reader's bound, like our daemon's."""
CLIENTS = 16
"""Concurrent clients of the metadata scenarios (``create``, ``stat``): for lucidlink 16
daemons in one process, each in its own directory; for the others 16 calls in flight."""
STATAHEAD_OFF = "statahead off"
"""The stat form whose daemons list no directory ahead (``fs.statahead=false``)."""
META_LIMITS = {"create": ("JuiceFS", 1410.0, 1500.0), "stat": ("JuiceFS", 5023.0, 5000.0)}
"""Published figures on 2 CPUs (JuiceFS's metadata benchmark) and issue 14's goals."""
MANY = 10
"""``small_write_many`` writes this many times ``--files`` files (10,000 by default)."""
STREAM_CHUNK = 8 * MiB
"""What the ``stream`` scenario writes and reads per call."""
STREAM_RSS_MIB = 300.0
"""Issue 14's bound on a client's peak RSS while it streams a file far larger than it."""
KEY, SECRET, REGION_NAME = "bench-key", "bench-secret", "us-east-1"
"""SeaweedFS checks no signatures (see ``_seaweed.py``); the peers sign with these."""

SCENARIOS: dict[str, tuple[str, str]] = {
    # name: (row label, unit); MiB/s and files/s: higher is better; ms: lower is better.
    "read": ("cold sequential read, {mib} MiB", "MiB/s"),
    "write": ("write + sync, {mib} MiB", "MiB/s"),
    "small_write": ("{files} x 4 KiB written + synced", "files/s"),
    "small_write_many": ("{many} x 4 KiB written + synced", "files/s"),
    "small_read": ("{files} x 4 KiB read, fresh client", "files/s"),
    "random": ("4 KiB read in {regions} x 4 MiB regions", "ms"),
    "list": ("list {files} entries, fresh client", "ms"),
    "warm": ("warm re-read, {mib} MiB", "MiB/s"),
    "create": ("create {meta} empty files, {clients} clients", "files/s"),
    "stat": ("stat {meta} files, {clients} fresh clients", "stats/s"),
    "stream": ("{stream_mib} MiB streamed in and out", "MiB/s"),
}
ORDER = ["write", "small_write", "read", "small_read", "random", "list", "warm",
         "create", "stat", "small_write_many", "stream"]
"""The order within a round: the reads read what the writes of the same round wrote."""

# (scenario, engine) -> forms. A lucidlink form is a row of its own; the forms of the
# others are alternatives, and the best median is shown.
FORMS: dict[tuple[str, str], list[str]] = {
    ("write", "lucidlink"): ["open(wb)"],
    ("write", "s3fs"): ["pipe_file", "pipe_file 8MiB parts"],
    ("write", "obstore"): ["put"],
    ("write", "raw"): ["PUT", "4MiB PUTs x8"],
    ("write", "disk"): ["write+fsync", "O_DIRECT write+fsync", "write (page cache)"],
    ("small_write", "lucidlink"): ["write_file loop", "open(wb) loop",
                                   f"aio write_file x{CONCURRENCY}"],
    ("small_write", "s3fs"): ["pipe(dict)"],
    ("small_write", "obstore"): [f"put x{CONCURRENCY}"],
    ("small_write", "raw"): [f"PUT x{CONCURRENCY}"],
    ("small_write", "disk"): ["write, fsync each", "one file, fsync", "write (page cache)"],
    ("read", "lucidlink"): ["read_file"],
    ("read", "s3fs"): ["cat_file", "cat_ranges 4MiB"],
    ("read", "obstore"): ["get"],
    ("read", "raw"): ["GET", "4MiB GETs x16", "4MiB objects x16"],
    ("read", "disk"): ["read", f"pread x{DISK_THREADS} threads", "readinto, prefaulted"],
    ("small_read", "lucidlink"): ["read_file loop", "fsspec cat(list)",
                                  f"aio read_file x{CONCURRENCY}"],
    ("small_read", "s3fs"): ["cat(list)"],
    ("small_read", "obstore"): [f"get x{CONCURRENCY}"],
    ("small_read", "raw"): [f"GET x{CONCURRENCY}"],
    ("small_read", "disk"): ["read"],
    ("random", "lucidlink"): ["seek+read"],
    ("random", "s3fs"): ["cat_file range"],
    ("random", "obstore"): ["get_range"],
    ("random", "raw"): ["ranged GET", "ranged GET, 4MiB objects"],
    ("random", "disk"): ["pread"],
    ("list", "lucidlink"): ["read_dir"],
    ("list", "s3fs"): ["ls"],
    ("list", "obstore"): ["list_with_delimiter"],
    ("list", "raw"): ["ListObjectsV2"],
    ("list", "disk"): ["scandir+stat"],
    ("warm", "lucidlink"): ["read_file"],
    ("warm", "s3fs"): ["cat_file"],
    ("warm", "obstore"): ["get"],
    ("warm", "raw"): ["GET", "4MiB GETs x16"],
    ("warm", "disk"): ["read", f"pread x{DISK_THREADS} threads", "readinto, prefaulted"],
    ("create", "lucidlink"): [f"aio write_file(b'') x{CLIENTS} daemons"],
    ("create", "s3fs"): ["pipe(dict) of empty"],
    ("create", "obstore"): [f"put empty x{CLIENTS}"],
    ("create", "raw"): [f"PUT empty x{CLIENTS}"],
    ("create", "disk"): ["create+fsync dir", "create (page cache)"],
    # The default client (a stat-ahead listing answers most stats of a directory), and
    # one that asks the hub for every stat: the hub's own rate.
    ("stat", "lucidlink"): [f"aio get_entry x{CLIENTS} daemons",
                            f"aio get_entry x{CLIENTS} daemons, {STATAHEAD_OFF}"],
    ("stat", "s3fs"): [f"_info x{CLIENTS}"],
    ("stat", "obstore"): [f"head x{CLIENTS}"],
    ("stat", "raw"): [f"HEAD x{CLIENTS}"],
    ("stat", "disk"): ["stat"],
    # A file far larger than the client's memory bound, written in 8 MiB calls and read
    # back the same way by a fresh daemon: the goal is the peak RSS, not the speed. The
    # peers are not run (their streaming APIs hold what they are given; nothing to compare).
    ("stream", "lucidlink"): ["open(wb), then open(rb) in a fresh daemon"],
    ("stream", "disk"): ["write+fsync, then read", "O_DIRECT write+fsync, then read"],
}
for (_scenario, _engine), _forms in list(FORMS.items()):
    if _engine == "lucidlink":  # the same forms on a hub whose blocks are in the bucket
        FORMS[(_scenario, "lucidlink-s3")] = _forms
for (_scenario, _engine), _forms in list(FORMS.items()):
    if _scenario == "small_write":  # the same forms, ten times the files
        FORMS[("small_write_many", _engine)] = _forms
ENGINES = ["lucidlink", "lucidlink-s3", "s3fs", "obstore", "raw", "disk"]
OURS = {"lucidlink": "local blocks", "lucidlink-s3": "S3 blocks"}
"""Our engines: one hub with blocks in its data dir, one with blocks in the bucket."""
GOALS: list[tuple[str, str, str, float]] = [
    # (scenario, our form, basis, target). Basis "peer": the best form of s3fs or obstore;
    # "obstore", "raw": that engine's best form; "disk": the local disk's best form;
    # "goal": issue 14's absolute figure (META_LIMITS).
    ("read", "read_file", "peer", 1.0),
    ("read", "read_file", "raw", 0.8),
    ("write", "open(wb)", "peer", 1.5),
    ("small_write", "write_file loop", "peer", 3.0),
    ("small_write", "open(wb) loop", "peer", 3.0),
    ("small_write_many", "write_file loop", "peer", 3.0),
    ("small_write_many", "open(wb) loop", "peer", 3.0),
    ("small_read", "read_file loop", "peer", 2.0),
    ("small_read", "fsspec cat(list)", "peer", 2.0),
    ("random", "seek+read", "obstore", 1.0),
    ("list", "read_dir", "peer", 2.0),
    ("warm", "read_file", "disk", 0.3),
    ("create", FORMS[("create", "lucidlink")][0], "goal", 1.0),
    # The stricter stat form: every stat a hub request (stat-ahead would answer most).
    ("stat", FORMS[("stat", "lucidlink")][1], "goal", 1.0),
    # Peak RSS at most STREAM_RSS_MIB while streaming (the ratio: the bound over the peak).
    ("stream", FORMS[("stream", "lucidlink")][0], "rss", 1.0),
]
"""Issue 14's goals, each a ratio in this run, oriented so that higher is better (for ms,
the basis's time over ours)."""
LAYOUT_LIMITS: list[tuple[str, str, str]] = [
    ("read", "read_file", "4MiB objects x16"),
    ("write", "open(wb)", "4MiB PUTs x8"),
    ("random", "seek+read", "ranged GET, 4MiB objects"),
]
"""(scenario, our form, the raw form that moves the same bytes as one object per block):
what the S3 store itself allows the hub's block layout, in the same run."""


# -- the child side ---------------------------------------------------------------------


class Timer:
    """The timed part of a case: wall time and the peak RSS reached during it."""

    seconds = 0.0
    peak_mib = 0.0

    def __enter__(self) -> Timer:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux 4.0+)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self._t0
        with open("/proc/self/status") as f:
            hwm = next(line for line in f if line.startswith("VmHWM:"))
        self.peak_mib = int(hwm.split()[1]) / 1024


def _digest(parts: list[Any]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.hexdigest()


def _check(got: list[Any], want: str | None, what: str) -> None:
    if want is not None and _digest(got) != want:
        raise AssertionError(f"{what}: the bytes read are not the bytes written")


def _big_digests(payload: Any, offsets: list[int]) -> list[str]:
    """What reads of the large file check: all of it, and the random 4 KiB reads."""
    return [_digest([payload]), _digest([payload[o:o + SMALL] for o in offsets])]


def _small_names(n: int) -> list[str]:
    return [f"{i:05d}.bin" for i in range(n)]


def _meta_names(files: int) -> list[list[str]]:
    """The metadata scenarios' files: one directory of ``files // 4`` names per client."""
    per = max(1, files // 4)
    return [[f"c{c:02d}/{i:05d}.e" for i in range(per)] for c in range(CLIENTS)]


def _meta_dir(engine: str, r: int) -> str:
    """Where the metadata scenarios' files live (no trailing slash)."""
    return f"/r{r}/meta" if engine in OURS else f"r{r}/{engine}/meta"


def _slots(engine: str, form: str, r: int | str) -> tuple[str, str]:
    """Where a case's large file and small-file directory live (no trailing slash)."""
    if engine in OURS:
        small = ("aio" if form.startswith("aio") else
                 "open_wb" if "open" in form or "fsspec" in form else "write_file")
        return f"/r{r}/big.bin", f"/r{r}/small-{small}"
    if engine == "s3fs":
        big = "pipe8" if "8MiB" in form or "cat_ranges" in form else "pipe"
        return f"r{r}/s3fs-{big}/big.bin", f"r{r}/s3fs/small"
    if engine == "raw" and ("x8" in form or "objects" in form):
        # The large file as 4 MiB objects, the shape of lucidlink's blocks in the bucket.
        return f"r{r}/raw/pieces.bin", f"r{r}/raw/small"
    return f"r{r}/{engine}/big.bin", f"r{r}/{engine}/small"


@contextlib.contextmanager
def _lucid(ctx: dict[str, Any]) -> Iterator[Any]:
    import lucidlink

    quiet_logs()
    with lucidlink.create_daemon(hub_url=ctx["hub_url"]) as daemon:
        ws = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=ctx["token"]))
        with ws.link_filespace(name="data") as fsp:
            yield fsp


def case_lucidlink(scenario: str, form: str, ctx: dict[str, Any], t: Timer) -> list[str] | None:
    """One lucidlink case, in a new daemon (empty cache); returns a digest for writes."""
    big, small = _slots("lucidlink", form, ctx["round"])
    names = _small_names(ctx["files"])
    if scenario in ("create", "stat"):
        return asyncio.run(_lucid_meta(scenario, form, ctx, t))
    if scenario == "stream":
        _lucid_stream(ctx, t)
        return None
    if form.startswith("aio"):
        return asyncio.run(_lucid_aio(scenario, small, names, ctx, t))
    if form == "fsspec cat(list)":
        from lucidlink.fsspec import LucidLinkFileSystem

        quiet_logs()
        fs = LucidLinkFileSystem(token=ctx["token"], hub_url=ctx["hub_url"],
                                 skip_instance_cache=True)
        try:
            base = f"lucidlink://bench/data{small}"
            fs.info(base)  # start the daemon and link outside the timing, as elsewhere
            urls = [f"{base}/{n}" for n in names]
            with t:
                got = fs.cat(urls)
            assert len(got) == len(urls), len(got)
            _check([got[k] for k in sorted(got)], ctx["want"], form)
        finally:
            fs.close()
        return None
    with _lucid(ctx) as fsp:
        fs = fsp.fs
        if scenario == "write":
            payload = memoryview(os.urandom(ctx["size"]))
            fs.create_dir(os.path.dirname(big))
            with t:
                with fs.open(big, "wb") as f:
                    for off in range(0, len(payload), CHUNK):
                        f.write(payload[off:off + CHUNK])
                fsp.sync_all()
            return _big_digests(payload, ctx["offsets"])
        if scenario == "small_write":
            datas = [os.urandom(SMALL) for _ in names]
            fs.create_dir(small)
            with t:
                if form == "write_file loop":
                    for n, d in zip(names, datas, strict=True):
                        fs.write_file(f"{small}/{n}", d)
                else:
                    for n, d in zip(names, datas, strict=True):
                        with fs.open(f"{small}/{n}", "wb") as f:
                            f.write(d)
                fsp.sync_all()
            return [_digest(datas)]
        if scenario in ("read", "warm"):
            if scenario == "warm":
                fs.read_file(big)
            with t:
                data = fs.read_file(big)
            _check([data], ctx["want"], form)
        elif scenario == "small_read":
            with t:
                got = [fs.read_file(f"{small}/{n}") for n in names]
            _check(got, ctx["want"], form)
        elif scenario == "random":
            with fs.open(big, "rb") as f:
                with t:
                    got = []
                    for off in ctx["offsets"]:
                        f.seek(off)
                        got.append(f.read(SMALL))
            _check(got, ctx["want"], form)
        elif scenario == "list":
            with t:
                entries = fs.read_dir(small)
            assert len(entries) == len(names), len(entries)
    return None


async def _lucid_aio(scenario: str, small: str, names: list[str], ctx: dict[str, Any],
                     t: Timer) -> list[str] | None:
    """The small files through the async core, ``CONCURRENCY`` calls at a time."""
    import lucidlink.aio

    quiet_logs()
    sem = asyncio.Semaphore(CONCURRENCY)

    async def bounded(coro: Any) -> Any:
        async with sem:
            return await coro

    async with lucidlink.aio.create_daemon(hub_url=ctx["hub_url"]) as daemon:
        creds = lucidlink.aio.ServiceAccountCredentials(token=ctx["token"])
        ws = await daemon.authenticate(creds)
        async with ws.link_filespace(name="data") as fsp:
            fs = fsp.fs
            if scenario == "small_write":
                datas = [os.urandom(SMALL) for _ in names]
                await fs.create_dir(small)
                with t:
                    await asyncio.gather(*(bounded(fs.write_file(f"{small}/{n}", d))
                                           for n, d in zip(names, datas, strict=True)))
                    await fsp.sync_all()
                return [_digest(datas)]
            with t:
                got = await asyncio.gather(*(bounded(fs.read_file(f"{small}/{n}"))
                                             for n in names))
            _check(got, ctx["want"], "aio read_file")
    return None


def _stream_chunks(total: int) -> Iterator[bytes]:
    """``total`` fresh random bytes, :data:`STREAM_CHUNK` at a time (never all held)."""
    rng = random.Random(os.urandom(16))  # a fresh stream each case; randbytes is fast
    for _ in range(total // STREAM_CHUNK):
        yield rng.randbytes(STREAM_CHUNK)


def _write_stream(f: Any, total: int) -> bytes:
    """Write ``total`` fresh random bytes to the file ``f``, 8 MiB a call; their SHA-256."""
    wrote = hashlib.sha256()
    for chunk in _stream_chunks(total):
        wrote.update(chunk)
        f.write(chunk)
    return wrote.digest()


def _write_direct(path: Path, pieces: Iterable[bytes | memoryview], size: int) -> None:
    """Write ``pieces`` (each at most ``size`` bytes, all but the last a multiple of the
    page size) to ``path`` with ``O_DIRECT`` from one reused aligned buffer, then fsync:
    past the page cache, as the daemon's staging and the hub's block files are written."""
    aligned = mmap.mmap(-1, size)  # O_DIRECT wants aligned memory
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
    try:
        offset = 0
        for piece in pieces:
            aligned[:len(piece)] = piece
            os.pwrite(fd, memoryview(aligned)[:len(piece)], offset)
            offset += len(piece)
        os.fsync(fd)
    finally:
        os.close(fd)
        aligned.close()


def _write_stream_direct(path: Path, total: int) -> bytes:
    """:func:`_write_stream` through :func:`_write_direct`; the bytes' SHA-256."""
    wrote = hashlib.sha256()

    def hashed() -> Iterator[bytes]:
        for chunk in _stream_chunks(total):  # whole chunks only: aligned lengths
            wrote.update(chunk)
            yield chunk

    _write_direct(path, hashed(), STREAM_CHUNK)
    return wrote.digest()


def _read_stream(f: Any) -> tuple[bytes, int]:
    """Read the file ``f`` to its end, 8 MiB a call: the SHA-256 and the count of its bytes."""
    read, got = hashlib.sha256(), 0
    while chunk := f.read(STREAM_CHUNK):
        read.update(chunk)
        got += len(chunk)
    return read.digest(), got


def _check_stream(wrote: bytes, read: tuple[bytes, int], total: int) -> None:
    if read != (wrote, total):
        raise AssertionError("stream: the bytes read are not the bytes written")


def _lucid_stream(ctx: dict[str, Any], t: Timer) -> None:
    """``stream``: ``ctx["stream"]`` bytes written through ``open(wb)`` and synced, then read
    back through ``open(rb)`` by a fresh daemon (an empty cache: every block comes from
    the hub), 8 MiB a call, checked by SHA-256. Both daemons live inside the timed part,
    so the peak RSS is the whole client's."""
    path = f"/r{ctx['round']}/stream/stream.bin"
    with t:
        with _lucid(ctx) as fsp:
            fsp.fs.create_dir(os.path.dirname(path))
            with fsp.fs.open(path, "wb") as f:
                wrote = _write_stream(f, ctx["stream"])
            fsp.sync_all()
        with _lucid(ctx) as fsp, fsp.fs.open(path, "rb") as f:
            read = _read_stream(f)
    _check_stream(wrote, read, ctx["stream"])


async def _lucid_meta(scenario: str, form: str, ctx: dict[str, Any],
                      t: Timer) -> list[str] | None:
    """``CLIENTS`` fresh daemons at once, each creating or stat-ing the files of its own
    directory: distinct files, nothing cached before the timing. With stat-ahead (the
    default) a daemon's second stat lists its directory and the listing answers the rest;
    the ``statahead off`` form asks the hub for every stat."""
    import lucidlink.aio

    quiet_logs()
    base = _meta_dir("lucidlink", ctx["round"])
    groups = _meta_names(ctx["files"])
    async with contextlib.AsyncExitStack() as stack:
        filesystems = []
        for _ in groups:  # start, authenticate and link outside the timing
            daemon = await stack.enter_async_context(lucidlink.aio.create_daemon(
                hub_url=ctx["hub_url"],
                config={"fs.statahead": False} if STATAHEAD_OFF in form else None))
            ws = await daemon.authenticate(
                lucidlink.aio.ServiceAccountCredentials(token=ctx["token"]))
            filesystems.append(await stack.enter_async_context(ws.link_filespace(name="data")))
        if scenario == "create":
            for fsp, names in zip(filesystems, groups, strict=True):
                await fsp.fs.create_dir(f"{base}/{names[0].split('/')[0]}")

            async def create(fsp: Any, names: list[str]) -> None:
                for n in names:
                    await fsp.fs.write_file(f"{base}/{n}", b"")
                await fsp.sync_all()

            with t:
                await asyncio.gather(*(create(f, g) for f, g in zip(filesystems, groups,
                                                                       strict=True)))
            return [_digest([n.encode() for g in groups for n in g])]

        async def stat(fsp: Any, names: list[str]) -> list[int]:
            return [(await fsp.fs.get_entry(f"{base}/{n}")).size for n in names]

        with t:
            sizes = await asyncio.gather(*(stat(f, g) for f, g in zip(filesystems, groups,
                                                                      strict=True)))
        assert all(s == 0 for g in sizes for s in g) and sum(map(len, sizes)) == sum(
            map(len, groups)), "stat: wrong entries"
    return None


async def _s3fs_meta(scenario: str, ctx: dict[str, Any], t: Timer) -> list[str] | None:
    """s3fs's async API, ``CLIENTS`` calls in flight (its sync calls are serial)."""
    import s3fs

    fs = s3fs.S3FileSystem(key=KEY, secret=SECRET, endpoint_url=ctx["endpoint"],
                           client_kwargs={"region_name": REGION_NAME}, asynchronous=True,
                           skip_instance_cache=True, use_listings_cache=False)
    session = await fs.set_session()
    try:
        base = f"{ctx['bucket']}/{_meta_dir('s3fs', ctx['round'])}"
        names = [f"{base}/{n}" for g in _meta_names(ctx["files"]) for n in g]
        await fs._info(f"{ctx['bucket']}/ready-probe")  # connect outside the timing
        if scenario == "create":
            with t:
                await fs._pipe({n: b"" for n in names}, batch_size=CLIENTS)
            return [_digest([n.encode() for g in _meta_names(ctx["files"]) for n in g])]
        sem = asyncio.Semaphore(CLIENTS)

        async def info(n: str) -> int:
            async with sem:
                return int((await fs._info(n))["size"])

        with t:
            sizes = await asyncio.gather(*(info(n) for n in names))
        assert sizes == [0] * len(names), "stat: wrong sizes"
    finally:
        await session.close()
    return None


def case_s3fs(scenario: str, form: str, ctx: dict[str, Any], t: Timer) -> list[str] | None:
    """One s3fs case, with a new S3FileSystem (no instance or listings cache)."""
    import s3fs

    fs = s3fs.S3FileSystem(key=KEY, secret=SECRET, endpoint_url=ctx["endpoint"],
                           client_kwargs={"region_name": REGION_NAME},
                           skip_instance_cache=True, use_listings_cache=False)
    if scenario in ("create", "stat"):
        return asyncio.run(_s3fs_meta(scenario, ctx, t))
    bucket = ctx["bucket"]
    big, small = _slots("s3fs", form, ctx["round"])
    big, small = f"{bucket}/{big}", f"{bucket}/{small}"
    names = [f"{small}/{n}" for n in _small_names(ctx["files"])]
    fs.info(f"{bucket}/ready-probe")  # connect outside the timing
    if scenario == "write":
        payload = os.urandom(ctx["size"])
        kw = {"chunksize": 8 * MiB} if "8MiB" in form else {}
        with t:
            fs.pipe_file(big, payload, **kw)
        return _big_digests(payload, ctx["offsets"])
    if scenario == "small_write":
        datas = {n: os.urandom(SMALL) for n in names}
        with t:
            fs.pipe(datas)
        return [_digest(list(datas.values()))]
    if scenario in ("read", "warm"):
        if scenario == "warm":
            fs.cat_file(big)
        with t:
            if form.startswith("cat_ranges"):
                starts = list(range(0, ctx["size"], CHUNK))
                parts = fs.cat_ranges([big] * len(starts), starts,
                                      [min(s + CHUNK, ctx["size"]) for s in starts])
                data = b"".join(parts)
            else:
                data = fs.cat_file(big)
        _check([data], ctx["want"], form)
    elif scenario == "small_read":
        with t:
            got = fs.cat(names)
        _check([got[n] for n in names], ctx["want"], form)
    elif scenario == "random":
        with t:
            got = [fs.cat_file(big, start=o, end=o + SMALL) for o in ctx["offsets"]]
        _check(got, ctx["want"], form)
    elif scenario == "list":
        with t:
            entries = fs.ls(small, detail=True)
        assert len(entries) == len(names), len(entries)
    return None


def case_obstore(scenario: str, form: str, ctx: dict[str, Any], t: Timer) -> list[str] | None:
    """One obstore case, with a new S3Store."""
    import obstore as obs
    from obstore.store import S3Store

    store = S3Store(ctx["bucket"], endpoint=ctx["endpoint"], access_key_id=KEY,
                    secret_access_key=SECRET, region=REGION_NAME,
                    client_options={"allow_http": True}, virtual_hosted_style_request=False)
    big, small = _slots("obstore", form, ctx["round"])
    names = [f"{small}/{n}" for n in _small_names(ctx["files"])]
    obs.head(store, "ready-probe")  # connect outside the timing

    async def each(fn: Callable[[str], Any]) -> list[Any]:
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one(n: str) -> Any:
            async with sem:
                return await fn(n)

        return await asyncio.gather(*(one(n) for n in names))

    if scenario == "write":
        payload = os.urandom(ctx["size"])
        with t:
            obs.put(store, big, payload)
        return _big_digests(payload, ctx["offsets"])
    if scenario == "small_write":
        datas = {n: os.urandom(SMALL) for n in names}
        with t:
            asyncio.run(each(lambda n: obs.put_async(store, n, datas[n])))
        return [_digest(list(datas.values()))]
    if scenario in ("read", "warm"):
        if scenario == "warm":
            obs.get(store, big).bytes()
        with t:
            data = obs.get(store, big).bytes()
        _check([data], ctx["want"], form)
    elif scenario == "small_read":

        async def get(n: str) -> Any:
            return await (await obs.get_async(store, n)).bytes_async()

        with t:
            got = asyncio.run(each(get))
        _check(got, ctx["want"], form)
    elif scenario == "random":
        with t:
            got = [obs.get_range(store, big, start=o, length=SMALL) for o in ctx["offsets"]]
        _check(got, ctx["want"], form)
    elif scenario == "list":
        with t:
            entries = obs.list_with_delimiter(store, small)["objects"]
        assert len(entries) == len(names), len(entries)
    elif scenario in ("create", "stat"):
        base = _meta_dir("obstore", ctx["round"])
        groups = _meta_names(ctx["files"])
        names = [f"{base}/{n}" for g in groups for n in g]
        sem = asyncio.Semaphore(CLIENTS)

        async def meta(n: str) -> int:
            async with sem:
                if scenario == "create":
                    await obs.put_async(store, n, b"")
                    return 0
                return int((await obs.head_async(store, n))["size"])

        async def every() -> list[int]:
            return await asyncio.gather(*(meta(n) for n in names))

        with t:
            sizes = asyncio.run(every())
        assert sizes == [0] * len(names), "stat: wrong sizes"
        if scenario == "create":
            return [_digest([n.encode() for g in groups for n in g])]
    return None


def case_raw(scenario: str, form: str, ctx: dict[str, Any], t: Timer) -> list[str] | None:
    """The raw S3 limit: plain unsigned aiohttp requests to the same SeaweedFS."""
    return asyncio.run(_raw(scenario, form, ctx, t))


async def _raw(scenario: str, form: str, ctx: dict[str, Any], t: Timer) -> list[str] | None:
    import aiohttp

    base = f"{ctx['endpoint']}/{ctx['bucket']}"
    big, small = _slots("raw", form, ctx["round"])
    names = [f"{small}/{n}" for n in _small_names(ctx["files"])]
    size = ctx["size"]
    conn = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=conn) as s:

        async def put(key: str, data: Any) -> None:
            async with s.put(f"{base}/{key}", data=data) as resp:
                assert resp.status == 200, (resp.status, await resp.text())

        async def get(key: str, start: int | None = None, end: int | None = None) -> bytes:
            headers = {} if start is None else {"Range": f"bytes={start}-{end - 1}"}  # type: ignore[operator]
            async with s.get(f"{base}/{key}", headers=headers) as resp:
                assert resp.status in (200, 206), resp.status
                return await resp.read()

        async def bounded(limit: int, coros: list[Any]) -> list[Any]:
            sem = asyncio.Semaphore(limit)

            async def one(c: Any) -> Any:
                async with sem:
                    return await c

            return await asyncio.gather(*(one(c) for c in coros))

        async def read_big() -> bytes:
            if form == "GET":
                return await get(big)
            if "objects" in form:
                pieces = [f"{big}.{i:05d}" for i in range(-(-size // CHUNK))]
                return b"".join(await bounded(16, [get(k) for k in pieces]))
            starts = range(0, size, CHUNK)
            parts = await bounded(16, [get(big, a, min(a + CHUNK, size)) for a in starts])
            return b"".join(parts)

        await get("ready-probe")  # connect outside the timing
        if scenario in ("create", "stat"):
            groups = _meta_names(ctx["files"])
            keys = [f"{_meta_dir('raw', ctx['round'])}/{n}" for g in groups for n in g]

            async def head(key: str) -> int:
                async with s.head(f"{base}/{key}") as resp:
                    assert resp.status == 200, resp.status
                    return int(resp.headers["Content-Length"])

            with t:
                if scenario == "create":
                    await bounded(CLIENTS, [put(k, b"") for k in keys])
                else:
                    sizes = await bounded(CLIENTS, [head(k) for k in keys])
            if scenario == "create":
                return [_digest([n.encode() for g in groups for n in g])]
            assert sizes == [0] * len(keys), "stat: wrong sizes"
            return None
        if scenario == "write":
            payload = memoryview(os.urandom(size))
            with t:
                if form == "PUT":
                    await put(big, payload.tobytes())
                else:
                    await bounded(8, [put(f"{big}.{i:05d}", payload[o:o + CHUNK].tobytes())
                                      for i, o in enumerate(range(0, size, CHUNK))])
            return _big_digests(payload, ctx["offsets"])
        if scenario == "small_write":
            datas = [os.urandom(SMALL) for _ in names]
            with t:
                await bounded(CONCURRENCY, [put(n, d) for n, d in zip(names, datas, strict=True)])
            return [_digest(datas)]
        if scenario in ("read", "warm"):
            if scenario == "warm":
                await read_big()
            with t:
                data = await read_big()
            _check([data], ctx["want"], form)
        elif scenario == "small_read":
            with t:
                got = await bounded(CONCURRENCY, [get(n) for n in names])
            _check(got, ctx["want"], form)
        elif scenario == "random" and "objects" in form:
            with t:
                got = [await get(f"{big}.{o // CHUNK:05d}", o % CHUNK, o % CHUNK + SMALL)
                       for o in ctx["offsets"]]
            _check(got, ctx["want"], form)
        elif scenario == "random":
            with t:
                got = [await get(big, o, o + SMALL) for o in ctx["offsets"]]
            _check(got, ctx["want"], form)
        elif scenario == "list":
            with t:
                count, token = 0, None
                while True:
                    params = {"list-type": "2", "prefix": f"{small}/"}
                    if token:
                        params["continuation-token"] = token
                    async with s.get(base, params=params) as resp:
                        body = await resp.text()
                    count += body.count("<Key>")
                    found = re.search(r"<NextContinuationToken>([^<]+)<", body)
                    if "<IsTruncated>true" not in body or found is None:
                        break
                    token = found.group(1)
            assert count == len(names), count
    return None


def case_disk(scenario: str, form: str, ctx: dict[str, Any], t: Timer) -> list[str] | None:
    """The local disk limit: plain files in a directory on the servers' disk."""
    root = Path(ctx["disk"]) / f"r{ctx['round']}"
    big, small = root / "big.bin", root / "small"
    names = [small / n for n in _small_names(ctx["files"])]
    if scenario == "stream":
        root.mkdir(parents=True, exist_ok=True)
        path = root / "stream.bin"
        try:
            with t:
                if form.startswith("O_DIRECT"):
                    wrote = _write_stream_direct(path, ctx["stream"])
                else:
                    with open(path, "wb", buffering=0) as f:
                        wrote = _write_stream(f, ctx["stream"])
                        os.fsync(f.fileno())
                with open(path, "rb", buffering=0) as f:
                    read = _read_stream(f)
        finally:
            path.unlink(missing_ok=True)
        _check_stream(wrote, read, ctx["stream"])
        return None
    if scenario in ("create", "stat"):
        groups = _meta_names(ctx["files"])
        meta = [root / "meta" / form.split()[0] / n for g in groups for n in g]
        if scenario == "create":
            for d in {p.parent for p in meta}:
                d.mkdir(parents=True, exist_ok=True)
            with t:
                for p in meta:
                    os.close(os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644))
                if "fsync" in form:
                    for d in {p.parent for p in meta}:
                        fd = os.open(d, os.O_RDONLY)
                        try:
                            os.fsync(fd)
                        finally:
                            os.close(fd)
            return [_digest([n.encode() for g in groups for n in g])]
        meta = [root / "meta" / "create" / n for g in groups for n in g]
        with t:
            sizes = [os.stat(p).st_size for p in meta]
        assert sizes == [0] * len(meta), "stat: wrong sizes"
        return None

    def read(p: Path) -> bytes:
        with open(p, "rb", buffering=0) as f:
            return f.read()

    def read_threaded(p: Path) -> bytearray:
        # The page cache read by DISK_THREADS threads at once, each a 4 MiB piece at a time
        # into its place in one buffer: the bound for a reader that, like our daemon, copies
        # in several threads (os.preadv releases the GIL).
        size = os.path.getsize(p)
        out = bytearray(size)
        view = memoryview(out)
        fd = os.open(p, os.O_RDONLY)
        try:
            with concurrent.futures.ThreadPoolExecutor(DISK_THREADS) as pool:
                list(pool.map(lambda off: os.preadv(fd, [view[off:off + CHUNK]], off),
                              range(0, size, CHUNK)))
        finally:
            os.close(fd)
        return out

    def read_prefaulted(p: Path) -> bytes:
        # As the daemon builds a large read's result (lucidlink/aio/reader.py): zero pages
        # of bytes(size), faulted in by another thread (MADV_POPULATE_WRITE) while this one
        # copies the page cache into them, 4 MiB at a time. Without it the daemon's warm
        # re-read could beat every disk form: fresh pages cost as much as the copies here.
        size = os.path.getsize(p)
        out = io.BytesIO(bytes(size))
        view = out.getbuffer()
        prefault = Prefault(view)
        faults = threading.Thread(target=prefault.run)
        faults.start()
        try:
            with open(p, "rb", buffering=0) as f:
                done = 0
                while done < size:
                    n = f.readinto(view[done:done + CHUNK])
                    if not n:
                        break
                    done += n
        finally:
            prefault.stop()
            faults.join()
            view.release()
        return out.getvalue()

    if scenario == "write" and form.startswith("O_DIRECT"):
        payload = memoryview(os.urandom(ctx["size"]))
        root.mkdir(parents=True, exist_ok=True)
        with t:
            _write_direct(big, (payload[off:off + CHUNK] for off in range(0, len(payload), CHUNK)),
                          CHUNK)
        return _big_digests(payload, ctx["offsets"])
    if scenario == "write":
        payload = memoryview(os.urandom(ctx["size"]))
        root.mkdir(parents=True, exist_ok=True)
        with t:
            with open(big, "wb", buffering=0) as f:
                for off in range(0, len(payload), CHUNK):
                    f.write(payload[off:off + CHUNK])
                if "fsync" in form:
                    os.fsync(f.fileno())
        return _big_digests(payload, ctx["offsets"])
    if scenario == "small_write":
        datas = [os.urandom(SMALL) for _ in names]
        small.mkdir(parents=True, exist_ok=True)
        if form.startswith("one file"):
            with t:
                with open(root / "small-in-one.bin", "wb", buffering=0) as f:
                    for d in datas:
                        f.write(d)
                    os.fsync(f.fileno())
            return [_digest(datas)]
        with t:
            for p, d in zip(names, datas, strict=True):
                p.write_bytes(d)
            if "fsync" in form:
                for p in [*names, small]:
                    fd = os.open(p, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
        return [_digest(datas)]
    if scenario in ("read", "warm"):
        if scenario == "warm":
            read(big)
        if form.startswith("pread"):
            with t:
                data = read_threaded(big)
        elif form == "readinto, prefaulted":
            with t:
                data = read_prefaulted(big)
        else:
            with t:
                data = read(big)
        _check([data], ctx["want"], form)
    elif scenario == "small_read":
        with t:
            got = [read(p) for p in names]
        _check(got, ctx["want"], form)
    elif scenario == "random":
        fd = os.open(big, os.O_RDONLY)
        try:
            with t:
                got = [os.pread(fd, SMALL, o) for o in ctx["offsets"]]
        finally:
            os.close(fd)
        _check(got, ctx["want"], form)
    elif scenario == "list":
        with t:
            entries = [(e.name, e.stat().st_size) for e in os.scandir(small)]
        assert len(entries) == len(names), len(entries)
    return None


CASES: dict[str, Callable[[str, str, dict[str, Any], Timer], list[str] | None]] = {
    "lucidlink-s3": case_lucidlink,  # the same client; ctx names the S3-backed hub
    "lucidlink": case_lucidlink, "s3fs": case_s3fs, "obstore": case_obstore,
    "raw": case_raw, "disk": case_disk,
}


def run_case(scenario: str, engine: str, form: str,
             ctx: dict[str, Any]) -> tuple[float, float, list[str] | None]:
    """Child process: one case; returns (seconds, peak RSS MiB, digests of what it wrote)."""
    t = Timer()
    if scenario == "small_write_many":  # small_write's case, in a directory of its own
        scenario, ctx = "small_write", {**ctx, "files": ctx["files"] * MANY,
                                        "round": f"{ctx['round']}-many"}
    digest = CASES[engine](scenario, form, ctx, t)
    if t.seconds == 0.0:
        raise RuntimeError(f"{engine} {scenario} {form}: nothing was timed")
    return t.seconds, t.peak_mib, digest


# -- the parent side --------------------------------------------------------------------


def figure(scenario: str, seconds: float, size: int, files: int, regions: int,
           stream: int = 0) -> float:
    """A case's time as the figure printed for its scenario (see ``SCENARIOS``)."""
    unit = SCENARIOS[scenario][1]
    if scenario == "stream":
        return stream / MiB / seconds
    if scenario == "small_write_many":
        return files * MANY / seconds
    if scenario in ("create", "stat"):
        return sum(map(len, _meta_names(files))) / seconds
    if unit == "MiB/s":
        return size / MiB / seconds
    if unit == "files/s":
        return files / seconds
    if scenario == "random":
        return seconds / regions * 1000  # serial reads: total / count is the mean latency
    return seconds * 1000


def better(scenario: str, a: float, b: float) -> bool:
    """Whether figure ``a`` beats figure ``b`` in this scenario's unit."""
    return a < b if SCENARIOS[scenario][1] == "ms" else a > b


def want_key(scenario: str, engine: str, form: str) -> tuple[str, str]:
    """The write case whose digest a read case checks against."""
    big, small = _slots(engine, form, 0)
    if scenario in ("create", "stat"):
        return engine, "meta"
    if scenario == "small_write_many":
        return engine, small + "#many"
    if scenario == "random":
        return engine, big + "#random"
    if scenario in ("read", "warm", "write"):
        return engine, big
    return engine, small


def _cpu_of(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by the processes ``pids`` (gone ones: 0)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def settle(pids: list[int], *, idle: float = 0.05, window: float = 0.2,
           limit: float = 15.0) -> None:
    """Start each case on a quiet machine: write back every dirty page (``os.sync``), then
    wait until the servers (``pids``) use under ``idle`` of a CPU over ``window`` seconds,
    for at most ``limit`` seconds. Without it, a case paid for the one before it: the
    disk writeback of a large write, or SeaweedFS and the hubs finishing work in the
    background. Every engine gets the same."""
    os.sync()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = _cpu_of(pids)
        time.sleep(window)
        if _cpu_of(pids) - before < idle * window:
            return


def measure(args: argparse.Namespace, hubs: dict[str, HubProcess], sw: Seaweed, disk: str,
            hub_cpu: dict[tuple[str, str, str], list[float]],
            ) -> dict[tuple[str, str, str], list[tuple[float, float]]]:
    """Run every case ``args.rounds`` times; return the figures and peak RSS of each.

    ``hub_cpu`` receives the CPU seconds each of our hubs spent on each case of ours.
    """
    size, files = args.mib * MiB, args.files
    regions = min(64, size // REGION)
    results: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn,
                                                max_tasks_per_child=1) as pool:
        for r in range(args.rounds):
            rng = random.Random()
            offsets = [i * REGION + rng.randrange(REGION // SMALL) * SMALL
                       for i in rng.sample(range(size // REGION), regions)]
            digests: dict[tuple[str, str], str] = {}
            for scenario in ORDER:
                if scenario not in args.scenarios:
                    continue
                engines = ENGINES[r % len(ENGINES):] + ENGINES[:r % len(ENGINES)]
                for engine in [e for e in engines if e in args.engine_list]:
                    for form in FORMS.get((scenario, engine), []):
                        key = want_key(scenario, engine, form)
                        want = digests.get(key)
                        if want is None and scenario not in (
                                "write", "small_write", "create", "small_write_many", "stream"):
                            raise RuntimeError(f"{engine} {scenario} {form}: nothing to read")
                        hub = hubs.get(engine, hubs["lucidlink"])
                        ctx = dict(hub_url=hub.url, token=hub.token, endpoint=sw.endpoint,
                                   bucket=sw.bucket, disk=disk, round=r, size=size,
                                   files=files, offsets=offsets, want=want,
                                   stream=args.stream_mib * MiB)
                        settle([p for p in (sw.pid, *(h.pid for h in hubs.values()))
                                if p is not None])
                        cpu = hub.cpu_seconds()
                        seconds, peak, digest = pool.submit(
                            run_case, scenario, engine, form, ctx).result()
                        if engine in OURS:
                            hub_cpu.setdefault((scenario, engine, form), []).append(
                                hub.cpu_seconds() - cpu)
                        value = figure(scenario, seconds, size, files, regions,
                                       args.stream_mib * MiB)
                        results.setdefault((scenario, engine, form), []).append((value, peak))
                        if digest is not None:
                            digests[key] = digest[0]
                        if digest is not None and len(digest) > 1:
                            digests[want_key("random", engine, form)] = digest[1]
                        print(f"  round {r + 1}/{args.rounds} {scenario:<11} {engine:<12} "
                              f"{form:<22} {value:10.2f} {SCENARIOS[scenario][1]:<7} "
                              f"peak {peak:6.0f} MiB", file=sys.stderr, flush=True)
    return results


def report(args: argparse.Namespace,
           results: dict[tuple[str, str, str], list[tuple[float, float]]],
           hub_cpu: dict[tuple[str, str, str], list[float]]) -> str:
    """The tables: medians, the best peer forms, the limits, the ratios, RSS and the flags."""
    size = args.mib * MiB
    fmt = dict(mib=args.mib, files=args.files, regions=min(64, size // REGION),
               meta=sum(map(len, _meta_names(args.files))), clients=CLIENTS,
               stream_mib=args.stream_mib, many=args.files * MANY)

    def med(scenario: str, engine: str, form: str) -> tuple[float, float]:
        vals = results.get((scenario, engine, form))
        if not vals:  # not run (--only, --engines)
            return math.nan, math.nan
        return (statistics.median(v for v, _ in vals), statistics.median(p for _, p in vals))

    def best(scenario: str, engine: str) -> tuple[float, float, str]:
        out: tuple[float, float, str] = (math.nan, math.nan, "not run")
        for form in FORMS.get((scenario, engine), []):
            v, p = med(scenario, engine, form)
            if math.isnan(out[0]) or better(scenario, v, out[0]):
                out = (v, p, form)
        return out

    def num(v: float) -> str:
        if math.isnan(v):
            return "–"
        return f"{v:,.0f}" if v >= 100 else f"{v:.2f}" if v < 10 else f"{v:.1f}"

    lines = [
        "| scenario | unit | lucidlink | s3fs (best form) | obstore | raw S3 (aiohttp) "
        "| local disk | ours / best peer |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rss = ["| scenario | lucidlink | s3fs | obstore |", "|---|---|---|---|"]
    hub_lines = ["| scenario | lucidlink blocks | hub CPU s per GiB moved |", "|---|---|---|"]
    detail: list[str] = []
    flags: list[str] = []
    meta_lines = ["| scenario | lucidlink | goal | published limit | hub CPU us per op |",
                  "|---|---|---|---|---|"]
    for scenario in ["read", "write", "small_write", "small_write_many", "small_read", "random",
                     "list", "warm", "create", "stat", "stream"]:
        if scenario not in args.scenarios:
            continue
        label, unit = SCENARIOS[scenario]
        label = label.format(**fmt)
        s3v, s3p, s3form = best(scenario, "s3fs")
        obv, obp, obform = best(scenario, "obstore")
        rawv, _, rawform = best(scenario, "raw")
        # The like-for-like disk form is shown (fsync'd for writes); the best one bounds all.
        diskform = FORMS[(scenario, "disk")][0]
        diskv = med(scenario, "disk", diskform)[0]
        ceiling, _, ceilform = best(scenario, "disk")
        peer = s3v if math.isnan(obv) or better(scenario, s3v, obv) else obv
        for engine in ENGINES[:-1]:
            for form in FORMS.get((scenario, engine), []):
                v = med(scenario, engine, form)[0]
                if better(scenario, v, ceiling):
                    flags.append(f"{label}: {engine} {form} {num(v)} {unit} beats local disk "
                                 f"{ceilform} {num(ceiling)}")
                rounds = ", ".join(num(x) for x, _ in results.get((scenario, engine, form), []))
                detail.append(f"  {label}: {engine} {form}: {num(v)} {unit} ({rounds})")
        for form in FORMS[(scenario, "disk")]:
            rounds = ", ".join(num(x) for x, _ in results.get((scenario, "disk", form), []))
            detail.append(f"  {label}: disk {form}: {num(med(scenario, 'disk', form)[0])} "
                          f"{unit} ({rounds})")
        for engine, blocks in OURS.items():
            for form in FORMS[(scenario, engine)]:
                ours, ourp = med(scenario, engine, form)
                lines.append(
                    f"| {label} ({form}; {blocks}) | {unit} | {num(ours)} | {num(s3v)} ({s3form}) "
                    f"| {num(obv)} ({obform}) | {num(rawv)} ({rawform}) "
                    f"| {num(diskv)} ({diskform}) | {num(ours / peer)} |")
                rss.append(f"| {label} ({form}; {blocks}) | {num(ourp)} | {num(s3p)} "
                           f"| {num(obp)} |")
                if scenario in META_LIMITS:
                    who, published, goal = META_LIMITS[scenario]
                    cpu = statistics.median(hub_cpu.get((scenario, engine, form), [0.0]))
                    per_op = cpu / fmt["meta"] * 1e6
                    meta_lines.append(f"| {label} ({form}; {blocks}) | {num(ours)} {unit} "
                                      f"| {num(goal)} ({ours / goal:.2f}x) "
                                      f"| {who} {num(published)} ({ours / published:.2f}x) "
                                      f"| {per_op:,.0f} |")
        if scenario in ("read", "write", "warm"):
            for engine, blocks in OURS.items():
                form = FORMS[(scenario, engine)][0]
                cpu = statistics.median(hub_cpu.get((scenario, engine, form), [0.0]))
                hub_lines.append(f"| {label} | {blocks} | {cpu / (size / 2**30):.3f} |")
    goal_lines = ["| goal | lucidlink blocks | ours | basis | ratio | target | met |",
                  "|---|---|---|---|---|---|---|"]
    for scenario, form, basis, target in GOALS:
        if scenario not in args.scenarios:
            continue
        unit = SCENARIOS[scenario][1]
        if basis == "rss":  # the figure is the peak RSS, and the bound over it the ratio
            for engine, blocks in OURS.items():
                peak = med(scenario, engine, form)[1]
                ratio = STREAM_RSS_MIB / peak
                met = "yes" if ratio >= target else "no" if ratio == ratio else "not run"
                goal_lines.append(
                    f"| {SCENARIOS[scenario][0].format(**fmt)}, peak RSS ({form}) | {blocks} "
                    f"| {num(peak)} MiB | bound {num(STREAM_RSS_MIB)} MiB | {ratio:.2f}x "
                    f"| >= {target:g}x | {met} |")
            continue
        if basis == "goal":
            base, what = META_LIMITS[scenario][2], "issue 14's goal"
        elif basis == "peer":
            s3v, obv = best(scenario, "s3fs")[0], best(scenario, "obstore")[0]
            base = s3v if math.isnan(obv) or better(scenario, s3v, obv) else obv
            what = "best peer"
        elif basis == "disk":
            base, what = best(scenario, "disk")[0], "local disk"
        else:
            base, what = best(scenario, basis)[0], basis
        for engine, blocks in OURS.items():
            ours = med(scenario, engine, form)[0]
            ratio = base / ours if unit == "ms" else ours / base
            met = "yes" if ratio >= target else "no" if ratio == ratio else "not run"
            goal_lines.append(f"| {SCENARIOS[scenario][0].format(**fmt)} ({form}) | {blocks} "
                              f"| {num(ours)} {unit} | {what} {num(base)} | {ratio:.2f}x "
                              f"| >= {target:g}x | {met} |")
    for blocks in OURS.values():
        rows = [line for line in goal_lines[2:] if f"| {blocks} |" in line]
        done = sum(line.endswith("| yes |") for line in rows)
        goal_lines.append(f"\n{blocks}: {done} of {len(rows)} goals met in this run.")
    layout_lines = ["| goal | ours, S3 blocks | plain HTTP, one object per block | ours / that "
                    "| goal's basis | that / basis | target |", "|---|---|---|---|---|---|---|"]
    targets: dict[tuple[str, str], tuple[str, float]] = {}
    for g in GOALS:  # a row's first goal: the read's against the peer, not against raw
        targets.setdefault((g[0], g[1]), (g[2], g[3]))
    for scenario, form, raw_form in LAYOUT_LIMITS:
        if scenario not in args.scenarios:
            continue
        unit = SCENARIOS[scenario][1]
        ours = med(scenario, "lucidlink-s3", form)[0]
        raw = med(scenario, "raw", raw_form)[0]
        basis, target = targets[(scenario, form)]
        if basis == "peer":
            s3v, obv = best(scenario, "s3fs")[0], best(scenario, "obstore")[0]
            peer, what = (s3v if math.isnan(obv) or better(scenario, s3v, obv) else obv), "peer"
        else:
            peer, what = best(scenario, basis)[0], basis
        ratio, limit = (raw / ours, peer / raw) if unit == "ms" else (ours / raw, raw / peer)
        layout_lines.append(f"| {SCENARIOS[scenario][0].format(**fmt)} ({form}) | {num(ours)} "
                            f"{unit} | {raw_form} {num(raw)} | {ratio:.2f}x | {what} {num(peer)} "
                            f"| {limit:.2f}x | >= {target:g}x |")
    out = [
        f"lucidlink vs peers: {args.rounds} round(s), medians; {args.mib} MiB large file, "
        f"{args.files} small files. MiB/s and files/s: higher is better; ms: lower is better "
        "(there a ratio below 1 means lucidlink is faster).",
        "",
        *lines,
        "",
        "Peak RSS, MiB (median; each case in its own child process, VmHWM reset before the "
        "timed part; includes the interpreter, imports and any payload held):",
        "",
        *rss,
        "",
        "The metadata path against issue 14's absolute goals and the published figures of "
        "JuiceFS (its metadata benchmark on 2 CPUs; not measured here), and the hub's CPU "
        "time per operation (median; over the whole case, so the 16 daemons' start and stop "
        "weigh on small --files):",
        "",
        *meta_lines,
        "",
        "Issue 14's goals (a ratio above 1 is better than the basis; for ms, the basis's time "
        "over ours):",
        "",
        *goal_lines,
        "",
        "S3 blocks against what the same SeaweedFS gives the layout the hub keeps there (one "
        "object of at most one block per content hash): the same bytes moved with plain "
        "unsigned HTTP in this run. Where that/basis is below the target, plain HTTP on this "
        "layout misses the goal too (see docs/architecture.md, \"Random reads fetch verified "
        "chunks\", for why SeaweedFS reads a range of a small object slowly):",
        "",
        *layout_lines,
        "",
        "The hub's CPU time per GiB the client moved (median; the hub is its own process):",
        "",
        *hub_lines,
        "",
        "Every form, median (rounds):",
        *detail,
        "",
    ]
    if flags:
        out.append("BENCHMARK BUG: figures above the local disk, the physical limit of this run:")
        out += [f"  ! {f}" for f in flags]
    else:
        out.append("No figure is above the local disk, the physical limit of this run.")
    return "\n".join(out)


def main() -> int:
    """Start SeaweedFS and a hub, measure every case, print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="rounds; medians are shown (default 3)")
    p.add_argument("--mib", type=int, default=256, help="size of the large file (default 256)")
    p.add_argument("--files", type=int, default=1000, help="number of 4 KiB files (default 1000)")
    p.add_argument("--stream-mib", type=int, default=2048,
                   help="size of the streamed file, a multiple of 8 (default 2048)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke size: 16 MiB, 100 files, 64 MiB streamed")
    p.add_argument("--only", default="", metavar="SCENARIO[,..]",
                   help=f"run only these scenarios ({', '.join(ORDER)}); the writes their "
                        "reads need are added")
    p.add_argument("--engines", default="", metavar="ENGINE[,..]",
                   help=f"run only these engines ({', '.join(ENGINES)})")
    add_event_loop_flag(p)
    args = p.parse_args()
    wanted = {s for s in args.only.split(",") if s} or set(ORDER)
    engine_list = [e for e in args.engines.split(",") if e] or ENGINES
    for bad in [*(wanted - set(ORDER)), *(set(engine_list) - set(ENGINES))]:
        p.error(f"unknown scenario or engine {bad!r}")
    if wanted & {"read", "warm", "random"}:
        wanted.add("write")  # the reads read what the write of the same round wrote
    if wanted & {"small_read", "list"}:
        wanted.add("small_write")
    if "stat" in wanted:
        wanted.add("create")  # the stats stat the files the create of the same round made
    args.scenarios, args.engine_list = wanted, engine_list
    if args.quick:
        args.mib, args.files, args.stream_mib = 16, 100, 64
    if args.stream_mib < 8 or args.stream_mib % 8:
        p.error("--stream-mib must be a positive multiple of 8")
    if args.mib * MiB < REGION or args.mib % 4:
        p.error("--mib must be a multiple of 4")
    t0 = time.monotonic()
    hub_cpu: dict[tuple[str, str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="lucid-bench-") as tmp, Seaweed() as sw:
        # The second hub keeps its blocks in the same SeaweedFS the peers use (its own
        # prefix); SeaweedFS checks no signatures, so any keys do.
        s3_env = {"AWS_ENDPOINT_URL": sw.endpoint, "AWS_REGION": REGION_NAME,
                  "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}
        loop = {"event_loop": args.hub_event_loop}
        with HubProcess(Path(tmp) / "hub", in_process=False, settings=loop) as local_hub, \
                HubProcess(Path(tmp) / "hub-s3", in_process=False, env=s3_env,
                           settings={"block_store": f"s3://{sw.bucket}/lucid-blocks",
                                     **loop}) as s3_hub:
            disk = Path(tmp) / "disk"
            disk.mkdir()
            hubs = {"lucidlink": local_hub, "lucidlink-s3": s3_hub}
            results = measure(args, hubs, sw, str(disk), hub_cpu)
    print(report(args, results, hub_cpu))
    print(f"\n(total {time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
