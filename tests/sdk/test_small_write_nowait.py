"""Small ``write_file`` calls queued from the calling thread (``write_file_nowait``).

* a warm blocking ``write_file`` loop makes no call into the event loop per file, and
  every file comes back byte-exact from a fresh daemon after ``sync_all``;
* the writing thread's next call sees the write (the change joins the queue before
  anything scheduled after it), whatever that call is;
* many threads writing at once lose nothing;
* whatever cannot be vouched for here goes the ordinary way: unknown parents, large or
  non-bytes data, read-only tokens, daemons that journal their changes, a stopped queue.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from pathlib import Path

import pytest

import lucidlink
import lucidlink.aio
from lucidlink import _loop
from lucidlink.exceptions import FilespaceError, ReadOnlyError
from tests.sdk.conftest import unique
from tests.support.sdkfixtures import SMALL_BLOCK, SdkHub


class _CountedRun:
    """``_loop.run``, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self._real = _loop.run

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        return self._real(*args, **kwargs)  # type: ignore[arg-type]


def _fresh_read(hub: SdkHub, paths: list[str]) -> list[bytes]:
    with lucidlink.create_daemon(hub_url=hub.url) as daemon:
        ws = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=hub.token))
        with ws.link_filespace(name="small") as fsp:
            return fsp.fs.read_files(paths)


def test_a_warm_write_file_loop_makes_no_call_into_the_loop(
        mhub: SdkHub, mspace: lucidlink.Filespace, monkeypatch: pytest.MonkeyPatch) -> None:
    fs = mspace.fs
    d = "/" + unique("nowait")
    fs.create_dir(d)
    fs.write_file(f"{d}/first", b"x")  # the directory's names are learned here
    datas = [os.urandom(1 + i * 37 % 4096) for i in range(300)]
    counted = _CountedRun()
    monkeypatch.setattr(_loop, "run", counted)
    for i, data in enumerate(datas):
        fs.write_file(f"{d}/f{i:03d}", data)
    assert counted.calls == 0
    monkeypatch.undo()
    mspace.sync_all()
    got = _fresh_read(mhub, [f"{d}/f{i:03d}" for i in range(len(datas))])
    assert [hashlib.sha256(g).digest() for g in got] == [hashlib.sha256(x).digest() for x in datas]


def test_the_writing_thread_sees_its_write_at_once(mspace: lucidlink.Filespace) -> None:
    fs = mspace.fs
    d = "/" + unique("ryw")
    fs.create_dir(d)
    fs.write_file(f"{d}/warm", b"w")
    for i in range(150):
        data = os.urandom(100 + i)
        path = f"{d}/f{i}"
        assert fs.write_file_nowait(path, data)
        # Each kind of next call, in turn: each must find the change queued.
        check = i % 5
        if check == 0:
            assert fs.read_file(path) == data
        elif check == 1:
            with fs.open(path, "rb") as f:
                assert f.read() == data
        elif check == 2:
            assert fs.get_entry(path).size == len(data)
        elif check == 3:
            assert fs.file_exists(path)
        else:
            with fs.open(path, "r+b") as f:
                assert f.read() == data


def test_threads_writing_at_once_lose_nothing(
        mhub: SdkHub, mspace: lucidlink.Filespace) -> None:
    fs = mspace.fs
    d = "/" + unique("threads")
    fs.create_dir(d)
    fs.write_file(f"{d}/warm", b"w")
    written: dict[str, bytes] = {}
    lock = threading.Lock()

    def writer(t: int) -> None:
        for i in range(120):
            path, data = f"{d}/t{t}-{i}", os.urandom(64 + (t * 131 + i) % 2000)
            fs.write_file(path, data)
            with lock:
                written[path] = data

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    mspace.sync_all()
    names = sorted(written)
    assert len(names) == 960
    assert len(fs.read_dir(d)) == 961
    got = _fresh_read(mhub, names)
    assert sum(g == written[n] for g, n in zip(got, names, strict=True)) == 960


