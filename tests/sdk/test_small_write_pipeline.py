"""Many small files committed in pipelined requests (lucidlink.aio.writeback).

* the queue is cut into requests of bounded size and count, each when it is sent;
* up to ``_IN_FLIGHT`` requests may be in flight, never more, and never two touching the
  same path (or one above or under the other): one path's changes land in queue order;
* the next requests go out while the first is still in flight, whatever the program is
  still closing; a few changes closed meanwhile wait for company;
* a thousand files written, then synced, come back byte-exact.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import attrs
import orjson
import pybase64
import pytest

import lucidlink.aio
from lucidlink.aio import commitparts, writeback
from lucidlink.aio.pending import PendingCommit
from lucidlink.exceptions import HubUnavailableError
from lucidlink.hub.embedded import EmbeddedHub
from tests.support.sdkfixtures import SdkHub


def _commit(path: str, size: int = 4096) -> PendingCommit:
    digest = os.urandom(32).hex()
    return PendingCommit(
        id=os.urandom(16).hex(), filespace_id="fs", path=path, size=size, mode="create",
        replace=True, truncate_to=None, blocks=[{"index": 0, "hash": digest, "length": size}],
        to_upload={digest: (0, size)}, staging=None, mtime=0, created=0.0, block_size=1 << 20,
    )


def _cut(queue: dict[str, PendingCommit], inline_max: int) -> list[list[PendingCommit]]:
    """The requests the flusher would cut from ``queue``, one after the other."""
    parts: list[list[PendingCommit]] = []
    sent: set[str] = set()
    while True:
        part, rest = commitparts.next_part(queue, sent, inline_max)
        if not part:
            return parts
        assert rest == (len(sent) + len(part) < len(queue))
        parts.append(part)
        sent.update(c.id for c in part)


def _cut_bytes(queue: dict[str, PendingCommit], inline_max: int, max_bytes: int) -> list[list[PendingCommit]]:
    parts: list[list[PendingCommit]] = []
    sent: set[str] = set()
    while True:
        part, _ = commitparts.next_part(queue, sent, inline_max, max_bytes)
        if not part:
            return parts
        parts.append(part)
        sent.update(c.id for c in part)


def _request_json(part: list[PendingCommit], inline_max: int) -> bytes:
    """The request body the flusher sends for ``part`` (inline blocks with their base64)."""
    changes = []
    for commit in part:
        change = commit.change()
        change["blocks"] = [
            {**b, "data": pybase64.b64encode_as_string(os.urandom(b["length"]))}
            if 0 < b["length"] <= inline_max and b["hash"] in commit.to_upload else b
            for b in commit.blocks]
        changes.append(change)
    return orjson.dumps({"commits": changes})


def test_parts_bound_bytes_and_count() -> None:
    small = [_commit(f"/d/f{i}") for i in range(2500)]
    queue = {c.id: c for c in small}
    parts = _cut(queue, 64 * 1024)
    assert [c for part in parts for c in part] == small  # in order, nothing lost
    assert len(parts) > 1
    assert all(len(part) <= commitparts.BATCH for part in parts)
    # Bytes not binding: only the count bounds a request.
    counts = [len(p) for p in _cut_bytes(queue, 0, 10**9)]
    assert counts == [commitparts.BATCH, commitparts.BATCH, 2500 - 2 * commitparts.BATCH]
    # Changes in flight are skipped; what landed has left the queue.
    first = _cut_bytes(queue, 0, 10**9)[0]
    for c in first[:100]:
        del queue[c.id]
    part, rest = commitparts.next_part(queue, {c.id for c in first[100:]}, 0, 10**9)
    assert part == small[commitparts.BATCH:2 * commitparts.BATCH] and rest


@pytest.mark.parametrize("max_bytes", [200_000, 960_000, 4_000_000])
def test_a_request_stays_under_its_byte_bound_inline_bytes_and_block_lists_alike(max_bytes: int) -> None:
    """The bound counts every block reference, not only inline bytes: 300 changes of a
    thousand blocks each once made one request of about 36 MB against a 16 MiB limit."""
    small = [_commit(f"/s/f{i}") for i in range(1500)]
    large = []
    for i in range(300):
        commit = _commit(f"/l/f{i}", size=1000 << 20)
        commit.blocks = [{"index": n, "hash": os.urandom(32).hex(), "length": 1 << 20, "used": 1 << 20}
                         for n in range(1000)]
        commit.to_upload = {}
        large.append(commit)
    for commits, inline_max in ((small, 64 * 1024), (large, 0), (large, 64 * 1024)):
        parts = _cut_bytes({c.id: c for c in commits}, inline_max, max_bytes)
        assert [c for part in parts for c in part] == commits
        sizes = [len(_request_json(part, inline_max)) for part in parts]
        assert max(sizes) <= max_bytes, sizes
        assert len(parts) > 1


def test_the_request_bound_follows_the_limit_the_hub_states() -> None:
    unstated = commitparts.UNSTATED_REQUEST_BYTES
    assert [commitparts.request_bytes(v) for v in (None, 0, -5, True, "16777216", 1.5e7)] == [unstated] * 6
    assert commitparts.request_bytes(16 * 1024 * 1024) == commitparts.REQUEST_BYTES
    assert commitparts.request_bytes(1024 * 1024) == 1024 * 1024 - 64 * 1024
    assert commitparts.request_bytes(70_000) == 64 * 1024  # never below one small file's room


@pytest.mark.asyncio
async def test_small_files_land_on_a_hub_with_a_small_body_limit(tmp_path: Path) -> None:
    """A hub reading bodies of at most 300 kB: the flusher cuts its requests under the
    limit the hub states. Requests cut at 960 kB were refused with 413, and the flusher
    then sent their changes one request each."""
    files = {f"/d/f{i:04}": os.urandom(4096) for i in range(400)}
    with EmbeddedHub(tmp_path / "hub", gc_interval_seconds=3600, max_json_bytes=300_000) as hub:
        token = hub.init("demo", ["small"])
        async with lucidlink.aio.create_daemon(hub_url=hub.url) as daemon:
            fsp = await (await daemon.authenticate(_creds(token))).link_filespace(name="small")
            fsp._link.writeback._delay = 30.0  # everything waits for sync_all: the largest requests
            await fsp.fs.create_dir("/d")
            for path, data in files.items():
                await fsp.fs.write_file(path, data)
            await fsp.sync_all()
            await fsp.unlink()
        async with lucidlink.aio.create_daemon(hub_url=hub.url) as daemon:
            fsp = await (await daemon.authenticate(_creds(token))).link_filespace(name="small")
            wrong = [p for p, data in files.items() if await fsp.fs.read_file(p) != data]
            await fsp.unlink()
        metrics = urllib.request.urlopen(hub.url + "/metrics").read().decode()
    assert wrong == []
    commits = [line for line in metrics.splitlines()
               if line.startswith("lucidhub_requests_total") and 'route="/v1/filespaces/{fs}/commits"' in line]
    assert commits and not [line for line in commits if 'status="413"' in line], commits
    assert sum(float(line.rsplit(" ", 1)[1]) for line in commits) < 40  # about 400 x 5.7 kB / 236 kB


@pytest.mark.asyncio
async def test_the_last_request_of_a_sync_does_not_wait_for_the_flush_delay(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sync whose changes take several requests sends the last one (fewer changes than
    start a commit early) at once. The flusher clears its "urgent" mark when it wakes, so
    that last request used to wait for company until ``fs.flush.delay_ms`` ran out,
    counted from the oldest change, while sync_all waited: with a 10-minute delay this
    sync timed out."""
    monkeypatch.setattr(writeback, "_EARLY", 1 << 30)  # nothing commits before the sync
    files = {f"/d/f{i:03}": os.urandom(4096) for i in range(100)}  # 3 requests: 41, 41, 18
    config = {"fs.flush.delay_ms": 600_000, "fs.sync.timeout": 30}
    with EmbeddedHub(tmp_path / "hub", gc_interval_seconds=3600, max_json_bytes=300_000) as hub:
        token = hub.init("demo", ["small"])
        async with lucidlink.aio.create_daemon(hub_url=hub.url, config=config) as daemon:
            fsp = await (await daemon.authenticate(_creds(token))).link_filespace(name="small")
            await fsp.fs.create_dir("/d")
            await fsp.sync_all()
            for path, data in files.items():
                await fsp.fs.write_file(path, data)
            await fsp.sync_all()  # SyncTimeoutError when the last request waits
            assert await fsp.fs.read_files(list(files)) == list(files.values())
            await fsp.unlink()
        metrics = urllib.request.urlopen(hub.url + "/metrics").read().decode()
    commits = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                  if line.startswith("lucidhub_requests_total")
                  and 'route="/v1/filespaces/{fs}/commits"' in line)
    assert commits >= 3  # the sync did take several requests


