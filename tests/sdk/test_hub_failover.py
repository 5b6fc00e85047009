"""Clients given several hubs fail over between them (issue 12, "scale-out").

``hub_url`` (and ``LUCIDLINK_HUB_URL``) may list hubs that share one metadata store,
separated by commas. A hub that refuses, resets, times out or answers 502/503/504 is
left for the next one, and the list comes back round; nothing closed is lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

import lucidlink
import lucidlink.aio as aio
from lucidlink.aio.transport import HubRing, Transport
from lucidlink.exceptions import ConfigurationError, HubUnavailableError
from lucidlink.hub.embedded import EmbeddedHub
from tests.support.faultproxy import FaultProxy
from tests.support.pgfixture import fresh_schema
from tests.support.sdkfixtures import SMALL_BLOCK, SdkHub

SWITCH = "lucidlink.hub_switch"


def free_port() -> int:
    """A loopback port nothing listens on, below the ephemeral range."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found in 20000-32000")


def switches(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The hub switches logged so far."""
    return [r for r in caplog.records if r.getMessage() == SWITCH]


@pytest.fixture
def shared_hubs(
        tmp_path: Path, postgres_dsn: str) -> Iterator[tuple[EmbeddedHub, EmbeddedHub, str]]:
    """Two hubs on one fresh PostgreSQL schema and one data dir; the token of ``small``."""
    with fresh_schema(postgres_dsn) as url, \
            EmbeddedHub(tmp_path / "hub", metadata_url=url, gc_interval_seconds=3600) as a, \
            EmbeddedHub(tmp_path / "hub", metadata_url=url, gc_interval_seconds=3600) as b:
        yield a, b, a.init("demo", ["small"], block_size=SMALL_BLOCK)


@pytest_asyncio.fixture
async def bad_gateway() -> AsyncIterator[str]:
    """A proxy whose hub is gone: every request is answered 502."""

    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=502, text="bad gateway")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("value", [
    "http://a:8470,,http://b:8470",
    "http://a:8470,ftp://b:8470",
    "http://a:8470, b:8470",
    "http://a:8470,http://b:99999",
    "http://a:8470,http://:8470",
    "http://a:8470,http://b:8470?x=1",
])
def test_a_bad_entry_is_refused_at_create_daemon(
        value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for make in (lucidlink.create_daemon, aio.create_daemon):
        with pytest.raises(ConfigurationError, match=r"entry 2 of hub_url") as info:
            make(hub_url=value)
        assert "http://" in str(info.value)  # says what a good entry looks like
    monkeypatch.setenv("LUCIDLINK_HUB_URL", value)
    with pytest.raises(ConfigurationError, match=r"entry 2 of hub_url"):
        aio.create_daemon()
    with pytest.raises(ConfigurationError, match=r"entry 2 of hub_url"):
        aio.AsyncClient()


def test_the_list_is_kept_as_given_and_parsed_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    given = "http://a:8470/, https://b.example/hub ,http://a:8470"
    daemon = aio.create_daemon(hub_url=given)
    assert daemon.hub_url == given
    assert daemon._config.hub_urls == ("http://a:8470", "https://b.example/hub")
    monkeypatch.setenv("LUCIDLINK_HUB_URL", "http://c:1,http://d:2")
    assert lucidlink.create_daemon().hub_url == "http://c:1,http://d:2"
    assert aio.create_daemon(hub_url="http://one:8470/").hub_url == "http://one:8470"


def test_the_ring_moves_on_once_per_failure_and_comes_back_round(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="lucidlink")
    ring = HubRing(["http://a", "http://b", "http://c"])
    assert ring.current == "http://a"
    assert ring.failed("http://a", "refused") == "http://b"
    # Other requests that were in flight on hub a fail too: no second switch.
    assert ring.failed("http://a", "refused") == "http://b"
    assert ring.failed("http://b", "reset") == "http://c"
    assert ring.failed("http://c", "timeout") == "http://a"
    assert len(switches(caplog)) == 3
    single = HubRing(["http://only"])
    assert single.failed("http://only", "refused") == "http://only"
    assert len(switches(caplog)) == 3


@pytest.mark.asyncio
async def test_a_dead_hub_first_in_the_list(mhub: SdkHub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="lucidlink")
    hubs = f"http://127.0.0.1:{free_port()},{mhub.url}"
    async with aio.create_daemon(hub_url=hubs) as daemon:
        assert daemon.hub_url == hubs
        workspace = await daemon.authenticate(aio.ServiceAccountCredentials(token=mhub.token))
        fs = await workspace.link_filespace(name="small")
        for i in range(5):
            await fs.fs.write_file(f"/dead-first-{i}.bin", b"x" * (SMALL_BLOCK + i))
        await fs.sync_all()
        assert await fs.fs.read_file("/dead-first-4.bin") == b"x" * (SMALL_BLOCK + 4)
        await fs.unlink()
    # One switch, logged once: the daemon stays on the hub that answers.
    assert len(switches(caplog)) == 1


@pytest.mark.asyncio
async def test_a_proxy_answering_502_is_passed_over(mhub: SdkHub, bad_gateway: str) -> None:
    async with aio.create_daemon(hub_url=f"{bad_gateway},{mhub.url}") as daemon:
        workspace = await daemon.authenticate(aio.ServiceAccountCredentials(token=mhub.token))
        fs = await workspace.link_filespace(name="small")
        await fs.fs.write_file("/behind-a-bad-proxy.txt", b"through the second hub")
        await fs.sync_all()
        assert await fs.fs.read_file("/behind-a-bad-proxy.txt") == b"through the second hub"
        await fs.unlink()


@pytest.mark.asyncio
async def test_no_hub_answering_says_which_were_tried() -> None:
    hubs = f"http://127.0.0.1:{free_port()},http://127.0.0.1:{free_port()}"
    async with aio.create_daemon(hub_url=hubs, config={"hub.retries": "1"}) as daemon:
        with pytest.raises(HubUnavailableError, match="none of the hubs") as info:
            await daemon.authenticate(aio.ServiceAccountCredentials(token="sa_live:k:s"))
        assert all(url in str(info.value) for url in hubs.split(","))


@pytest.mark.asyncio
async def test_a_hub_killed_mid_sync(shared_hubs: tuple[EmbeddedHub, EmbeddedHub, str],
                                     caplog: pytest.LogCaptureFixture) -> None:
    """Hub A dies (its address stops answering) while closed files are being committed;
    the write-back queue carries on through hub B and nothing closed is lost."""
    caplog.set_level(logging.WARNING, logger="lucidlink")
    hub_a, hub_b, token = shared_hubs
    creds = aio.ServiceAccountCredentials(token=token)
    host, port = hub_a.url.removeprefix("http://").split(":")
    rng = random.Random(12)
    files = {f"/killed-{i}.bin": rng.randbytes(rng.randrange(1, 4 * SMALL_BLOCK))
             for i in range(24)}
    with FaultProxy((host, int(port))) as proxy:
        async with aio.create_daemon(hub_url=f"{proxy.url},{hub_b.url}",
                                     config={"fs.flush.delay_ms": "1"}) as daemon:
            fs = await (await daemon.authenticate(creds)).link_filespace(name="small")
            for path, data in files.items():
                await fs.fs.write_file(path, data)
            # Kill hub A's address while the flusher commits (new connections refused,
            # open ones reset), and keep writing; every closed file gets committed.
            syncing = asyncio.ensure_future(fs.sync_all())
            await asyncio.sleep(0.02)
            await asyncio.to_thread(proxy.stop)
            for path in list(files)[:4]:
                files[path + ".after"] = files[path][::-1]
                await fs.fs.write_file(path + ".after", files[path + ".after"])
            await syncing
            await fs.sync_all()
            await fs.unlink()
    assert len(switches(caplog)) == 1
    # Read back through hub B only, by a daemon that never saw hub A.
    async with aio.create_daemon(hub_url=hub_b.url) as reader:
        fs = await (await reader.authenticate(creds)).link_filespace(name="small")
        for path, data in files.items():
            got = await fs.fs.read_file(path)
            assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest(), path
        await fs.unlink()


@pytest.mark.asyncio
async def test_a_proxy_page_is_a_transient_failure(bad_gateway: str) -> None:
    """A 502 page (not the hub's JSON) is HubUnavailableError, which the write-back
    queue keeps retrying, for any request: never a refusal that would drop a change."""
    transport = Transport(bad_gateway, "sa_live:k:s", retries=1)
    try:
        for method, idempotent in (("POST", False), ("POST", True), ("GET", None)):
            with pytest.raises(HubUnavailableError, match="HTTP 502 from a proxy"):
                await transport.call(method, "/v1/whoami", json={}, idempotent=idempotent)
    finally:
        await transport.close()


@pytest.mark.asyncio
async def test_the_client_api_takes_the_list_from_the_environment(
        mhub: SdkHub, monkeypatch: pytest.MonkeyPatch) -> None:
    hubs = f"http://127.0.0.1:{free_port()},{mhub.url}"
    monkeypatch.setenv("LUCIDLINK_HUB_URL", hubs)
    async with aio.AsyncClient() as client:
        assert client.hub_url == hubs
        await client.login(aio.ServiceAccountCredentials(token=mhub.token))
        [info] = await client.list_workspaces()
        workspace = await client.get_workspace(info.id)
        fs = await workspace.link_filespace(name="small")
        await fs.fs.write_file("/via-client.txt", b"client")
        await fs.sync_all()
        assert await fs.fs.read_file("/via-client.txt") == b"client"
        await fs.unlink()
