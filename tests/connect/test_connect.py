"""Connect through the async SDK, against a real hub and a real S3 server (SeaweedFS).

Data stores (add, list, get, rekey, remove), linking objects as files, reading them
with the normal read path, rights, failures that change nothing, and what happens
when an object changes in S3 after it was linked.
"""

from __future__ import annotations

import asyncio
import errno
import io
import os
from typing import Any

import pytest

from lucidlink.exceptions import (
    AccessDeniedError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    FilespaceError,
    IntegrityError,
    NotFoundError,
    PathExistsError,
    PathNotFoundError,
    ReadOnlyError,
    error_from_envelope,
)
from lucidlink.types import (
    DataStoreInfo,
    DataStoreKind,
    DataStoreRekeyState,
    DirEntry,
    ExternalFileLink,
    LinkedFilesResult,
)
from tests.support.seaweed import SMALL_BLOCK, ConnectHub, SeaweedS3, connect_client, store_config

pytestmark = pytest.mark.asyncio
B = SMALL_BLOCK


async def _store(fsp: Any, seaweed: SeaweedS3, name: str = "my-store", **overrides: Any) -> DataStoreInfo:
    return await fsp.connect.add_data_store(name, store_config(seaweed, **overrides))  # type: ignore[no-any-return]


# -- data stores -----------------------------------------------------------------------------


async def test_data_store_lifecycle(connect_hub: ConnectHub, seaweed: SeaweedS3) -> None:
    async with connect_client(connect_hub, connect_hub.admin) as fsp:
        connect = fsp.connect
        assert connect is fsp.connect
        assert await connect.list_data_stores() == []
        assert await connect.get_data_store("my store") is None
        added = await _store(fsp, seaweed, "my store", url_expiration_minutes=60)
        assert added.name == "my store" and added.kind is DataStoreKind.S3 and added.secret_key == ""
        assert (added.bucket_name, added.endpoint, added.region) == (seaweed.bucket, seaweed.endpoint, "us-east-1")
        assert added.url_expiration_minutes == 60 and added.use_virtual_addressing is False
        assert added.rekey_state is DataStoreRekeyState.NO_REKEY and len(added.key_id) == 16
        # The admin gets the secret back; listings never carry it.
        got = await connect.get_data_store("my store")
        assert got is not None and got.secret_key == seaweed.secret_key and got.key_id == added.key_id
        assert seaweed.secret_key not in repr(got) and seaweed.secret_key not in str(got)
        await _store(fsp, seaweed, "another_one-2")
        listed = await connect.list_data_stores()
        assert [s.name for s in listed] == ["another_one-2", "my store"]
        assert all(s.secret_key == "" for s in listed)
        # Names are unique in the filespace.
        with pytest.raises(PathExistsError, match="already exists"):
            await _store(fsp, seaweed, "my store")
        # Rekey: the new keys are checked first; a bad one changes nothing.
        with pytest.raises(ConfigurationError) as bad:
            await connect.rekey_data_store("my store", new_access_key=seaweed.access_key, new_secret_key="wrong-secret")
        assert bad.value.details["field"] == "secret_key"
        assert (await connect.get_data_store("my store")).key_id == added.key_id  # type: ignore[union-attr]
        rekeyed = await connect.rekey_data_store("my store", new_access_key=seaweed.access_key,
                                                 new_secret_key=seaweed.secret_key)
        assert rekeyed.key_id != added.key_id and rekeyed.secret_key == ""
        assert rekeyed.rekey_state is DataStoreRekeyState.NO_REKEY  # rekeyed within the call
        await connect.remove_data_store("my store")
        assert await connect.get_data_store("my store") is None
        with pytest.raises(NotFoundError, match="another_one-2"):
            await connect.remove_data_store("my store")
        assert [s.name for s in await connect.list_data_stores()] == ["another_one-2"]


