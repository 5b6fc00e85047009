"""Small files committed with their bytes (the hub keeps them with the metadata): counts.

* 1,000 small files written and synced come back byte-exact from a fresh daemon, and
  the write-back path costs at most 2 hub requests per 100 files (the hub's own request
  counters, by route);
* the hub SIGKILLed in the middle of batched commits, then restarted: every file whose
  ``sync_all()`` returned is intact, none torn, each created once; also under commit
  requests at the client's size bound (about 4 MB);
* a hub that keeps nothing inline gets the blocks uploaded, as before.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

import lucidlink.aio
import lucidlink.aio.writeback as writeback_module
from lucidlink.aio import commitparts
from lucidlink.hub.api.app_keys import HUB_KEY
from tests.hub.test_faults_hub_kill import HubProcess
from tests.support.pgfixture import with_block_stores
from tests.support.sdkfixtures import SdkHub

pytestmark = pytest.mark.asyncio

WRITE_BACK_ROUTES = ("/commits", "/commit", "/blocks/urls", "/v1/blocks/", "/v1/filespaces/{fs}")
"""Routes the flusher uses (the commit, uploads and their URLs, the limit asked once)."""


def _creds(token: str) -> lucidlink.aio.ServiceAccountCredentials:
    return lucidlink.aio.ServiceAccountCredentials(token=token)


def _requests(hub: SdkHub) -> Counter[str]:
    assert hub.hub.app is not None
    counts: Counter[str] = Counter()
    for (route, method, _status), n in hub.hub.app[HUB_KEY].metrics.requests.items():
        counts[f"{method} {route}"] += n
    return counts


def _write_back(counts: Counter[str]) -> int:
    return sum(n for key, n in counts.items()
               if key.endswith(WRITE_BACK_ROUTES) or "/v1/blocks/" in key)


@with_block_stores
async def test_a_thousand_small_files_cost_two_requests_per_hundred(sdk_hub: SdkHub) -> None:
    files = {f"/d/f{i:04}.bin": os.urandom(4096 if i % 7 else 1 + i) for i in range(1000)}
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        fsp = await (await daemon.authenticate(_creds(sdk_hub.token))).link_filespace(name="big")
        await fsp.fs.create_dir("/d")
        fsp._link.writeback._delay = 30.0  # everything queued, then batched by sync_all
        before = _requests(sdk_hub)
        for i, (path, data) in enumerate(files.items()):
            if i % 2:
                await fsp.fs.write_file(path, data)
            else:
                async with await fsp.fs.open(path, "wb") as f:
                    await f.write(data)
        await fsp.sync_all()
        spent = _requests(sdk_hub) - before
        await fsp.unlink()
    write_back = _write_back(spent)
    assert write_back <= 2 * len(files) // 100, spent
    # Nothing was uploaded: every block travelled in its commit.
    assert not any("/v1/blocks/" in key or "blocks/urls" in key for key in spent), spent
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        fsp = await (await daemon.authenticate(_creds(sdk_hub.token))).link_filespace(name="big")
        wrong = [p for p, data in files.items() if await fsp.fs.read_file(p) != data]
        await fsp.unlink()
    assert wrong == []


async def test_a_hub_without_inlining_gets_uploads(tmp_path: Path) -> None:
    from lucidlink.hub.embedded import EmbeddedHub

    files = {f"/f{i}": os.urandom(100 + i) for i in range(20)}
    with EmbeddedHub(tmp_path / "hub", gc_interval_seconds=3600, inline_block_max=0) as hub:
        token = hub.init("demo", ["big"])
        async with lucidlink.aio.create_daemon(hub_url=hub.url) as daemon:
            fsp = await (await daemon.authenticate(_creds(token))).link_filespace(name="big")
            for path, data in files.items():
                await fsp.fs.write_file(path, data)
            await fsp.sync_all()
            for path, data in files.items():
                assert await fsp.fs.read_file(path) == data
            await fsp.unlink()
        assert hub.app is not None
        stored = hub.app[HUB_KEY].store

        def count(tx: Any) -> int:
            row = tx.one("SELECT COUNT(*) AS n FROM block_data")
            return int(row["n"])

        assert hub.call(stored.read(count)) == 0
        puts = sum(n for (route, method, status), n in hub.app[HUB_KEY].metrics.requests.items()
                   if method == "PUT" and status == 201)
        assert puts == len(files)


async def _kill_under_commits(tmp_path: Path, metadata_url: str | None, *, rounds: int,
                              files: int, size_of: Callable[[int, int], int],
                              delays: tuple[float, ...]) -> list[int]:
    """Write ``rounds`` rounds of ``files`` small files (some paths rewritten every round),
    and SIGKILL the hub once a round under a commit request ``sync_all`` sends, after the
    next of ``delays`` (s): before, during or after the hub applies it; then restart it.
    Every file of a round whose ``sync_all`` returned must read back as written (none
    lost, none torn) and each path be created once. Returns the inline bytes carried by
    each request the kills fell under."""
    hub = HubProcess(tmp_path / "hub", metadata_url, tmp_path / "hub.log")
    killed_under: list[int] = []
    try:
        token = hub.init()
        hub.start()
        acked: dict[str, str] = {}
        written: dict[str, set[str]] = {}
        kills = 0
        config = {"hub.timeout": 5, "fs.sync.timeout": 120}
        async with lucidlink.aio.create_daemon(hub_url=hub.url, config=config) as daemon:
            fsp = await (await daemon.authenticate(_creds(token))).link_filespace(name="small")
            writeback = fsp._link.writeback
            original = writeback._post

            restarting = asyncio.Lock()  # requests run concurrently: one kill at a time
            # Only a commit sync_all sends is killed under: a round's closes also start
            # commits of their own (64 queued changes do not wait for the delay), and a
            # kill under those could leave the hub down past a plain write's retries
            # (about 1.5 s), which is not what this test is about.
            syncing = False

            async def post_and_kill(batch: Any, carried: dict[str, bytes] | None = None) -> None:
                """Send the commit, SIGKILL the hub while it applies it, restart it."""
                nonlocal kills
                if kills >= rounds or restarting.locked() or not syncing:
                    await original(batch, carried)
                    return
                async with restarting:
                    task = asyncio.ensure_future(original(batch, carried))
                    await asyncio.sleep(delays[kills % len(delays)])
                    kills += 1
                    killed_under.append(sum(map(len, (carried or {}).values())))
                    await anyio.to_thread.run_sync(hub.kill)
                    await anyio.to_thread.run_sync(hub.start)
                await task  # the transport retries it on the restarted hub (the same change ids)

            writeback._post = post_and_kill  # type: ignore[method-assign]
            writeback._delay = 30.0  # the rest of a round waits for sync_all: a batch
            for r in range(rounds):
                batch: dict[str, bytes] = {}
                for i in range(files):
                    path = f"/r{r}-{i:04}.bin" if i % 3 else f"/shared-{i:04}.bin"  # some rewritten
                    data = os.urandom(size_of(r, i))
                    await fsp.fs.write_file(path, data)
                    batch[path] = data
                    written.setdefault(path, set()).add(hashlib.sha256(data).hexdigest())
                syncing = True
                await fsp.sync_all()
                syncing = False
                acked.update({p: hashlib.sha256(d).hexdigest() for p, d in batch.items()})
                # A kill "after the commit" may still be restarting the hub once sync_all
                # returns: the next round's writes (plain calls, hub.timeout 5 s) wait for it.
                async with restarting:
                    pass
            await fsp.unlink()
        assert kills == rounds
        lost, torn = [], []
        async with lucidlink.aio.create_daemon(hub_url=hub.url) as daemon:
            fsp = await (await daemon.authenticate(_creds(token))).link_filespace(name="small")
            for path, digest in acked.items():
                try:
                    got = hashlib.sha256(await fsp.fs.read_file(path)).hexdigest()
                except FileNotFoundError:
                    lost.append(path)
                    continue
                if got not in written[path]:
                    torn.append(path)
                elif got != digest:
                    lost.append(path)  # an older version: the acknowledged one was lost
            await fsp.unlink()
        assert (len(acked), lost, torn) == (len(written), [], [])
        fs_id = next(f["id"] for f in hub.get("/v1/filespaces", token)["filespaces"] if f["name"] == "small")
        changes = hub.get(f"/v1/filespaces/{fs_id}/changes", token, since="0", limit="10000")["changes"]
        creates = Counter(c["path"] for c in changes if c["op"] == "create")
        assert set(creates.values()) == {1} and len(creates) == len(written)
    finally:
        hub.close()
    return killed_under


async def test_hub_killed_in_the_middle_of_batched_commits(tmp_path: Path, metadata_url: str | None) -> None:
    await _kill_under_commits(tmp_path, metadata_url, rounds=6, files=150,
                              size_of=lambda r, i: 1 + (r * 977 + i * 131) % 8000,
                              delays=(0.0, 0.002, 0.004, 0.006, 0.008))


async def test_hub_killed_under_full_size_commit_requests(
        tmp_path: Path, metadata_url: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same, with requests at the client's size bound (about 4 MB of JSON): the
    round's changes all wait for ``sync_all``, which cuts them into requests of some 770
    inline files, and each kill falls before, while or after the hub takes one in."""
    monkeypatch.setattr(writeback_module, "_EARLY", 1 << 30)  # no early commits: full parts
    killed_under = await _kill_under_commits(
        tmp_path, metadata_url, rounds=4, files=1200,
        size_of=lambda r, i: 3000 + (r * 389 + i * 37) % 1000,
        delays=(0.0, 0.05, 0.15, 0.4))
    # Each kill fell under a request carrying megabytes of inline bytes (its JSON is 4/3
    # of that), near the bound of commitparts.REQUEST_BYTES.
    assert min(killed_under) > 0.6 * commitparts.REQUEST_BYTES * 3 / 4, killed_under