def test_related_paths() -> None:
    assert commitparts.related({"/a/b"}, {"/a/b"})
    assert commitparts.related({"/a/b"}, {"/a"})  # above
    assert commitparts.related({"/a"}, {"/a/b/c"})  # under
    assert not commitparts.related({"/a/b"}, {"/a/c", "/b", "/a/bb"})
    assert not commitparts.related(set(), {"/a"})


def _creds(token: str) -> lucidlink.aio.ServiceAccountCredentials:
    return lucidlink.aio.ServiceAccountCredentials(token=token)


@pytest.mark.asyncio
async def test_pipelined_commits_keep_each_paths_order(sdk_hub: SdkHub) -> None:
    files = {f"/d/f{i:04}": os.urandom(4096) for i in range(1000)}
    order = list(files)
    # One path written twice, far enough apart to fall into two requests most times
    # (requests are cut by time as well as size).
    order.insert(150, "/d/twice")
    order.insert(860, "/d/twice")
    first, last = os.urandom(4096), os.urandom(4096)
    in_flight: list[set[str]] = []
    worst = 0
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        fsp = await (await daemon.authenticate(_creds(sdk_hub.token))).link_filespace(name="big")
        await fsp.fs.create_dir("/d")
        wb = fsp._link.writeback
        post = wb._post

        async def watched(batch: list[PendingCommit], carried: Any = None) -> None:
            nonlocal worst
            paths = {c.path for c in batch}
            for other in in_flight:
                assert not commitparts.related(other, paths)
            in_flight.append(paths)
            worst = max(worst, len(in_flight))
            try:
                await post(batch, carried)
            finally:
                in_flight.remove(paths)

        wb._post = watched  # type: ignore[method-assign]
        seen_twice = 0
        for path in order:
            if path == "/d/twice":
                data = first if seen_twice == 0 else last
                seen_twice += 1
            else:
                data = files[path]
            await fsp.fs.write_file(path, data)
            if len(wb._queue) % 97 == 0:
                await asyncio.sleep(0)  # let the flusher start now and then
        await fsp.sync_all()
        await fsp.unlink()
    assert 1 <= worst <= writeback._IN_FLIGHT
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        fsp = await (await daemon.authenticate(_creds(sdk_hub.token))).link_filespace(name="big")
        assert await fsp.fs.read_file("/d/twice") == last
        wrong = [p for p, data in files.items() if await fsp.fs.read_file(p) != data]
        await fsp.unlink()
    assert wrong == []


