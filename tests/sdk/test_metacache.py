"""The client's metadata cache: kept true by the change journal, never stale after ``sync_all``.

Client B caches (reads, listings, prefetched small files); client A changes things (in
its own process where the timing between two daemons matters). Counted, never timed:
stale reads after ``sync_all`` (0), hub calls of a read loop and of creates, files lost
when a create is refused at commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

import lucidlink.aio
from lucidlink.aio import metacache
from lucidlink.aio.metacache import FileAnswer, MetaCache, touches
from lucidlink.exceptions import PathNotFoundError
from tests.sdk.test_sdk_processes import Worker
from tests.support.faultproxy import FaultProxy, blackhole
from tests.support.sdkfixtures import SdkHub

PATIENCE = 60.0
"""How long a test waits for the journal to deliver before it fails (never a timing assert)."""


@contextlib.asynccontextmanager
async def linked(url: str, token: str) -> AsyncIterator[Any]:
    async with lucidlink.aio.create_daemon(hub_url=url) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=token))
        async with ws.link_filespace(name="small") as filespace:
            yield filespace


def count_calls(filespace: Any) -> Counter[str]:
    """Count the hub calls of a linked filespace by their last path segment (``file``, ...)."""
    calls: Counter[str] = Counter()
    transport = filespace._link.transport
    real = transport.call

    async def counting(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        calls[path.rsplit("/", 1)[-1]] += 1
        return await real(method, path, *args, **kwargs)

    transport.call = counting
    return calls


async def until(what: str, check: Any) -> None:
    """Poll ``check()`` (a coroutine function) until true; fail after PATIENCE seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


# -- the rules, without a hub ------------------------------------------------------------------


def test_a_change_touches_its_path_subtree_and_parent() -> None:
    assert touches("/d/f", "/d/f") and touches("/d", "/d/f") and touches("/d/f", "/d")
    assert not touches("/d/f", "/d/g") and not touches("/d/f", "/e") and not touches("/d", "/dx")
    assert touches("/", "/anything") and touches("/a/b/c", "/a")  # /a lists b's mtime
    assert not touches("/a/b/c", "/x") and not touches("/a/b", "/x")


@pytest.mark.asyncio
async def test_an_answer_whose_path_changed_in_flight_is_not_kept() -> None:
    journal: list[dict[str, Any]] = []

    async def fetch(since: int, limit: int, wait: int) -> Any:
        if wait:  # the poller: never answers here
            await asyncio.Event().wait()
        changes = [c for c in journal if c["seq"] > since]
        return {"changes": changes, "seq": journal[-1]["seq"] if journal else 0, "more": False}

    pending: set[str] = set()
    cache = MetaCache(fetch, lambda: pending)
    cache.start(0)
    try:
        entry = {"path": "/d/f", "name": "f", "type": "file"}
        ticket = cache.ticket()
        cache.invalidate("/d/f", subtree=False)  # applied while the request was in flight
        cache.put_entry(ticket, entry)
        assert cache.entry("/d/f") is None
        ticket = cache.ticket()
        cache.invalidate("/d/other", subtree=False)  # another path: no effect on this one
        cache.put_entry(ticket, entry)
        assert cache.entry("/d/f") == entry
        pending.add("/d/g")  # a change of this client is pending: its old answer stays out
        ticket = cache.ticket()
        pending.clear()
        cache.put_entry(ticket, {"path": "/d/g", "name": "g", "type": "file"})
        assert cache.entry("/d/g") is None
        # A listing's names count once the journal was pulled past it: a change it may
        # already hold, replayed onto it, drops it instead of undoing what it says.
        cache.put_listing(cache.ticket(), "/d", [entry])
        assert cache.kind("/d/new") is None
        journal.append({"seq": 1, "op": "delete", "path": "/d/f", "type": "file"})
        await cache.catch_up()
        assert cache.kind("/d/f") is None and cache.listing("/d") is None
        cache.put_listing(cache.ticket(), "/d", [entry])
        await cache.catch_up()
        assert cache.kind("/d/new") == metacache.ABSENT and cache.kind("/d/f") == "file"
        # Then the journal keeps them true; a directory's move drops everything under it.
        journal.append({"seq": 2, "op": "create", "path": "/d/new", "type": "file"})
        await cache.catch_up()
        assert cache.kind("/d/new") == "file" and cache.listing("/d") is None
        journal.append({"seq": 3, "op": "move", "path": "/d", "new_path": "/e", "type": "dir"})
        await cache.catch_up()
        assert cache.entry("/d/f") is None and cache.kind("/d/f") is None
        # A gap in the journal (changes this cache never saw) forgets everything.
        cache.put_entry(cache.ticket(), entry)
        cache.apply({"changes": [{"seq": 9, "op": "modify", "path": "/x", "type": "file"}],
                     "seq": 9, "more": False})  # 4 to 8 never arrived
        assert cache.entry("/d/f") is None and cache.seq == 9
    finally:
        await cache.stop()


