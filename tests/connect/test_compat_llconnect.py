"""What LucidLink's ``llconnect`` tool does, done with this SDK's blocking API.

``llconnect`` (LucidLink's public examples, ``tools/llconnect``) manages data stores
and linked files of a filespace. These scenarios do what each of its subcommands
does, written from its behaviour: every subcommand first asks
``are_data_stores_available()``; ``create-store`` names a store from its bucket and
checks ``get_data_store(name) is None``; ``list-stores`` and ``cleanup-stores``
count links and test each bucket with the credentials ``get_data_store`` hands an
admin; ``link`` passes ``checksum=""`` when none is given; ``unlink --all`` pages
through ``list_external_files(store, limit, cursor="")``; ``mirror`` lists the
bucket, skips an entry whose size matches (remembering ``entry.file_id_external``),
re-links one whose size changed, links new objects, then unlinks every linked file
under its path whose ``file_ids[i]`` it did not remember. A second mirror of an
unchanged bucket must change nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import yarl

import lucidlink
from lucidlink.exceptions import ConfigurationError, FilespaceError
from lucidlink.hub.s3 import client as s3
from tests.support.seaweed import ConnectHub, SeaweedS3

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


# -- the S3 side, as a tool with its own S3 client sees it ----------------------------------


def _target(info: lucidlink.DataStoreInfo) -> s3.S3Target:
    """The bucket as the tool reaches it: with the credentials the hub gave an admin."""
    return s3.S3Target(bucket=info.bucket_name, access_key=info.access_key, secret_key=info.secret_key,
                       region=info.region, endpoint=info.endpoint, virtual=info.use_virtual_addressing)


async def _get(target: s3.S3Target, method: str, **params: str) -> tuple[int, bytes]:
    url = yarl.URL(s3.presign(target, method, "", 60, params=params or None), encoded=True)
    async with aiohttp.ClientSession() as http, http.request(method, url) as resp:
        return resp.status, await resp.read()


def bucket_ok(info: lucidlink.DataStoreInfo) -> bool:
    """HeadBucket with the store's credentials (``list-stores``' status column)."""
    return asyncio.run(_get(_target(info), "HEAD"))[0] == 200


def list_objects(info: lucidlink.DataStoreInfo, prefix: str) -> Iterator[tuple[str, int, str]]:
    """``(key, size, etag)`` of every object under ``prefix``, page by page (ListObjectsV2)."""
    token = ""
    while True:
        params = {"list-type": "2", "prefix": prefix, "max-keys": "500"}
        if token:
            params["continuation-token"] = token
        status, body = asyncio.run(_get(_target(info), "GET", **params))
        assert status == 200, body
        root = ET.fromstring(body)
        for obj in root.iter(f"{_NS}Contents"):
            yield (obj.findtext(f"{_NS}Key") or "", int(obj.findtext(f"{_NS}Size") or 0),
                   (obj.findtext(f"{_NS}ETag") or "").strip('"'))
        if root.findtext(f"{_NS}IsTruncated") != "true":
            return
        token = root.findtext(f"{_NS}NextContinuationToken") or ""


def put_many(seaweed: SeaweedS3, objects: dict[str, bytes]) -> None:
    async def go() -> None:
        gate = asyncio.Semaphore(32)

        async def one(key: str, data: bytes) -> None:
            async with gate:
                await seaweed.put(key, data)

        await asyncio.gather(*(one(k, v) for k, v in objects.items()))

    asyncio.run(go())


# -- what the subcommands do, on this SDK ---------------------------------------------------


@pytest.fixture
def filespace(connect_hub: ConnectHub) -> Iterator[lucidlink.Filespace]:
    """Connected as llconnect connects: a sandboxed daemon, an admin token, ``link_filespace``."""
    daemon = lucidlink.create_daemon(sandboxed=True, hub_url=connect_hub.url)
    daemon.start()
    try:
        workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=connect_hub.admin))
        fsp = workspace.link_filespace(name="small")
        assert fsp.connect.are_data_stores_available() is True
        yield fsp
    finally:
        daemon.stop()


def store_name_for(bucket: str, region: str, endpoint: str) -> str:
    """A deterministic store name from the bucket's settings (as ``create-store`` makes one)."""
    digest = hashlib.sha256(f"{bucket}|{region}|{endpoint}".encode()).hexdigest()[:12]
    return f"ct-{bucket.replace('.', '-')[:24]}-{digest}"