@pytest.mark.asyncio
async def test_a_failed_request_next_to_one_that_landed_is_retried(sdk_hub: SdkHub) -> None:
    files = {f"/e/f{i:04}": os.urandom(4096) for i in range(600)}
    failed: list[int] = []
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        fsp = await (await daemon.authenticate(_creds(sdk_hub.token))).link_filespace(name="big")
        await fsp.fs.create_dir("/e")
        wb = fsp._link.writeback
        wb._delay = 30.0
        post = wb._post

        async def flaky(batch: list[PendingCommit], carried: Any = None) -> None:
            if not failed and any(c.path == "/e/f0000" for c in batch):
                failed.append(len(batch))
                await asyncio.sleep(0.05)  # the next request is in flight meanwhile
                raise HubUnavailableError("the hub went away (test)")
            await post(batch, carried)

        wb._post = flaky  # type: ignore[method-assign]
        for path, data in files.items():
            await fsp.fs.write_file(path, data)
        await fsp.fs.write_file("/e/f0000", b"last")  # a later change of the failed path
        await fsp.sync_all()
        assert not wb.pending_paths
        await fsp.unlink()
    assert failed
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        fsp = await (await daemon.authenticate(_creds(sdk_hub.token))).link_filespace(name="big")
        assert await fsp.fs.read_file("/e/f0000") == b"last"
        wrong = [p for p, data in files.items()
                 if p != "/e/f0000" and await fsp.fs.read_file(p) != data]
        await fsp.unlink()
    assert wrong == []


