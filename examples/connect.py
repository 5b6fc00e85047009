"""LucidLink Connect with the async API: objects already in S3 become files, no byte copied.

    S3_ENDPOINT=http://127.0.0.1:8333 S3_ACCESS_KEY=... S3_SECRET_KEY=... S3_BUCKET=my-bucket \\
        lucidlink hub embedded -- python examples/connect.py

Needs an admin token in LUCIDLINK_TOKEN (``lucidlink hub embedded`` hands one over)
and an S3-compatible store. ``S3_ENDPOINT=""`` with ``S3_REGION`` set means AWS S3.
``S3_OBJECT`` names an existing object to link; without it the example first uploads a
small CSV to the bucket (with the hub's own presigner, only to have something to link).
Without the S3 settings it explains what it needs and exits 0.
"""

import asyncio
import os
import sys

import lucidlink.aio

S3_VARS = ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET")
STORE = "example-store"


async def upload_demo_object(config: lucidlink.aio.S3DataStoreConfig, key: str, data: bytes) -> str:
    """Put a small object into the bucket (the example's own set-up, not part of the SDK); its ETag."""
    import aiohttp
    import yarl

    from lucidlink.hub.s3 import client as s3

    target = s3.S3Target(bucket=config.bucket_name, access_key=config.access_key, secret_key=config.secret_key,
                         region=config.region, endpoint=config.endpoint, virtual=config.use_virtual_addressing)
    url = yarl.URL(s3.presign(target, "PUT", key, 300), encoded=True)
    async with aiohttp.ClientSession() as http, http.put(url, data=data) as resp:
        resp.raise_for_status()
        return resp.headers.get("ETag", "").strip('"')


async def main() -> None:
    config = lucidlink.aio.S3DataStoreConfig(
        access_key=os.environ["S3_ACCESS_KEY"],
        secret_key=os.environ["S3_SECRET_KEY"],
        bucket_name=os.environ["S3_BUCKET"],
        region=os.environ.get("S3_REGION", "us-east-1"),
        endpoint=os.environ["S3_ENDPOINT"],
    )
    print(config)  # the secret key never shows
    key = os.environ.get("S3_OBJECT")
    etag = None
    if not key:
        key = "lucidlink-connect-demo/dataset1_file1.csv"
        etag = await upload_demo_object(config, key, b"id,value\n1,alpha\n2,beta\n")

    token = os.environ["LUCIDLINK_TOKEN"]
    async with lucidlink.aio.create_daemon() as daemon:
        workspace = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=token))
        name = os.environ.get("LUCIDLINK_FILESPACE", "production-data")
        async with workspace.link_filespace(name=name) as filespace:
            connect = filespace.connect
            if await connect.get_data_store(STORE) is not None:  # left over from an earlier run
                await connect.remove_data_store(STORE, force=True)
            await connect.add_data_store(STORE, config)  # checks that the bucket is reachable
            print("data stores:", [str(s) for s in await connect.list_data_stores()])

            # Link: the hub asks S3 for the size and ETag (HeadObject) ...
            entry = await connect.link_file(file_path="/proj1/dataset1/file1.csv", data_store_name=STORE,
                                            object_id=key)
            # ... or, for bulk linking, the caller says them (say, from a bucket listing) and no S3
            # call is made. The checksum is best the ETag: every read is then checked against it.
            if etag:
                await connect.link_file(file_path="/proj1/again.csv", data_store_name=STORE, object_id=key,
                                        size=entry.size, checksum=etag)
                await connect.unlink_file("/proj1/again.csv")
            await filespace.sync_all()

            for e in await filespace.fs.read_dir("/proj1/dataset1"):
                print(e, "->", e.file_id_external)
            async with filespace.fs.open("/proj1/dataset1/file1.csv", "rb") as f:
                print((await f.read()).decode().rstrip())

            page = await connect.list_external_files(STORE, limit=50)
            while True:
                print("linked:", page.file_paths)
                if not page.has_more:
                    break
                page = await connect.list_external_files(STORE, limit=50, cursor=page.cursor)
            print("count:", await connect.count_external_files(STORE))

            try:
                await filespace.fs.write_file("/proj1/dataset1/file1.csv", b"overwrite?")
            except PermissionError as err:
                print("read-only:", err)

            await connect.unlink_file("/proj1/dataset1/file1.csv")  # the S3 object stays
            await connect.remove_data_store(STORE)
            print("done")


if __name__ == "__main__":
    missing = [v for v in S3_VARS if v not in os.environ]
    if missing:
        print(f"examples/connect.py needs an S3-compatible store: set {', '.join(missing)} "
              "(S3_ENDPOINT='' with S3_REGION for AWS). Nothing to do.")
        sys.exit(0)
    asyncio.run(main())
