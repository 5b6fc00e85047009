"""Nothing written and closed is lost, and it lands exactly once, through a faulty network.

The SDK talks to a real hub (``sdk_hub``: SQLite, then PostgreSQL) through
:class:`tests.support.faultproxy.FaultProxy`. Signed block URLs name the host the request came
in on, so block uploads and downloads cross the proxy too. Each case injects one kind
of fault while files are written, uploaded and committed, while ``sync_all`` runs, while
a long-poll watcher follows the journal, and while a second client reads the files
back:

* ``reset``: every open connection is RST every few tens of milliseconds, and the
  first commit request is RST before the hub sees it;
* ``cut``: the answers to the first two commits are cut after a few bytes of body (the
  hub acted, the client does not know), the third commit is RST before the hub sees it,
  then half of the answers to commits, block PUTs and GETs, URL batches and journal
  pulls are cut;
* ``blackhole``: a commit is held, then nothing moves for longer than a request's
  timeout; what was held is delivered late when it heals (a retried commit meets its
  twin);
* ``refuse``: connections are reset and new ones refused, as while a hub restarts;
  then the first commit lands but its answer is lost;
* ``latency``: every chunk is delayed, and one commit by more than the client's
  timeout (it reaches the hub after the client retried it).

``sync_all()`` may raise the SDK's timeout error (a ``TimeoutError``) while a fault
lasts: it is retried. Any other error from it is a failure (a change refused or
dropped). Afterwards a client connected to the hub directly checks every file's bytes
(SHA-256) and counts the journal's create/modify entries per path: exactly one each.
Reads through the proxy may raise under faults (then they are retried) but never
return wrong bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import attrs
import pytest

import lucidlink.aio
from lucidlink.exceptions import HubUnavailableError, LucidLinkError
from tests.support.faultproxy import (
    PASS,
    FaultProxy,
    blackhole,
    latency,
    refuse,
    reset_after,
    reset_request,
)
from tests.support.sdkfixtures import SMALL_BLOCK, SdkHub

B = SMALL_BLOCK
FILESPACE = "small"
SYNC_TIMEOUT = 2.0
"""``fs.sync.timeout``: short, so ``sync_all`` returns (raising) while a fault lasts."""
CLIENT_CONFIG = {
    "fs.sync.timeout": SYNC_TIMEOUT,
    "hub.timeout": 2,  # a stalled request is abandoned (and retried) after 2 s
    "fs.flush.delay_ms": 20,
}
READER_CONFIG = {
    "fs.sync.timeout": SYNC_TIMEOUT,
    "hub.timeout": 2,
    "fs.cache.size": 1,  # 1 MB: smaller than the files, so re-reads go to the network
}
FAULT_SECONDS = 1.2
BLACKHOLE_SECONDS = 2.5  # longer than hub.timeout: requests time out inside it
SETTLE_SECONDS = 30.0
"""How long after a fault heals ``sync_all`` (or a read) may still fail before the test does."""
CASE_DEADLINE = 120.0
HUB_ROUTES = (
    r"^(?:POST \S*/commits?|PUT /v1/blocks/|GET /v1/blocks/|POST \S*/blocks/urls|GET \S*/changes)"
)
SIZES = [
    0,
    1,
    100,
    B - 1,
    B,
    B + 1,
    2 * B,
    3 * B + 17,
    5 * B,
    8 * B + 3,
    4 * B - 5,
    1000,
    7 * B + 1,
    12345,
    2 * B + 2,
    6 * B,
]
"""The files each case writes: several multi-block ones, block boundaries, an empty file."""


# -- fault drivers ---------------------------------------------------------------------------


Driver = Callable[[FaultProxy, float, bool], Awaitable[None]]
"""``(proxy, seconds, writing)``: injects one kind of fault for about ``seconds``, some of
it aimed at commits when ``writing``; returns once traffic passes again."""


async def _set(proxy: FaultProxy, fault: Any) -> None:
    await asyncio.to_thread(setattr, proxy, "mode", fault)


async def _storm(proxy: FaultProxy, seconds: float, gap: tuple[float, float]) -> None:
    rng = random.Random()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.sleep(rng.uniform(*gap))
        await asyncio.to_thread(proxy.reset_all)


COMMITS = r"^POST \S*/commits?"


def _hit_commit(proxy: FaultProxy, kind: str) -> bool:
    """Whether a fault of ``kind`` has hit a commit request."""
    return any(k == kind and route.endswith("/commits") for k, route in proxy.faults_by_request)


async def _until_hit(proxy: FaultProxy, kind: str, timeout: float = 10.0) -> None:
    """Wait (at most ``timeout``) until a fault of ``kind`` has hit a commit request."""
    end = time.monotonic() + timeout
    while not _hit_commit(proxy, kind) and time.monotonic() < end:  # noqa: ASYNC110
        await asyncio.sleep(0.02)


# Each driver makes sure, when ``writing``, that its kind of fault hits at least one
# commit: the window may close before the flusher sends one, so the commit-aimed fault
# stays armed after it until one came by.


async def drive_reset(proxy: FaultProxy, seconds: float, writing: bool) -> None:
    # A storm of resets, and a commit surely among the victims (RST before the hub
    # sees it).
    await _set(proxy, reset_request(match=COMMITS, times=1))
    try:
        await _storm(proxy, seconds, (0.02, 0.08))
        if writing:
            await _until_hit(proxy, "reset_request")
    finally:
        await _set(proxy, PASS)


async def drive_cut(proxy: FaultProxy, seconds: float, writing: bool) -> None:
    # The first two commits land but their answers are cut (the retry must not land
    # them twice); the third never reaches the hub; half of every kind of answer is cut.
    aimed = (reset_after(16, match=COMMITS, times=2), reset_request(match=COMMITS, times=1))
    await _set(proxy, (*aimed, reset_after(16, match=HUB_ROUTES, probability=0.5)))
    try:
        await asyncio.sleep(seconds)
        if writing and not _hit_commit(proxy, "reset_after"):
            await _set(proxy, aimed)
            await _until_hit(proxy, "reset_after")
    finally:
        await _set(proxy, PASS)


async def drive_blackhole(proxy: FaultProxy, seconds: float, writing: bool) -> None:
    # First a commit is held, then everything: the held commit reaches the hub only
    # when the partition heals, after the client gave up on it and retried.
    await _set(proxy, blackhole(match=COMMITS, times=1))
    try:
        if writing:
            await _until_hit(proxy, "blackhole")
        await _set(proxy, blackhole())
        await asyncio.sleep(max(seconds, BLACKHOLE_SECONDS))
    finally:
        await _set(proxy, PASS)


async def drive_refuse(proxy: FaultProxy, seconds: float, writing: bool) -> None:
    # As a hub restart looks from the client: connections die, new ones are refused
    # for a while; then a commit lands but its answer is lost.
    await _set(proxy, refuse())  # first: no new connection sneaks in after the reset
    await asyncio.to_thread(proxy.reset_all)
    try:
        await asyncio.sleep(seconds)
        if writing:
            await _set(proxy, reset_after(0, match=COMMITS, times=1))
            await _until_hit(proxy, "reset_after")
    finally:
        await _set(proxy, PASS)


async def drive_latency(proxy: FaultProxy, seconds: float, writing: bool) -> None:
    # Every chunk is slow, and one commit is slower than the client's timeout: the
    # client retries while the first attempt is still on its way to the hub.
    slow_commit = latency(2.5, match=COMMITS, times=1)
    await _set(proxy, (slow_commit, latency(0.01)))
    try:
        await asyncio.sleep(seconds)
        if writing and not _hit_commit(proxy, "latency"):
            await _set(proxy, slow_commit)
            await _until_hit(proxy, "latency")
    finally:
        await _set(proxy, PASS)


CASES: dict[str, Driver] = {
    "reset": drive_reset,
    "cut": drive_cut,
    "blackhole": drive_blackhole,
    "refuse": drive_refuse,
    "latency": drive_latency,
}


@attrs.define
class Window:
    """A fault driver running in the background; ``active`` until it has healed."""

    task: asyncio.Task[None] | None = None
    """``None``: no fault."""

    @property
    def active(self) -> bool:
        return self.task is not None and not self.task.done()


HEALED = Window()


@contextlib.asynccontextmanager
async def fault_window(
    proxy: FaultProxy, driver: Driver, seconds: float, *, writing: bool
) -> AsyncIterator[Window]:
    """Run ``driver`` while the block runs; on exit wait for it to heal (never leave it faulted)."""
    task = asyncio.create_task(driver(proxy, seconds, writing))
    try:
        yield Window(task)
        await task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await _set(proxy, PASS)


# -- the test's bookkeeping -------------------------------------------------------------------


@attrs.define
class Tally:
    """What happened, for the report and the assertions."""

    problems: list[str] = attrs.Factory(list)
    sync_timeouts: int = 0
    syncs: int = 0
    read_errors: Counter[str] = attrs.Factory(Counter)
    reads: int = 0
    watch_errors: int = 0
    watch_polls: int = 0
    open_retries: int = 0


def is_sync_timeout(exc: BaseException) -> bool:
    """The SDK's "sync_all ran out of fs.sync.timeout" error: a TimeoutError that is the SDK's."""
    return isinstance(exc, TimeoutError) and isinstance(exc, LucidLinkError)


async def sync_until_done(filespace: Any, window: Window, tally: Tally, what: str) -> None:
    """``sync_all()`` until it returns; only the SDK's timeout error is retried, not for ever."""
    healed_at: float | None = None
    while True:
        tally.syncs += 1
        try:
            await filespace.sync_all()
            return
        except Exception as exc:  # classified below
            if not is_sync_timeout(exc):
                tally.problems.append(f"{what}: sync_all raised {type(exc).__name__}: {exc}")
                if len(tally.problems) > 20:
                    raise AssertionError("\n".join(tally.problems)) from exc
                continue
            tally.sync_timeouts += 1
        if not window.active:
            healed_at = healed_at or time.monotonic()
            if time.monotonic() - healed_at > SETTLE_SECONDS:
                raise AssertionError(
                    f"{what}: sync_all still timing out {SETTLE_SECONDS} s after the fault healed"
                )