def test_what_cannot_be_vouched_for_goes_the_ordinary_way(mspace: lucidlink.Filespace) -> None:
    fs = mspace.fs
    d = "/" + unique("ordinary")
    fs.create_dir(d)
    fs.write_file(f"{d}/warm", b"w")  # the directory's names are learned here
    assert not fs.write_file_nowait(f"{d}/big", os.urandom(SMALL_BLOCK + 1))  # over a block
    assert not fs.write_file_nowait(f"{d}/empty", b"")
    assert not fs.write_file_nowait(f"{d}/view", memoryview(b"abc"))  # type: ignore[arg-type]
    assert not fs.write_file_nowait(f"/{unique('nodir')}/f", b"abc")  # parent unknown (missing)
    assert not fs.write_file_nowait(d, b"abc")  # a directory
    assert fs.write_file_nowait(f"{d}/ok", bytearray(b"abc"))
    # The ordinary way raises what is wrong, as before.
    with pytest.raises(FileNotFoundError):
        fs.write_file(f"/{unique('nodir')}/f", b"abc")
    with pytest.raises(IsADirectoryError):
        fs.write_file(d, b"abc")
    fs.write_file(f"{d}/big", b"b" * (SMALL_BLOCK + 1))
    assert fs.read_file(f"{d}/ok") == b"abc"
    assert len(fs.read_file(f"{d}/big")) == SMALL_BLOCK + 1


def test_read_only_tokens_are_refused_as_before(mhub: SdkHub) -> None:
    with lucidlink.create_daemon(hub_url=mhub.url) as daemon:
        ws = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=mhub.read_only_token))
        with ws.link_filespace(name="small") as fsp:
            fsp.fs.read_dir("/")
            assert not fsp.fs.write_file_nowait("/ro.bin", b"abc")
            with pytest.raises(ReadOnlyError):
                fsp.fs.write_file("/ro.bin", b"abc")


@pytest.mark.asyncio
async def test_a_journalling_daemon_queues_nothing_from_other_threads(
        sdk_hub: SdkHub, tmp_path: Path) -> None:
    async with lucidlink.aio.create_daemon(sandboxed=False, persist_files=True,
                                           root_path=str(tmp_path), hub_url=sdk_hub.url) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token))
        fsp = await ws.link_filespace(name="small")
        try:
            await fsp.fs.create_dir("/j")
            await fsp.fs.write_file("/j/warm", b"w")  # journalled, then committed as always
            assert not fsp.fs.write_file_nowait("/j/f", b"abc")
            await fsp.sync_all()
            assert await fsp.fs.read_file("/j/warm") == b"w"
        finally:
            await fsp.unlink()


@pytest.mark.asyncio
async def test_on_the_loop_thread_the_change_is_queued_at_once(afilespace: lucidlink.aio.AsyncFilespace) -> None:
    fs = afilespace.fs
    await fs.create_dir("/aio")
    await fs.write_file("/aio/warm", b"w")
    assert fs.write_file_nowait("/aio/f", b"abc")
    assert await fs.read_file("/aio/f") == b"abc"
    await afilespace.sync_all()


def test_after_unlink_nothing_is_queued(mhub: SdkHub) -> None:
    with lucidlink.create_daemon(hub_url=mhub.url) as daemon:
        ws = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=mhub.token))
        fsp = ws.link_filespace(name="small")
        d = "/" + unique("unlinked")
        fsp.fs.create_dir(d)
        fsp.fs.write_file(f"{d}/warm", b"w")
        assert fsp.fs.write_file_nowait(f"{d}/a", b"abc")
        fs = fsp.fs
        fsp.unlink()  # commits what was queued
        assert not fs.write_file_nowait(f"{d}/b", b"abc")
        with pytest.raises(FilespaceError):
            fs.write_file(f"{d}/b", b"abc")
        assert _fresh_read(mhub, [f"{d}/a"]) == [b"abc"]


# -- open(path, "wb"): a file that opens itself only if it must --------------------------


