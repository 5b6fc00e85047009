"""A tour of the file operations: directories, streaming, partial updates, moves.

    lucidlink hub embedded -- python examples/file_operations.py
"""

import os

import lucidlink

TOKEN = os.environ["LUCIDLINK_TOKEN"]
FILESPACE = os.environ.get("LUCIDLINK_FILESPACE", "production-data")

with lucidlink.create_daemon(config={"fs.cache.size": "512"}) as daemon:
    workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=TOKEN))
    with workspace.link_filespace(name=FILESPACE) as filespace:
        fs = filespace.fs

        # Directories: parents are created, listings carry sizes and times.
        fs.create_dir("/tour/raw")
        fs.create_dir("/tour/processed")

        # Stream a file larger than one block without holding it in memory.
        chunk = os.urandom(1024 * 1024)
        with fs.open("/tour/raw/video.bin", "wb") as f:
            for _ in range(12):
                f.write(chunk)
        print("written:", fs.get_entry("/tour/raw/video.bin").size, "bytes")

        # Random access: read a byte range in the middle.
        with fs.open("/tour/raw/video.bin", "rb") as f:
            f.seek(5 * 1024 * 1024)
            assert f.read(16) == chunk[:16]

        # Partial update in place: only the touched block is rewritten.
        with fs.open("/tour/raw/video.bin", "r+b") as f:
            f.seek(100)
            f.write(b"PATCHED")
        with fs.open("/tour/raw/video.bin", "rb") as f:
            f.seek(100)
            print("patched bytes:", f.read(7))

        # Appends and truncation.
        with fs.open("/tour/raw/log.txt", "a") as f:
            f.write("started\n")
        with fs.open("/tour/raw/log.txt", "a") as f:
            f.write("finished\n")
        print("log:", fs.read_file("/tour/raw/log.txt").decode().split())
        fs.truncate("/tour/raw/video.bin", 1024)
        print("truncated to", fs.get_entry("/tour/raw/video.bin").size)

        # Moves are one metadata update, whatever the size of the tree.
        fs.move("/tour/raw/video.bin", "/tour/processed/video.bin")
        print("processed:", fs.list_dir("/tour/processed"))
        print("exists?", fs.file_exists("/tour/raw/video.bin"), fs.dir_exists("/tour/processed"))

        # Errors are the builtin ones.
        try:
            fs.read_file("/tour/missing.txt")
        except FileNotFoundError as err:
            print("as expected:", err)
        try:
            fs.delete_dir("/tour")
        except OSError as err:
            print("as expected:", err)

        fs.delete_dir("/tour", recursive=True)
        filespace.sync_all()
        print("size after cleanup:", fs.get_size())