async def write_files(
    fs: Any, names: list[str], sizes: list[int], rng: random.Random, tally: Tally
) -> dict[str, bytes]:
    """Write and close files of these sizes (fresh random bytes); return path -> bytes.

    Opening a new file asks the hub about the path, so it may fail while the hub is
    unreachable: that is retried (nothing was written yet). ``write`` and ``close``
    must not fail: a closed file's commit is queued, whatever the network does.
    """
    files: dict[str, bytes] = {}
    for path, size in zip(names, sizes, strict=True):
        data = rng.randbytes(size)
        while True:
            try:
                f = await fs.open(path, "wb")
                break
            except HubUnavailableError:
                tally.open_retries += 1
                await asyncio.sleep(0.05)
        async with f:
            # Several writes per file, so blocks fill (and upload) while the file is open.
            for start in range(0, size, 40_000):
                await f.write(data[start : start + 40_000])
        files[path] = data
    return files


async def read_once(fs: Any, path: str, data: bytes, rng: random.Random) -> None:
    """Read ``path`` whole or in ranges; raise AssertionError on wrong bytes."""
    if len(data) > B and rng.random() < 0.5:
        async with fs.open(path, "rb") as f:
            for _ in range(3):
                offset = rng.randrange(len(data))
                length = rng.randrange(1, 2 * B)
                await f.seek(offset)
                got = await f.read(length)
                assert got == data[offset : offset + length], (
                    f"{path}: wrong bytes at {offset}+{length}"
                )
    else:
        got = await fs.read_file(path)
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest(), (
            f"{path}: read {len(got)} bytes that are not the {len(data)} written"
        )