@pytest.mark.asyncio
async def test_own_namespace_calls_are_seen_at_once(
        sdk_hub: SdkHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read-your-writes without the journal's help (its long-polls are held): a mkdir with
    parents drops the listings of every ancestor, a move both sides, a delete its
    parent's listing, a closed file its entry."""
    monkeypatch.setattr(metacache, "POLL_WAIT", 30)  # fresh while the long-polls are held
    host, port = sdk_hub.url.removeprefix("http://").rsplit(":", 1)
    held = blackhole(match=r"/changes\?.*wait=")
    with FaultProxy((host, int(port))) as proxy, proxy.faulted(held):
        async with linked(proxy.url, sdk_hub.token) as b:
            await own_calls(b.fs)


async def own_calls(fs: Any) -> None:
    """The checks of test_own_namespace_calls_are_seen_at_once."""
    assert await fs.list_dir("/") == []
    await fs.create_dir("/p/q/r")
    assert await fs.list_dir("/") == ["p"] and await fs.list_dir("/p") == ["q"]
    await fs.write_file("/p/q/f.bin", b"1")
    assert await fs.list_dir("/p/q") == ["f.bin", "r"]
    assert (await fs.get_entry("/p/q/f.bin")).size == 1
    await fs.move("/p/q", "/p/moved")
    assert await fs.list_dir("/p") == ["moved"]
    assert await fs.read_file("/p/moved/f.bin") == b"1"
    assert not await fs.file_exists("/p/q/f.bin")
    await fs.delete("/p/moved/f.bin")
    assert await fs.list_dir("/p/moved") == ["r"]
    await fs.write_file("/p/moved/f.bin", b"22")
    assert await fs.read_file("/p/moved/f.bin") == b"22"
    assert (await fs.get_entry("/p/moved/f.bin")).size == 2


@pytest.mark.asyncio
async def test_peek_writable_file_answers_as_the_two_peeks_it_stands_for() -> None:
    """One look (what a small write asks twice per file) against ``peek_kind`` of the
    parent and of the path, over listings, names, entries and journal changes."""
    journal: list[dict[str, Any]] = []

    async def fetch(since: int, limit: int, wait: int) -> Any:
        if wait:
            await asyncio.Event().wait()
        changes = [c for c in journal if c["seq"] > since]
        return {"changes": changes, "seq": journal[-1]["seq"] if journal else 0, "more": False}

    cache = MetaCache(fetch, set)
    paths = ["/", "/d", "/d/f", "/d/new", "/d/sub", "/d/sub/x", "/d/zz", "/e", "/e/f", "/x/y/z",
             "/d/f/g"]

    def check() -> None:
        for p in paths:
            parent = p.rsplit("/", 1)[0] or "/"
            expected = p != "/" and cache.peek_kind(parent) == "dir" and cache.peek_kind(
                p) in (metacache.ABSENT, "file")
            assert cache.peek_writable_file(p) == expected, p

    check()  # not started: nothing is proved
    cache.start(0)
    try:
        await cache.catch_up()
        check()
        f = {"path": "/d/f", "name": "f", "type": "file"}
        sub = {"path": "/d/sub", "name": "sub", "type": "dir"}
        cache.put_listing(cache.ticket(), "/d", [f, sub])
        cache.put_entry(cache.ticket(), {"path": "/e/f", "name": "f", "type": "file"})
        cache.put_entry(cache.ticket(), {"path": "/e", "name": "e", "type": "dir"})
        check()
        await cache.catch_up()  # the listing's names count from here
        check()
        assert cache.peek_writable_file("/d/new") and cache.peek_writable_file("/d/f")
        assert not cache.peek_writable_file("/d/sub") and not cache.peek_writable_file("/d/f/g")
        cache.put_names(cache.ticket(), "/d/sub", [("x", "dir")])
        cache.put_names(cache.ticket(), "/d/zz", [])  # names of a directory /d's lack
        check()
        journal.append({"seq": 1, "op": "create", "path": "/d/new", "type": "dir"})
        await cache.catch_up()
        check()
        journal.append({"seq": 2, "op": "delete", "path": "/d", "type": "dir"})
        await cache.catch_up()
        check()
    finally:
        await cache.stop()


@pytest.mark.asyncio
async def test_the_cache_holds_at_most_its_bounds() -> None:
    async def no_fetch(since: int, limit: int, wait: int) -> Any:
        await asyncio.Event().wait()

    cache = MetaCache(no_fetch, set, max_entries=50, max_bytes=10 * 4096)
    cache.start(0)
    try:
        for i in range(100):
            info = {"entry": {"path": f"/f{i}", "name": f"f{i}", "type": "file", "size": 4096},
                    "block_size": 65536, "blocks": []}
            cache.put_answer(cache.ticket(), FileAnswer(info, {f"h{i}": bytes(4096)}))
        held = [i for i in range(100) if cache.answer(f"/f{i}") is not None]
        assert len(held) == 10 and held == list(range(90, 100))  # the most recent ones
    finally:
        await cache.stop()


# -- two clients on one hub --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_after_sync_all_a_client_never_reads_what_another_changed(
        sdk_hub: SdkHub, worker: Worker) -> None:
    """A (another process) overwrites, deletes, creates and moves a parent directory; after
    A's and B's ``sync_all`` B reads exactly A's state, while serving from its cache."""
    truth: dict[str, bytes] = {}
    worker("create_dir", "/d/sub")
    for name in [f"/d/sub/f{i}" for i in range(6)] + ["/d/top.bin"]:
        truth[name] = os.urandom(100 + len(truth))
        worker.write(name, truth[name])
    worker("sync")
    stale = checks = 0
    async with linked(sdk_hub.url, sdk_hub.token) as b:
        fs = b.fs
        await b.sync_all()
        for rnd in range(12):
            # B reads everything (and so caches it), lists, stats.
            for path, data in truth.items():
                assert await fs.read_file(path) == data
            await fs.read_dir("/d")
            # A changes things, in its own process.
            victim = sorted(truth)[rnd % len(truth)]
            kind = rnd % 4
            if kind == 0:  # overwrite
                truth[victim] = os.urandom(200 + rnd)
                worker.write(victim, truth[victim])
            elif kind == 1:  # delete, and create another
                worker("delete", victim)
                del truth[victim]
                new = f"/d/sub/n{rnd}"
                truth[new] = os.urandom(300 + rnd)
                worker.write(new, truth[new])
            elif kind == 2:  # move the parent directory away and back with new contents
                worker("move", "/d/sub", "/d/moved")
                inside = [p for p in truth if p.startswith("/d/sub/")]
                for p in inside:
                    truth[p.replace("/d/sub/", "/d/moved/")] = truth.pop(p)
                moved = sorted(p for p in truth if p.startswith("/d/moved/"))[0]
                truth[moved] = os.urandom(400 + rnd)
                worker.write(moved, truth[moved])
                worker("move", "/d/moved", "/d/sub")
                for p in [p for p in truth if p.startswith("/d/moved/")]:
                    truth[p.replace("/d/moved/", "/d/sub/")] = truth.pop(p)
            else:  # a directory deleted with what is in it, then made again
                worker("delete_dir", "/d/sub", True)
                for p in [p for p in truth if p.startswith("/d/sub/")]:
                    del truth[p]
                worker("create_dir", "/d/sub")
                truth["/d/sub/again"] = os.urandom(500 + rnd)
                worker.write("/d/sub/again", truth["/d/sub/again"])
            worker("sync")
            await b.sync_all()
            # B sees exactly A's state.
            listed = {f"/d/sub/{n}" for n in await fs.list_dir("/d/sub")}
            want = {p for p in truth if p.startswith("/d/sub/")}
            stale += listed != want
            for path, data in truth.items():
                checks += 1
                stale += await fs.read_file(path) != data
                stale += (await fs.get_entry(path)).size != len(data)
            stale += await fs.dir_exists("/d/moved")
            for listed_dir in ("/d", "/d/sub"):  # entries, directories' mtimes included
                hub_view = await b._call("GET", "/list", params={"path": listed_dir})
                theirs = [(e["name"], "file" if e["type"] == "file" else e["type"], e["size"],
                           e["mtime"]) for e in hub_view["entries"]]
                ours = [(e.name, e.type, e.size, e.mtime) for e in await fs.read_dir(listed_dir)]
                stale += ours != theirs
        assert b._link.metacache.stats["hit"] > 0, "the cache never served: the test proves nothing"
    assert stale == 0, f"{stale} stale answers in {checks} checks"


