"""Nothing written and closed is ever lost, on the hub's side.

* a block is known (present, committable) only once its bytes are durable; a failed
  disk write leaves nothing behind;
* a commit's block lengths must be the uploaded ones;
* the GC never breaks a reader: a block goes only after it has been unreferenced for
  the grace period (counted from the overwrite, truncate or delete), and the grace is
  never shorter than the signed-URL lifetime;
* SQLite commits are fsynced (``synchronous=FULL``) unless the operator opts out;
* a failed ``COMMIT`` rolls back and the writer keeps serving;
* the data dir is private (directories 0700, files 0600) whatever the umask.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import lucidlink.aio
from lucidlink.exceptions import ConfigurationError
from lucidlink.hub import disk, secrets_box
from lucidlink.hub.api.app_keys import HUB_KEY
from lucidlink.hub.cli import build_parser, serve_settings
from lucidlink.hub.config import SQLITE_SYNCHRONOUS_ENV, HubSettings
from lucidlink.hub.core import files
from lucidlink.hub.embedded import EmbeddedHub
from lucidlink.hub.store.sqlite import SqliteStore
from tests.conftest import RunningHub
from tests.support.hubfixtures import (
    SMALL_BLOCK,
    Api,
    block_exists,
    block_file,
    digest_of,
    expect_error,
    hub_state,
    random_bytes,
    snapshot,
)
from tests.support.pgfixture import with_block_stores

pytest_plugins = ["tests.support.hubfixtures"]

MONTH_NS = 30 * 86400 * 10**9


def block_row(hub: RunningHub, fs: str, digest: str) -> Any:
    return hub.hub.write(lambda tx: tx.one(
        "SELECT state, length, last_seen FROM blocks WHERE filespace_id = ? AND hash = ?",
        (fs, digest),
    ))


def age_blocks(
    hub: RunningHub | EmbeddedHub, seconds: float, digests: list[str] | None = None
) -> None:
    """Move blocks' ``last_seen`` back by ``seconds`` (time passing, for the GC)."""
    embedded = hub if isinstance(hub, EmbeddedHub) else hub.hub
    shift = int(seconds * 1e9)
    if digests is None:
        embedded.write(lambda tx: tx.execute(
            "UPDATE blocks SET last_seen = last_seen - ?", (shift,)))
        return
    for digest in digests:
        embedded.write(lambda tx, d=digest: tx.execute(
            "UPDATE blocks SET last_seen = last_seen - ? WHERE hash = ?", (shift, d)))


def one_block(path: str, digest: str, length: int, size: int | None = None) -> dict[str, Any]:
    """A commit of ``path`` made of one block in slot 0."""
    return {"path": path, "size": length if size is None else size,
            "blocks": [{"index": 0, "hash": digest, "length": length}]}


def ttl_of(hub: RunningHub) -> float:
    return float(hub_state(hub).settings.url_ttl_seconds)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- 1. a block is known only once its bytes are durable --------------------------------


