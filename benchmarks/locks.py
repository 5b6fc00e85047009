"""File locks: uncontended lock round trips against the raw hub route, and a contended counter.

Run by hand (not in CI)::

    .venv/bin/python benchmarks/locks.py [--seconds 3] [--processes 4] [--increments 50]
        [--in-process]

Starts an :class:`~lucidlink.hub.embedded.EmbeddedHub` (SQLite + local blocks) in a
temporary data dir, by default in a child process so the measuring clients and the hub
do not share one interpreter lock. Then:

* uncontended, one daemon: ``open(path, "rb", lock_type="exclusive")`` + ``close``
  (no writes) per second, against the limit: the raw hub route ``POST .../locks`` +
  ``DELETE .../locks/{id}`` per second with plain aiohttp on one session; and the ratio;
* contended: ``--processes`` processes, each its own daemon, each doing
  ``--increments`` read-modify-write increments of one counter file under an exclusive
  lock (as ``tests/sdk/test_locks.py``); increments per second, and the final value checked.

No thresholds: it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from _hubproc import HubProcess, quiet_logs  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

FS = "data"
"""The filespace ``_hubproc`` creates."""


async def _link(stack: Any, url: str, token: str) -> Any:
    import lucidlink.aio

    daemon = await stack.enter_async_context(lucidlink.aio.create_daemon(hub_url=url))
    ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=token))
    return await stack.enter_async_context(ws.link_filespace(name=FS))


# -- uncontended -------------------------------------------------------------------------


async def sdk_round_trips(url: str, token: str, seconds: float) -> tuple[int, float]:
    """``open(..., lock_type="exclusive")`` + ``close`` in a loop; (count, elapsed)."""
    import contextlib

    async with contextlib.AsyncExitStack() as stack:
        fs = (await _link(stack, url, token)).fs
        await fs.write_file("/uncontended", b"x")
        for _ in range(20):  # warm up connections
            async with fs.open("/uncontended", "rb", lock_type="exclusive"):
                pass
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            async with fs.open("/uncontended", "rb", lock_type="exclusive"):
                pass
            n += 1
        return n, time.perf_counter() - t0


async def raw_round_trips(url: str, token: str, seconds: float) -> tuple[int, float]:
    """The hub route alone: ``POST /locks`` + ``DELETE /locks/{id}`` on one session.

    Returns (count, elapsed).
    """
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/v1/filespaces", headers=auth) as resp:
            fs_id = next(f["id"] for f in (await resp.json())["filespaces"] if f["name"] == FS)
        base = f"{url}/v1/filespaces/{fs_id}"
        async with http.post(
            f"{base}/sessions", json={"client": "benchmark"}, headers=auth
        ) as resp:
            sid = (await resp.json())["session_id"]
        headers = {**auth, "X-Lucid-Session": sid}

        async def once() -> None:
            async with http.post(
                f"{base}/locks", json={"path": "/raw", "mode": "exclusive"}, headers=headers
            ) as resp:
                body = await resp.json()
                if resp.status != 200:
                    raise RuntimeError(f"lock: HTTP {resp.status} {body}")
            async with http.delete(f"{base}/locks/{body['lock_id']}", headers=headers) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"release: HTTP {resp.status} {await resp.text()}")

        for _ in range(20):
            await once()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            await once()
            n += 1
        elapsed = time.perf_counter() - t0
        async with http.delete(f"{url}/v1/sessions/{sid}", headers=auth):
            pass
        return n, elapsed


# -- contended ---------------------------------------------------------------------------


def _counter_process(
    url: str, token: str, increments: int, ready: Any, go: Any, out: Connection
) -> None:
    """Child process: link with its own daemon, wait for the start, increment, report."""
    import contextlib

    quiet_logs()

    async def run() -> None:
        async with contextlib.AsyncExitStack() as stack:
            fs = (await _link(stack, url, token)).fs
            ready.release()
            await asyncio.to_thread(go.wait)
            for _ in range(increments):
                async with fs.open(
                    "/counter", "r+b", lock_type="exclusive", lock_timeout=None
                ) as f:
                    value = int(await f.read() or b"0")
                    await f.seek(0)
                    await f.write(str(value + 1).encode())
                    await f.truncate()
            out.send(time.time())

    asyncio.run(run())


async def _read_counter(url: str, token: str, data: bytes | None = None) -> bytes:
    import contextlib

    async with contextlib.AsyncExitStack() as stack:
        filespace = await _link(stack, url, token)
        if data is not None:
            await filespace.fs.write_file("/counter", data)
            await filespace.sync_all()
        return bytes(await filespace.fs.read_file("/counter"))


def contended(url: str, token: str, processes: int, increments: int) -> tuple[float, bytes]:
    """``processes`` daemons incrementing one counter.

    Returns (seconds from the start to the last one done, the final value).
    """
    asyncio.run(_read_counter(url, token, b"0"))
    ctx = multiprocessing.get_context("spawn")
    ready, go = ctx.Semaphore(0), ctx.Event()
    pipes = [ctx.Pipe(duplex=False) for _ in range(processes)]
    procs = [
        ctx.Process(target=_counter_process, args=(url, token, increments, ready, go, send))
        for _, send in pipes
    ]
    for p in procs:
        p.start()
    for _ in procs:
        if not ready.acquire(timeout=120):
            raise RuntimeError("a counter process did not start")
    t0 = time.time()
    go.set()
    ends = []
    for (recv, _), p in zip(pipes, procs, strict=True):
        if not recv.poll(600):
            raise RuntimeError("a counter process did not finish")
        ends.append(recv.recv())
        p.join(60)
    return max(ends) - t0, asyncio.run(_read_counter(url, token))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=3, help="seconds per uncontended measurement (default 3)"
    )
    parser.add_argument("--processes", type=int, default=4, help="contending processes (default 4)")
    parser.add_argument(
        "--increments", type=int, default=50, help="increments per process (default 50)"
    )
    parser.add_argument(
        "--in-process", action="store_true", help="run the hub in this process's thread"
    )
    args = parser.parse_args(argv)
    quiet_logs()
    with (
        tempfile.TemporaryDirectory(prefix="lucidhub-bench-") as tmp,
        HubProcess(Path(tmp) / "hub", args.in_process) as hub,
    ):
        print(
            f"hub {hub.url} ({'in process' if args.in_process else 'child process'}), "
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
        )
        raw_n, raw_s = asyncio.run(raw_round_trips(hub.url, hub.token, args.seconds))
        sdk_n, sdk_s = asyncio.run(sdk_round_trips(hub.url, hub.token, args.seconds))
        raw_rate, sdk_rate = raw_n / raw_s, sdk_n / sdk_s
        print("uncontended lock + release, one client:")
        print(
            f"  raw hub route POST+DELETE /locks   {raw_rate:8.1f} /s  "
            f"({1000 / raw_rate:6.2f} ms)  [limit]"
        )
        print(
            f"  SDK open(exclusive) + close        {sdk_rate:8.1f} /s  ({1000 / sdk_rate:6.2f} ms)"
        )
        print(f"  ratio SDK / raw                    {sdk_rate / raw_rate:8.2f}")
        seconds, final = contended(hub.url, hub.token, args.processes, args.increments)
        total = args.processes * args.increments
        print(f"contended counter, {args.processes} processes x {args.increments} increments:")
        print(
            f"  {total} increments in {seconds:.2f} s = {total / seconds:.1f} increments/s "
            f"({1000 * seconds / total:.2f} ms each); final value {final.decode()} "
            f"({'correct' if final == str(total).encode() else 'WRONG'})"
        )
        if final != str(total).encode():
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
