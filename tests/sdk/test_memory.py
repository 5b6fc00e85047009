"""Memory stays bounded whatever the file size: 2 GiB through the blocking API.

Slow (2 GiB written, read back and patched through a hub): CI skips it; run it with

    .venv/bin/python -m pytest -m slow -s tests/sdk/test_memory.py

Each phase runs in a fresh child process, which reports its own peak RSS
(``VmHWM``), so the write phase's peak cannot hide the read phase's. The hub runs in
this process. It checks the writer, the reader alone, random access and in-place
updates of a huge file; ``tests/fsspec/test_fsspec.py`` checks fsspec's write mode in CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from lucidlink.hub.embedded import EmbeddedHub

GIB = 1024**3
LIMIT_KIB = 300 * 1024

CHILD = textwrap.dedent(
    """
    import hashlib, json, random, resource, sys
    import lucidlink

    url, token, phase, total = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    CHUNK = 8 * 1024 * 1024
    BASE = bytes(range(256)) * (CHUNK // 256)

    def chunk(i):
        # Chunk i of the file: distinct per chunk, cheap to make again for any range.
        return i.to_bytes(8, "little") + BASE[8:]

    def expected(offset, n):
        out = bytearray()
        while n > 0:
            i, o = divmod(offset, CHUNK)
            take = min(n, CHUNK - o)
            out += chunk(i)[o:o + take]
            offset += take
            n -= take
        return bytes(out)

    def peak():
        # This process's own high-water mark (KiB). Not ru_maxrss: Linux carries that
        # over fork and exec, so it starts at whatever the parent (pytest) held.
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    result = {"phase": phase, "start_kib": peak()}
    with lucidlink.create_daemon(hub_url=url, config={"fs.cache.size": "256"}) as daemon:
        workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=token))
        filespace = workspace.link_filespace(name="big")
        fs = filespace.fs
        if phase == "write":
            digest = hashlib.sha256()
            with fs.open("/huge.bin", "wb") as f:
                for i in range(total // CHUNK):
                    piece = chunk(i)
                    f.write(piece)
                    digest.update(piece)
            filespace.sync_all()
            result["sha256"] = digest.hexdigest()
            result["size"] = fs.get_entry("/huge.bin").size
        else:
            # The whole file, streamed in 8 MiB reads, hashed as it comes.
            digest = hashlib.sha256()
            n = 0
            with fs.open("/huge.bin", "rb") as f:
                while data := f.read(CHUNK):
                    digest.update(data)
                    n += len(data)
            result["sha256"] = digest.hexdigest()
            result["read"] = n
            result["after_stream_kib"] = peak()
            # Random access: ranges across block and chunk boundaries, anywhere in the file.
            rng = random.Random(7)
            bad = []
            with fs.open("/huge.bin", "rb", buffering=0) as f:
                for _ in range(48):
                    offset = rng.randrange(total - CHUNK)
                    size = rng.choice([1, 4095, 65536, 4 * 1024 * 1024 + 3, CHUNK])
                    f.seek(offset)
                    if f.read(size) != expected(offset, size):
                        bad.append(offset)
            result["random_bad"] = bad
            # In place: a patch across a block boundary in the middle, and an append.
            middle = total // 2 - 1024 * 1024 - 5
            patch = hashlib.shake_256(b"patch").digest(3 * 1024 * 1024)
            tail = hashlib.shake_256(b"tail").digest(5 * 1024 * 1024)
            with fs.open("/huge.bin", "r+b") as f:
                f.seek(middle)
                f.write(patch)
            with fs.open("/huge.bin", "ab") as f:
                f.write(tail)
            filespace.sync_all()
            with fs.open("/huge.bin", "rb") as f:
                f.seek(middle - 10)
                around = f.read(len(patch) + 20)
                f.seek(total - 10)
                end = f.read()
            after = expected(middle + len(patch), 10)
            result["patch_ok"] = around == expected(middle - 10, 10) + patch + after
            result["append_ok"] = end == expected(total - 10, 10) + tail
            result["size"] = fs.get_entry("/huge.bin").size
        result["peak_kib"] = peak()
    print(json.dumps(result))
    """
)


def run_phase(url: str, token: str, phase: str, total: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, url, token, phase, str(total)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"{phase}: peak RSS {result['peak_kib'] / 1024:.0f} MiB "
        f"(at start {result['start_kib'] / 1024:.0f} MiB)",
        file=sys.stderr,
    )
    return result


@pytest.mark.slow
def test_2_gib_written_then_read_and_patched_in_bounded_memory(tmp_path: Path) -> None:
    total = 2 * GIB
    with EmbeddedHub(tmp_path / "hub", gc_interval_seconds=3600) as hub:
        hub.init("demo", ["big"])
        token = hub.init("demo", [])
        wrote = run_phase(hub.url, token, "write", total)
        read = run_phase(hub.url, token, "read", total)
    assert wrote["size"] == total
    assert read["read"] == total and read["sha256"] == wrote["sha256"]
    assert read["random_bad"] == []
    assert read["patch_ok"] and read["append_ok"]
    assert read["size"] == total + 5 * 1024 * 1024
    assert wrote["peak_kib"] < LIMIT_KIB, wrote
    assert read["peak_kib"] < LIMIT_KIB, read