def create_store(fsp: lucidlink.Filespace, seaweed: SeaweedS3, bucket: str | None = None,
                 name: str = "") -> str:
    bucket = bucket or seaweed.bucket
    name = name or store_name_for(bucket, seaweed.region, seaweed.endpoint)
    assert fsp.connect.get_data_store(name) is None
    fsp.connect.add_data_store(name, lucidlink.S3DataStoreConfig(
        access_key=seaweed.access_key, secret_key=seaweed.secret_key, bucket_name=bucket,
        region=seaweed.region, endpoint=seaweed.endpoint, use_virtual_addressing=False,  # --path-style
        url_expiration_minutes=10080))
    fsp.sync_all()
    return name


def only_store(fsp: lucidlink.Filespace) -> tuple[str, lucidlink.DataStoreInfo]:
    """The store of a filespace with one (``--store`` left out), with its credentials."""
    (store,) = fsp.connect.list_data_stores()
    info = fsp.connect.get_data_store(store.name)
    assert info is not None
    return store.name, info


def ensure_parent_dirs(fsp: lucidlink.Filespace, path: str) -> None:
    current = ""
    for part in [p for p in posixpath.dirname(path).split("/") if p]:
        current += "/" + part
        try:
            fsp.fs.create_dir(current)
        except FileExistsError:
            pass


def linked(fsp: lucidlink.Filespace, store: str, page_size: int | None = None) -> Iterator[tuple[int, str]]:
    """``(file id, path)`` of every file linked to ``store``, a page at a time."""
    cursor = ""
    while True:
        if page_size is None:
            page = fsp.connect.list_external_files(store, cursor=cursor)
        else:
            page = fsp.connect.list_external_files(store, limit=page_size, cursor=cursor)
        yield from zip(page.file_ids, page.file_paths, strict=True)
        if not page.has_more:
            return
        cursor = page.cursor or ""


def entry_or_none(fsp: lucidlink.Filespace, path: str) -> lucidlink.DirEntry | None:
    try:
        return fsp.fs.get_entry(path)
    except FileNotFoundError:
        return None


def mirror(fsp: lucidlink.Filespace, store: str, info: lucidlink.DataStoreInfo, base: str,
           prefix: str) -> Counter[str]:
    """Make ``base`` hold exactly the objects under ``prefix``; count what was done."""
    done: Counter[str] = Counter()
    seen: set[int] = set()
    for key, size, etag in list_objects(info, prefix):
        if key.endswith("/"):
            continue
        path = f"{base.rstrip('/')}/{key[len(prefix):]}"
        entry = entry_or_none(fsp, path)
        if entry is not None and entry.size == size:
            seen.add(entry.file_id_external)
            done["unchanged"] += 1
            continue
        if entry is not None:
            fsp.connect.unlink_file(path)
            done["updated"] += 1
        else:
            ensure_parent_dirs(fsp, path)
            done["added"] += 1
        fsp.connect.link_file(path, store, key, size=size, checksum=etag)
        again = entry_or_none(fsp, path)
        assert again is not None
        seen.add(again.file_id_external)
    for file_id, path in linked(fsp, store, page_size=1000):
        if (path == base or path.startswith(base.rstrip("/") + "/")) and file_id not in seen:
            fsp.connect.unlink_file(path)
            done["removed"] += 1
    if done["added"] or done["updated"] or done["removed"]:
        fsp.sync_all()
    return done


# -- scenarios ------------------------------------------------------------------------------


def test_entry_ids_are_lucidlinks_types(filespace: lucidlink.Filespace, seaweed: SeaweedS3) -> None:
    key = seaweed.prefix() + "one.csv"
    asyncio.run(seaweed.put(key, b"id\n1\n"))
    store = create_store(filespace, seaweed)
    filespace.fs.write_file("/plain.txt", b"plain")
    filespace.sync_all()
    plain = filespace.fs.get_entry("/plain.txt")
    assert isinstance(plain.file_id, str) and plain.file_id and plain.file_id_external == 0
    entry = filespace.connect.link_file("/one.csv", store, key)
    assert isinstance(entry.file_id, str) and isinstance(entry.file_id_external, int)
    assert entry.file_id_external > 0
    page = filespace.connect.list_external_files(store)
    assert page.file_ids == [entry.file_id_external] and page.file_paths == ["/one.csv"]
    assert filespace.fs.get_entry("/one.csv").file_id_external == entry.file_id_external
    assert [e.file_id_external for e in filespace.fs.read_dir("/") if e.name == "one.csv"] == [
        entry.file_id_external]
    filespace.fs.move("/one.csv", "/moved.csv")  # the id follows the file
    assert filespace.fs.get_entry("/moved.csv").file_id_external == entry.file_id_external
    assert filespace.connect.list_external_files(store).file_ids == [entry.file_id_external]


