"""Streaming a file many times larger than the memory budget keeps the process small.

Slow (2 GiB through a hub): CI skips it; run with ``pytest -m slow tests/test_memory_bound.py``.
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

CHILD = textwrap.dedent(
    """
    import hashlib, json, resource, sys
    import lucidlink

    url, token, gib = sys.argv[1], sys.argv[2], int(sys.argv[3])
    chunk = bytes(range(256)) * (32 * 1024)  # 8 MiB
    total = gib * 1024 ** 3
    with lucidlink.create_daemon(hub_url=url, config={"fs.cache.size": "256"}) as daemon:
        filespace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=token)).link_filespace(name="big")
        fs = filespace.fs
        written = hashlib.sha256()
        with fs.open("/huge.bin", "wb") as f:
            for i in range(total // len(chunk)):
                piece = i.to_bytes(8, "little") + chunk[8:]
                f.write(piece)
                written.update(piece)
        filespace.sync_all()
        after_write = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        read = hashlib.sha256()
        n = 0
        with fs.open("/huge.bin", "rb") as f:
            while data := f.read(len(chunk)):
                read.update(data)
                n += len(data)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"bytes": n, "same": read.hexdigest() == written.hexdigest(),
                      "peak_kib": peak, "after_write_kib": after_write}))
    """
)


@pytest.mark.slow
def test_write_and_read_back_2_gib_under_300_mib_rss(tmp_path: Path) -> None:
    # The hub runs in this process, the daemon in a child: the child's peak RSS is the SDK's.
    with EmbeddedHub(tmp_path / "hub", gc_interval_seconds=3600) as hub:
        hub.init("demo", ["big"])
        token = hub.init("demo", [])
        out = subprocess.run([sys.executable, "-c", CHILD, hub.url, token, "2"], capture_output=True,
                             text=True, timeout=1800, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"peak RSS {result['peak_kib'] / 1024:.0f} MiB (after write {result['after_write_kib'] / 1024:.0f} MiB)")
    assert result["bytes"] == 2 * 1024**3 and result["same"]
    assert result["peak_kib"] < 300 * 1024, result
