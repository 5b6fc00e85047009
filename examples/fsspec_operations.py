"""fsspec: a filespace as ``lucidlink://<workspace>/<filespace>/<path>``, no daemon code.

Run it against a throw-away embedded hub (SQLite + local blocks):

    lucidlink hub embedded -- python examples/fsspec_operations.py

or against your own hub with LUCIDLINK_HUB_URL and LUCIDLINK_TOKEN set.
"""

import os
import tempfile

import fsspec  # nothing from lucidlink is imported: the "lucidlink" protocol is an entry point

TOKEN = os.environ["LUCIDLINK_TOKEN"]
FILESPACE = os.environ.get("LUCIDLINK_FILESPACE", "production-data")

# The hub is found through LUCIDLINK_HUB_URL (or pass hub_url=...).
fs = fsspec.filesystem("lucidlink", token=TOKEN)

# A token belongs to one workspace: the root lists it.
(workspace,) = fs.ls("lucidlink://", detail=False)
print("workspace:", workspace, "filespaces:", fs.ls(f"lucidlink://{workspace}", detail=False))
root = f"lucidlink://{workspace}/{FILESPACE}/fsspec-demo"

# Write and read: pipe/cat, and streaming file objects (text or binary).
fs.makedirs(f"{root}/raw", exist_ok=True)
fs.pipe(f"{root}/raw/hello.txt", b"Hello from fsspec!\n")
with fs.open(f"{root}/raw/numbers.csv", "w") as f:
    f.write("n,square\n")
    for n in range(1, 6):
        f.write(f"{n},{n * n}\n")
print(fs.cat(f"{root}/raw/hello.txt").decode(), end="")
print("bytes 0-8 of numbers.csv:", fs.cat_file(f"{root}/raw/numbers.csv", start=0, end=8))
with fs.open(f"{root}/raw/numbers.csv") as f:
    print("header:", f.readline().strip())

# Listings, metadata.
for info in fs.ls(f"{root}/raw", detail=True):
    print(f"  {info['type']:9} {info['size']:>5}  {info['name']}")
print("modified:", fs.modified(f"{root}/raw/hello.txt").isoformat())

# Upload and download local files.
with tempfile.TemporaryDirectory() as tmp:
    local = os.path.join(tmp, "local.txt")
    with open(local, "w") as f:
        f.write("uploaded with fs.put\n")
    fs.put(local, f"{root}/uploads/local.txt")
    fs.get(f"{root}/uploads/local.txt", os.path.join(tmp, "back.txt"))
    with open(os.path.join(tmp, "back.txt")) as f:
        print("round trip:", f.read().strip())

# Copies share blocks on the hub; moves are a single rename; neither moves bytes.
fs.cp(f"{root}/raw/numbers.csv", f"{root}/archive/numbers-copy.csv")
fs.mv(f"{root}/uploads", f"{root}/archive/uploads")
print("tree:", fs.find(root))
print("total bytes:", fs.du(root))

# Clean up; close() commits anything pending and stops this client's daemon.
fs.rm(root, recursive=True)
print("removed:", not fs.exists(root))
fs.close()