def test_store_subcommands(filespace: lucidlink.Filespace, seaweed: SeaweedS3) -> None:
    c = filespace.connect
    assert c.list_data_stores() == []  # list-stores: "No data stores registered."
    # create-store: a deterministic name, refused a second time (checked before adding).
    name = create_store(filespace, seaweed)
    assert name == store_name_for(seaweed.bucket, seaweed.region, seaweed.endpoint)
    with pytest.raises(AssertionError):
        create_store(filespace, seaweed)
    with pytest.raises(FileExistsError):
        c.add_data_store(name, lucidlink.S3DataStoreConfig(
            access_key=seaweed.access_key, secret_key=seaweed.secret_key, bucket_name=seaweed.bucket,
            region=seaweed.region, endpoint=seaweed.endpoint))
    second = create_store(filespace, seaweed, name="second")
    # list-stores: name, bucket, region, file count, and a HeadBucket with the store's keys.
    rows = [(s.name, s.bucket_name, s.region, c.count_external_files(s.name)) for s in c.list_data_stores()]
    assert sorted(rows) == sorted([(name, seaweed.bucket, seaweed.region, 0),
                                   ("second", seaweed.bucket, seaweed.region, 0)])
    for s in c.list_data_stores():
        info = c.get_data_store(s.name)
        assert info is not None and info.secret_key == seaweed.secret_key and not info.use_virtual_addressing
        assert bucket_ok(info)
    # rekey-store.
    c.rekey_data_store(second, new_access_key=seaweed.access_key, new_secret_key=seaweed.secret_key)
    filespace.sync_all()
    # remove-store: refused by the tool while files are linked; then removed.
    c.link_file("/r/x", second, "x", size=1, checksum="c")
    assert c.count_external_files(second) == 1
    c.unlink_file("/r/x")
    assert c.count_external_files(second) == 0
    c.remove_data_store(second)
    assert c.get_data_store(second) is None
    # cleanup-stores: an empty store whose bucket is gone is stale; a healthy empty one stays
    # unless --empty; a store with files always stays.
    stale_bucket = f"stale-{uuid.uuid4().hex[:10]}"
    asyncio.run(seaweed.create_bucket(stale_bucket))
    stale = create_store(filespace, seaweed, bucket=stale_bucket)
    healthy = create_store(filespace, seaweed, name="healthy")
    c.link_file("/keep/x", name, "x", size=1, checksum="c")
    status, body = asyncio.run(seaweed._send("DELETE", seaweed.url("DELETE", "", stale_bucket)))
    assert status in (200, 204), body

    def cleanup(include_empty: bool) -> list[str]:
        doomed = []
        for s in c.list_data_stores():
            info = c.get_data_store(s.name)
            assert info is not None
            if c.count_external_files(s.name) == 0 and (include_empty or not bucket_ok(info)):
                doomed.append(s.name)
        for n in doomed:
            c.remove_data_store(n)
        filespace.sync_all()
        return doomed

    assert cleanup(include_empty=False) == [stale]
    assert cleanup(include_empty=False) == []
    assert cleanup(include_empty=True) == [healthy]
    assert [s.name for s in c.list_data_stores()] == [name]