async def read_all(
    fs: Any, files: dict[str, bytes], window: Window, tally: Tally, rng: random.Random
) -> None:
    """Read every file at least once, and keep reading while the fault lasts."""
    pending = dict(files)
    healed_at: float | None = None
    while pending or window.active:
        if not pending:
            pending = dict(files)  # another pass while the fault lasts
        for path, data in list(pending.items()):
            try:
                await read_once(fs, path, data, rng)
            except FileNotFoundError:
                tally.problems.append(f"{path} is missing for a reader, after sync_all() returned")
                pending.pop(path)
                continue
            except (LucidLinkError, OSError) as exc:  # allowed under faults: retried
                tally.read_errors[type(exc).__name__] += 1
                await asyncio.sleep(0.02)
                continue
            except AssertionError as exc:
                tally.problems.append(f"read through the proxy returned wrong bytes: {exc}")
                pending.pop(path)
                continue
            except Exception as exc:  # an error the SDK should have translated
                tally.problems.append(f"read of {path} raised {type(exc).__name__}: {exc}")
                tally.read_errors[type(exc).__name__] += 1
                continue
            tally.reads += 1
            pending.pop(path)
        if not window.active:
            healed_at = healed_at or time.monotonic()
            if pending and time.monotonic() - healed_at > SETTLE_SECONDS:
                tally.problems.append(
                    f"reads still failing {SETTLE_SECONDS} s after the fault: {sorted(pending)}"
                )
                return


