"""SDK data path figures next to their limits, measured in one run on one hub.

    .venv/bin/python benchmarks/sdk_datapath.py [--mb 1024] [--small-files 1000]

Prints, each with the limit measured in the same run and the ratio:
- cold sequential read of a large file by a new daemon (empty block cache)  vs  the raw
  block endpoint fetched with plain concurrent aiohttp (the same blocks, signed URLs);
- warm re-read (blocks in the daemon's cache)  vs  reading the same bytes from a local
  file in the page cache (same chunk size, both hashed);
- sequential write + sync_all             vs  raw concurrent aiohttp PUTs of as many blocks;
- small files written + synced per second (no limit; the hub's commit rate bounds it).
Every byte is fresh ``os.urandom``: no block repeats, so the hub's dedup and the block
cache flatter nothing (an earlier version repeated one 64 MiB payload, so 15 of every 16
blocks were "present" on write and served from the cache on read). For the SDK against
s3fs and obstore see ``peers.py``.
Targets (issue 3): cold >= 0.8, warm >= 0.5, write >= 0.7.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
from _hubproc import HubProcess  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

import lucidlink.aio as aio

MiB = 1024 * 1024


def _rate(nbytes: int, seconds: float) -> float:
    return nbytes / MiB / seconds


async def raw_get(url_base: str, token: str, fs_id: str, hashes: list[str],
                  concurrency: int) -> float:
    """Fetch every block once with plain aiohttp; return seconds."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
        async with s.post(f"{url_base}/v1/filespaces/{fs_id}/blocks/urls",
                          json={"op": "get", "hashes": hashes}) as r:
            urls = (await r.json())["urls"]
        sem = asyncio.Semaphore(concurrency)

        async def one(u: str) -> int:
            async with sem, s.get(u) as resp:
                return len(await resp.read())

        t0 = time.perf_counter()
        await asyncio.gather(*(one(urls[h]) for h in hashes))
        return time.perf_counter() - t0