@pytest.mark.asyncio
async def test_a_failed_disk_write_leaves_no_block(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random_bytes(3000)
    digest = digest_of(data)
    url = await api.block_url(digest, "put")
    store = hub_state(api.hub).blocks

    def disk_full(filespace_id: str, digest: str, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "_write", disk_full)
    status, body = await api.url("PUT", url, data=data)
    expect_error(status, body, 503, "hub_unavailable", digest[:12], "No space left on device",
                 "nothing was stored")
    assert block_row(api.hub, api.fs, digest) is None
    assert not block_file(api.hub, api.fs, digest).exists()
    # Not "present", and a commit naming it is refused.
    body = await api.ok("POST", api.p("blocks/urls"), json={"op": "put", "hashes": [digest]})
    assert body["present"] == [] and list(body["urls"]) == [digest]
    await api.fail("POST", api.p("commit"), 409, "block_missing",
                   json=one_block("/f", digest, 3000))
    assert not await api.exists("/f")
    # Once the disk recovers, the retried upload lands.
    monkeypatch.undo()
    status, _ = await api.url("PUT", url, data=data)
    assert status == 201 and block_row(api.hub, api.fs, digest)["state"] == "live"
    await api.ok("POST", api.p("commit"), json=one_block("/f", digest, 3000))
    assert await api.read("/f") == data


@pytest.mark.asyncio
async def test_the_row_goes_live_only_after_bytes_and_directory_are_synced(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random_bytes(2000)
    digest = digest_of(data)
    url = await api.block_url(digest, "put")
    final = block_file(api.hub, api.fs, digest)
    events: list[tuple[str, str, Any]] = []

    def state() -> Any:
        row = block_row(api.hub, api.fs, digest)  # from the upload's worker thread
        return row["state"] if row else None

    real_write, real_fsync_dir = disk.write_synced, disk.fsync_dir

    def write_synced(path: Path, payload: Any, *writer: Any) -> None:
        real_write(path, payload, *writer)
        events.append(("file", str(path.parent), state()))

    def fsync_dir(path: Path) -> None:
        real_fsync_dir(path)
        events.append(("dir", str(path), state()))

    monkeypatch.setattr(disk, "write_synced", write_synced)
    monkeypatch.setattr(disk, "fsync_dir", fsync_dir)
    known = api.hub.hub.write(files.known_blocks, api.fs, [digest])
    assert known == set()
    status, _ = await api.url("PUT", url, data=data)
    assert status == 201
    # The bytes were fsynced, then the directory holding the new name (and, as the
    # prefix directory was new, its parent): all while the block was only 'uploading'.
    assert ("file", str(final.parent), "uploading") in events
    assert events[-1] == ("dir", str(final.parent), "uploading")
    assert ("dir", str(final.parent.parent), "uploading") in events
    assert block_row(api.hub, api.fs, digest)["state"] == "live"
    assert api.hub.hub.write(files.known_blocks, api.fs, [digest]) == {digest}


@pytest.mark.asyncio
async def test_an_upload_whose_row_the_gc_took_meanwhile_is_told_to_retry(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random_bytes(1000)
    digest = digest_of(data)
    url = await api.block_url(digest, "put")
    store = hub_state(api.hub).blocks
    real = store._write

    def stalled_past_the_grace(filespace_id: str, d: str, payload: bytes) -> None:
        real(filespace_id, d, payload)
        # The GC collected the stale 'uploading' row (and maybe the bytes) meanwhile.
        api.hub.hub.write(lambda tx: tx.execute("DELETE FROM blocks WHERE hash = ?", (d,)))

    monkeypatch.setattr(store, "_write", stalled_past_the_grace)
    status, body = await api.url("PUT", url, data=data)
    expect_error(status, body, 503, "hub_unavailable", digest[:12], "retry")
    assert block_row(api.hub, api.fs, digest) is None
    monkeypatch.undo()
    status, _ = await api.url("PUT", url, data=data)  # the retry reuses the bytes on disk
    assert status == 201 and block_row(api.hub, api.fs, digest)["state"] == "live"


@pytest.mark.asyncio
async def test_gc_collects_stale_uploads_but_not_fresh_ones(api: Api) -> None:
    stale, fresh = "d" * 64, "e" * 64
    for digest in (stale, fresh):
        api.hub.hub.write(files.begin_upload, api.fs, digest, 10)
        path = block_file(api.hub, api.fs, digest)  # a SIGKILLed upload got as far as the rename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"0123456789")
    age_blocks(api.hub, ttl_of(api.hub) + 60, [stale])
    assert await api.gc(grace=ttl_of(api.hub)) == 1
    assert block_row(api.hub, api.fs, stale) is None
    assert not block_file(api.hub, api.fs, stale).exists()
    assert block_row(api.hub, api.fs, fresh)["state"] == "uploading"
    assert block_file(api.hub, api.fs, fresh).exists()


# -- 2. commit lengths are the uploaded lengths -----------------------------------------


@pytest.mark.asyncio
@with_block_stores
@pytest.mark.parametrize("claimed", [999, 1001])
async def test_a_commit_with_a_wrong_block_length_is_refused(api: Api, claimed: int) -> None:
    digest = await api.upload(random_bytes(1000))
    before = snapshot(api.hub)
    err = await api.fail("POST", api.p("commit"), 400, "bad_request", digest, "1000", str(claimed),
                         json=one_block("/f", digest, claimed))
    assert err["details"]["block"] == digest
    assert snapshot(api.hub) == before
    # The same hash under two lengths in one commit: one of them is wrong.
    twice = [{"index": 0, "hash": digest, "length": 1000},
             {"index": 1, "hash": digest, "length": claimed}]
    await api.fail("POST", api.p("commit"), 400, "bad_request", digest,
                   json={"path": "/g", "size": 5 * 2**20, "blocks": twice})
    assert snapshot(api.hub) == before


# -- 3. the GC never breaks a reader ------------------------------------------------------


async def _gc_keeps_until_grace_after(api: Api, change: Any) -> None:
    """File ``/a`` references X since "a month ago"; ``change`` drops the reference now.

    A GC with the minimum grace must keep X; once the grace has passed since the
    change, it must delete X.
    """
    old = random_bytes(3000)
    await api.write("/a", [old])
    x = digest_of(old)
    age_blocks(api.hub, MONTH_NS / 1e9, [x])
    await change()
    grace = ttl_of(api.hub)
    assert await api.gc(grace=grace) == 0
    assert block_exists(api.hub, api.fs, x)
    status, got = await api.url("GET", await api.block_url(x))  # a reader of the old version
    assert status == 200 and got == old
    age_blocks(api.hub, grace + 1, [x])
    assert await api.gc(grace=grace) == 1
    assert not block_exists(api.hub, api.fs, x)


@pytest.mark.asyncio
@with_block_stores
async def test_gc_grace_counts_from_an_overwrite(api: Api) -> None:
    async def overwrite() -> None:
        await api.write("/a", [random_bytes(100)])

    await _gc_keeps_until_grace_after(api, overwrite)


@pytest.mark.asyncio
@with_block_stores
async def test_gc_grace_counts_from_a_partial_overwrite(api: Api) -> None:
    async def overwrite_slot() -> None:
        digest = await api.upload(b"new")
        await api.ok("POST", api.p("commit"), json=one_block("/a", digest, 3, size=3000))

    await _gc_keeps_until_grace_after(api, overwrite_slot)


@pytest.mark.asyncio
@with_block_stores
async def test_gc_grace_counts_from_a_truncate(api: Api) -> None:
    async def truncate() -> None:
        await api.ok("POST", api.p("truncate"), json={"path": "/a", "size": 0})

    await _gc_keeps_until_grace_after(api, truncate)


@pytest.mark.asyncio
@with_block_stores
async def test_gc_grace_counts_from_a_delete(api: Api) -> None:
    async def delete() -> None:
        await api.ok("POST", api.p("delete"), json={"path": "/a"})

    await _gc_keeps_until_grace_after(api, delete)


@pytest.mark.asyncio
@with_block_stores
async def test_gc_grace_counts_from_a_recursive_delete(api: Api) -> None:
    async def delete_tree() -> None:
        await api.mkdir("/d/e")
        await api.ok("POST", api.p("move"), json={"src": "/a", "dst": "/d/e/a"})
        await api.ok("POST", api.p("delete"), json={"path": "/d", "recursive": True})

    await _gc_keeps_until_grace_after(api, delete_tree)


@pytest.mark.asyncio
@with_block_stores
async def test_gc_grace_counts_from_a_move_over_the_file(api: Api) -> None:
    async def move_over() -> None:
        await api.write("/b", [random_bytes(10)])
        await api.ok("POST", api.p("move"), json={"src": "/b", "dst": "/a", "overwrite": True})

    await _gc_keeps_until_grace_after(api, move_over)


@pytest.mark.asyncio
@with_block_stores
async def test_gc_grace_counts_from_a_copy_over_the_file(api: Api) -> None:
    async def copy_over() -> None:
        await api.write("/b", [random_bytes(10)])
        await api.ok("POST", api.p("copy"), json={"src": "/b", "dst": "/a", "overwrite": True})

    await _gc_keeps_until_grace_after(api, copy_over)


@pytest.mark.asyncio
async def test_gc_grace_is_at_least_the_url_lifetime(api: Api, tmp_path: Path) -> None:
    ttl = ttl_of(api.hub)
    before = snapshot(api.hub)
    await api.fail("POST", "/v1/admin/gc", 400, "bad_request", "'grace_seconds'", f"{ttl:g}",
                   "url_ttl_seconds", json={"grace_seconds": ttl - 1})
    assert snapshot(api.hub) == before
    body = await api.ok("POST", "/v1/admin/gc", json={"grace_seconds": ttl})
    assert body["deleted_blocks"] == 0
    with pytest.raises(ConfigurationError, match="gc_grace_seconds .* url_ttl_seconds"):
        HubSettings(data_dir=tmp_path, url_ttl_seconds=900, gc_grace_seconds=899)
    with pytest.raises(ConfigurationError):
        EmbeddedHub(tmp_path, gc_grace_seconds=60)
    settings = HubSettings(data_dir=tmp_path, url_ttl_seconds=60, gc_grace_seconds=60)
    assert settings.gc_grace_seconds == 60


@pytest.mark.asyncio
async def test_gc_while_reading_keeps_the_opened_version(
    tmp_path: Path, metadata_url: str | None
) -> None:
    """A reader mid-file when the file is overwritten and the GC runs still reads what it opened."""
    grace = 2.0
    with EmbeddedHub(tmp_path / "hub", url_ttl_seconds=grace, gc_grace_seconds=grace,
                     gc_interval_seconds=3600, metadata_url=metadata_url) as hub:
        token = hub.init("demo", ["small"], block_size=SMALL_BLOCK, admin=True)
        assert hub.app is not None
        metrics = hub.app[HUB_KEY].metrics
        v1, v2 = os.urandom(8 * SMALL_BLOCK), os.urandom(8 * SMALL_BLOCK)
        creds = lucidlink.aio.ServiceAccountCredentials(token=token)
        one_block_ahead = {"fs.readahead.max_blocks": "1"}  # and an empty cache: reads hit the hub

        async def gc(session: aiohttp.ClientSession) -> int:
            async with session.post(hub.url + "/v1/admin/gc", json={"grace_seconds": grace},
                                    headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200, await r.text()
                return int((await r.json())["deleted_blocks"])

        async with (
            aiohttp.ClientSession() as session,
            lucidlink.aio.create_daemon(hub_url=hub.url) as writer_daemon,
            lucidlink.aio.create_daemon(hub_url=hub.url, config=one_block_ahead) as reader_daemon,
        ):
            writer = (await writer_daemon.authenticate(creds)).link_filespace(name="small")
            reader = (await reader_daemon.authenticate(creds)).link_filespace(name="small")
            async with writer as wfs, reader as rfs:
                await wfs.fs.write_file("/f", v1)
                await wfs.sync_all()
                # The file has existed for a month: only the overwrite may restart the clock.
                age_blocks(hub, MONTH_NS / 1e9)
                await rfs.sync_all()
                async with rfs.fs.open("/f", "rb") as f:
                    assert await f.read(SMALL_BLOCK) == v1[:SMALL_BLOCK]
                    await wfs.fs.write_file("/f", v2)
                    await wfs.sync_all()
                    assert await gc(session) == 0
                    served = metrics.block_bytes["out"]
                    assert await f.read() == v1[SMALL_BLOCK:]
                    # The rest came from the block store, after the GC (not from a cache).
                    assert metrics.block_bytes["out"] - served >= 6 * SMALL_BLOCK
                await rfs.sync_all()
                assert await rfs.fs.read_file("/f") == v2
                await asyncio.sleep(grace + 0.5)
                assert await gc(session) == 8  # the old version's blocks, now the grace has passed
                assert await rfs.fs.read_file("/f") == v2


# -- 4. durable SQLite by default ------------------------------------------------------


def test_sqlite_is_fully_synchronous_by_default(make_hub: Any) -> None:
    """The level reaches the store; what FULL does there is tests/hub/test_store_wal_sync.py."""
    assert hub_state(make_hub()).store.synchronous == "FULL"
    assert hub_state(make_hub(sqlite_synchronous="NORMAL")).store.synchronous == "NORMAL"
    with pytest.raises(ConfigurationError, match="FULL .* NORMAL"):
        HubSettings(data_dir=Path("/nonexistent"), sqlite_synchronous="OFF")


def test_serve_takes_sqlite_synchronous_from_flag_or_environment(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = build_parser()

    def level(*flags: str) -> str:
        args = parser.parse_args(["hub", "serve", "--data-dir", "/srv/hub", *flags])
        return serve_settings(args).sqlite_synchronous

    monkeypatch.delenv(SQLITE_SYNCHRONOUS_ENV, raising=False)
    assert level() == "FULL"
    assert level("--sqlite-synchronous", "normal") == "NORMAL"
    monkeypatch.setenv(SQLITE_SYNCHRONOUS_ENV, "NORMAL")
    assert level() == "NORMAL"
    assert level("--sqlite-synchronous", "FULL") == "FULL"
    monkeypatch.setenv(SQLITE_SYNCHRONOUS_ENV, "sometimes")
    with pytest.raises(ConfigurationError):
        level()
    with pytest.raises(SystemExit):
        level("--sqlite-synchronous", "OFF")


# -- 5. a failed COMMIT rolls back and the writer keeps serving -------------------------


@pytest.mark.asyncio
async def test_a_failed_commit_rolls_back_and_the_writer_keeps_serving(tmp_path: Path) -> None:
    import sqlite3

    store = SqliteStore(tmp_path / "metadata.sqlite3")
    await store.open()
    try:
        def violate(tx: Any) -> None:
            # Checked only at COMMIT: the statement succeeds, the COMMIT fails.
            tx.execute("PRAGMA defer_foreign_keys=ON")
            tx.execute("INSERT INTO meta (key, value) VALUES ('left-behind', 'x')")
            tx.execute("INSERT INTO sessions (id, filespace_id, key_id, created, expires) "
                       "VALUES ('s1', 'no-such-filespace', 'k', 0, 0)")

        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            await store.write(violate)
        await store.write(lambda tx: tx.execute(
            "INSERT INTO meta (key, value) VALUES ('next', '')"))
        rows = await store.read(lambda tx: {r["key"] for r in tx.all("SELECT key FROM meta")})
        assert "next" in rows and "left-behind" not in rows
        assert await store.read(lambda tx: tx.all("SELECT id FROM sessions")) == []
    finally:
        await store.close()


# -- 6. a private data dir -------------------------------------------------------------


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


async def _upload_one(hub: EmbeddedHub, token: str, data: bytes) -> str:
    async with aiohttp.ClientSession() as s:
        headers = {"Authorization": f"Bearer {token}"}
        async with s.get(hub.url + "/v1/filespaces", headers=headers) as r:
            fs = (await r.json())["filespaces"][0]["id"]
        async with s.post(hub.url + f"/v1/filespaces/{fs}/blocks/urls", headers=headers,
                          json={"op": "put", "hashes": [digest_of(data)]}) as r:
            url = (await r.json())["urls"][digest_of(data)]
        async with s.put(url, data=data) as r:
            assert r.status == 201
    return str(fs)


def _private_paths(data_dir: Path, fs: str, digest: str) -> tuple[list[Path], list[Path]]:
    blocks = data_dir / "blocks"
    dirs = [data_dir, blocks, blocks / fs, blocks / fs / digest[:2]]
    db = data_dir / "metadata.sqlite3"
    files_ = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"),
              data_dir / "hub.key", data_dir / "connect.key", blocks / fs / digest[:2] / digest]
    return dirs, files_


@pytest.mark.asyncio
@pytest.mark.usefixtures("permissive_umask")
async def test_the_data_dir_is_private_whatever_the_umask(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "hub"
    data = b"private bytes"
    with EmbeddedHub(data_dir, gc_interval_seconds=3600) as hub:
        token = hub.init("demo", ["data"])
        fs = await _upload_one(hub, token, data)
        secrets_box.load_or_create_key(data_dir, environ={})
        dirs, files_ = _private_paths(data_dir, fs, digest_of(data))
        assert {str(d): oct(mode_of(d)) for d in dirs} == {str(d): "0o700" for d in dirs}
        assert {str(f): oct(mode_of(f)) for f in files_} == {str(f): "0o600" for f in files_}
        assert not [p for p in (data_dir / "blocks").rglob("*.tmp")]


@pytest.mark.asyncio
@pytest.mark.usefixtures("permissive_umask")
async def test_a_loose_data_dir_is_tightened_on_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "hub"
    data = b"loose bytes"
    with EmbeddedHub(data_dir, gc_interval_seconds=3600) as hub:
        token = hub.init("demo", ["data"])
        fs = await _upload_one(hub, token, data)
        secrets_box.load_or_create_key(data_dir, environ={})
    dirs, files_ = _private_paths(data_dir, fs, digest_of(data))
    for d in dirs:
        d.chmod(0o755)
    for f in files_:
        if f.exists():  # SQLite removes -wal and -shm when its last connection closes
            f.chmod(0o644)
    with EmbeddedHub(data_dir, gc_interval_seconds=3600) as hub:
        secrets_box.load_or_create_key(data_dir, environ={})
        assert {str(d): oct(mode_of(d)) for d in dirs} == {str(d): "0o700" for d in dirs}
        # Block files sit in 0700 directories; the rest are tightened one by one.
        tightened = files_[:-1]
        assert {str(f): oct(mode_of(f)) for f in tightened} == {str(f): "0o600" for f in tightened}


def test_keys_are_created_whole_and_private(tmp_path: Path, permissive_umask: None) -> None:
    from lucidlink.hub.signing import load_or_create_key

    key = load_or_create_key(tmp_path / "d" / "hub.key")
    assert len(key) == 32 and load_or_create_key(tmp_path / "d" / "hub.key") == key
    assert mode_of(tmp_path / "d" / "hub.key") == 0o600 and mode_of(tmp_path / "d") == 0o700
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["hub.key"]  # no temporary file left
    assert not disk.create_file(tmp_path / "d" / "hub.key", b"other")  # exclusive
    assert load_or_create_key(tmp_path / "d" / "hub.key") == key