@pytest.mark.asyncio
async def test_without_sync_all_a_change_arrives_through_the_journal(
        sdk_hub: SdkHub, worker: Worker) -> None:
    worker("create_dir", "/j")
    worker.write("/j/f.bin", b"old")
    worker("sync")
    async with linked(sdk_hub.url, sdk_hub.token) as b:
        await b.sync_all()
        assert await b.fs.read_file("/j/f.bin") == b"old"
        assert (await b.fs.get_entry("/j/f.bin")).size == 3
        worker.write("/j/f.bin", b"newer")
        worker("sync")

        async def arrived() -> bool:
            return bool(await b.fs.read_file("/j/f.bin") == b"newer")

        await until("B reads A's new bytes", arrived)
        assert (await b.fs.get_entry("/j/f.bin")).size == 5


@pytest.mark.asyncio
async def test_a_cut_journal_makes_the_cache_unused_not_stale(
        sdk_hub: SdkHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metacache, "POLL_WAIT", 1)  # freshness ends 2 s after the last answer
    host, port = sdk_hub.url.removeprefix("http://").rsplit(":", 1)
    with FaultProxy((host, int(port))) as proxy:
        async with linked(sdk_hub.url, sdk_hub.token) as a, linked(proxy.url, sdk_hub.token) as b:
            await a.fs.create_dir("/c")
            await a.fs.write_file("/c/f.bin", b"one")
            await a.sync_all()
            await b.sync_all()
            assert await b.fs.read_file("/c/f.bin") == b"one"
            cache = b._link.metacache
            assert cache.answer("/c/f.bin") is not None
            with proxy.faulted(blackhole(match=r"/changes")):
                async def unfresh() -> bool:
                    return not cache.fresh()

                await until("B's cache stops serving", unfresh)
                await a.fs.write_file("/c/f.bin", b"two")
                await a.sync_all()
                # The journal cannot reach B, but B asks the hub: never the old bytes.
                calls = count_calls(b)
                assert await b.fs.read_file("/c/f.bin") == b"two"
                assert (await b.fs.get_entry("/c/f.bin")).size == 3
                assert calls["file"] >= 1 and calls["entry"] == 1
            # Healed: the poller catches up and the cache serves again.
            async def fresh() -> bool:
                return cache.fresh()

            await until("B's cache serves again", fresh)
            assert await b.fs.read_file("/c/f.bin") == b"two"