async def watch(
    proxy: FaultProxy,
    token: str,
    fs_id: str,
    seen: dict[int, dict[str, Any]],
    stop: asyncio.Event,
    tally: Tally,
) -> None:
    """Follow the journal with long-polls through the proxy, reconnecting after errors."""
    since = 0
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while not stop.is_set():
            url = f"{proxy.url}/v1/filespaces/{fs_id}/changes"
            try:
                async with session.get(
                    url, params={"since": str(since), "wait": "1"}, headers=headers
                ) as resp:
                    body = await resp.json()
                    assert resp.status == 200, body
            except (aiohttp.ClientError, asyncio.TimeoutError):
                tally.watch_errors += 1
                await asyncio.sleep(0.05)
                continue
            tally.watch_polls += 1
            for entry in body["changes"]:
                seen[int(entry["seq"])] = entry
            if body["changes"]:
                since = int(body["changes"][-1]["seq"])


async def journal(
    session: aiohttp.ClientSession, url: str, token: str, fs_id: str
) -> list[dict[str, Any]]:
    """Every journal entry of the filespace, straight from the hub."""
    entries: list[dict[str, Any]] = []
    since = 0
    while True:
        async with session.get(
            f"{url}/v1/filespaces/{fs_id}/changes",
            params={"since": str(since), "limit": "10000"},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            body = await resp.json()
            assert resp.status == 200, body
        entries += body["changes"]
        if not body["more"]:
            return entries
        since = int(body["changes"][-1]["seq"])


async def verify_direct(
    sdk_hub: SdkHub, fs_id: str, files: dict[str, bytes]
) -> tuple[list[str], list[str]]:
    """Check through a client connected to the hub directly.

    Returns the paths lost (missing or wrong bytes) and those not landed exactly once.
    """
    lost: list[str] = []
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token))
        async with ws.link_filespace(name=FILESPACE) as filespace:
            for path, data in sorted(files.items()):
                try:
                    got = await filespace.fs.read_file(path)
                except FileNotFoundError:
                    lost.append(f"{path} (missing)")
                    continue
                if hashlib.sha256(got).digest() != hashlib.sha256(data).digest():
                    lost.append(f"{path} ({len(got)} bytes, not the {len(data)} written)")
    async with aiohttp.ClientSession() as session:
        entries = await journal(session, sdk_hub.url, sdk_hub.token, fs_id)
    landed = Counter(e["path"] for e in entries if e["op"] in ("create", "modify"))
    not_once = [f"{p} x{landed[p]}" for p in sorted(files) if landed[p] != 1]
    not_once += [f"{p} x{n} (never written)" for p, n in sorted(landed.items()) if p not in files]
    return lost, not_once


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def proxy(sdk_hub: SdkHub) -> Iterator[FaultProxy]:
    host, port = sdk_hub.url.removeprefix("http://").rsplit(":", 1)
    with FaultProxy((host, int(port))) as p:
        yield p


@contextlib.asynccontextmanager
async def linked(url: str, token: str, config: dict[str, Any]) -> AsyncIterator[Any]:
    """A started daemon on ``url`` with filespace ``small`` linked."""
    async with lucidlink.aio.create_daemon(hub_url=url, config=config) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=token))
        async with ws.link_filespace(name=FILESPACE) as filespace:
            yield filespace


# -- the cases -------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("case", list(CASES))
async def test_closed_files_land_exactly_once_through_faults(
    sdk_hub: SdkHub, proxy: FaultProxy, case: str
) -> None:
    await asyncio.wait_for(_run_case(sdk_hub, proxy, case), CASE_DEADLINE)