def _hold_the_first_request(wb: Any, posted: list[int], release: asyncio.Event) -> None:
    """Make the flusher's first request wait for ``release``, and count each request's
    changes in ``posted``. Only _EARLY queued changes or a flush start a commit."""
    wb._delay = 30.0
    post = wb._post

    async def held(batch: list[PendingCommit], carried: Any = None) -> None:
        posted.append(len(batch))
        if len(posted) == 1:
            await release.wait()
        await post(batch, carried)

    wb._post = held


async def _until(done: Any, tries: int = 200) -> None:
    """Poll ``done()`` every 10 ms, at most ``tries`` times."""
    for _ in range(tries):
        if done():
            return
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_the_next_requests_go_out_while_the_first_is_in_flight(sdk_hub: SdkHub) -> None:
    """With the first request held by the hub, the flusher keeps sending what the program
    closes meanwhile, up to _IN_FLIGHT requests, then waits; all of it lands."""
    posted: list[int] = []
    release = asyncio.Event()
    files = {f"/p/f{i:04}": os.urandom(4096) for i in range(writeback._EARLY + 800)}
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        fsp = await (await daemon.authenticate(_creds(sdk_hub.token))).link_filespace(name="big")
        await fsp.fs.create_dir("/p")
        wb = fsp._link.writeback
        _hold_the_first_request(wb, posted, release)
        names = list(files)
        for path in names[:writeback._EARLY]:
            await fsp.fs.write_file(path, files[path])
        await _until(lambda: posted)
        assert posted == [writeback._EARLY]
        for path in names[writeback._EARLY:]:  # closed while the first request is held
            await fsp.fs.write_file(path, files[path])
        await _until(lambda: len(posted) == writeback._IN_FLIGHT)
        await asyncio.sleep(0.1)  # time enough for the flusher to (wrongly) send a fourth
        assert len(posted) == writeback._IN_FLIGHT
        assert all(n > writeback._EARLY for n in posted[1:])
        release.set()
        await fsp.sync_all()
        assert sum(posted) == len(files) and not wb.pending_paths
        await fsp.unlink()
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        fsp = await (await daemon.authenticate(_creds(sdk_hub.token))).link_filespace(name="big")
        wrong = [p for p, data in files.items() if await fsp.fs.read_file(p) != data]
        await fsp.unlink()
    assert wrong == []


@pytest.mark.asyncio
async def test_files_closed_during_a_commit_wait_for_company(sdk_hub: SdkHub) -> None:
    """The flusher does not send the few changes that arrived during a commit at once:
    they wait, like any other, for enough company, a flush or the delay."""
    posted: list[int] = []
    release = asyncio.Event()
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        fsp = await (await daemon.authenticate(_creds(sdk_hub.token))).link_filespace(name="big")
        await fsp.fs.create_dir("/w")
        wb = fsp._link.writeback
        _hold_the_first_request(wb, posted, release)
        for i in range(writeback._EARLY):
            await fsp.fs.write_file(f"/w/a{i}", os.urandom(4096))
        await _until(lambda: posted, tries=100)
        assert posted == [writeback._EARLY]
        for i in range(10):  # closed while the first commit is in flight
            await fsp.fs.write_file(f"/w/b{i}", os.urandom(4096))
        release.set()
        for _ in range(50):
            await asyncio.sleep(0.01)
            if len(wb.pending_paths) == 10:
                break
        await asyncio.sleep(0.1)  # time enough for the flusher to (wrongly) go on
        assert posted == [writeback._EARLY]
        assert len(wb.pending_paths) == 10
        await fsp.sync_all()
        assert posted == [writeback._EARLY, 10]
        assert not wb.pending_paths
        await fsp.unlink()


