"""Hub throughput: metadata operations per second and block transfer against the disk.

Run by hand (not in CI)::

    .venv/bin/python benchmarks/hub_throughput.py [--clients 16] [--seconds 5] [--mb 256]

Starts an :class:`~lucidlink.hub.embedded.EmbeddedHub` (SQLite + local blocks) in a
temporary data dir, by default in a child process so the benchmark's clients and the hub
do not share one interpreter lock (``--in-process`` keeps it in this process). Then:

* with ``--clients`` concurrent aiohttp clients, each for ``--seconds``: stat/s,
  list/s (a directory of 100 entries), mkdir/s, commit/s (single-block commits of
  blocks already uploaded);
* block transfer of ``--mb`` MiB in 4 MiB blocks with 8 concurrent requests: PUT
  through signed URLs, then GET, against a plain read of the same block files from disk
  (in Python with a 1 MiB buffer, and ``cat files > /dev/null``), all from the page
  cache, since the blocks were just written.

Prints a table per part and a final line of ratios. No thresholds: it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

BLOCK = 4 * 1024 * 1024
TRANSFER_CONCURRENCY = 8
READ_BUFFER = 1024 * 1024
PUT_NAME = "hub PUT (hash-verified, fsync'd)"


# -- the hub -----------------------------------------------------------------------------


from _hubproc import HubProcess  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

# -- measuring ---------------------------------------------------------------------------


class Client:
    """JSON calls to the hub with one token."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.session = session
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, json: Any = None, expect: int = 200) -> Any:
        async with self.session.request(
            method, self.url + path, json=json, headers=self.headers
        ) as resp:
            body = await resp.json()
            if resp.status != expect:
                raise RuntimeError(f"{method} {path}: HTTP {resp.status} {body}")
            return body


async def run_clients(
    clients: int, seconds: float, op: Callable[[int, int], Awaitable[None]]
) -> tuple[int, float, list[float]]:
    """Run ``op(client, i)`` in ``clients`` loops for ``seconds``; (ops, elapsed, latencies)."""
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def one(client: int) -> int:
        n = 0
        while loop.time() < deadline:
            started = time.perf_counter()
            await op(client, n)
            latencies.append(time.perf_counter() - started)
            n += 1
        return n

    started = time.perf_counter()
    counts = await asyncio.gather(*(one(c) for c in range(clients)))
    return sum(counts), time.perf_counter() - started, latencies


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def metadata(
    c: Client, fs: str, clients: int, seconds: float
) -> list[tuple[str, int, float, list[float]]]:
    base = f"/v1/filespaces/{fs}"
    await c.call("POST", f"{base}/mkdir", {"path": "/bench/list"})
    for i in range(100):
        await c.call("POST", f"{base}/mkdir", {"path": f"/bench/list/entry-{i:03d}"})
    await c.call("POST", f"{base}/mkdir", {"path": "/bench/mk"})
    await c.call("POST", f"{base}/mkdir", {"path": "/bench/commits"})
    # Blocks for the commits, uploaded beforehand: one per client.
    payloads = [f"block of client {i}".encode() * 64 for i in range(clients)]
    digests = [hashlib.sha256(p).hexdigest() for p in payloads]
    urls = (await c.call("POST", f"{base}/blocks/urls", {"op": "put", "hashes": digests}))["urls"]
    for payload, digest in zip(payloads, digests, strict=True):
        if digest in urls:
            async with c.session.put(urls[digest], data=payload) as resp:
                assert resp.status == 201, await resp.text()

    async def stat(client: int, i: int) -> None:
        await c.call("GET", f"{base}/entry?path=/bench/list")

    async def listing(client: int, i: int) -> None:
        body = await c.call("GET", f"{base}/list?path=/bench/list&limit=1000")
        assert len(body["entries"]) == 100

    async def mkdir(client: int, i: int) -> None:
        await c.call(
            "POST", f"{base}/mkdir", {"path": f"/bench/mk/{client}-{i}", "exist_ok": False}
        )

    async def commit(client: int, i: int) -> None:
        n = len(payloads[client])
        await c.call(
            "POST",
            f"{base}/commit",
            {
                "path": f"/bench/commits/{client}-{i}",
                "size": n,
                "blocks": [{"index": 0, "hash": digests[client], "length": n}],
            },
        )

    results = []
    for name, op in [
        ("stat", stat),
        ("list (100 entries)", listing),
        ("mkdir", mkdir),
        ("commit (1 block)", commit),
    ]:
        ops, elapsed, lat = await run_clients(clients, seconds, op)
        results.append((name, ops, elapsed, lat))
    return results