async def _run_case(sdk_hub: SdkHub, proxy: FaultProxy, case: str) -> None:
    driver = CASES[case]
    rng = random.Random(f"{case}-{os.getpid()}-{time.time_ns()}")
    tally = Tally()
    seen: dict[int, dict[str, Any]] = {}
    stop_watch = asyncio.Event()
    async with linked(proxy.url, sdk_hub.token, CLIENT_CONFIG) as writer:
        fs_id = writer.id
        watcher = asyncio.create_task(watch(proxy, sdk_hub.token, fs_id, seen, stop_watch, tally))
        try:
            # Half the files are closed just before the fault starts (their uploads and
            # commits are in flight when it hits); the other half are written under it
            # while sync_all() waits for the first half, also under it.
            names = [f"/{case}-{i:02d}.bin" for i in range(len(SIZES))]
            sizes = SIZES[:]
            rng.shuffle(sizes)
            half = len(sizes) // 2
            files = await write_files(writer.fs, names[:half], sizes[:half], rng, tally)
            async with fault_window(proxy, driver, FAULT_SECONDS, writing=True) as window:
                more, _ = await asyncio.gather(
                    write_files(writer.fs, names[half:], sizes[half:], rng, tally),
                    sync_until_done(writer, window, tally, "first half, under the fault"),
                )
                files.update(more)
                await sync_until_done(writer, window, tally, "second half")
            await sync_until_done(writer, window, tally, "after the fault healed")

            # Reads by a second client with a cold, small cache, under the fault again.
            async with linked(proxy.url, sdk_hub.token, READER_CONFIG) as reader:
                async with fault_window(proxy, driver, FAULT_SECONDS, writing=False) as window:
                    await read_all(reader.fs, files, window, tally, rng)
            injected = proxy.faults
            per_request = proxy.faults_by_request
            # The watcher gets the time to catch up with the journal (a gap is reported below).
            async with aiohttp.ClientSession() as session:
                entries = await journal(session, sdk_hub.url, sdk_hub.token, fs_id)
            last = int(entries[-1]["seq"]) if entries else 0
            caught_up = time.monotonic() + SETTLE_SECONDS
            while max(seen, default=0) < last and time.monotonic() < caught_up:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        finally:
            stop_watch.set()
            await watcher

    lost, not_once = await verify_direct(sdk_hub, fs_id, files)
    expected_seqs = [int(e["seq"]) for e in entries]
    if sorted(seen) != expected_seqs:
        missed = sorted(set(expected_seqs) - set(seen))
        tally.problems.append(f"the long-poll watcher missed journal entries {missed[:10]}")
    print(
        f"\n[{case}] files={len(files)} faults={injected} total={sum(injected.values())} "
        f"connections={proxy.connections} requests={proxy.requests} syncs={tally.syncs} "
        f"sync_timeouts={tally.sync_timeouts} reads={tally.reads} "
        f"read_errors={dict(tally.read_errors)} "
        f"watch_polls={tally.watch_polls} watch_errors={tally.watch_errors} "
        f"open_retries={tally.open_retries} "
        f"lost={len(lost)} not_exactly_once={len(not_once)}"
        + (f"\n[{case}] per request: {per_request}" if per_request else "")
    )
    assert sum(injected.values()) > 0, "no fault was injected: the case tests nothing"
    assert any(route.endswith("/commits") for _, route in per_request), "no fault hit a commit"
    assert not lost, (
        f"{len(lost)} closed file(s) lost or wrong: {lost}; other problems: {tally.problems}"
    )
    assert not not_once, (
        f"files that did not land exactly once: {not_once}; other problems: {tally.problems}"
    )
    assert not tally.problems, "\n".join(tally.problems)


@pytest.mark.asyncio
async def test_sync_all_times_out_naming_pending_files_then_lands_them(
    sdk_hub: SdkHub, proxy: FaultProxy
) -> None:
    await asyncio.wait_for(_pending_named(sdk_hub, proxy), CASE_DEADLINE)


async def _pending_named(sdk_hub: SdkHub, proxy: FaultProxy) -> None:
    config = {**CLIENT_CONFIG, "fs.sync.timeout": 1}
    files = {"/pending-a.bin": os.urandom(3 * B + 1), "/pending-b.bin": os.urandom(10)}
    async with linked(proxy.url, sdk_hub.token, config) as writer:
        fs_id = writer.id
        await _set(proxy, blackhole(match=r"^POST \S*/commits?"))
        try:
            for path, data in files.items():
                await writer.fs.write_file(path, data)
            with pytest.raises(TimeoutError) as raised:
                await writer.sync_all()
            assert isinstance(raised.value, LucidLinkError), repr(raised.value)
            assert any(path in str(raised.value) for path in files), str(raised.value)
        finally:
            await _set(proxy, PASS)
        await sync_until_done(writer, HEALED, Tally(), "after healing")
    lost, not_once = await verify_direct(sdk_hub, fs_id, files)
    assert not lost and not not_once, (lost, not_once)