async def test_small_files_beyond_the_memory_bound_go_through_staging_and_all_land(
        sdk_hub: SdkHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """Closes while 64 KiB (the test's bound; 64 MiB by default) of in-memory changes
    wait move their bytes to staging: every file lands (a closing handle once refused
    its own bytes with ``I/O operation on closed file``, and they were lost)."""
    from lucidlink.aio import writeback

    monkeypatch.setattr(writeback, "_INLINE_MAX", 64 * 1024)
    datas = {f"/spill/f{i:03d}": os.urandom(4096 - i) for i in range(120)}
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        ws = await daemon.authenticate(_creds(sdk_hub.token))
        async with ws.link_filespace(name="small") as fsp:
            await fsp.fs.create_dir("/spill")
            for i, (path, data) in enumerate(datas.items()):
                if i % 2:
                    await fsp.fs.write_file(path, data)
                else:
                    async with fsp.fs.open(path, "wb") as f:
                        await f.write(data[:100])
                        await f.write(data[100:])
            await fsp.sync_all()
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        ws = await daemon.authenticate(_creds(sdk_hub.token))
        async with ws.link_filespace(name="small") as fsp:
            got = {p: await fsp.fs.read_file(p) for p in datas}
    wrong = [p for p in datas if got[p] != datas[p]]
    assert not wrong, f"{len(wrong)} of {len(datas)} files wrong: {wrong[:3]}"
