"""Symbolic links through the SDK: both faces, fsspec, and a second client."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any

import pytest

import lucidlink
from lucidlink.exceptions import (
    FilespaceError,
    LinkOutsideFilespaceError,
    NotASymlinkError,
    TooManyLinksError,
)
from lucidlink.fsspec import LucidLinkFileSystem
from tests.sdk.conftest import unique
from tests.support.sdkfixtures import SdkHub


@pytest.fixture
def d(mspace: lucidlink.Filespace) -> str:
    """A fresh directory of the module's filespace."""
    path = "/" + unique("links")
    mspace.fs.create_dir(path)
    return path


def test_create_read_and_entries(mspace: lucidlink.Filespace, d: str) -> None:
    fs = mspace.fs
    fs.write_file(f"{d}/f.txt", b"hello")
    assert fs.create_symlink("f.txt", f"{d}/l") is None
    assert fs.read_symlink(f"{d}/l") == "f.txt"
    entry = fs.get_entry(f"{d}/l")  # not followed
    assert entry.type == "link" and entry.is_link() and not entry.is_file() and not entry.is_dir()
    assert entry.target == "f.txt" and entry.size == len("f.txt")
    listed = {e.name: e for e in fs.read_dir(d)}  # not followed
    assert listed["l"].is_link() and listed["f.txt"].is_file() and sorted(fs.list_dir(d)) == ["f.txt", "l"]
    assert listed["l"].target == "f.txt" and listed["f.txt"].target == ""
    with pytest.raises(FileExistsError):
        fs.create_symlink("/elsewhere", f"{d}/f.txt")
    with pytest.raises(FileExistsError):
        fs.create_symlink("/elsewhere", f"{d}/l")
    with pytest.raises(NotASymlinkError) as info:
        fs.read_symlink(f"{d}/f.txt")
    assert info.value.errno == errno.EINVAL and isinstance(info.value, OSError)
    with pytest.raises(FileNotFoundError):
        fs.read_symlink(f"{d}/missing")


def test_reads_follow_absolute_relative_and_chains(mspace: lucidlink.Filespace, d: str) -> None:
    fs = mspace.fs
    fs.create_dir(f"{d}/sub")
    fs.write_file(f"{d}/sub/data.bin", b"payload")
    fs.create_symlink(f"{d}/sub/data.bin", f"{d}/abs")
    fs.create_symlink("sub/data.bin", f"{d}/rel")
    fs.create_symlink("../rel", f"{d}/sub/chain")  # chain -> rel -> data.bin
    fs.create_symlink("sub", f"{d}/subdir")  # a link to a directory
    for path in ("abs", "rel", "sub/chain", "subdir/data.bin", "subdir/chain"):
        assert fs.read_file(f"{d}/{path}") == b"payload", path
        with fs.open(f"{d}/{path}", "rb") as f:
            assert f.read(3) == b"pay"
        assert fs.file_exists(f"{d}/{path}") and not fs.dir_exists(f"{d}/{path}")
    assert fs.dir_exists(f"{d}/subdir") and not fs.file_exists(f"{d}/subdir")
    # Writing through a link writes its target.
    with fs.open(f"{d}/rel", "wb") as f:
        f.write(b"rewritten")
    mspace.sync_all()
    assert fs.read_file(f"{d}/sub/data.bin") == b"rewritten"
    assert fs.get_entry(f"{d}/rel").is_link()
    fs.write_file(f"{d}/subdir/new.txt", b"through a linked directory")
    assert fs.read_file(f"{d}/sub/new.txt") == b"through a linked directory"
    fs.truncate(f"{d}/rel", 3)  # as os.truncate: the target
    fs.truncate(f"{d}/subdir/new.txt", 7)
    assert fs.read_file(f"{d}/sub/data.bin") == b"rew" and fs.get_entry(f"{d}/rel").is_link()
    assert fs.read_file(f"{d}/sub/new.txt") == b"through"
    fs.write_file(f"{d}/sub/data.bin", b"rewritten")
    with pytest.raises(FileExistsError):
        fs.open(f"{d}/rel", "xb")  # O_EXCL on a link: EEXIST, as the builtin
    with fs.open(f"{d}/rel", "ab") as f:
        f.write(b"!")
    with fs.open(f"{d}/rel", "r+b") as f:
        f.write(b"R")
    assert fs.read_file(f"{d}/sub/data.bin") == b"Rewritten!"
    with pytest.raises(FileExistsError, match="symbolic link"):
        fs.create_dir(f"{d}/rel", exist_ok=False)
    # Delete, move and copy act on the link.
    fs.copy_file(f"{d}/rel", f"{d}/rel-copy")
    assert fs.read_symlink(f"{d}/rel-copy") == "sub/data.bin"
    fs.move(f"{d}/abs", f"{d}/sub/abs-moved")
    assert fs.read_symlink(f"{d}/sub/abs-moved") == f"{d}/sub/data.bin"
    fs.delete(f"{d}/rel")
    assert not fs.file_exists(f"{d}/rel") and fs.read_file(f"{d}/sub/data.bin") == b"Rewritten!"


