"""Reads through fsspec next to the same reads through the SDK's async core.

In one run, on one hub, each side doing the same reads in the same pattern:

* the whole file: ``cat_file`` against ``AsyncFilesystem.open`` + ``read()``;
* ``--ranges`` random ranges of ``--range-kib`` KiB, concurrent: ``cat_ranges`` (which
  sorts a file's ranges and deals them to 16 concurrent read handles) against the SDK
  doing exactly that with 16 ``open`` handles, each ``seek`` + ``read`` over its share;
  cold, then again with the client's block cache warm;
* the same ranges, serial in random order: a ``fs.open`` file object of fsspec against one
  SDK handle, ``seek`` + ``read`` per range, both in the same shuffled order.

Each round writes a new file of fresh ``os.urandom`` bytes and new random ranges; every
measurement uses a new client (a fresh daemon, so an empty block cache); the hub's own
disk is warm for all of them (the file was just written). fsspec and SDK alternate which
goes first. Prints medians of ``--rounds`` rounds in MiB/s and the fsspec/SDK ratios.

    python benchmarks/fsspec_read.py            # starts an embedded hub in its own process
    lucidlink hub embedded -- python benchmarks/fsspec_read.py
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

MiB = 1024 * 1024


def parse_args() -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mib", type=int, default=256, help="file size (default 256)")
    p.add_argument(
        "--ranges", type=int, default=1000, help="number of random ranges (default 1000)"
    )
    p.add_argument("--range-kib", type=int, default=64, help="range length in KiB (default 64)")
    p.add_argument("--rounds", type=int, default=3, help="rounds; medians are shown (default 3)")
    return p.parse_args()


async def sdk_session(
    url: str, token: str, filespace: str, body: Callable[[Any], Awaitable[Any]]
) -> Any:
    """Run ``body(filespace)`` in a new daemon (so an empty block cache)."""
    import lucidlink.aio

    async with lucidlink.aio.create_daemon(hub_url=url) as daemon:
        workspace = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=token))
        async with workspace.link_filespace(name=filespace) as fsp:
            return await body(fsp)


RANGE_STREAMS = 16
"""The concurrent read handles of ``cat_ranges`` (``lucidlink.fsspec.ranges``); the SDK
side uses as many, dealt the same way."""


def main() -> int:
    """Run under a hub (start one if none is given), measure, print the table."""
    args = parse_args()
    url, token = os.environ.get("LUCIDLINK_HUB_URL"), os.environ.get("LUCIDLINK_TOKEN")
    if not (url and token):  # run again under a throw-away hub in its own process
        cmd = [sys.executable, "-m", "lucidlink", "hub", "embedded", "--", sys.executable,
               *sys.argv]
        return subprocess.call(cmd)
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    from lucidlink.fsspec import LucidLinkFileSystem

    filespace = os.environ.get("LUCIDLINK_FILESPACE", "production-data")
    size = args.size_mib * MiB
    length = args.range_kib * 1024
    path = "/bench/big.bin"

    def fsspec_run(url_: str, op: Callable[[Any], Any], warm: bool) -> tuple[float, Any]:
        fs = LucidLinkFileSystem(token=token, hub_url=url, skip_instance_cache=True)
        try:
            fs.info(url_)  # start the daemon and link outside the timing, as the SDK side does
            if warm:
                op(fs)
            t = time.perf_counter()
            out = op(fs)
            return time.perf_counter() - t, out
        finally:
            fs.close()

    def sdk_run(op: Callable[[Any], Awaitable[Any]], warm: bool) -> tuple[float, Any]:
        async def body(fsp: Any) -> tuple[float, Any]:
            if warm:
                await op(fsp)
            t = time.perf_counter()
            out = await op(fsp)
            return time.perf_counter() - t, out

        return asyncio.run(sdk_session(url, token, filespace, body))  # type: ignore[no-any-return]

    labels = [
        f"cat_file, {args.size_mib} MiB",
        f"{args.ranges} x {args.range_kib} KiB, 16 streams",
        "  same, block cache warm",
        f"{args.ranges} x {args.range_kib} KiB, serial shuffled",
    ]
    times: dict[tuple[int, str], list[float]] = {}

    def measure_round(r: int) -> None:
        """Write a new file of fresh bytes, then time every case on it, both sides."""
        data = os.urandom(size)
        digest = hashlib.sha256(data).hexdigest()

        async def write(fsp: Any) -> tuple[str, int]:
            await fsp.fs.create_dir("/bench")
            await fsp.fs.write_file(path, data)
            await fsp.sync_all()
            return fsp._workspace.name, fsp.block_size

        t0 = time.perf_counter()
        workspace, block_size = asyncio.run(sdk_session(url, token, filespace, write))
        print(f"round {r + 1}: wrote {args.size_mib} MiB of fresh bytes in "
              f"{time.perf_counter() - t0:.1f} s (block size {block_size // 1024} KiB)",
              file=sys.stderr)
        fs_url = f"lucidlink://{workspace}/{filespace}{path}"
        rng = random.Random()
        starts = [rng.randrange(0, size - length) for _ in range(args.ranges)]
        ends = [s + length for s in starts]
        wanted = [data[s:e] for s, e in zip(starts, ends, strict=True)]
        shuffled = list(range(len(starts)))
        rng.shuffle(shuffled)
        by_offset = sorted(range(len(starts)), key=lambda i: starts[i])
        share = -(-len(by_offset) // min(len(by_offset), RANGE_STREAMS))
        groups = [by_offset[k:k + share] for k in range(0, len(by_offset), share)]

        async def sdk_whole(fsp: Any) -> bytes:
            async with fsp.fs.open(path, "rb") as f:
                return await f.read()  # type: ignore[no-any-return]

        async def sdk_streams(fsp: Any) -> list[bytes]:
            out: list[bytes] = [b""] * len(starts)

            async def stream(group: list[int]) -> None:
                async with fsp.fs.open(path, "rb") as f:
                    for i in group:
                        await f.seek(starts[i])
                        out[i] = await f.read(length)

            await asyncio.gather(*(stream(g) for g in groups))
            return out

        async def sdk_serial(fsp: Any) -> list[bytes]:
            out: list[bytes] = [b""] * len(starts)
            async with fsp.fs.open(path, "rb") as f:
                for i in shuffled:
                    await f.seek(starts[i])
                    out[i] = await f.read(length)
            return out

        def fsspec_serial(fs: Any) -> list[bytes]:
            out: list[bytes] = [b""] * len(starts)
            with fs.open(fs_url, "rb") as f:
                for i in shuffled:
                    f.seek(starts[i])
                    out[i] = f.read(length)
            return out

        def whole_ok(out: bytes) -> None:
            assert hashlib.sha256(out).hexdigest() == digest

        def ranges_ok(out: list[bytes]) -> None:
            assert out == wanted

        cases: list[tuple[Callable[[Any], Any], Callable[[Any], Awaitable[Any]], bool,
                          Callable[[Any], None]]] = [
            (lambda fs: fs.cat_file(fs_url), sdk_whole, False, whole_ok),
            (lambda fs: fs.cat_ranges([fs_url] * len(starts), starts, ends), sdk_streams,
             False, ranges_ok),
            (lambda fs: fs.cat_ranges([fs_url] * len(starts), starts, ends), sdk_streams,
             True, ranges_ok),
            (fsspec_serial, sdk_serial, False, ranges_ok),
        ]
        for k, (fs_op, sdk_op, warm, check) in enumerate(cases):
            runs: list[tuple[str, Callable[[], tuple[float, Any]]]] = [
                ("fsspec", lambda: fsspec_run(fs_url, fs_op, warm)),  # noqa: B023
                ("sdk", lambda: sdk_run(sdk_op, warm)),  # noqa: B023
            ]
            for side, run in runs if r % 2 == 0 else runs[::-1]:
                seconds, out = run()
                check(out)
                del out
                times.setdefault((k, side), []).append(seconds)

    for r in range(args.rounds):
        measure_round(r)

    nbytes = [size, length * args.ranges, length * args.ranges, length * args.ranges]
    print(f"\n{'read':34} {'fsspec':>16} {'SDK async core':>18} {'fsspec/SDK':>11}")
    for k, label in enumerate(labels):
        t_fs = statistics.median(times[(k, "fsspec")])
        t_sdk = statistics.median(times[(k, "sdk")])
        mbs_fs, mbs_sdk = nbytes[k] / MiB / t_fs, nbytes[k] / MiB / t_sdk
        print(
            f"{label:34} {mbs_fs:8.0f} MB/s {t_fs:5.2f}s {mbs_sdk:8.0f} MB/s {t_sdk:5.2f}s "
            f"{mbs_fs / mbs_sdk:10.2f}x"
        )
    print(
        f"\nMB/s = MiB of requested bytes per second; medians of {args.rounds} rounds; each "
        "round a new file of fresh bytes, each measurement a new client, its block cache "
        "empty unless 'warm' (the same reads done once before). Both sides do the same "
        "reads in the same pattern (see the docstring)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
