"""The client's write-back under faults: nothing closed is lost, refusals are reported once.

Hubs are real (embedded, on loopback); "the hub is down" means it was stopped, and
"it came back" means a new hub process-thread on the same data dir and port.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import lucidlink.aio
from lucidlink.exceptions import (
    DaemonError,
    PathNotFoundError,
    SyncTimeoutError,
    VersionConflictError,
)
from lucidlink.hub.embedded import EmbeddedHub
from tests.support.pgfixture import with_block_stores
from tests.support.sdkfixtures import SMALL_BLOCK, SdkHub

B = SMALL_BLOCK
pytestmark = [pytest.mark.asyncio, with_block_stores]  # the tests on a hub move bytes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RestartableHub:
    """An embedded hub that can be stopped and started again on the same port and data dir."""

    def __init__(self, data_dir: Path, metadata_url: str | None) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.metadata_url = metadata_url
        self.hub: EmbeddedHub | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.hub = EmbeddedHub(self.data_dir, port=self.port, gc_interval_seconds=3600,
                               metadata_url=self.metadata_url).start()

    def stop(self) -> None:
        if self.hub is not None:
            self.hub.stop()
            self.hub = None


@pytest.fixture
def restartable(tmp_path: Path, metadata_url: str | None) -> Iterator[tuple[RestartableHub, str]]:
    hub = RestartableHub(tmp_path / "hub", metadata_url)
    hub.start()
    assert hub.hub is not None
    token = hub.hub.init("demo", ["small"], block_size=SMALL_BLOCK)
    try:
        yield hub, token
    finally:
        hub.stop()


async def _journal(url: str, token: str, fs_id: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
        async with s.get(f"{url}/v1/filespaces/{fs_id}/changes", params={"since": "0", "limit": "10000"}) as r:
            return list((await r.json())["changes"])


async def test_files_closed_while_the_hub_is_down_land_once_it_returns(
    restartable: tuple[RestartableHub, str],
) -> None:
    hub, token = restartable
    config = {"fs.sync.timeout": "1", "hub.retries": "1", "fs.flush.delay_ms": "10"}
    async with lucidlink.aio.create_daemon(hub_url=hub.url, config=config) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=token))
        async with ws.link_filespace(name="small") as filespace:
            fs = filespace.fs
            expected = {f"/down/{i}.bin": os.urandom(B * (i % 3) + 100 + i) for i in range(20)}
            await fs.create_dir("/down")
            await filespace.sync_all()
            handles = {path: await fs.open(path, "wb") for path in expected}
            hub.stop()
            for path, data in expected.items():
                await handles[path].write(data)
                await handles[path].close()
            with pytest.raises(SyncTimeoutError) as info:
                await filespace.sync_all()
            assert isinstance(info.value, TimeoutError)
            assert set(info.value.details["pending"]) == set(expected)
            assert "/down/" in str(info.value) and "sync_all() again" in str(info.value)
            hub.start()
            for _ in range(30):  # the flusher's backoff is capped at a few seconds
                try:
                    await filespace.sync_all()
                    break
                except SyncTimeoutError:
                    continue
            for path, data in expected.items():
                assert await fs.read_file(path) == data
            journal = await _journal(hub.url, token, filespace.id)
            written = [c["path"] for c in journal if c["op"] in ("create", "modify")]
            assert sorted(written) == sorted(expected)  # each landed exactly once


async def test_a_refused_change_is_reported_once_and_the_others_land(sdk_hub: SdkHub) -> None:
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as a, \
            lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as b:
        creds = lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token)
        fa = await (await a.authenticate(creds)).link_filespace(name="small")
        fb = await (await b.authenticate(creds)).link_filespace(name="small")
        await fa.fs.write_file("/gone.bin", b"x" * 100)
        await fa.sync_all()
        await fb.sync_all()
        config_delay = fb._link.writeback._delay
        fb._link.writeback._delay = 30.0  # keep /kept.bin queued while /gone.bin is refused
        await fb.fs.write_file("/kept.bin", b"kept")
        f = await fb.fs.open("/gone.bin", "r+b")  # a partial overwrite ...
        await f.write(b"y")
        await fa.fs.delete("/gone.bin")  # ... of a file deleted under it
        with pytest.raises(PathNotFoundError) as info:
            await f.close()  # a partial overwrite learns its fate at close
        assert info.value.path == "/gone.bin"
        fb._link.writeback._delay = config_delay
        await fb.sync_all()  # reported once: the next barrier is clean, and the other file landed
        assert await fa.fs.read_file("/kept.bin") == b"kept"
        assert not await fa.fs.file_exists("/gone.bin")
        await fa.unlink()
        await fb.unlink()


async def test_overlapping_partial_overwrites_conflict_and_disjoint_ones_merge(sdk_hub: SdkHub) -> None:
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as a, \
            lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as b:
        creds = lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token)
        fa = await (await a.authenticate(creds)).link_filespace(name="small")
        fb = await (await b.authenticate(creds)).link_filespace(name="small")
        base = os.urandom(3 * B)
        await fa.fs.write_file("/m.bin", base)
        await fa.sync_all()
        await fb.sync_all()
        # Disjoint slots, both built on the same version: both land.
        ha, hb = await fa.fs.open("/m.bin", "r+b"), await fb.fs.open("/m.bin", "r+b")
        await ha.write(b"A" * 10)
        await hb.seek(2 * B)
        await hb.write(b"B" * 10)
        await ha.close()
        await hb.close()
        await fa.sync_all()
        await fb.sync_all()
        merged = b"A" * 10 + base[10:2 * B] + b"B" * 10 + base[2 * B + 10:]
        assert await fa.fs.read_file("/m.bin") == merged
        # The same slot from two handles of one version: the second is refused, not lost silently.
        ha, hb = await fa.fs.open("/m.bin", "r+b"), await fb.fs.open("/m.bin", "r+b")
        await ha.seek(B + 1)
        await ha.write(b"first")
        await hb.seek(B + 100)
        await hb.write(b"second")
        await ha.close()
        with pytest.raises(VersionConflictError) as info:
            await hb.close()
        assert info.value.path == "/m.bin" and "Re-open the file" in str(info.value)
        await fb.sync_all()  # reported once
        expect = merged[:B + 1] + b"first" + merged[B + 6:]
        assert await fb.fs.read_file("/m.bin") == expect
        # Appending to the version it saw while the other wrote slot 0: merged.
        ha, hb = await fa.fs.open("/m.bin", "r+b"), await fb.fs.open("/m.bin", "ab")
        await ha.write(b"Z")
        await hb.write(b"tail")
        await ha.close()
        await fa.sync_all()
        await hb.close()
        await fb.sync_all()
        assert await fb.fs.read_file("/m.bin") == b"Z" + expect[1:] + b"tail"
        await fa.unlink()
        await fb.unlink()


async def test_a_physical_daemon_keeps_its_state_in_dot_lucid_and_removes_only_that(
    sdk_hub: SdkHub, tmp_path: Path,
) -> None:
    root = tmp_path / "work"
    root.mkdir()
    (root / "mine.txt").write_text("the user's own file")
    daemon = lucidlink.aio.create_daemon(sandboxed=False, root_path=str(root), hub_url=sdk_hub.url)
    async with daemon:
        assert daemon.root_path == str(root)
        assert daemon.state_path == str(root / ".lucid")
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token))
        async with ws.link_filespace(name="small") as filespace:
            await filespace.fs.write_file("/a.bin", b"a" * (B + 1))
            assert await filespace.fs.read_file("/a.bin") == b"a" * (B + 1)
        assert (root / ".lucid" / "cache").is_dir()
        # A second daemon on the same root is refused while the first runs.
        with pytest.raises(DaemonError, match="already using the root"):
            async with lucidlink.aio.create_daemon(sandboxed=False, root_path=str(root), hub_url=sdk_hub.url):
                pass
    assert (root / "mine.txt").read_text() == "the user's own file"
    assert sorted(p.name for p in root.iterdir()) == ["mine.txt"]
    # Free again once stopped.
    async with lucidlink.aio.create_daemon(sandboxed=False, root_path=str(root), hub_url=sdk_hub.url):
        pass


async def test_two_links_of_one_filespace_never_take_each_others_records(
    sdk_hub: SdkHub, tmp_path: Path,
) -> None:
    config = {"fs.flush.delay_ms": "60000"}
    async with lucidlink.aio.create_daemon(sandboxed=False, persist_files=True, root_path=str(tmp_path),
                                           hub_url=sdk_hub.url, config=config) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token))
        first = await ws.link_filespace(name="small")
        await first.fs.write_file("/once.bin", b"once")
        assert first._link.writeback.pending_paths == {"/once.bin"}
        second = await ws.link_filespace(name="small")
        assert second._link.writeback.pending_paths == set()
        await second.sync_all()
        await first.sync_all()
        journal = await _journal(sdk_hub.url, sdk_hub.token, first.id)
        assert [c["path"] for c in journal if c["op"] in ("create", "modify")] == ["/once.bin"]
        await first.unlink()
        await second.unlink()


async def test_a_damaged_cache_entry_is_dropped_and_fetched_again(sdk_hub: SdkHub, tmp_path: Path) -> None:
    data = os.urandom(2 * B)
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token))
        async with ws.link_filespace(name="small") as filespace:
            await filespace.fs.write_file("/c.bin", data)
            await filespace.sync_all()
            assert await filespace.fs.read_file("/c.bin") == data
            await filespace._link.services.cache.drain()  # cache writes run in the background
            cached = sorted((Path(daemon.state_path or "") / "cache").rglob("*"))
            blocks = [p for p in cached if p.is_file()]
            assert len(blocks) == 2
            # Same length, one flipped byte (undetectable by size); and a truncated one.
            raw = bytearray(blocks[0].read_bytes())
            raw[5] ^= 0xFF
            blocks[0].write_bytes(bytes(raw))
            blocks[1].write_bytes(blocks[1].read_bytes()[:-1])
            for _ in range(2):
                assert await filespace.fs.read_file("/c.bin") == data
            await filespace._link.services.cache.drain()  # the fetched blocks' cache writes
            assert sorted(p.read_bytes() for p in blocks) == sorted([data[:B], data[B:]])


async def test_staging_bytes_are_fsynced_before_the_record_that_names_them(
    sdk_hub: SdkHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    config = {"fs.flush.delay_ms": "60000"}
    async with lucidlink.aio.create_daemon(sandboxed=False, persist_files=True, root_path=str(tmp_path),
                                           hub_url=sdk_hub.url, config=config) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token))
        async with ws.link_filespace(name="small") as filespace:
            monkeypatch.setattr(os, "fsync", recording_fsync)
            async with filespace.fs.open("/s.bin", "wb") as f:
                await f.write(os.urandom(B + 5))
            monkeypatch.setattr(os, "fsync", real_fsync)
            state = Path(daemon.state_path or "")
            staging = [i for i, p in enumerate(synced) if p.startswith(str(state / "staging") + "/")]
            record = [i for i, p in enumerate(synced) if p.startswith(str(state / "pending") + "/")
                      and p.endswith(".tmp")]
            dirs = [i for i, p in enumerate(synced) if p in (str(state / "staging"), str(state / "pending"))]
            assert staging and record and len(dirs) == 2, synced
            assert staging[-1] < synced.index(str(state / "staging")) < record[0]
            await filespace.sync_all()


async def test_commit_ids_sort_by_creation_and_never_repeat() -> None:
    """Ids grow at the end of the hub's index of applied changes (see ``new_commit_id``)."""
    from lucidlink.aio.pending import new_commit_id

    ids = [new_commit_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    stamps = [i[:16] for i in ids]
    assert stamps == sorted(stamps)