def test_a_warm_open_wb_loop_makes_no_call_into_the_loop(
        mhub: SdkHub, mspace: lucidlink.Filespace, monkeypatch: pytest.MonkeyPatch) -> None:
    fs = mspace.fs
    d = "/" + unique("openwb")
    fs.create_dir(d)
    fs.write_file(f"{d}/first", b"x")
    datas = [os.urandom(1 + i * 53 % 5000) for i in range(200)]
    counted = _CountedRun()
    monkeypatch.setattr(_loop, "run", counted)
    for i, data in enumerate(datas):
        with fs.open(f"{d}/b{i:03d}", "wb") as f:
            f.write(data[:7])
            f.write(data[7:])
    for i in range(50):
        with fs.open(f"{d}/t{i:03d}", "w", encoding="utf-8") as t:
            t.write(f"line {i}\n" * (i + 1))
    assert counted.calls == 0
    monkeypatch.undo()
    assert fs.read_file(f"{d}/b000") == datas[0]  # this thread sees its writes at once
    mspace.sync_all()
    names = [f"{d}/b{i:03d}" for i in range(200)] + [f"{d}/t{i:03d}" for i in range(50)]
    got = _fresh_read(mhub, names)
    assert got[:200] == datas
    assert got[200:] == [(f"line {i}\n" * (i + 1)).encode() for i in range(50)]


def test_an_unopened_wb_file_opens_when_it_must(mspace: lucidlink.Filespace) -> None:
    fs = mspace.fs
    d = "/" + unique("mustopen")
    fs.create_dir(d)
    fs.write_file(f"{d}/first", b"x")
    big = os.urandom(3 * 1024 * 1024 + 5)  # past what the raw file holds back
    with fs.open(f"{d}/big", "wb") as f:
        f.write(big)
    with fs.open(f"{d}/seek", "wb") as f:  # a seek goes to the opened file
        f.write(b"hello world")
        assert f.tell() == 11
        f.seek(6)
        f.write(b"there")
    with fs.open(f"{d}/trunc", "wb") as f:
        f.write(b"abcdef")
        f.truncate(3)
    with fs.open(f"{d}/flushed", "wb") as f:
        f.write(b"one")
        f.flush()
        f.write(b"two")
    with fs.open(f"{d}/raw", "wb", buffering=0) as r:
        r.write(b"raw bytes")
    with fs.open(f"{d}/empty", "wb"):
        pass
    fs.write_file(f"{d}/over", b"old content")
    with fs.open(f"{d}/over", "wb") as f:
        f.write(b"new")
    expected = {"big": big, "seek": b"hello there", "trunc": b"abc", "flushed": b"onetwo",
                "raw": b"raw bytes", "empty": b"", "over": b"new"}
    assert {n: fs.read_file(f"{d}/{n}") for n in expected} == expected
    mspace.sync_all()
    assert {n: fs.read_file(f"{d}/{n}") for n in expected} == expected


def test_open_wb_still_raises_at_open(mspace: lucidlink.Filespace) -> None:
    fs = mspace.fs
    d = "/" + unique("raises")
    fs.create_dir(d)
    fs.write_file(f"{d}/first", b"x")
    with pytest.raises(IsADirectoryError):
        fs.open(d, "wb")
    with pytest.raises(FileNotFoundError):
        fs.open(f"{d}/missing/f", "wb")
    with pytest.raises(ValueError):
        fs.open(f"{d}/f", "wbt")
    with pytest.raises(lucidlink.exceptions.ConfigurationError):
        fs.open(f"{d}/f", "wb", lock_timeout=-1)
    assert not fs.file_exists(f"{d}/f")


@pytest.mark.asyncio
async def test_a_loop_of_async_small_writes_lets_other_tasks_run(sdk_hub: SdkHub) -> None:
    """``await fs.write_file`` of a file queued in memory does not suspend by itself: it
    yields once, so a ticker task runs between the writes (and the flusher commits as
    they go instead of after the loop)."""
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(
            token=sdk_hub.token))
        async with ws.link_filespace(name="small") as fsp:
            await fsp.fs.create_dir("/yield")
            await fsp.fs.write_file("/yield/first", b"x")  # learns the directory
            ticks = 0
            done = False

            async def ticker() -> None:
                nonlocal ticks
                while not done:
                    ticks += 1
                    await asyncio.sleep(0)

            task = asyncio.create_task(ticker())
            await asyncio.sleep(0)
            before = ticks
            for i in range(500):
                await fsp.fs.write_file(f"/yield/f{i}", os.urandom(100))
            during = ticks - before
            done = True
            await task
            await fsp.sync_all()
    assert during >= 400, f"the ticker ran {during} times during 500 writes"
