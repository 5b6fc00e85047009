"""The hub's event loop: asyncio's by default, uvloop's on request; and the async SDK
working on a user's uvloop loop (its block GETs use their own protocol)."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

import lucidlink.aio
from lucidlink.exceptions import ConfigurationError
from lucidlink.hub import eventloop
from lucidlink.hub.cli import build_parser, serve_settings
from lucidlink.hub.config import EVENT_LOOP_ENV, HubSettings
from lucidlink.hub.embedded import EmbeddedHub

needs_uvloop = pytest.mark.skipif(not eventloop.uvloop_available(), reason="uvloop not installed")


def _healthz(url: str) -> dict[str, str]:
    with urllib.request.urlopen(f"{url}/healthz", timeout=10) as answer:
        return dict(json.load(answer))


@pytest.mark.parametrize("choice", ["asyncio", pytest.param("uvloop", marks=needs_uvloop)])
def test_the_hub_serves_on_the_loop_it_was_given(tmp_path: Path, choice: str) -> None:
    with EmbeddedHub(tmp_path / "hub", event_loop=choice) as hub:
        token = hub.init("demo", ["data"])
        assert _healthz(hub.url)["event_loop"] == choice
        # A whole write and read through the SDK, on that loop.
        with lucidlink.create_daemon(hub_url=hub.url) as daemon:
            ws = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=token))
            with ws.link_filespace(name="data") as fsp:
                payload = os.urandom(3 * 1024 * 1024 + 17)
                fsp.fs.write_file("/f", payload)
                fsp.sync_all()
                assert fsp.fs.read_file("/f") == payload


def test_asyncio_is_the_default_and_uvloop_is_refused_where_it_is_not_installed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert HubSettings(data_dir=Path("/srv/hub")).event_loop == "asyncio"
    monkeypatch.setattr(eventloop, "uvloop_available", lambda: False)
    loop = eventloop.new_event_loop()
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()
    with pytest.raises(ConfigurationError, match="uvloop is not installed"):
        HubSettings(data_dir=Path("/srv/hub"), event_loop="uvloop")


def test_an_unknown_loop_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="asyncio, uvloop") as caught:
        HubSettings(data_dir=Path("/srv/hub"), event_loop="trio")
    assert isinstance(caught.value, ValueError)


def test_serve_takes_the_loop_from_flag_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = build_parser()

    def choice(*flags: str) -> str:
        args = parser.parse_args(["hub", "serve", "--data-dir", "/srv/hub", *flags])
        return serve_settings(args).event_loop

    monkeypatch.delenv(EVENT_LOOP_ENV, raising=False)
    assert choice() == "asyncio"
    assert choice("--event-loop", "uvloop") == "uvloop"
    monkeypatch.setenv(EVENT_LOOP_ENV, "uvloop")
    assert choice() == "uvloop"
    assert choice("--event-loop", "asyncio") == "asyncio"
    monkeypatch.setenv(EVENT_LOOP_ENV, "fast")
    with pytest.raises(ConfigurationError):
        choice()
    with pytest.raises(SystemExit):
        choice("--event-loop", "fast")


@needs_uvloop
def test_the_async_sdk_runs_on_a_users_uvloop(tmp_path: Path) -> None:
    """Reads (block GETs on the SDK's own buffered protocol), writes, stats and listings
    from a program whose loop is uvloop's."""
    import uvloop

    with EmbeddedHub(tmp_path / "hub", event_loop="asyncio") as hub:
        token = hub.init("demo", ["data"])
        small, large = os.urandom(4096), os.urandom(9 * 1024 * 1024 + 5)

        async def main() -> tuple[bytes, bytes, bytes, int, list[str]]:
            assert eventloop.running_loop_name() == "uvloop"
            async with lucidlink.aio.create_daemon(hub_url=hub.url) as daemon:
                ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=token))
                async with ws.link_filespace(name="data") as fsp:
                    await fsp.fs.write_file("/small", small)
                    await fsp.fs.write_file("/large", large)
                    await fsp.sync_all()
            # A fresh client: everything below comes from the hub.
            async with lucidlink.aio.create_daemon(hub_url=hub.url) as daemon:
                ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=token))
                async with ws.link_filespace(name="data") as fsp:
                    async with await fsp.fs.open("/large", "rb") as f:
                        await f.seek(5 * 1024 * 1024)
                        middle = await f.read(4096)
                    return (await fsp.fs.read_file("/small"), await fsp.fs.read_file("/large"),
                            middle, (await fsp.fs.get_entry("/large")).size,
                            sorted(e.name for e in await fsp.fs.read_dir("/")))

        got_small, got_large, middle, size, names = uvloop.run(main())
        assert got_small == small and got_large == large
        assert middle == large[5 * 1024 * 1024:5 * 1024 * 1024 + 4096]
        assert size == len(large) and names == ["large", "small"]