async def test_are_data_stores_available(connect_hub: ConnectHub, seaweed: SeaweedS3,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # Any token that may use the filespace may ask, before any store exists.
    for token in (connect_hub.admin, connect_hub.writer, connect_hub.reader):
        async with connect_client(connect_hub, token) as fsp:
            assert await fsp.connect.are_data_stores_available() is True
    async with connect_client(connect_hub, connect_hub.admin) as fsp:
        await _store(fsp, seaweed)
        assert await fsp.connect.are_data_stores_available() is True

        # A hub without Connect endpoints (an older one) answers route_not_found: False.
        async def no_connect(method: str, suffix: str, **kw: Any) -> Any:
            raise error_from_envelope(404, {"error": {"code": "route_not_found", "message": "no route"}})

        monkeypatch.setattr(fsp.connect, "_call", no_connect)
        assert await fsp.connect.are_data_stores_available() is False

        # Anything else is an error, not an answer.
        async def refused(method: str, suffix: str, **kw: Any) -> Any:
            raise error_from_envelope(401, {"error": {"code": "unauthenticated", "message": "revoked"}})

        monkeypatch.setattr(fsp.connect, "_call", refused)
        with pytest.raises(AuthenticationError):
            await fsp.connect.are_data_stores_available()


async def test_add_data_store_checks_the_bucket_and_says_what_is_wrong(connect_hub: ConnectHub,
                                                                       seaweed: SeaweedS3) -> None:
    async with connect_client(connect_hub, connect_hub.admin) as fsp:
        cases = {
            "bucket_not_found": dict(bucket_name="no-such-bucket-here"),
            "invalid_access_key": dict(access_key="AKIAUNKNOWN0000000"),
            "signature_mismatch": dict(secret_key="not-the-secret"),
            "unreachable": dict(endpoint="http://127.0.0.1:9"),
        }
        fields = {"bucket_not_found": "bucket_name", "invalid_access_key": "access_key",
                  "signature_mismatch": "secret_key", "unreachable": "endpoint"}
        for reason, overrides in cases.items():
            with pytest.raises(ConfigurationError) as err:
                await _store(fsp, seaweed, "s", **overrides)
            assert err.value.details["reason"] == reason, err.value
            assert err.value.details["field"] == fields[reason]
            assert isinstance(err.value, ValueError)
            assert "not-the-secret" not in str(err.value)
        assert await fsp.connect.list_data_stores() == []


async def test_rights_admin_writer_reader(connect_hub: ConnectHub, seaweed: SeaweedS3) -> None:
    key = seaweed.prefix() + "r.csv"
    await seaweed.put(key, b"a,b\n1,2\n")
    async with connect_client(connect_hub, connect_hub.admin) as admin:
        await _store(admin, seaweed)
    async with connect_client(connect_hub, connect_hub.writer) as writer:
        c = writer.connect
        for call in (lambda: _store(writer, seaweed, "other"),
                     lambda: c.rekey_data_store("my-store", seaweed.access_key, seaweed.secret_key),
                     lambda: c.remove_data_store("my-store")):
            with pytest.raises(AccessDeniedError, match="not an admin token") as err:
                await call()
            assert isinstance(err.value, PermissionError)
        info = await c.get_data_store("my-store")
        assert info is not None and info.secret_key == "" and info.access_key == seaweed.access_key
        assert [s.secret_key for s in await c.list_data_stores()] == [""]
        # Linking is a write to the namespace: a read-write token may.
        entry = await c.link_file("/w/r.csv", "my-store", key)
        assert entry.file_id_external == int(entry.file_id) > 0
        assert (await c.list_external_files("my-store")).file_ids == [entry.file_id_external]
    async with connect_client(connect_hub, connect_hub.reader) as reader:
        c = reader.connect
        with pytest.raises(AccessDeniedError):
            await _store(reader, seaweed, "other")
        with pytest.raises(ReadOnlyError):
            await c.link_file("/w/again.csv", "my-store", key)
        with pytest.raises(ReadOnlyError):
            await c.unlink_file("/w/r.csv")
        assert (await c.get_data_store("my-store")).secret_key == ""  # type: ignore[union-attr]
        assert (await c.list_external_files("my-store")).file_paths == ["/w/r.csv"]
        assert await c.count_external_files("my-store") == 1
        assert await reader.fs.read_file("/w/r.csv") == b"a,b\n1,2\n"


# -- linking and reading ---------------------------------------------------------------------


SIZES = [0, 1, B - 1, B, B + 1, 5 * B + 7]


async def test_read_linked_objects_of_many_sizes(connect_hub: ConnectHub, seaweed: SeaweedS3) -> None:
    pre = seaweed.prefix()
    blobs = {size: os.urandom(size) for size in SIZES}
    for size, data in blobs.items():
        await seaweed.put(f"{pre}obj-{size}.bin", data)
    async with connect_client(connect_hub, connect_hub.admin) as fsp:
        await _store(fsp, seaweed)
        for size in SIZES:
            entry = await fsp.connect.link_file(f"/sizes/{size}.bin", "my-store", f"{pre}obj-{size}.bin")
            assert isinstance(entry, DirEntry) and entry.size == size and entry.is_file()
        await fsp.sync_all()
        listed = {e.name: e for e in await fsp.fs.read_dir("/sizes")}
        assert {n: e.size for n, e in listed.items()} == {f"{s}.bin": s for s in SIZES}
        assert all(e.type == "file" and e.file_id_external == int(e.file_id) for e in listed.values())
        for size, data in blobs.items():
            path = f"/sizes/{size}.bin"
            assert await fsp.fs.read_file(path) == data, size
            assert await fsp.fs.file_exists(path)
            # Ranged reads, across block boundaries and past the end.
            async with fsp.fs.open(path, "rb") as f:
                for start, n in ((0, 10), (B - 3, 7), (size // 2, B + 5), (size - 1, 10), (size + 5, 3)):
                    await f.seek(max(0, start))
                    assert await f.read(n) == data[max(0, start):max(0, start) + n], (size, start, n)
                await f.seek(0)
                chunks = []
                while chunk := await f.read(10_000):
                    chunks.append(chunk)
                assert b"".join(chunks) == data
                await f.seek(-min(1, size), io.SEEK_END)
                assert await f.read() == data[-1:]


async def test_reads_use_read_ahead_and_the_block_cache(connect_hub: ConnectHub, seaweed: SeaweedS3) -> None:
    key = seaweed.prefix() + "stream.bin"
    data = os.urandom(12 * B + 5)
    await seaweed.put(key, data)
    async with connect_client(connect_hub, connect_hub.admin) as fsp:
        await _store(fsp, seaweed)
        await fsp.connect.link_file("/stream.bin", "my-store", key)
        f = await fsp.fs.open("/stream.bin", "rb")
        assert await f.read(B) == data[:B]
        assert await f.read(B) == data[B:2 * B]
        assert f._ahead, "sequential reads start read-ahead of the next slots"
        assert await f.read() == data[2 * B:]
        await f.close()
        cache = fsp._link.services.cache
        cached = cache.size
        assert cached >= len(data)
        # Once the object is gone from S3, a re-read is served from the cache alone.
        await seaweed.delete(key)
        assert await fsp.fs.read_file("/stream.bin") == data
        assert cache.size == cached


async def test_link_with_size_and_checksum_makes_no_s3_call(connect_hub: ConnectHub, seaweed: SeaweedS3) -> None:
    pre = seaweed.prefix()
    data = os.urandom(3 * B + 1)
    etag = await seaweed.put(pre + "real.bin", data)
    async with connect_client(connect_hub, connect_hub.admin) as fsp:
        c = fsp.connect
        await _store(fsp, seaweed)
        # The object does not exist: with size+checksum the hub trusts the caller.
        ghost = await c.link_file("/ghost.bin", "my-store", pre + "missing.bin", size=1048576, checksum="abc123")
        assert ghost.size == 1048576
        with pytest.raises(IntegrityError, match="no longer exists") as err:
            await fsp.fs.read_file("/ghost.bin")
        assert err.value.path == "/ghost.bin" and "missing.bin" in str(err.value)
        # With the right size and ETag as checksum it reads like any other.
        await c.link_file("/real.bin", "my-store", pre + "real.bin", size=len(data), checksum=f'"{etag}"')
        assert await fsp.fs.read_file("/real.bin") == data
        # A checksum that is not an ETag is opaque: size is still checked on every read.
        await c.link_file("/opaque.bin", "my-store", pre + "real.bin", size=len(data), checksum="sha256:xyz")
        assert await fsp.fs.read_file("/opaque.bin") == data
        await c.link_file("/short.bin", "my-store", pre + "real.bin", size=len(data) - 1, checksum="v1")
        with pytest.raises(IntegrityError, match="changed in S3"):
            await fsp.fs.read_file("/short.bin")
        for bad in (dict(size=10), dict(checksum="x")):
            with pytest.raises(ConfigurationError, match="together"):
                await c.link_file("/half.bin", "my-store", pre + "real.bin", **bad)


async def test_empty_checksum_means_not_given(connect_hub: ConnectHub, seaweed: SeaweedS3) -> None:
    # LucidLink's SDK: link_file(..., size=None, checksum=""); llconnect passes checksum="" when
    # --checksum is not given, with or without --size.
    pre = seaweed.prefix()
    data = os.urandom(B + 3)
    etag = await seaweed.put(pre + "o.bin", data)
    async with connect_client(connect_hub, connect_hub.admin) as fsp:
        c = fsp.connect
        await _store(fsp, seaweed)
        entry = await c.link_file("/e.bin", "my-store", pre + "o.bin", size=None, checksum="")
        assert entry.size == len(data)  # the hub asked S3
        assert await fsp.fs.read_file("/e.bin") == data
        assert ExternalFileLink("/x", "my-store", "k", checksum="").checksum is None
        linked = await c.link_files([{"file_path": "/f.bin", "data_store_name": "my-store",
                                      "object_id": pre + "o.bin", "checksum": ""}])
        assert linked[0].size == len(data)
        # size without a checksum is still half an answer: refused, nothing linked.
        with pytest.raises(ConfigurationError, match="together") as err:
            await c.link_file("/half.bin", "my-store", pre + "o.bin", size=len(data), checksum="")
        assert isinstance(err.value, ValueError) and not await fsp.fs.file_exists("/half.bin")
        await c.link_file("/g.bin", "my-store", pre + "o.bin", size=len(data), checksum=etag)
        assert await fsp.fs.read_file("/g.bin") == data
        # On the wire "not given" is an absent checksum; the hub refuses "" as its schema says.
        for item in ({"checksum": ""}, {"checksum": "", "size": 3}):
            with pytest.raises(ConfigurationError, match="checksum"):
                await fsp._call("POST", "/connect/links", json={"links": [
                    {"path": "/wire.bin", "store": "my-store", "object_id": pre + "o.bin", **item}]})
        assert not await fsp.fs.file_exists("/wire.bin")


async def test_link_failures_change_nothing(connect_hub: ConnectHub, seaweed: SeaweedS3) -> None:
    pre = seaweed.prefix()
    await seaweed.put(pre + "a.txt", b"aaa")
    async with connect_client(connect_hub, connect_hub.admin) as fsp:
        c = fsp.connect
        await _store(fsp, seaweed)
        await fsp.fs.create_dir("/d")
        await fsp.fs.write_file("/d/native.txt", b"native")
        await c.link_file("/d/linked.txt", "my-store", pre + "a.txt")
        await fsp.sync_all()
        before = await fsp.fs.list_dir("/d")
        stats = await fsp.fs.get_statistics()
        for target in ("/d/native.txt", "/d/linked.txt", "/d"):
            with pytest.raises(FileExistsError, match="already exists"):
                await c.link_file(target, "my-store", pre + "a.txt")
        with pytest.raises(NotFoundError, match="no data store named 'nope'") as err:
            await c.link_file("/d/x.txt", "nope", pre + "a.txt")
        assert isinstance(err.value, LookupError) and "my-store" in str(err.value)
        with pytest.raises(NotFoundError, match="does not exist in bucket") as err:
            await c.link_file("/new/dir/x.txt", "my-store", pre + "missing.txt")
        assert err.value.details["reason"] == "object_not_found"
        assert not await fsp.fs.dir_exists("/new")  # parents are not left behind
        with pytest.raises(NotADirectoryError):
            await c.link_file("/d/native.txt/under", "my-store", pre + "a.txt")
        # A batch is one transaction: one bad link and none of it lands.
        with pytest.raises(FileExistsError):
            await c.link_files([
                ExternalFileLink("/d/ok1.txt", "my-store", pre + "a.txt"),
                {"file_path": "/d/ok2.txt", "data_store_name": "my-store", "object_id": pre + "a.txt",
                 "size": 3, "checksum": "c"},
                ExternalFileLink("/d/native.txt", "my-store", pre + "a.txt", size=3, checksum="c"),
            ])
        assert await fsp.fs.list_dir("/d") == before
        assert await fsp.fs.get_statistics() == stats
        assert await c.count_external_files("my-store") == 1
        # Unlinking a regular file is refused; unlinking a link leaves the object alone.
        with pytest.raises(BadRequestError, match="not a file linked"):
            await c.unlink_file("/d/native.txt")
        with pytest.raises(PathNotFoundError):
            await c.unlink_file("/d/none.txt")
        await c.unlink_file("/d/linked.txt")
        assert await fsp.fs.list_dir("/d") == ["native.txt"]
        assert await seaweed.get(pre + "a.txt") == b"aaa"


async def test_linked_files_are_read_only_but_move_delete_copy_work(connect_hub: ConnectHub,
                                                                   seaweed: SeaweedS3) -> None:
    key = seaweed.prefix() + "ro.bin"
    data = os.urandom(2 * B + 9)
    await seaweed.put(key, data)
    async with connect_client(connect_hub, connect_hub.admin) as fsp:
        fs, c = fsp.fs, fsp.connect
        await _store(fsp, seaweed)
        moved_id = (await c.link_file("/ro/f.bin", "my-store", key)).file_id_external
        for mode in ("wb", "ab", "r+b", "w+b", "a+b"):
            with pytest.raises(ReadOnlyError, match="read-only") as err:
                await fs.open("/ro/f.bin", mode)
            assert isinstance(err.value, PermissionError) and err.value.errno == errno.EROFS
        with pytest.raises(FileExistsError):
            await fs.open("/ro/f.bin", "xb")
        with pytest.raises(ReadOnlyError):
            await fs.truncate("/ro/f.bin", 1)
        with pytest.raises(ReadOnlyError, match="exclusively"):
            await fs.open("/ro/f.bin", "rb", lock_type="exclusive")
        async with fs.open("/ro/f.bin", "rb", lock_type="shared") as f:
            assert await f.read(5) == data[:5]
        # A write that reaches the hub anyway (raw commit) is refused there too.
        with pytest.raises(ReadOnlyError):
            await fsp._call("POST", "/commit", json={"path": "/ro/f.bin", "size": 0, "blocks": []})
        # Copy is a second link to the same object; move keeps the link; delete never touches S3.
        await fs.copy_file("/ro/f.bin", "/ro/copy.bin")
        await fs.move("/ro/f.bin", "/ro/moved.bin")
        assert await fs.read_file("/ro/moved.bin") == data
        assert await fs.read_file("/ro/copy.bin") == data
        entries = {e.name: e for e in await fs.read_dir("/ro")}
        assert set(entries) == {"copy.bin", "moved.bin"}
        assert entries["moved.bin"].file_id_external == moved_id  # the move kept the link's id
        assert entries["copy.bin"].file_id_external not in (0, moved_id)  # a second link of its own
        listed = await c.list_external_files("my-store")
        assert sorted(listed.file_ids) == sorted(e.file_id_external for e in entries.values())
        assert sorted((await c.list_external_files("my-store")).file_paths) == ["/ro/copy.bin", "/ro/moved.bin"]
        await fs.delete("/ro/moved.bin")
        await fs.delete_dir("/ro", recursive=True)
        assert await c.count_external_files("my-store") == 0
        assert await seaweed.get(key) == data
        stats = await fs.get_statistics()
        assert stats.external_files_count == 0 and stats.external_files_size == 0


async def test_changed_object_fails_the_read_and_cache_follows_the_etag(connect_hub: ConnectHub,
                                                                        seaweed: SeaweedS3) -> None:
    key = seaweed.prefix() + "changing.bin"
    old = os.urandom(4 * B)
    new = os.urandom(4 * B)
    await seaweed.put(key, old)
    async with connect_client(connect_hub, connect_hub.admin) as fsp:
        fs, c = fsp.fs, fsp.connect
        await _store(fsp, seaweed)
        await c.link_file("/c.bin", "my-store", key)
        f = await fs.open("/c.bin", "rb")
        await f.seek(0)
        assert await f.read(10) == old[:10]  # slot 0 is now cached (a random read: no read-ahead)
        await seaweed.put(key, new)  # same size, new content
        await f.seek(3 * B)
        with pytest.raises(IntegrityError, match="changed in S3") as err:
            await f.read(10)
        assert err.value.path == "/c.bin" and "changing.bin" in str(err.value)
        await f.close()
        # Bytes cached under the old ETag still read as the old version, never mixed with new ones.
        async with fs.open("/c.bin", "rb") as f:
            assert await f.read(10) == old[:10]
            with pytest.raises(IntegrityError):
                await f.read()
        # Relinked, it reads the new version, not stale cached bytes of the old one.
        await c.unlink_file("/c.bin")
        await c.link_file("/c.bin", "my-store", key)
        async with fs.open("/c.bin", "rb") as f:
            assert await f.read(10) == new[:10]
        await c.link_file("/c-whole.bin", "my-store", key)
        assert await fs.read_file("/c-whole.bin") == new
        # Cached ranges belong to the object's version, not to a link: all of it is cached now.
        await seaweed.delete(key)
        assert await fs.read_file("/c.bin") == new
        # A size change is caught too (the Content-Range total), and a deleted object.
        key2 = key + ".2"
        await seaweed.put(key2, old)
        await c.link_file("/d.bin", "my-store", key2)
        await seaweed.put(key2, old + b"more")
        with pytest.raises(IntegrityError, match="changed in S3"):
            async with fs.open("/d.bin", "rb") as f:
                await f.seek(2 * B)
                await f.read(1)
        await seaweed.delete(key2)
        with pytest.raises(IntegrityError, match="no longer exists|changed in S3"):
            async with fs.open("/d.bin", "rb") as f:
                await f.seek(B)
                await f.read(1)


async def test_rekey_is_seen_by_open_handles(connect_hub: ConnectHub, seaweed: SeaweedS3) -> None:
    key = seaweed.prefix() + "rk.bin"
    data = os.urandom(3 * B)
    await seaweed.put(key, data)
    async with connect_client(connect_hub, connect_hub.admin) as fsp, \
            connect_client(connect_hub, connect_hub.admin) as other:
        await _store(fsp, seaweed)
        await fsp.connect.link_file("/rk.bin", "my-store", key)
        # Keys that may list the bucket but not read objects: reads are refused, clearly.
        await fsp.connect.rekey_data_store("my-store", seaweed.reader_access_key, seaweed.reader_secret_key)
        f = await other.fs.open("/rk.bin", "rb")
        with pytest.raises(AccessDeniedError, match="refused to read") as err:
            await f.read(5)
        assert isinstance(err.value, PermissionError)
        # Rekeyed back: the same open handle gets a fresh URL after the 403 and reads again.
        await fsp.connect.rekey_data_store("my-store", seaweed.access_key, seaweed.secret_key)
        await f.seek(2 * B)
        assert await f.read(5) == data[2 * B:2 * B + 5]
        await f.close()


# -- listing, counting, removing ---------------------------------------------------------------


async def test_pagination_is_stable_under_concurrent_links_and_unlinks(connect_hub: ConnectHub,
                                                                       seaweed: SeaweedS3) -> None:
    async with connect_client(connect_hub, connect_hub.admin) as fsp:
        c = fsp.connect
        await _store(fsp, seaweed)
        await _store(fsp, seaweed, "other")
        stable = [f"/p/keep-{i:03d}" for i in range(40)]
        doomed = [f"/p/gone-{i:03d}" for i in range(20)]
        links = [ExternalFileLink(p, "my-store", p[3:], size=1, checksum="c") for p in stable + doomed]
        await c.link_files(sorted(links, key=lambda lk: lk.file_path))  # keep and gone interleave by id
        await c.link_file("/p/elsewhere", "other", "x", size=1, checksum="c")
        assert await c.count_external_files("my-store") == 60
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = await c.list_external_files("my-store", limit=7, cursor=cursor)
            assert isinstance(page, LinkedFilesResult) and len(page.file_paths) <= 7
            assert len(page.file_ids) == len(page.file_paths) == len(page.object_ids)
            seen += page.file_paths
            pages += 1
            # Between pages: unlink some, link new ones, move one that was not listed yet.
            for _ in range(2):
                if doomed:
                    await c.unlink_file(doomed.pop())
            await c.link_file(f"/p/new-{pages:03d}", "my-store", "n", size=1, checksum="c")
            if pages == 2:
                await fsp.fs.move("/p/keep-039", "/p/renamed-039")
            if not page.has_more:
                assert page.cursor is None
                break
            cursor = page.cursor
        assert len(seen) == len(set(seen)), "a file was listed twice"
        assert set(stable[:-1]) <= set(seen) and "/p/renamed-039" in seen
        assert "/p/elsewhere" not in seen
        total = await c.count_external_files("my-store")
        assert total == 40 + len(doomed) + pages
        with pytest.raises(BadRequestError, match="cursor"):
            await c.list_external_files("my-store", cursor="not-a-cursor")
        with pytest.raises(NotFoundError):
            await c.count_external_files("missing")
        with pytest.raises(ConfigurationError):
            await c.list_external_files("my-store", limit=0)


async def test_list_external_files_defaults_are_lucidlinks(connect_hub: ConnectHub, seaweed: SeaweedS3) -> None:
    # LucidLink's SDK: list_external_files(data_store_name, limit=100, cursor="").
    async with connect_client(connect_hub, connect_hub.admin) as fsp:
        c = fsp.connect
        await _store(fsp, seaweed)
        await c.link_files([ExternalFileLink(f"/d/{i:03d}", "my-store", f"k{i}", size=1, checksum="c")
                            for i in range(150)])
        first = await c.list_external_files("my-store")
        assert len(first.file_paths) == 100 and first.has_more and first.cursor
        assert await c.list_external_files("my-store", cursor="") == first
        assert await c.list_external_files("my-store", cursor=None) == first
        rest = await c.list_external_files("my-store", cursor=first.cursor)
        assert len(rest.file_paths) == 50 and not rest.has_more
        assert sorted(first.file_paths + rest.file_paths) == [f"/d/{i:03d}" for i in range(150)]
        with pytest.raises(ConfigurationError, match="cursor"):
            await c.list_external_files("my-store", cursor=5)  # type: ignore[arg-type]


async def test_remove_store_with_links_needs_force(connect_hub: ConnectHub, seaweed: SeaweedS3) -> None:
    key = seaweed.prefix() + "k.bin"
    await seaweed.put(key, b"kkk")
    async with connect_client(connect_hub, connect_hub.admin) as fsp:
        c = fsp.connect
        await _store(fsp, seaweed)
        await c.link_files([ExternalFileLink(f"/rm/{i}.bin", "my-store", key) for i in range(3)])
        await fsp.fs.write_file("/rm/native.bin", b"n")
        with pytest.raises(FilespaceError, match="3 linked files") as err:
            await c.remove_data_store("my-store")
        assert err.value.details["linked_files"] == 3 and "force=True" in str(err.value)
        assert (await c.get_data_store("my-store")) is not None
        seq_before = fsp._seq
        await c.remove_data_store("my-store", force=True)
        assert await c.get_data_store("my-store") is None
        await fsp.sync_all()
        assert fsp._seq >= seq_before + 3  # each unlink is in the journal
        assert await fsp.fs.list_dir("/rm") == ["native.bin"]
        assert await seaweed.get(key) == b"kkk"
        assert (await fsp.fs.get_statistics()).external_files_count == 0


async def test_statistics_count_external_files(connect_hub: ConnectHub, seaweed: SeaweedS3) -> None:
    pre = seaweed.prefix()
    await seaweed.put(pre + "s1", b"x" * 100)
    async with connect_client(connect_hub, connect_hub.admin) as fsp:
        c = fsp.connect
        await _store(fsp, seaweed)
        await fsp.fs.write_file("/native.bin", b"y" * 10)
        await c.link_file("/e/s1", "my-store", pre + "s1")
        await c.link_file("/e/s2", "my-store", pre + "s2", size=5000, checksum="c")
        stats = await fsp.fs.get_statistics()
        assert (stats.external_files_count, stats.external_files_size) == (2, 5100)
        assert (stats.file_count, stats.data_size) == (1, 10)
        size = await fsp.fs.get_size()
        assert (size.entries, size.external_files_count) == (4, 2)
        await fsp.fs.move("/e/s2", "/s2")
        await c.unlink_file("/e/s1")
        stats = await fsp.fs.get_statistics()
        assert (stats.external_files_count, stats.external_files_size) == (1, 5000)


async def test_bulk_link_is_one_cheap_call_per_batch(connect_hub: ConnectHub, seaweed: SeaweedS3) -> None:
    async with connect_client(connect_hub, connect_hub.admin) as fsp:
        c = fsp.connect
        await _store(fsp, seaweed)
        links = [ExternalFileLink(f"/bulk/d{i % 10}/f{i:05d}.csv", "my-store", f"data/f{i:05d}.csv",
                                  size=i, checksum=f"{i:032x}") for i in range(3000)]
        loop = asyncio.get_running_loop()
        started = loop.time()
        entries = await c.link_files(links)
        elapsed = loop.time() - started
        assert len(entries) == 3000 and entries[7].size == 7
        assert elapsed < 20, elapsed
        assert await c.count_external_files("my-store") == 3000
        assert len(await fsp.fs.list_dir("/bulk/d3")) == 300


@pytest.mark.slow
async def test_bulk_link_100k(connect_hub: ConnectHub, seaweed: SeaweedS3) -> None:
    async with connect_client(connect_hub, connect_hub.admin) as fsp:
        c = fsp.connect
        await _store(fsp, seaweed)
        links = [ExternalFileLink(f"/big/f{i:06d}", "my-store", f"o/{i}", size=1, checksum="c")
                 for i in range(100_000)]
        loop = asyncio.get_running_loop()
        started = loop.time()
        await c.link_files(links)
        print(f"linked 100,000 objects in {loop.time() - started:.1f}s")
        assert await c.count_external_files("my-store") == 100_000


async def test_linked_file_visible_to_another_client(connect_hub: ConnectHub, seaweed: SeaweedS3) -> None:
    key = seaweed.prefix() + "shared.csv"
    await seaweed.put(key, b"id\n1\n")
    async with connect_client(connect_hub, connect_hub.admin) as one, \
            connect_client(connect_hub, connect_hub.writer) as two:
        await _store(one, seaweed)
        await one.connect.link_file("/proj1/dataset1/file1.csv", "my-store", key)
        await one.sync_all()
        await two.sync_all()
        entry = await two.fs.get_entry("/proj1/dataset1/file1.csv")
        assert entry.file_id_external == int(entry.file_id) > 0 and entry.size == 5
        assert await two.fs.read_file("/proj1/dataset1/file1.csv") == b"id\n1\n"