async def raw_put(url_base: str, token: str, fs_id: str, count: int, make: Callable[[int], bytes],
                  concurrency: int) -> float:
    """Upload ``count`` fresh blocks with plain aiohttp (hashing included); return seconds."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem:
                data = make(i)
                digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
                async with s.post(f"{url_base}/v1/filespaces/{fs_id}/blocks/urls",
                                  json={"op": "put", "hashes": [digest]}) as r:
                    url = (await r.json())["urls"][digest]
                async with s.put(url, data=data) as resp:
                    assert resp.status == 201, resp.status

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return time.perf_counter() - t0


async def run(hub: HubProcess, token: str, size_mb: int, small_files: int, chunk: int) -> None:
    """Measure every figure once, in one process, against the hub in ``hub``."""
    total = size_mb * MiB
    # Fresh random bytes for the whole file, made before any timing: every block is new to
    # the hub (its dedup answers "missing" for each), and nothing is cached anywhere yet.
    payload = memoryview(os.urandom(total))
    rows: list[tuple[str, float, str, float]] = []
    config = {"fs.cache.size": str(size_mb * 2)}
    creds = aio.ServiceAccountCredentials(token=token)
    async with aio.create_daemon(hub_url=hub.url, config=config) as daemon:
        ws = await daemon.authenticate(creds)
        async with ws.link_filespace(name="data") as fsp:
            fs = fsp.fs
            bs = fsp.block_size
            fs_id = fsp.id
            # Sequential write + sync.
            t0 = time.perf_counter()
            async with fs.open("/big.bin", "wb") as f:
                for off in range(0, total, chunk):
                    await f.write(payload[off:off + chunk])
            await fsp.sync_all()
            write_s = time.perf_counter() - t0
            # Raw PUT limit: as many blocks as the file has, of other fresh bytes (so the hub
            # has none of them), at the SDK's upload concurrency.
            other = memoryview(os.urandom(total))
            raw_put_s = await raw_put(hub.url, token, fs_id, -(-total // bs),
                                      lambda i: bytes(other[i * bs:(i + 1) * bs]), 8)
            rows.append(("write+sync", _rate(total, write_s), "raw PUT",
                         _rate(total, raw_put_s)))
            # Small files: fresh 4 KiB each.
            smalls = [os.urandom(4096) for _ in range(small_files)]
            await fs.create_dir("/small")
            t0 = time.perf_counter()
            for i, data in enumerate(smalls):
                await fs.write_file(f"/small/{i:05d}.bin", data)
            await fsp.sync_all()
            small_s = time.perf_counter() - t0
    # The blocks' keys are their SHA-256 (content addressing), so the raw GET limit can name
    # them without asking the SDK.
    hashes = [hashlib.sha256(payload[o:o + bs]).hexdigest() for o in range(0, total, bs)]
    digest = hashlib.sha256(payload).hexdigest()
    # Cold read: a new daemon, so an empty block cache; the hub's block files are in the page
    # cache for the SDK and the raw GETs alike (they were just written).
    raw_get_s = await raw_get(hub.url, token, fs_id, hashes, 16)
    async with aio.create_daemon(hub_url=hub.url, config=config) as daemon:
        ws = await daemon.authenticate(creds)
        async with ws.link_filespace(name="data") as fsp:
            fs = fsp.fs
            t0 = time.perf_counter()
            h = hashlib.sha256()
            async with fs.open("/big.bin", "rb") as f:
                got = 0
                while data := await f.read(chunk):
                    got += len(data)
                    h.update(data)  # the check costs the same in every read below
            cold_s = time.perf_counter() - t0
            assert got == total and h.hexdigest() == digest, got
            raw_get_s = min(raw_get_s, await raw_get(hub.url, token, fs_id, hashes, 16))
            rows.append(("cold read", _rate(total, cold_s), "raw GET", _rate(total, raw_get_s)))
            # Warm re-read (blocks in this daemon's cache) vs reading the same bytes from a
            # local file in the page cache, the same chunk size, hashed alike; best of 3 each:
            # these are short and the machine is shared.
            warm_s = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                h = hashlib.sha256()
                async with fs.open("/big.bin", "rb") as f:
                    while data := await f.read(chunk):
                        h.update(data)
                warm_s = min(warm_s, time.perf_counter() - t0)
                assert h.hexdigest() == digest
    with tempfile.NamedTemporaryFile(prefix="lucid-bench-") as local:
        local.write(payload)
        local.flush()

        def disk_read() -> float:
            t = time.perf_counter()
            h = hashlib.sha256()
            with open(local.name, "rb", buffering=0) as fh:
                while data := fh.read(chunk):
                    h.update(data)
            assert h.hexdigest() == digest
            return time.perf_counter() - t

        disk_s = min([await asyncio.to_thread(disk_read) for _ in range(3)])
    rows.append(("warm re-read", _rate(total, warm_s), "local disk", _rate(total, disk_s)))
    print(f"{'measure':<14}{'MB/s':>10}  {'limit':<12}{'MB/s':>10}{'ratio':>8}")
    for name, ours, limit_name, limit in rows:
        print(f"{name:<14}{ours:>10.1f}  {limit_name:<12}{limit:>10.1f}{ours / limit:>8.2f}")
    print(f"small files: {small_files / small_s:.0f} files/s written+synced "
          f"({small_files} x 4 KiB, write_file in a loop, then sync_all)")
    print("ratios: " + ", ".join(f"{name}={ours / limit:.2f}" for name, ours, _, limit in rows))
    print("All bytes are fresh os.urandom; MB/s = MiB/s.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=1024, help="size of the large file in MiB")
    parser.add_argument("--small-files", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=4 * MiB, help="read/write call size")
    parser.add_argument("--in-process", action="store_true",
                        help="run the hub in this process (shares the GIL)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with HubProcess(Path(tmp) / "hub", in_process=args.in_process) as hub:
            asyncio.run(run(hub, hub.token, args.mb, args.small_files, args.chunk))


if __name__ == "__main__":
    main()
