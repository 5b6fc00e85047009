"""Stat-ahead (``AsyncFilesystem.get_entry``): the second stat that misses the cache in a
directory lists it, and the directory's next stats are answered from that listing.

Counted, never timed: the hub calls of a stat loop, stale answers after another client's
changes and ``sync_all`` (0), errors unchanged, a directory too big to list stat-ed file
by file, and the setting that turns it off.
"""

from __future__ import annotations

import asyncio
import os

import pytest

import lucidlink.aio
from lucidlink.exceptions import NotADirectoryFilespaceError, PathNotFoundError
from tests.sdk.test_metacache import count_calls, linked
from tests.sdk.test_sdk_processes import Worker
from tests.support.sdkfixtures import SdkHub

pytestmark = pytest.mark.asyncio


async def make_files(sdk_hub: SdkHub, directory: str, count: int) -> dict[str, int]:
    """``count`` files of distinct sizes in ``directory``, written by another daemon."""
    sizes = {f"{directory}/f{i}": 1 + i for i in range(count)}
    async with linked(sdk_hub.url, sdk_hub.token) as a:
        await a.fs.create_dir(directory)
        for path, size in sizes.items():
            await a.fs.write_file(path, os.urandom(size))
        await a.sync_all()
    return sizes


async def test_a_stat_loop_over_a_directory_costs_two_stats_and_one_listing(
        sdk_hub: SdkHub) -> None:
    sizes = await make_files(sdk_hub, "/loop", 200)
    async with linked(sdk_hub.url, sdk_hub.token) as b:
        calls = count_calls(b)
        got = {p: (await b.fs.get_entry(p)).size for p in sizes}  # the benchmark's order
        assert got == sizes
        assert calls["entry"] == 1 and calls["list"] == 1, calls
        # Each answer is the hub's own, mtime and id included.
        for path in list(sizes)[::37]:
            theirs = await b._call("GET", "/entry", params={"path": path})
            ours = await b.fs.get_entry(path)
            assert (ours.size, ours.mtime, ours.ctime, ours.file_id) == (
                theirs["size"], theirs["mtime"], theirs["ctime"], str(theirs["id"]))


async def test_concurrent_stats_in_one_directory_share_one_listing(sdk_hub: SdkHub) -> None:
    sizes = await make_files(sdk_hub, "/together", 64)
    async with linked(sdk_hub.url, sdk_hub.token) as b:
        calls = count_calls(b)
        first, *rest = sizes
        await b.fs.get_entry(first)
        got = await asyncio.gather(*(b.fs.get_entry(p) for p in rest))
        assert [e.size for e in got] == [sizes[p] for p in rest]
        assert calls["list"] == 1, calls


async def test_after_sync_all_statahead_never_answers_what_another_changed(
        sdk_hub: SdkHub, worker: Worker) -> None:
    """A (another process) overwrites, deletes, creates and moves files of a directory B
    has stat-ed ahead; after A's and B's ``sync_all`` every stat of B is A's state."""
    truth: dict[str, int] = {}
    worker("create_dir", "/s")
    for i in range(20):
        truth[f"/s/f{i}"] = 10 + i
        worker.write(f"/s/f{i}", os.urandom(10 + i))
    worker("sync")
    stale = checks = 0
    gone: set[str] = set()
    async with linked(sdk_hub.url, sdk_hub.token) as b:
        await b.sync_all()
        for rnd in range(10):
            for path in truth:  # B stats everything (stat-ahead lists /s)
                await b.fs.get_entry(path)
            victim = sorted(truth)[rnd % len(truth)]
            kind = rnd % 4
            if kind == 0:  # overwrite with another size
                truth[victim] = 1000 + rnd
                worker.write(victim, os.urandom(truth[victim]))
            elif kind == 1:  # delete
                worker("delete", victim)
                del truth[victim]
                gone.add(victim)
            elif kind == 2:  # create
                new = f"/s/n{rnd}"
                truth[new] = 2000 + rnd
                worker.write(new, os.urandom(truth[new]))
                gone.discard(new)
            else:  # move within the directory
                new = f"/s/m{rnd}"
                worker("move", victim, new)
                truth[new] = truth.pop(victim)
                gone.add(victim)
            worker("sync")
            await b.sync_all()
            for path, size in truth.items():
                checks += 1
                stale += (await b.fs.get_entry(path)).size != size
            for path in gone:
                checks += 1
                with pytest.raises(PathNotFoundError):
                    await b.fs.get_entry(path)
        assert b._link.metacache.stats["hit"] > 0, "the cache never served: the test proves nothing"
    assert stale == 0, f"{stale} stale answers in {checks} checks"


async def test_errors_are_those_of_a_stat(sdk_hub: SdkHub) -> None:
    async with linked(sdk_hub.url, sdk_hub.token) as b:
        await b.fs.write_file("/plain", b"x")
        await b.sync_all()
        for _ in range(3):  # misses in one directory: stat-ahead tries, the stat reports
            with pytest.raises(PathNotFoundError) as missing:
                await b.fs.get_entry("/nowhere/f")
            assert missing.value.path == "/nowhere/f"
        for _ in range(3):
            with pytest.raises(NotADirectoryFilespaceError):
                await b.fs.get_entry("/plain/f")


async def test_a_directory_too_big_to_list_is_stat_ed_file_by_file(sdk_hub: SdkHub) -> None:
    sizes = await make_files(sdk_hub, "/big", 300)  # more than one stat-ahead page (256)
    async with linked(sdk_hub.url, sdk_hub.token) as b:
        calls = count_calls(b)
        assert {p: (await b.fs.get_entry(p)).size for p in sizes} == sizes
        assert calls["list"] == 1 and calls["entry"] == 300, calls


async def test_statahead_can_be_turned_off(sdk_hub: SdkHub) -> None:
    sizes = await make_files(sdk_hub, "/off", 40)
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url,
                                           config={"fs.statahead": "false"}) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(
            token=sdk_hub.token))
        async with ws.link_filespace(name="small") as b:
            calls = count_calls(b)
            assert {p: (await b.fs.get_entry(p)).size for p in sizes} == sizes
            assert calls["list"] == 0 and calls["entry"] == 40, calls


async def test_a_listing_taken_while_an_entry_is_pending_is_not_kept(sdk_hub: SdkHub) -> None:
    """Stat-ahead lists a directory while a file of it is still queued: the listing lacks
    it, so it must not answer the next ``read_dir`` (found by the stateful test)."""
    await make_files(sdk_hub, "/pend", 3)
    async with linked(sdk_hub.url, sdk_hub.token) as b:
        await b.fs.write_file("/pend/new", b"queued")  # not committed yet
        await b.fs.create_dir("/pend/sub")  # the cache forgets /pend's names
        for name in ("f0", "f1", "f2"):  # the second miss lists /pend
            await b.fs.get_entry(f"/pend/{name}")
        assert sorted(await b.fs.list_dir("/pend")) == ["f0", "f1", "f2", "new", "sub"]
