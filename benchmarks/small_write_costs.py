"""Where the CPU of small-file writes goes: per file, per thread, client and hub.

Run by hand (not in CI)::

    .venv/bin/python benchmarks/small_write_costs.py [--files 1000] [--rounds 3]
        [--forms write_file,open,aio] [--hub-event-loop asyncio|uvloop]

Starts an embedded hub (SQLite, local blocks) in a child process. Each round and each
form runs in a fresh daemon. It writes ``--files`` new 4 KiB files of fresh random bytes
into a new directory, then calls ``sync_all``. The forms:

* ``write_file``: the blocking API's ``fs.write_file``, one call into the loop per file;
* ``open``: the blocking ``with fs.open(path, "wb") as f: f.write(data)``, two calls;
* ``aio``: ``await fs.write_file`` of the async API, one file at a time.

Prints, per round, files/s over the loop and the sync, and the time of each. It also
prints the CPU microseconds per file of every thread of this process and of the hub's,
read from ``/proc/<pid>/task/*/stat``, the bytes the hub wrote per file (``/proc/<pid>/io``),
and the hub's commit and journal requests. No thresholds: it measures (Linux only).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _hubproc import HubProcess, add_event_loop_flag, quiet_logs  # noqa: E402

import lucidlink  # noqa: E402
import lucidlink.aio  # noqa: E402

SIZE = 4096


def thread_cpu(pid: int | str = "self") -> dict[str, tuple[str, float]]:
    """Thread id -> (name, CPU seconds used so far) for every thread of ``pid``.

    Python does not name its threads for the system, so in this process the names come
    from :mod:`threading`; the hub's threads are known by their ids only.
    """
    tick = os.sysconf("SC_CLK_TCK")
    names = {str(t.native_id): t.name for t in threading.enumerate()} if pid == "self" else {}
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except (FileNotFoundError, ProcessLookupError):  # the thread ended (ESRCH at read)
            continue
        name = names.get(tid) or stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[tid] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def written_bytes(pid: int) -> int:
    """Bytes ``pid`` has caused to be written to storage so far."""
    with open(f"/proc/{pid}/io") as f:
        return int(next(line.split()[1] for line in f if line.startswith("write_bytes:")))


def per_file(
    before: dict[str, tuple[str, float]], after: dict[str, tuple[str, float]], files: int
) -> str:
    """The threads that used CPU, as ``name/tid: µs per file``, busiest first."""
    used = []
    for tid, (name, seconds) in after.items():
        spent = seconds - before.get(tid, (name, 0.0))[1]
        if spent > 0:
            used.append((spent, f"{name}/{tid}"))
    return ", ".join(
        f"{label} {1e6 * spent / files:.0f}" for spent, label in sorted(used, reverse=True)
    )


def requests_by_route(hub_url: str) -> dict[str, float]:
    """The hub's request counts for commits and the journal (Prometheus ``/metrics``)."""
    text = urllib.request.urlopen(hub_url + "/metrics").read().decode()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(
            r'lucidhub_requests_total\{method="(\w+)",route="([^"]+)",status="2\d\d"\} (\S+)', line
        )
        if match and match.group(2).endswith(("/commits", "/changes")):
            key = f"{match.group(1)} {match.group(2).rsplit('/', 1)[-1]}"
            counts[key] = counts.get(key, 0.0) + float(match.group(3))
    return counts


def blocking_round(hub: HubProcess, form: str, files: int, directory: str) -> tuple[float, float]:
    """Write the files through the blocking API; return (loop seconds, sync seconds)."""
    with lucidlink.create_daemon(hub_url=hub.url) as daemon:
        workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=hub.token))
        with workspace.link_filespace(name="data") as filespace:
            fs = filespace.fs
            datas = [os.urandom(SIZE) for _ in range(files)]
            fs.create_dir(directory)
            started = time.perf_counter()
            for i, data in enumerate(datas):
                if form == "open":
                    with fs.open(f"{directory}/f{i}", "wb") as f:
                        f.write(data)
                else:
                    fs.write_file(f"{directory}/f{i}", data)
            looped = time.perf_counter()
            filespace.sync_all()
            return looped - started, time.perf_counter() - looped


async def aio_round(hub: HubProcess, files: int, directory: str) -> tuple[float, float]:
    """Write the files through the async API, one at a time; return (loop s, sync s)."""
    async with lucidlink.aio.create_daemon(hub_url=hub.url) as daemon:
        workspace = await daemon.authenticate(
            lucidlink.aio.ServiceAccountCredentials(token=hub.token)
        )
        filespace = await workspace.link_filespace(name="data")
        datas = [os.urandom(SIZE) for _ in range(files)]
        await filespace.fs.create_dir(directory)
        started = time.perf_counter()
        for i, data in enumerate(datas):
            await filespace.fs.write_file(f"{directory}/f{i}", data)
        looped = time.perf_counter()
        await filespace.sync_all()
        synced = time.perf_counter()
        await filespace.unlink()
        return looped - started, synced - looped


def main() -> int:
    """Parse the arguments, run the rounds, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--forms", default="write_file,open,aio")
    add_event_loop_flag(parser)
    args = parser.parse_args()
    quiet_logs()
    with tempfile.TemporaryDirectory() as tmp, HubProcess(
            Path(tmp), in_process=False, settings={"event_loop": args.hub_event_loop}) as hub:
        pid = hub.pid
        assert pid is not None
        for form in args.forms.split(","):
            for r in range(args.rounds):
                directory = f"/{form}-{r}"
                client0, hub0 = thread_cpu(), thread_cpu(pid)
                bytes0, requests0 = written_bytes(pid), requests_by_route(hub.url)
                if form == "aio":
                    loop_s, sync_s = asyncio.run(aio_round(hub, args.files, directory))
                else:
                    loop_s, sync_s = blocking_round(hub, form, args.files, directory)
                client1, hub1 = thread_cpu(), thread_cpu(pid)
                bytes1, requests1 = written_bytes(pid), requests_by_route(hub.url)
                calls = {k: int(v - requests0.get(k, 0.0)) for k, v in requests1.items()}
                print(
                    f"{form} round {r + 1}/{args.rounds}: "
                    f"{args.files / (loop_s + sync_s):,.0f} files/s "
                    f"(loop {1e6 * loop_s / args.files:.0f} µs/file, sync {1e3 * sync_s:.0f} ms); "
                    f"hub wrote {(bytes1 - bytes0) / args.files:,.0f} B/file; requests {calls}"
                )
                print(f"    client CPU µs/file: {per_file(client0, client1, args.files)}")
                print(f"    hub CPU µs/file:    {per_file(hub0, hub1, args.files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
