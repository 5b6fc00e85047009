"""SDK data path figures next to their limits, measured in one run on one hub.

    .venv/bin/python benchmarks/sdk_datapath.py [--mb 1024] [--small-files 1000]

Prints, each with the limit measured in the same run and the ratio:
- cold sequential read of a large file   vs  the raw block endpoint fetched with plain
  concurrent aiohttp (the same blocks, the same signed URLs);
- warm re-read (blocks in the daemon's cache)  vs  reading the same bytes from local disk;
- sequential write + sync_all             vs  raw concurrent aiohttp PUTs of the blocks;
- small files written + synced per second (no limit; the hub's commit rate bounds it).
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

import lucidlink.aio as aio
from _hubproc import HubProcess  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

MiB = 1024 * 1024


def _rate(nbytes: int, seconds: float) -> float:
    return nbytes / MiB / seconds


async def raw_get(url_base: str, token: str, fs_id: str, hashes: list[str], concurrency: int) -> float:
    """Fetch every block once with plain aiohttp; return seconds."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
        async with s.post(f"{url_base}/v1/filespaces/{fs_id}/blocks/urls", json={"op": "get", "hashes": hashes}) as r:
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
    payload = os.urandom(64 * MiB)
    total = size_mb * MiB
    rows: list[tuple[str, float, str, float]] = []
    async with aio.create_daemon(hub_url=hub.url, config={"fs.cache.size": str(size_mb * 2)}) as daemon:
        ws = await daemon.authenticate(aio.ServiceAccountCredentials(token=token))
        async with ws.link_filespace(name="data") as fsp:
            fs = fsp.fs
            bs = fsp.block_size
            # Sequential write + sync.
            t0 = time.perf_counter()
            async with fs.open("/big.bin", "wb") as f:
                written = 0
                while written < total:
                    n = min(chunk, total - written)
                    off = written % len(payload)
                    piece = payload[off:off + n] if off + n <= len(payload) else (payload * 2)[off:off + n]
                    await f.write(piece)
                    written += n
            await fsp.sync_all()
            write_s = time.perf_counter() - t0
            # Raw PUT limit: the same number of distinct fresh blocks.
            # Raw PUT limit: as many fresh blocks as the file has, the SDK's upload concurrency.
            raw_put_s = await raw_put(hub.url, token, fsp.id, total // bs,
                                      lambda i: os.urandom(16) + payload[16:bs], 8)
            rows.append(("write+sync", _rate(total, write_s), "raw PUT", _rate(total, raw_put_s)))

            info = await fsp._call("GET", "/file", params={"path": "/big.bin"})
            hashes = [b["hash"] for b in info["blocks"]]
            # Cold read: clear the daemon's cache first.
            daemon._cache._index.clear()
            daemon._cache._bytes = 0
            import shutil

            shutil.rmtree(daemon._cache.root, ignore_errors=True)
            daemon._cache.root.mkdir()
            raw_get_s = await raw_get(hub.url, token, fsp.id, hashes, 16)
            t0 = time.perf_counter()
            async with fs.open("/big.bin", "rb") as f:
                got = 0
                while True:
                    data = await f.read(chunk)
                    if not data:
                        break
                    got += len(data)
            cold_s = time.perf_counter() - t0
            assert got == total, got
            rows.append(("cold read", _rate(total, cold_s), "raw GET", 0.0))
            raw_get_s = min(raw_get_s, await raw_get(hub.url, token, fsp.id, hashes, 16))
            # Warm re-read vs local disk read of the same cached bytes (best of 3 each:
            # these are short and the machine is shared).
            warm_s = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                async with fs.open("/big.bin", "rb") as f:
                    while await f.read(chunk):
                        pass
                warm_s = min(warm_s, time.perf_counter() - t0)

            def disk_read() -> tuple[float, int]:
                files = [daemon._cache.root / fsp.id / h for h in hashes]
                t = time.perf_counter()
                n = 0
                for p in files:
                    with open(p, "rb") as fh:
                        while chunk_data := fh.read(chunk):
                            n += len(chunk_data)
                return time.perf_counter() - t, n

            disk_s = float("inf")
            for _ in range(3):
                seconds, disk_bytes = await asyncio.to_thread(disk_read)
                assert disk_bytes == total, (disk_bytes, total)
                disk_s = min(disk_s, seconds)
            rows[-1] = ("cold read", _rate(total, cold_s), "raw GET", _rate(total, raw_get_s))
            rows.append(("warm re-read", _rate(total, warm_s), "local disk", _rate(total, disk_s)))
            # Small files.
            await fs.create_dir("/small")
            t0 = time.perf_counter()
            for i in range(small_files):
                await fs.write_file(f"/small/{i:05d}.txt", f"file {i}\n".encode() * 10)
            await fsp.sync_all()
            small_s = time.perf_counter() - t0
    print(f"{'measure':<14}{'MB/s':>10}  {'limit':<12}{'MB/s':>10}{'ratio':>8}")
    for name, ours, limit_name, limit in rows:
        print(f"{name:<14}{ours:>10.1f}  {limit_name:<12}{limit:>10.1f}{ours / limit:>8.2f}")
    print(f"small files: {small_files / small_s:.0f} files/s written+synced ({small_files} files)")
    print("ratios: " + ", ".join(f"{name}={ours / limit:.2f}" for name, ours, _, limit in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=1024, help="size of the large file in MiB")
    parser.add_argument("--small-files", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=4 * MiB, help="read/write call size")
    parser.add_argument("--in-process", action="store_true", help="run the hub in this process (shares the GIL)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with HubProcess(Path(tmp) / "hub", in_process=args.in_process) as hub:
            asyncio.run(run(hub, hub.token, args.mb, args.small_files, args.chunk))


if __name__ == "__main__":
    main()