def test_loops_dangling_and_escapes(mspace: lucidlink.Filespace, d: str) -> None:
    fs = mspace.fs
    fs.create_symlink(f"{d}/b", f"{d}/a")
    fs.create_symlink("a", f"{d}/b")
    for call in (lambda: fs.read_file(f"{d}/a"), lambda: fs.open(f"{d}/a", "rb"),
                 lambda: fs.open(f"{d}/a", "wb")):
        with pytest.raises(TooManyLinksError) as info:
            call()
        assert info.value.errno == errno.ELOOP and isinstance(info.value, OSError)
        assert isinstance(info.value, FilespaceError)
    assert not fs.file_exists(f"{d}/a")  # as os.path.exists
    fs.write_file(f"{d}/end", b"e")
    fs.create_symlink(f"{d}/end", f"{d}/c0")
    for i in range(1, 41):
        fs.create_symlink(f"{d}/c{i - 1}", f"{d}/c{i}")
    assert fs.read_file(f"{d}/c39") == b"e"  # 40 links
    with pytest.raises(OSError) as too_long:
        fs.read_file(f"{d}/c40")  # 41
    assert too_long.value.errno == errno.ELOOP
    fs.create_symlink("gone", f"{d}/dangling")
    with pytest.raises(FileNotFoundError) as missing:
        fs.read_file(f"{d}/dangling")
    assert f"{d}/dangling" in str(missing.value) and "'gone'" in str(missing.value)
    with pytest.raises(FileNotFoundError):
        fs.open(f"{d}/dangling", "wb")
    assert not fs.file_exists(f"{d}/dangling") and fs.get_entry(f"{d}/dangling").is_link()
    for target in ("../../../x", "/../x", ".." + "/.." * d.count("/")):
        with pytest.raises(LinkOutsideFilespaceError, match="outside the filespace"):
            fs.create_symlink(target, f"{d}/escape")
    with pytest.raises(ValueError):
        fs.create_symlink("../..", f"{d}/escape")
    assert not fs.file_exists(f"{d}/escape")


def test_a_read_only_token_cannot_create_links(mhub: SdkHub, mspace: lucidlink.Filespace, d: str) -> None:
    with lucidlink.create_daemon(hub_url=mhub.url) as daemon:
        ws = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=mhub.read_only_token))
        with ws.link_filespace(name="small") as reader:
            with pytest.raises(PermissionError):
                reader.fs.create_symlink("/x", f"{d}/ro")
    assert not mspace.fs.file_exists(f"{d}/ro")


def test_a_second_client_sees_the_link(mhub: SdkHub, mspace: lucidlink.Filespace, d: str) -> None:
    mspace.fs.write_file(f"{d}/shared.txt", b"from one")
    with lucidlink.create_daemon(hub_url=mhub.url) as daemon:
        ws = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=mhub.token))
        with ws.link_filespace(name="small") as other:
            other.fs.create_symlink("shared.txt", f"{d}/from-two")
            other.sync_all()
            mspace.sync_all()
            assert mspace.fs.read_symlink(f"{d}/from-two") == "shared.txt"
            assert mspace.fs.read_file(f"{d}/from-two") == b"from one"
            assert other.fs.get_statistics().symlink_count >= 1


@pytest.mark.asyncio
async def test_the_async_face(afilespace: Any) -> None:
    fs = afilespace.fs
    await fs.create_dir("/a")
    await fs.write_file("/a/f", b"async")
    await fs.create_symlink("/a/f", "/l")
    assert await fs.read_symlink("/l") == "/a/f"
    assert (await fs.get_entry("/l")).is_link()
    assert await fs.read_file("/l") == b"async"
    async with fs.open("/l", "rb") as f:
        assert await f.read() == b"async"
    await fs.create_symlink("l2", "/l1")
    await fs.create_symlink("l1", "/l2")
    with pytest.raises(TooManyLinksError):
        await fs.read_file("/l1")
    with pytest.raises(LinkOutsideFilespaceError):
        await fs.create_symlink("../x", "/bad")
    assert [e.type for e in await fs.read_dir("/")] == ["dir", "link", "link", "link"]


@pytest.fixture
def llfs(mhub: SdkHub, mspace: lucidlink.Filespace) -> Iterator[LucidLinkFileSystem]:
    fs = LucidLinkFileSystem(token=mhub.token, hub_url=mhub.url, skip_instance_cache=True)
    try:
        yield fs
    finally:
        fs.close()


def test_fsspec(llfs: LucidLinkFileSystem, mspace: lucidlink.Filespace, d: str) -> None:
    mspace.fs.write_file(f"{d}/f.csv", b"a,b\n1,2\n")
    mspace.fs.create_symlink("f.csv", f"{d}/l.csv")
    mspace.fs.create_symlink("nowhere", f"{d}/dangling")
    mspace.sync_all()  # llfs is another daemon: close-to-open, plus this barrier
    base = f"lucidlink://demo/small{d}"
    info = llfs.info(f"{base}/l.csv")
    assert info["type"] == "link" and info["destination"] == "f.csv" and info["islink"] is True
    assert llfs.islink(f"{base}/l.csv") and not llfs.islink(f"{base}/f.csv")
    assert not llfs.islink(f"{base}/missing")
    assert llfs.lexists(f"{base}/dangling") and not llfs.exists(f"{base}/dangling")
    assert llfs.exists(f"{base}/l.csv") and not llfs.lexists(f"{base}/missing")
    listing = {i["name"].rsplit("/", 1)[1]: i for i in llfs.ls(base, detail=True)}
    assert listing["l.csv"]["type"] == "link" and listing["dangling"]["destination"] == "nowhere"
    assert llfs.cat(f"{base}/l.csv") == b"a,b\n1,2\n"
    with llfs.open(f"{base}/l.csv", "rb") as f:
        assert f.read() == b"a,b\n1,2\n"
    with pytest.raises(FileNotFoundError):
        llfs.cat(f"{base}/dangling")
