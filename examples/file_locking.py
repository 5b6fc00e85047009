"""File locking: shared reads, exclusive writes and a safe read-modify-write update.

Several workers (each with its own daemon, as separate machines would have) increment
one JSON counter at the same time. Each increment opens the file with an exclusive
lock, so no update is lost; readers take shared locks, which they hold together.

    lucidlink hub embedded -- python examples/file_locking.py

or against your own hub with LUCIDLINK_HUB_URL and LUCIDLINK_TOKEN set.
"""

import asyncio
import json
import os

import lucidlink.aio
from lucidlink.exceptions import LockTimeoutError

TOKEN = os.environ["LUCIDLINK_TOKEN"]
FILESPACE = os.environ.get("LUCIDLINK_FILESPACE", "production-data")
COUNTER = "/locking-demo/counter.json"
WORKERS = 4
INCREMENTS = 10


async def increment(fs: lucidlink.aio.AsyncFilesystem, worker: str) -> None:
    """Read-modify-write under an exclusive lock: nobody else reads or writes in between."""
    async with fs.open(COUNTER, "r+b", lock_type="exclusive", lock_timeout=60) as f:
        record = json.loads(await f.read())
        record["count"] += 1
        record["last_writer"] = worker
        await f.seek(0)
        await f.write(json.dumps(record).encode())
        await f.truncate()
    # The change is committed before the lock is given back, so the next holder sees it.


async def worker(name: str) -> None:
    async with lucidlink.aio.create_daemon() as daemon:  # finds the hub through LUCIDLINK_HUB_URL
        workspace = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=TOKEN))
        async with workspace.link_filespace(name=FILESPACE) as filespace:
            for _ in range(INCREMENTS):
                await increment(filespace.fs, name)


async def main() -> None:
    async with lucidlink.aio.create_daemon() as daemon:
        workspace = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=TOKEN))
        async with workspace.link_filespace(name=FILESPACE) as filespace:
            fs = filespace.fs
            await fs.create_dir("/locking-demo")
            # Create the record under an exclusive lock ("wb" replaces any earlier one).
            async with fs.open(COUNTER, "wb", lock_type="exclusive") as f:
                await f.write(json.dumps({"count": 0, "last_writer": None}).encode())

            # Shared locks: any number of readers hold one at the same time.
            async with fs.open(COUNTER, "rb", lock_type="shared") as a, fs.open(COUNTER, "rb", lock_type="shared") as b:
                print("two shared readers:", (await a.read()).decode(), "/", (await b.read()).decode())
                print("holders:", [str(lock) for lock in await fs.get_locks(COUNTER)])

            # Shared and exclusive exclude each other: while a reader holds the file a
            # writer that will not wait (lock_timeout=0) gets LockTimeoutError naming the holder.
            async with fs.open(COUNTER, "rb", lock_type="shared"):
                try:
                    await fs.open(COUNTER, "r+b", lock_type="exclusive", lock_timeout=0)
                except LockTimeoutError as err:
                    print("writer did not wait:", err)

            # Exclusive writes: concurrent read-modify-write updates, none lost.
            await asyncio.gather(*(worker(f"worker-{i}") for i in range(WORKERS)))

            async with fs.open(COUNTER, "rb", lock_type="shared") as f:
                record = json.loads(await f.read())
            print(f"final count: {record['count']} (expected {WORKERS * INCREMENTS}); "
                  f"last writer {record['last_writer']}")
            if record["count"] != WORKERS * INCREMENTS:
                raise SystemExit("lost updates!")


asyncio.run(main())
