"""The quickstart with the async API, for asyncio services.

    lucidlink hub embedded -- python examples/async_quickstart.py
"""

import asyncio
import os

import lucidlink.aio

TOKEN = os.environ["LUCIDLINK_TOKEN"]
FILESPACE = os.environ.get("LUCIDLINK_FILESPACE", "production-data")


async def main() -> None:
    async with lucidlink.aio.create_daemon() as daemon:
        workspace = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=TOKEN))
        async with workspace.link_filespace(name=FILESPACE) as filespace:
            fs = filespace.fs
            await fs.create_dir("/async")
            async with fs.open("/async/lines.txt", "wb") as f:
                for i in range(3):
                    await f.write(f"line {i}\n".encode())
            async with fs.open("/async/lines.txt", "rb") as f:
                async for line in f:
                    print(line.decode().rstrip())
            await asyncio.gather(*(fs.write_file(f"/async/{i}.bin", bytes([i]) * 1000) for i in range(10)))
            await filespace.sync_all()
            print(sorted(await fs.list_dir("/async")))


asyncio.run(main())