def test_link_and_unlink_subcommands(filespace: lucidlink.Filespace, seaweed: SeaweedS3) -> None:
    pre = seaweed.prefix()
    put_many(seaweed, {pre + "one.csv": b"id\n1\n", pre + "two.csv": b"id\n22\n"})
    create_store(filespace, seaweed)
    store, info = only_store(filespace)
    two_etag = next(e for k, _, e in list_objects(info, pre) if k.endswith("two.csv"))
    c, fs = filespace.connect, filespace.fs
    # link: the tool always passes checksum, "" when --checksum is not given.
    ensure_parent_dirs(filespace, "/data/in/one.csv")
    c.link_file("/data/in/one.csv", store, pre + "one.csv", size=None, checksum="")
    filespace.sync_all()
    assert fs.read_file("/data/in/one.csv") == b"id\n1\n"
    # link --size --checksum: trusted, no S3 call.
    c.link_file("/data/in/two.csv", store, pre + "two.csv", size=6, checksum=two_etag)
    assert fs.read_file("/data/in/two.csv") == b"id\n22\n"
    # link --size without --checksum: the tool says it needs one; so does the SDK, changing nothing.
    with pytest.raises(ConfigurationError, match="together"):
        c.link_file("/data/in/half.csv", store, pre + "two.csv", size=6, checksum="")
    assert not fs.file_exists("/data/in/half.csv")
    # unlink of one path: the tool refuses a directory by get_entry().is_dir() first.
    assert fs.get_entry("/data/in").is_dir()
    with pytest.raises(FilespaceError):
        c.unlink_file("/data/in")
    c.unlink_file("/data/in/one.csv")
    filespace.sync_all()
    assert not fs.file_exists("/data/in/one.csv") and asyncio.run(seaweed.get(pre + "one.csv"))
    # unlink --all under a path: page through the store's links, unlink those under it.
    c.link_files([{"file_path": f"/data/bulk/{i:03d}", "data_store_name": store, "object_id": f"k{i}",
                   "size": 1, "checksum": "c"} for i in range(250)])
    c.link_file("/elsewhere/k", store, "k", size=1, checksum="c")
    under = [p for _, p in linked(filespace, store) if p.startswith("/data/")]
    assert len(under) == 251
    for p in under:
        c.unlink_file(p)
    filespace.sync_all()
    assert [p for _, p in linked(filespace, store)] == ["/elsewhere/k"]
    assert c.count_external_files(store) == 1


def test_mirror_round_trip_of_a_bucket(filespace: lucidlink.Filespace, seaweed: SeaweedS3,
                                       metadata_url: str | None) -> None:
    # 1,100 objects cross the bucket listing's 1,000-key pages; that listing is the same
    # whatever the metadata store, so on PostgreSQL (a link is an fsync'd transaction,
    # about 10 ms) 220 objects, which still span three pages of links, test the rest.
    n = 1100 if metadata_url is None else 220
    pre = seaweed.prefix()
    objects = {f"{pre}d{i % 11:02d}/obj{i:04d}.bin": f"object {i}\n".encode() for i in range(n)}
    put_many(seaweed, objects)
    store = create_store(filespace, seaweed)
    info = filespace.connect.get_data_store(store)
    assert info is not None
    # Another mirror's files in the same store are never touched.
    filespace.connect.link_file("/other/keep.bin", store, "whatever", size=1, checksum="c")

    assert mirror(filespace, store, info, "/mirror", pre) == Counter(added=n)
    ids = dict((p, i) for i, p in linked(filespace, store))
    assert len(ids) == n + 1 and len(set(ids.values())) == n + 1
    pages = sum(1 for _ in _pages(filespace, store))
    assert pages == n // 100 + 1  # n + 1 links in pages of 100 (LucidLink's default limit)
    assert sorted(filespace.fs.list_dir("/mirror")) == [f"d{i:02d}" for i in range(11)]
    assert filespace.fs.read_file("/mirror/d03/obj0003.bin") == b"object 3\n"

    # A second run changes nothing: every file is found by its external id.
    assert mirror(filespace, store, info, "/mirror", pre) == Counter(unchanged=n)
    assert dict((p, i) for i, p in linked(filespace, store)) == ids

    # The bucket changes: one object grows, one goes, one comes.
    put_many(seaweed, {f"{pre}d00/obj0000.bin": b"object 0, longer now\n", f"{pre}new/one.bin": b"new\n"})
    asyncio.run(seaweed.delete(f"{pre}d01/obj0001.bin"))
    assert mirror(filespace, store, info, "/mirror", pre) == Counter(
        unchanged=n - 2, updated=1, added=1, removed=1)
    assert filespace.fs.read_file("/mirror/d00/obj0000.bin") == b"object 0, longer now\n"
    assert not filespace.fs.file_exists("/mirror/d01/obj0001.bin")
    assert filespace.fs.read_file("/mirror/new/one.bin") == b"new\n"
    assert mirror(filespace, store, info, "/mirror", pre) == Counter(unchanged=n)
    assert filespace.connect.count_external_files(store) == n + 1
    assert filespace.fs.file_exists("/other/keep.bin")


def _pages(fsp: lucidlink.Filespace, store: str) -> Iterator[Any]:
    cursor = ""
    while True:
        page = fsp.connect.list_external_files(store, cursor=cursor)
        yield page
        if not page.has_more:
            return
        cursor = page.cursor or ""
