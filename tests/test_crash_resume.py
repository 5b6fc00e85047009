"""A daemon killed after closing files, before committing them, loses nothing (persist_files)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import lucidlink

WRITER = textwrap.dedent(
    """
    import json, sys
    import lucidlink

    url, token, root = sys.argv[1:4]
    daemon = lucidlink.create_daemon(hub_url=url, sandboxed=False, persist_files=True, root_path=root,
                                     config={"fs.flush.delay_ms": "600000"})  # the flusher never runs
    daemon.start()
    fs = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=token)).link_filespace(name="small").fs
    fs.create_dir("/crash")
    sizes = {}
    for i, size in enumerate([0, 1, 65536, 200_000, 3 * 65536 + 17]):
        data = bytes((i + j) % 251 for j in range(size))
        with fs.open(f"/crash/f{i}.bin", "wb") as f:
            f.write(data)
        sizes[f"/crash/f{i}.bin"] = size
    with fs.open("/crash/notes.txt", "w") as f:
        f.write("closed, not committed\\n")
    print(json.dumps(sizes), flush=True)
    sys.stdin.read()  # wait to be killed
    """
)


def _expected(i: int, size: int) -> bytes:
    return bytes((i + j) % 251 for j in range(size))


def test_sigkill_after_close_loses_nothing_once_restarted(sdk_hub: Any, tmp_path: Path) -> None:
    root = tmp_path / "lucid-root"
    with subprocess.Popen([sys.executable, "-c", WRITER, sdk_hub.url, sdk_hub.token, str(root)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            sizes = json.loads(proc.stdout.readline())
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert len(list((root / "pending").glob("*.json"))) == 6

    with lucidlink.create_daemon(hub_url=sdk_hub.url) as other:
        fs = other.authenticate(lucidlink.ServiceAccountCredentials(token=sdk_hub.token)).link_filespace(
            name="small", sync_mode=lucidlink.SyncMode.SYNC_NONE).fs
        assert fs.list_dir("/crash") == []  # nothing reached the hub before the kill

    with lucidlink.create_daemon(hub_url=sdk_hub.url, sandboxed=False, persist_files=True,
                                 root_path=str(root)) as daemon:
        filespace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=sdk_hub.token)).link_filespace(
            name="small")
        filespace.sync_all()
        for i, (path, size) in enumerate(sizes.items()):
            assert filespace.fs.read_file(path) == _expected(i, size), path
        assert filespace.fs.read_file("/crash/notes.txt") == b"closed, not committed\n"
        filespace.unlink()
    assert list((root / "pending").glob("*.json")) == []
    assert list((root / "staging").iterdir()) == []
