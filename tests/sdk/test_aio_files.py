"""The async core's files against a real hub: contents, modes, partial updates, errors."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lucidlink.aio
from lucidlink.exceptions import (
    ConfigurationError,
    DaemonError,
    FilespaceError,
    LucidLinkError,
)
from tests.support.pgfixture import with_block_stores
from tests.support.sdkfixtures import SMALL_BLOCK

pytestmark = with_block_stores  # every test here moves block bytes

B = SMALL_BLOCK


@pytest.mark.asyncio
@pytest.mark.parametrize("size", [0, 1, B - 1, B, B + 1, 5 * B + 7])
async def test_roundtrip_sizes(afilespace: Any, size: int) -> None:
    data = os.urandom(size)
    await afilespace.fs.write_file("/f.bin", data)
    assert await afilespace.fs.read_file("/f.bin") == data  # read-your-writes before any sync
    await afilespace.sync_all()
    assert (await afilespace.fs.get_entry("/f.bin")).size == size
    assert await afilespace.fs.read_file("/f.bin") == data


@pytest.mark.asyncio
async def test_ranges_seek_past_end_truncate_extend(afilespace: Any) -> None:
    fs = afilespace.fs
    data = os.urandom(3 * B + 100)
    await fs.write_file("/r.bin", data)
    async with fs.open("/r.bin", "rb") as f:
        await f.seek(B - 10)
        assert await f.read(20) == data[B - 10:B + 10]
        assert f.tell() == B + 10
        await f.seek(-5, io.SEEK_END)
        assert await f.read() == data[-5:]
        await f.seek(10 * B)
        assert await f.read(10) == b""
    async with fs.open("/r.bin", "r+b") as f:
        await f.seek(5 * B)
        await f.write(b"end")  # a hole between the old end and the write reads as zeros
    got = await fs.read_file("/r.bin")
    assert got == data + bytes(5 * B - len(data)) + b"end"
    await fs.truncate("/r.bin", B + 3)
    assert await fs.read_file("/r.bin") == data[:B + 3]
    await fs.truncate("/r.bin", 2 * B)
    assert await fs.read_file("/r.bin") == data[:B + 3] + bytes(B - 3)


@pytest.mark.asyncio
async def test_partial_update_rewrites_only_touched_blocks(afilespace: Any, sdk_hub: Any) -> None:
    fs = afilespace.fs
    data = os.urandom(8 * B)
    await fs.write_file("/p.bin", data)
    await afilespace.sync_all()
    before = await afilespace._call("GET", "/file", params={"path": "/p.bin"})
    async with fs.open("/p.bin", "r+b") as f:
        await f.seek(3 * B + 5)
        await f.write(b"patch")
    await afilespace.sync_all()
    after = await afilespace._call("GET", "/file", params={"path": "/p.bin"})
    changed = [a["index"] for a, b in zip(after["blocks"], before["blocks"]) if a["hash"] != b["hash"]]
    assert changed == [3]
    assert after["entry"]["version"] == before["entry"]["version"] + 1
    expected = bytearray(data)
    expected[3 * B + 5:3 * B + 10] = b"patch"
    assert await fs.read_file("/p.bin") == bytes(expected)


@pytest.mark.asyncio
async def test_append_and_exclusive_modes(afilespace: Any) -> None:
    fs = afilespace.fs
    async with fs.open("/a.log", "ab") as f:
        await f.write(b"one\n")
    async with fs.open("/a.log", "a+b") as f:
        await f.seek(0)
        assert await f.read() == b"one\n"
        await f.write(b"two\n")  # appends whatever the position
    assert await fs.read_file("/a.log") == b"one\ntwo\n"
    async with fs.open("/x.bin", "xb") as f:
        await f.write(b"new")
    with pytest.raises(FileExistsError):
        await fs.open("/x.bin", "xb")
    assert await fs.read_file("/x.bin") == b"new"


@pytest.mark.asyncio
async def test_builtin_compatible_errors(afilespace: Any) -> None:
    fs = afilespace.fs
    await fs.create_dir("/d/sub")
    await fs.write_file("/d/file", b"x")
    with pytest.raises(FileNotFoundError):
        await fs.open("/missing", "rb")
    with pytest.raises(FileNotFoundError):
        await fs.open("/nodir/new", "wb")
    with pytest.raises(IsADirectoryError):
        await fs.open("/d", "rb")
    with pytest.raises(IsADirectoryError):
        await fs.delete("/d")
    with pytest.raises(NotADirectoryError):
        await fs.delete_dir("/d/file")
    with pytest.raises(OSError) as info:
        await fs.delete_dir("/d")
    assert info.value.errno == errno.ENOTEMPTY
    with pytest.raises(FileNotFoundError):
        await fs.get_entry("/nope")
    with pytest.raises(ValueError):
        await fs.get_entry("/a/../b")
    with pytest.raises(ConfigurationError):
        await fs.open("/d/file", "rb", lock_type="bogus")
    with pytest.raises(ConfigurationError):
        await fs.open("/d/file", "r")
    async with fs.open("/d/file", "rb") as f:
        with pytest.raises(io.UnsupportedOperation):
            await f.write(b"no")
    await fs.delete_dir("/d", recursive=True)
    assert not await fs.dir_exists("/d")


@pytest.mark.asyncio
async def test_namespace_operations(afilespace: Any) -> None:
    fs = afilespace.fs
    await fs.create_dir("/projects/2024")
    await fs.create_dir("/projects/2024")  # exists: fine
    for i in range(3):
        await fs.write_file(f"/projects/2024/{i}.txt", b"x" * i)
    assert await fs.list_dir("/projects/2024") == ["0.txt", "1.txt", "2.txt"]
    entries = await fs.read_dir("/projects/2024")
    assert [e.size for e in entries] == [0, 1, 2] and all(e.is_file() for e in entries)
    await fs.move("/projects/2024", "/archive")
    assert await fs.list_dir("/archive") == ["0.txt", "1.txt", "2.txt"]
    assert await fs.file_exists("/archive/1.txt") and not await fs.file_exists("/archive")
    assert await fs.dir_exists("/archive") and not await fs.dir_exists("/archive/1.txt")
    await fs.move("/archive/1.txt", "/archive/2.txt")  # replaces, like POSIX rename
    assert await fs.read_file("/archive/2.txt") == b"x"
    with pytest.raises(FileExistsError):
        await fs.move("/archive/0.txt", "/archive/2.txt", overwrite=False)
    await fs.copy_file("/archive/2.txt", "/copy.txt")
    assert await fs.read_file("/copy.txt") == b"x"
    await fs.delete("/copy.txt")
    stats = await fs.get_statistics()
    assert (stats.file_count, stats.directory_count) == (2, 2)
    size = await fs.get_size()
    assert size.data == 1 and size.entries == 4


@pytest.mark.asyncio
async def test_two_daemons_see_each_others_changes_after_sync(sdk_hub: Any) -> None:
    creds = lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token)
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as d1, \
            lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as d2:
        f1 = await (await d1.authenticate(creds)).link_filespace(name="small")
        f2 = await (await d2.authenticate(creds)).link_filespace(name="small")
        await f1.fs.write_file("/shared.txt", b"from d1")
        await f1.sync_all()
        await f2.sync_all()
        assert await f2.fs.read_file("/shared.txt") == b"from d1"
        # Many handles writing at once in one daemon.
        import asyncio

        await asyncio.gather(*(f2.fs.write_file(f"/many-{i}", bytes([i]) * (i * 1000)) for i in range(20)))
        await f2.sync_all()
        await f1.sync_all()
        for i in range(20):
            assert await f1.fs.read_file(f"/many-{i}") == bytes([i]) * (i * 1000)


@pytest.mark.asyncio
async def test_wrong_state_errors(sdk_hub: Any) -> None:
    daemon = lucidlink.aio.create_daemon(hub_url=sdk_hub.url)
    creds = lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token)
    with pytest.raises(DaemonError, match="start"):
        await daemon.authenticate(creds)
    await daemon.start()
    ws = await daemon.authenticate(creds)
    fsp = await ws.link_filespace(name="small")
    with pytest.raises(FilespaceError) as info:
        await ws.link_filespace(name="nope")
    assert "small" in str(info.value) and "big" in str(info.value)
    await fsp.unlink()
    with pytest.raises(FilespaceError, match="link it again"):
        await fsp.fs.list_dir("/")
    await daemon.stop()
    with pytest.raises(DaemonError, match="stopped"):
        await daemon.authenticate(creds)
    with pytest.raises(ValueError):
        lucidlink.aio.ServiceAccountCredentials(token="bad")
    assert "***" in repr(creds) and creds.token.split(":")[2] not in repr(creds)
    bad = lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token[:-4] + "AAAA")
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as d:
        from lucidlink.exceptions import AuthenticationError

        with pytest.raises(AuthenticationError):
            await d.authenticate(bad)


@pytest.mark.asyncio
async def test_read_only_token_cannot_write(sdk_hub: Any) -> None:
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as d:
        ws = await d.authenticate(lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.read_only_token))
        async with ws.link_filespace(name="small") as fsp:
            assert await fsp.fs.list_dir("/") == []
            with pytest.raises(PermissionError):
                await fsp.fs.create_dir("/x")
            with pytest.raises(PermissionError):
                await fsp.fs.open("/x", "wb")


@pytest.mark.asyncio
async def test_hub_unreachable_is_a_daemon_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with lucidlink.aio.create_daemon(hub_url=f"http://127.0.0.1:{port}", config={"hub.retries": "1"}) as d:
        with pytest.raises(DaemonError) as info:
            await d.authenticate(lucidlink.aio.ServiceAccountCredentials(token="sa_live:abcdef12:" + "x" * 40))
        assert isinstance(info.value, ConnectionError) and f"127.0.0.1:{port}" in str(info.value)


# -- the same operations on a local file and on a filespace file -----------------------

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.binary(min_size=0, max_size=3 * B // 2)),
        st.tuples(st.just("read"), st.integers(-1, 2 * B)),
        st.tuples(st.just("seek"), st.integers(0, 3 * B), st.sampled_from([0, 1, 2])),
        st.tuples(st.just("truncate"), st.integers(0, 3 * B)),
        st.tuples(st.just("tell")),
    ),
    max_size=12,
)


async def _apply(f: Any, op: tuple[Any, ...], is_async: bool) -> Any:
    name, *args = op
    if name == "seek" and args[1] != 0:
        args = [args[0] - 3 * B // 2, args[1]]  # relative seeks go both ways
    try:
        result = getattr(f, name)(*args)
        if is_async and name != "tell":
            result = await result
        return ("ok", result)
    except (OSError, ValueError) as exc:
        return ("error", type(exc).__name__)


@pytest.mark.asyncio
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(mode=st.sampled_from(["r+b", "w+b", "a+b"]), initial=st.binary(max_size=2 * B + 3), ops=_ops)
async def test_same_results_as_builtin_open(afilespace: Any, tmp_path: Path, mode: str, initial: bytes,
                                            ops: list[tuple[Any, ...]]) -> None:
    local = tmp_path / "ref.bin"
    local.write_bytes(initial)
    await afilespace.fs.write_file("/ref.bin", initial)
    ours = await afilespace.fs.open("/ref.bin", mode)
    with open(local, mode, buffering=0) as ref:
        for op in ops:
            expected = await _apply(ref, op, False)
            got = await _apply(ours, op, True)
            assert got == expected, (op, got, expected)
    await ours.close()
    assert await afilespace.fs.read_file("/ref.bin") == local.read_bytes()


def test_errors_are_lucidlink_errors() -> None:
    from lucidlink import exceptions as e

    for cls in e.ERROR_CODES.values():
        assert issubclass(cls, LucidLinkError)
    assert issubclass(e.PathNotFoundError, FileNotFoundError)
    assert issubclass(e.LockTimeoutError, TimeoutError)
    assert issubclass(e.AccessDeniedError, PermissionError)


@pytest.mark.asyncio
async def test_a_written_bytearray_can_be_resized_at_once(
        afilespace: Any, lingering_workers: list[tuple[Any, ...]]) -> None:
    """A writer reusing one bytearray (extend, clear) right after each ``write``: the
    threads that wrote it to staging keep their jobs, but no view of it."""
    buf = bytearray()
    want = bytearray()
    async with afilespace.fs.open("/reused.bin", "wb") as f:
        for i in range(6):
            buf.extend(os.urandom(B // 2 + i))
            await f.write(buf)
            want += buf
            buf.extend(b"!")  # refused while a view of ``buf`` is still exported
            del buf[:]
    assert lingering_workers  # the bytes went to staging in worker threads
    await afilespace.sync_all()
    assert await afilespace.fs.read_file("/reused.bin") == bytes(want)