@pytest.mark.asyncio
async def test_hub_calls_of_a_read_loop_and_of_creates(sdk_hub: SdkHub) -> None:
    n = 1000
    datas = [os.urandom(4096) for _ in range(n)]
    async with linked(sdk_hub.url, sdk_hub.token) as a:
        await a.fs.create_dir("/many")
        sem = asyncio.Semaphore(32)

        async def put(i: int) -> None:
            async with sem:
                await a.fs.write_file(f"/many/{i:05d}.bin", datas[i])

        await asyncio.gather(*(put(i) for i in range(n)))
        await a.sync_all()
    async with linked(sdk_hub.url, sdk_hub.token) as b:
        calls = count_calls(b)
        wrong = 0
        for i in range(n):
            wrong += await b.fs.read_file(f"/many/{i:05d}.bin") != datas[i]
        assert wrong == 0
        assert calls["file"] <= 20, calls  # prefetched, ~64 files per call
        # A listed directory: creates ask the hub nothing before their commit.
        await b.fs.read_dir("/many")
        calls.clear()
        for i in range(100):
            await b.fs.write_file(f"/many/new{i:03d}.bin", datas[i])
        assert calls["entry"] == 0 and calls["list"] == 0, calls
        # A directory never seen: one short listing, then nothing more.
        await a_dir_made_elsewhere(sdk_hub)
        calls.clear()
        for i in range(100):
            await b.fs.write_file(f"/fresh/{i:03d}.bin", datas[i])
        assert calls["entry"] + calls["list"] <= 1, calls
        await b.sync_all()
        assert [await b.fs.read_file(f"/fresh/{i:03d}.bin") for i in range(100)] == datas[:100]
        assert await b.fs.read_files([f"/many/new{i:03d}.bin" for i in range(100)]) == datas[:100]