async def transfer(c: Client, fs: str, data_dir: Path, mib: int) -> dict[str, tuple[float, float]]:
    """Returns {name: (MiB, seconds)}."""
    base = f"/v1/filespaces/{fs}"
    count = max(1, mib * 1024 * 1024 // BLOCK)
    blocks = [os.urandom(BLOCK) for _ in range(count)]
    digests = [hashlib.sha256(b).hexdigest() for b in blocks]
    total_mib = count * BLOCK / 2**20
    sem = asyncio.Semaphore(TRANSFER_CONCURRENCY)

    async def urls(op: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for start in range(0, count, 1024):
            body = await c.call(
                "POST", f"{base}/blocks/urls", {"op": op, "hashes": digests[start : start + 1024]}
            )
            out.update(body["urls"])
        return out

    put_urls = await urls("put")

    async def put(i: int) -> None:
        async with sem:
            async with c.session.put(put_urls[digests[i]], data=io.BytesIO(blocks[i])) as resp:
                assert resp.status == 201, await resp.text()

    started = time.perf_counter()
    await asyncio.gather(*(put(i) for i in range(count)))
    put_s = time.perf_counter() - started
    blocks.clear()  # the bytes now live in the block files

    files = [data_dir / "blocks" / fs / d[:2] / d for d in digests]
    assert all(f.stat().st_size == BLOCK for f in files)

    def read_files() -> float:
        buf = bytearray(READ_BUFFER)
        view = memoryview(buf)
        started = time.perf_counter()
        for f in files:
            with open(f, "rb", buffering=0) as fh:
                while fh.readinto(view):
                    pass
        return time.perf_counter() - started

    def cat_files() -> float:
        started = time.perf_counter()
        subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)
        return time.perf_counter() - started

    read_files()  # warm the page cache for everyone alike
    py_s = min(read_files() for _ in range(3))
    cat_s = min(cat_files() for _ in range(3))

    get_urls = await urls("get")

    async def get(i: int) -> None:
        async with sem:
            async with c.session.get(get_urls[digests[i]]) as resp:
                assert resp.status == 200
                n = 0
                async for chunk in resp.content.iter_chunked(READ_BUFFER):
                    n += len(chunk)
                assert n == BLOCK

    get_times = []
    for _ in range(3):
        started = time.perf_counter()
        await asyncio.gather(*(get(i) for i in range(count)))
        get_times.append(time.perf_counter() - started)
    return {
        "hub GET": (total_mib, min(get_times)),
        "read files in Python (1 MiB buffer)": (total_mib, py_s),
        "cat files > /dev/null": (total_mib, cat_s),
        PUT_NAME: (total_mib, put_s),
    }


async def bench(args: argparse.Namespace, hub: HubProcess) -> None:
    connector = aiohttp.TCPConnector(limit=max(args.clients, TRANSFER_CONCURRENCY))
    async with aiohttp.ClientSession(connector=connector) as session:
        c = Client(session, hub.url, hub.token)
        fs = (await c.call("GET", "/v1/filespaces"))["filespaces"][0]["id"]
        meta = await metadata(c, fs, args.clients, args.seconds)
        moved = await transfer(c, fs, hub.data_dir, args.mb)

    print(
        f"\nmetadata: {args.clients} concurrent clients, {args.seconds:g} s each "
        f"(hub {'in this process' if args.in_process else 'in a child process'})"
    )
    print(f"{'operation':<22}{'ops':>9}{'ops/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    rates = {}
    for name, ops, elapsed, lat in meta:
        rates[name] = ops / elapsed
        print(
            f"{name:<22}{ops:>9}{ops / elapsed:>10.0f}{percentile(lat, 0.5) * 1e3:>9.2f}"
            f"{percentile(lat, 0.99) * 1e3:>9.2f}"
        )
    mean_ms = statistics.fmean(x for _, _, _, lat in meta for x in lat) * 1e3
    print(f"(mean latency over all operations {mean_ms:.2f} ms)")

    print(
        f"\nblock transfer: {args.mb} MiB in {BLOCK // 2**20} MiB blocks, "
        f"{TRANSFER_CONCURRENCY} concurrent requests (best of 3 for reads)"
    )
    print(f"{'transfer':<40}{'MiB':>7}{'seconds':>10}{'MiB/s':>10}")
    speed = {}
    for name, (mib, seconds) in moved.items():
        speed[name] = mib / seconds
        print(f"{name:<40}{mib:>7.0f}{seconds:>10.3f}{mib / seconds:>10.0f}")
    get = speed["hub GET"]
    print(
        "\nratios: "
        f"GET / Python read = {get / speed['read files in Python (1 MiB buffer)']:.2f}, "
        f"GET / cat = {get / speed['cat files > /dev/null']:.2f}, "
        f"PUT / GET = {speed[PUT_NAME] / get:.2f}, "
        f"list / stat = {rates['list (100 entries)'] / rates['stat']:.2f}, "
        f"commit / mkdir = {rates['commit (1 block)'] / rates['mkdir']:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clients", type=int, default=16, help="concurrent clients for metadata (default 16)"
    )
    parser.add_argument(
        "--seconds", type=float, default=5, help="seconds per metadata operation (default 5)"
    )
    parser.add_argument(
        "--mb", type=int, default=256, help="MiB of blocks to transfer (default 256)"
    )
    parser.add_argument(
        "--in-process", action="store_true", help="run the hub in this process's thread"
    )
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="lucidhub-bench-") as tmp,
        HubProcess(Path(tmp) / "hub", args.in_process) as hub,
    ):
        print(
            f"hub {hub.url}, data dir {hub.data_dir}, "
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
        )
        asyncio.run(bench(args, hub))
    return 0


if __name__ == "__main__":
    sys.exit(main())
