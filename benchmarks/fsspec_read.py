"""Reads through fsspec next to the same reads through the SDK's async core.

In one run, on one hub, on the same bytes:

* ``cat_file`` of a 256 MiB file, against ``AsyncFilesystem.open`` + ``read()``;
* ``cat_ranges`` of 1,000 random 64 KiB ranges of it, against one SDK handle doing
  ``seek`` + ``read`` per range; cold, then again with the client's block cache warm.

Every measurement uses a new client (a fresh daemon, so an empty block cache); the
hub's own disk is warm for all of them (the file was just written). Each is run
``--rounds`` times, fsspec and SDK interleaved, and the best of each is kept (this
machine class is noisy: two cores shared with the hub). Prints MB/s and the fsspec/SDK ratios.

    python benchmarks/fsspec_read.py            # starts an embedded hub in its own process
    lucidlink hub embedded -- python benchmarks/fsspec_read.py
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

MiB = 1024 * 1024


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mib", type=int, default=256, help="file size (default 256)")
    p.add_argument(
        "--ranges", type=int, default=1000, help="number of random ranges (default 1000)"
    )
    p.add_argument("--range-kib", type=int, default=64, help="range length in KiB (default 64)")
    p.add_argument(
        "--rounds", type=int, default=4, help="runs of each measurement; the best is kept"
    )
    return p.parse_args()


async def sdk_session(
    url: str, token: str, filespace: str, body: Callable[[Any], Awaitable[Any]]
) -> Any:
    import lucidlink.aio

    async with lucidlink.aio.create_daemon(hub_url=url) as daemon:
        workspace = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=token))
        async with workspace.link_filespace(name=filespace) as fsp:
            return await body(fsp)


def best_of(
    rounds: int, *runs: Callable[[], tuple[float, Any]], check: Callable[[Any], None]
) -> list[float]:
    """The best time of each run over ``rounds``, the runs interleaved so drift hits all alike."""
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(rounds):
        for i, run in enumerate(runs):
            seconds, out = run()
            check(out)
            del out
            times[i].append(seconds)
    return [min(t) for t in times]


def main() -> int:
    args = parse_args()
    url, token = os.environ.get("LUCIDLINK_HUB_URL"), os.environ.get("LUCIDLINK_TOKEN")
    if not (url and token):  # run again under a throw-away hub in its own process
        cmd = [
            sys.executable,
            "-m",
            "lucidlink",
            "hub",
            "embedded",
            "--",
            sys.executable,
            *sys.argv,
        ]
        return subprocess.call(cmd)
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    from lucidlink.fsspec import LucidLinkFileSystem

    filespace = os.environ.get("LUCIDLINK_FILESPACE", "production-data")
    size = args.size_mib * MiB
    data = os.urandom(size)
    digest = hashlib.sha256(data).hexdigest()

    async def write(fsp: Any) -> tuple[str, int]:
        await fsp.fs.create_dir("/bench")
        await fsp.fs.write_file("/bench/big.bin", data)
        await fsp.sync_all()
        return fsp._workspace.name, fsp.block_size

    t0 = time.perf_counter()
    workspace, block_size = asyncio.run(sdk_session(url, token, filespace, write))
    print(
        f"hub {url}, filespace {workspace}/{filespace} (block size {block_size // 1024} KiB); "
        f"wrote {args.size_mib} MiB in {time.perf_counter() - t0:.1f} s"
    )
    fs_url = f"lucidlink://{workspace}/{filespace}/bench/big.bin"
    rng = random.Random(1234)
    length = args.range_kib * 1024
    starts = [rng.randrange(0, size - length) for _ in range(args.ranges)]
    ends = [s + length for s in starts]

    def fsspec_run(
        op: Callable[[LucidLinkFileSystem], Any], warm: bool = False
    ) -> tuple[float, Any]:
        fs = LucidLinkFileSystem(token=token, hub_url=url, skip_instance_cache=True)
        try:
            fs.info(fs_url)  # start the daemon and link outside the timing, as the SDK side does
            if warm:
                op(fs)
            t = time.perf_counter()
            out = op(fs)
            return time.perf_counter() - t, out
        finally:
            fs.close()

    def sdk_run(op: Callable[[Any], Awaitable[Any]], warm: bool = False) -> tuple[float, Any]:
        async def body(fsp: Any) -> tuple[float, Any]:
            if warm:
                await op(fsp)
            t = time.perf_counter()
            out = await op(fsp)
            return time.perf_counter() - t, out

        return asyncio.run(sdk_session(url, token, filespace, body))  # type: ignore[no-any-return]

    async def sdk_whole(fsp: Any) -> bytes:
        async with fsp.fs.open("/bench/big.bin", "rb") as f:
            return await f.read()  # type: ignore[no-any-return]

    async def sdk_ranges(fsp: Any) -> list[bytes]:
        out = []
        async with fsp.fs.open("/bench/big.bin", "rb") as f:
            for s, e in zip(starts, ends, strict=True):
                await f.seek(s)
                out.append(await f.read(e - s))
        return out

    def whole_ok(out: bytes) -> None:
        assert hashlib.sha256(out).hexdigest() == digest

    def ranges_ok(out: list[bytes]) -> None:
        assert out == [data[s:e] for s, e in zip(starts, ends, strict=True)]

    rows = []
    t_fs, t_sdk = best_of(
        args.rounds,
        lambda: fsspec_run(lambda fs: fs.cat_file(fs_url)),
        lambda: sdk_run(sdk_whole),
        check=whole_ok,
    )
    rows.append((f"cat_file, {args.size_mib} MiB", size, t_fs, t_sdk))
    t_fs, t_sdk = best_of(
        args.rounds,
        lambda: fsspec_run(lambda fs: fs.cat_ranges([fs_url] * len(starts), starts, ends)),
        lambda: sdk_run(sdk_ranges),
        check=ranges_ok,
    )
    rows.append(
        (f"cat_ranges, {args.ranges} x {args.range_kib} KiB", length * len(starts), t_fs, t_sdk)
    )
    t_fs, t_sdk = best_of(
        args.rounds,
        lambda: fsspec_run(
            lambda fs: fs.cat_ranges([fs_url] * len(starts), starts, ends), warm=True
        ),
        lambda: sdk_run(sdk_ranges, warm=True),
        check=ranges_ok,
    )
    rows.append(("  same, block cache warm", length * len(starts), t_fs, t_sdk))

    print(f"\n{'read':34} {'fsspec':>16} {'SDK async core':>18} {'fsspec/SDK':>11}")
    for label, nbytes, t_fs, t_sdk in rows:
        mbs_fs, mbs_sdk = nbytes / MiB / t_fs, nbytes / MiB / t_sdk
        print(
            f"{label:34} {mbs_fs:8.0f} MB/s {t_fs:5.2f}s {mbs_sdk:8.0f} MB/s {t_sdk:5.2f}s "
            f"{mbs_fs / mbs_sdk:10.2f}x"
        )
    print(
        f"\nMB/s = MiB of requested bytes per second; best of {args.rounds} rounds; each round a "
        "new client, its block cache empty unless 'warm' (the same reads done once before).\n"
        "SDK side: one AsyncFilesystem.open handle, read() for the file, seek()+read() per range."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