async def a_dir_made_elsewhere(sdk_hub: SdkHub) -> None:
    async with linked(sdk_hub.url, sdk_hub.token) as a:
        await a.fs.create_dir("/fresh")
        await a.sync_all()


@pytest.mark.asyncio
async def test_a_create_whose_parent_another_client_deleted_is_refused_at_sync_all(
        sdk_hub: SdkHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """B creates against what it listed while the journal has not told it yet that A
    deleted the directory: the hub refuses that commit, sync_all raises it, and B's other
    files land."""
    monkeypatch.setattr(metacache, "POLL_WAIT", 30)  # B's cache stays fresh while cut off
    host, port = sdk_hub.url.removeprefix("http://").rsplit(":", 1)
    with FaultProxy((host, int(port))) as proxy:
        async with linked(sdk_hub.url, sdk_hub.token) as a, linked(proxy.url, sdk_hub.token) as b:
            await a.fs.create_dir("/p")
            await a.fs.create_dir("/q")
            await a.sync_all()
            await b.sync_all()
            await b.fs.read_dir("/p")
            await b.fs.read_dir("/q")
            await b.sync_all()  # the journal pulled past the listings: their names count
            with proxy.faulted(blackhole()):  # nothing reaches B, nor leaves it
                await a.fs.delete_dir("/p", recursive=True)
                await a.sync_all()
                assert b._link.metacache.fresh()
                await b.fs.write_file("/p/new.bin", b"refused")  # no hub call: it cannot ask
                await b.fs.write_file("/q/ok.bin", b"kept")
            with pytest.raises(PathNotFoundError):
                await b.sync_all()
            await b.sync_all()  # reported once
            assert await a.fs.read_file("/q/ok.bin") == b"kept"
            assert not await a.fs.dir_exists("/p")
            assert await b.fs.read_file("/q/ok.bin") == b"kept"
            with pytest.raises(FileNotFoundError):
                await b.fs.read_file("/p/new.bin")


@pytest.mark.asyncio
async def test_connections_reset_under_the_poller_never_leave_the_cache_stale(
        sdk_hub: SdkHub) -> None:
    """B's connections are reset (RST) again and again, its journal long-poll among them,
    while A changes a file: after each ``sync_all`` B reads A's bytes (stale 0), and its
    poller keeps coming back (the cache serves again)."""
    host, port = sdk_hub.url.removeprefix("http://").rsplit(":", 1)
    stale = 0
    with FaultProxy((host, int(port))) as proxy:
        async with linked(sdk_hub.url, sdk_hub.token) as a, linked(proxy.url, sdk_hub.token) as b:
            await a.fs.create_dir("/r")
            for rnd in range(10):
                data = os.urandom(64 + rnd)
                await a.fs.write_file("/r/f.bin", data)
                await a.sync_all()
                proxy.reset_all()
                await b.sync_all()
                stale += await b.fs.read_file("/r/f.bin") != data
                stale += (await b.fs.get_entry("/r/f.bin")).size != len(data)
                proxy.reset_all()
            cache = b._link.metacache

            async def fresh() -> bool:
                return cache.fresh()

            await until("B's poller is back", fresh)
            assert await b.fs.read_file("/r/f.bin") == data
    assert stale == 0
