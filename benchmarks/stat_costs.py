"""Where the CPU of a stat goes: hub and client microseconds per ``get_entry``.

Run by hand (not in CI)::

    .venv/bin/python benchmarks/stat_costs.py [--passes 7] [--clients 16] [--files 250]
        [--hub-event-loop asyncio|uvloop]

Starts an embedded hub (SQLite, local blocks) in a child process and creates
``--clients`` × ``--files`` empty files, one directory per client. Each pass then links
``--clients`` fresh daemons in this process (outside the timing) and stats every file of
each one's directory at once, serially per client, stat-ahead off: no client cache can
answer, every stat is a hub request (the shape of ``benchmarks/peers.py``'s ``stat``
form ``statahead off``). It prints per pass the stats per second and the CPU
microseconds per stat of the hub's process and of this one (each with its system
share), then the medians. No thresholds: it measures (Linux only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _hubproc import HubProcess, add_event_loop_flag, quiet_logs  # noqa: E402

import lucidlink.aio  # noqa: E402


def process_cpu(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def per_stat_us(before: tuple[float, float], after: tuple[float, float],
                total: int) -> tuple[float, float]:
    """User and system CPU microseconds per stat between two :func:`process_cpu` readings."""
    return ((after[0] - before[0]) * 1e6 / total, (after[1] - before[1]) * 1e6 / total)


async def link_clients(stack: contextlib.AsyncExitStack, hub: HubProcess, n: int) -> list[Any]:
    """``n`` fresh daemons, each with the filespace ``data`` linked."""
    filespaces = []
    for _ in range(n):
        daemon = await stack.enter_async_context(lucidlink.aio.create_daemon(
            hub_url=hub.url, config={"fs.statahead": False}))  # every stat asks the hub
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=hub.token))
        filespaces.append(await stack.enter_async_context(ws.link_filespace(name="data")))
    return filespaces


async def measure(hub: HubProcess, args: argparse.Namespace) -> None:
    """Create the files once, then time the passes."""
    assert hub.pid is not None
    groups = [[f"/stat/d{c}/f{i}" for i in range(args.files)] for c in range(args.clients)]
    async with contextlib.AsyncExitStack() as stack:
        for fsp, names in zip(await link_clients(stack, hub, args.clients), groups, strict=True):
            await fsp.fs.create_dir(names[0].rsplit("/", 1)[0])
            for name in names:
                await fsp.fs.write_file(name, b"")
            await fsp.sync_all()
    total = args.clients * args.files
    rates, hub_us, hub_sys_us, client_us = [], [], [], []
    for p in range(args.passes):
        async with contextlib.AsyncExitStack() as stack:
            filespaces = await link_clients(stack, hub, args.clients)

            async def stat(fsp: Any, names: list[str]) -> None:
                for name in names:
                    assert (await fsp.fs.get_entry(name)).size == 0

            hub0, me0, t0 = process_cpu(hub.pid), process_cpu(os.getpid()), time.perf_counter()
            await asyncio.gather(*(stat(f, g) for f, g in zip(filespaces, groups, strict=True)))
            seconds = time.perf_counter() - t0
            rates.append(total / seconds)
            hub_user, hub_sys = per_stat_us(hub0, process_cpu(hub.pid), total)
            me_user, me_sys = per_stat_us(me0, process_cpu(os.getpid()), total)
            hub_us.append(hub_user + hub_sys)
            hub_sys_us.append(hub_sys)
            client_us.append(me_user + me_sys)
        print(f"pass {p + 1}/{args.passes}: {rates[-1]:,.0f} stats/s; CPU µs per stat: "
              f"hub {hub_us[-1]:.0f} (system {hub_sys:.0f}), client {client_us[-1]:.0f} "
              f"(system {me_sys:.0f})", flush=True)
    print(f"median: {statistics.median(rates):,.0f} stats/s; CPU µs per stat: hub "
          f"{statistics.median(hub_us):.0f} (system {statistics.median(hub_sys_us):.0f}), "
          f"client {statistics.median(client_us):.0f} "
          f"(hub on {args.hub_event_loop})")


def main() -> int:
    """Parse the flags, start the hub, measure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passes", type=int, default=7)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--files", type=int, default=250, help="files per client")
    add_event_loop_flag(parser)
    args = parser.parse_args()
    quiet_logs()
    with tempfile.TemporaryDirectory() as tmp, HubProcess(
            Path(tmp), in_process=False, settings={"event_loop": args.hub_event_loop}) as hub:
        asyncio.run(measure(hub, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
