"""Quickstart: connect to a hub, write a file, read it back, list a directory.

Run it against a throw-away embedded hub (SQLite + local blocks):

    lucidlink hub embedded -- python examples/quickstart.py

or against your own hub with LUCIDLINK_HUB_URL and LUCIDLINK_TOKEN set
(``lucidlink hub init`` prints a token).
"""

import os

import lucidlink

TOKEN = os.environ["LUCIDLINK_TOKEN"]
FILESPACE = os.environ.get("LUCIDLINK_FILESPACE", "production-data")

with lucidlink.create_daemon() as daemon:  # finds the hub through LUCIDLINK_HUB_URL
    workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=TOKEN))
    print(f"workspace {workspace.name}: {[fs.name for fs in workspace.list_filespaces()]}")

    with workspace.link_filespace(name=FILESPACE) as filespace:
        fs = filespace.fs
        fs.create_dir("/projects/2024")
        fs.write_file("/projects/2024/hello.txt", b"Hello from lucidlink!\n")

        with fs.open("/projects/2024/notes.txt", "w") as f:  # text mode, UTF-8
            f.write("first line\nsecond line\n")

        print(fs.read_file("/projects/2024/hello.txt").decode(), end="")
        with fs.open("/projects/2024/notes.txt", "r") as f:
            for line in f:
                print("notes:", line.rstrip())

        for entry in fs.read_dir("/projects/2024"):
            print(entry)

        filespace.sync_all()  # every change is now in the hub, visible to other machines
        print(fs.get_statistics())