def test_the_delay_counts_from_the_oldest_close() -> None:
    wb = writeback.WriteBack.__new__(writeback.WriteBack)
    wb._delay, wb._queue = 2.0, {}
    assert wb._wait_left() == 2.0
    oldest = _commit("/a")
    wb._queue = {oldest.id: oldest, "later": _commit("/b")}
    oldest.created = time.time() - 0.5
    assert 1.0 < wb._wait_left() <= 1.5
    oldest.created = time.time() - 60  # long overdue: no wait
    assert wb._wait_left() == 0.0
    oldest.created = time.time() + 60  # a clock set back: never longer than the delay
    assert wb._wait_left() == 2.0


def test_a_flush_checks_each_change_once() -> None:
    """The flush's predicate moves past what left the queue instead of rescanning it."""
    queue = {str(i): _commit(f"/f{i}") for i in range(5)}
    targets = list(queue)
    done = commitparts.all_left(targets, queue)
    assert not done()
    del queue["0"], queue["1"]
    assert not done()
    del queue["3"]  # out of order: "2" still holds the predicate back
    assert not done()
    del queue["2"], queue["4"]
    assert done()
    queue["new"] = _commit("/later")  # queued after the flush began: not waited for
    assert done()


def test_a_caller_queueing_faster_than_the_loop_takes_lets_the_loop_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread queueing small files in a tight loop holds the GIL; the loop thread gives it
    up at every turn and waited up to the switch interval (5 ms) to get it back each
    time, so commits went out only once the caller stopped. The caller now waits for the
    loop to take its changes whenever another _EARLY of them wait untaken (at most
    _HANDOFF_WAIT). Here the loop is not running at all, so every change waits: one
    bounded wait per _EARLY of them, and nothing is lost or reordered once the loop takes
    them."""
    loop = asyncio.new_event_loop()
    try:
        wb = writeback.WriteBack(
            None, None, "fs", lambda: None, Path("/nonexistent"),  # type: ignore[arg-type]
            durable=False, delay=30.0, sync_timeout=60.0)
        wb._loop, wb._loop_thread = loop, -1  # a loop that nothing runs yet, on no thread
        commits = [attrs.evolve(_commit(f"/d/f{i}"), inline=os.urandom(4096)) for i in range(300)]
        waits: list[float | None] = []
        monkeypatch.setattr(wb._taken, "wait", waits.append)
        assert all(wb.enqueue_nowait(c) for c in commits)
        monkeypatch.undo()
        assert waits == [writeback._HANDOFF_WAIT] * (300 // writeback._EARLY)
        assert not wb._queue
        loop.run_until_complete(asyncio.sleep(0))  # the loop's turn: it takes them all
        assert list(wb._queue) == [c.id for c in commits]
    finally:
        loop.close()


def test_the_caller_gets_the_gil_back_only_once_the_loop_has_taken_its_changes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With a running loop in its own thread, each _EARLY-th change returns only after the
    loop took every change queued before it (the wait is made long enough to never end
    first): the loop had its turn, whatever the caller does next."""
    monkeypatch.setattr(writeback, "_HANDOFF_WAIT", 60.0)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        wb = writeback.WriteBack(
            None, None, "fs", lambda: None, Path("/nonexistent"),  # type: ignore[arg-type]
            durable=False, delay=30.0, sync_timeout=60.0)
        wb._loop, wb._loop_thread = loop, thread.ident or 0
        hold = threading.Event()
        loop.call_soon_threadsafe(hold.wait, 0.3)  # the loop busy: the changes pile up
        commits = [attrs.evolve(_commit(f"/d/f{i}"), inline=os.urandom(4096)) for i in range(200)]
        taken_at: list[int] = []
        for n, commit in enumerate(commits, 1):
            assert wb.enqueue_nowait(commit)
            if n == writeback._EARLY:
                taken_at.append(len(wb._queue))  # read from this thread, at once
        # time.sleep(0) returned at once: the loop, still held, had taken none (0).
        assert taken_at == [writeback._EARLY]
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(10)
        assert list(wb._queue) == [c.id for c in commits]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
