"""The rest of LucidLink's documented surface (issue 13), scenario by scenario.

Written from LucidLink's API reference (0.9 to 0.12, and the 1.0 package page): the
``Daemon(config, storage)`` constructor with ``StorageConfig``/``StorageMode``,
``is_running()`` and ``get_status()``, ``Filespace.workspace_id``/``workspace_name``,
the stream helpers ``LucidFileStream``/``open_buffered``/``open_text``, the deprecated
``open_legacy``/``FileHandle``, the Connect names, and the package's exports.
"""

from __future__ import annotations

import inspect
import io
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import lucidlink
import lucidlink.aio
from lucidlink import (
    DaemonStatus,
    DataStoreInfo,
    DataStoreKind,
    DataStoreRekeyState,
    S3Credentials,
    StorageConfig,
    StorageMode,
)
from lucidlink._facade import Facade
from tests.sdk.conftest import unique
from tests.support.sdkfixtures import SdkHub

# Every name LucidLink's SDK exports from its package (0.12's lucidlink/__init__.py,
# less its helper imports: sys, deprecated, Dict, Optional, Union, Path).
LUCIDLINK_EXPORTS = [
    "AuthenticationError", "Client", "ClientConfig", "ClientError", "ConfigurationError",
    "ConnectManager", "Daemon", "DaemonError", "DaemonStatus", "DataStoreCredentials",
    "DataStoreInfo", "DataStoreKind", "DataStoreRekeyState", "DirEntry", "FileHandle",
    "Filespace", "FilespaceAlreadyLinkedError", "FilespaceError", "FilespaceInfo",
    "FilespaceSize", "FilespaceStatistics", "Filesystem", "LinkedFilesResult",
    "LucidFileStream", "LucidLinkError", "LucidLinkFileSystem", "S3Credentials",
    "S3DataStoreConfig", "ServiceAccountCredentials", "StorageConfig", "StorageMode",
    "SyncMode", "Workspace", "WorkspaceInfo", "create_daemon", "open_buffered", "open_text",
]  # fmt: skip
# Blocking-only names: the async core's files are AsyncFile (binary, awaitable).
BLOCKING_ONLY = {
    "FileHandle",
    "LucidFileStream",
    "LucidLinkFileSystem",
    "open_buffered",
    "open_text",
}
ASYNC_TWINS = {"ConnectManager": "AsyncConnect"}


@pytest.fixture
def linked(mhub: SdkHub) -> Iterator[lucidlink.Filespace]:
    """Filespace ``small`` on a daemon of its own, for tests that look at the daemon."""
    with lucidlink.create_daemon(hub_url=mhub.url, config={"fs.flush.delay_ms": "5"}) as daemon:
        workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=mhub.token))
        with workspace.link_filespace(name="small") as filespace:
            yield filespace


# -- Daemon(config, storage), is_running(), get_status() ------------------------------


def test_blocking_daemon_constructed_as_documented(
    mhub: SdkHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LUCIDLINK_HUB_URL", mhub.url)
    storage = StorageConfig(mode=StorageMode.SANDBOXED)
    with lucidlink.Daemon(config={"fs.cache.size": "64"}, storage=storage) as daemon:
        assert daemon.is_running() and daemon.storage == storage
        workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=mhub.token))
        assert workspace.name == "demo"
    assert not daemon.is_running()


@pytest.mark.asyncio
async def test_async_daemon_constructed_as_documented(
    mhub: SdkHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LUCIDLINK_HUB_URL", mhub.url)
    storage = StorageConfig(mode=StorageMode.SANDBOXED)
    daemon = lucidlink.aio.AsyncDaemon(config={"fs.cache.size": "64"}, storage=storage)
    assert daemon.storage is storage and daemon.sandboxed and not daemon.persist_files
    assert not daemon.is_running()
    async with daemon:
        assert daemon.is_running() and daemon.get_status().root_path == daemon.root_path
        workspace = await daemon.authenticate(lucidlink.ServiceAccountCredentials(token=mhub.token))
        assert daemon.get_status().is_authenticated and workspace.name == "demo"
    assert not daemon.is_running() and daemon.get_status() == DaemonStatus(False, False, False, "")
    with pytest.raises(lucidlink.ConfigurationError, match="StorageConfig"):
        lucidlink.aio.AsyncDaemon(storage="sandboxed")  # type: ignore[arg-type]


def test_get_status_follows_start_authenticate_link_and_stop(mhub: SdkHub) -> None:
    daemon = lucidlink.create_daemon(hub_url=mhub.url)
    assert not daemon.is_running()
    assert daemon.get_status() == DaemonStatus(
        is_running=False, is_authenticated=False, is_linked=False, root_path=""
    )
    daemon.start()
    try:
        assert daemon.is_running()
        root = daemon.root_path
        assert root and Path(root).is_dir()
        assert daemon.get_status() == DaemonStatus(True, False, False, root)
        workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=mhub.token))
        assert daemon.get_status() == DaemonStatus(True, True, False, root)
        filespace = workspace.link_filespace(name="small")
        assert daemon.get_status() == DaemonStatus(True, True, True, root)
        filespace.unlink()
        assert daemon.get_status() == DaemonStatus(True, True, False, root)
        workspace.link_filespace(name="small")
    finally:
        daemon.stop()
    assert not daemon.is_running()
    assert daemon.get_status() == DaemonStatus(False, False, False, "")


def test_storage_config_as_documented(tmp_path: Path) -> None:
    default = StorageConfig()
    assert default.mode is StorageMode.SANDBOXED and default.should_cleanup()
    assert default.persist_on_exit is False and default.root_path is None
    physical = StorageConfig(mode=StorageMode.PHYSICAL)
    assert physical.get_root_path() == Path.cwd() and physical.should_cleanup()
    kept = StorageConfig(mode=StorageMode.PHYSICAL, persist_on_exit=True, root_path=str(tmp_path))
    assert kept.root_path == tmp_path and kept.get_root_path() == tmp_path
    assert not kept.should_cleanup()
    # persist_on_exit applies to physical storage only: a sandbox is always removed.
    assert StorageConfig(persist_on_exit=True).should_cleanup()
    assert StorageConfig(mode="physical").mode is StorageMode.PHYSICAL
    assert [m.value for m in StorageMode] == ["physical", "sandboxed"]
    with pytest.raises(ValueError):
        StorageConfig(mode="cloud")
    with pytest.raises(AttributeError):
        kept.mode = StorageMode.SANDBOXED  # type: ignore[misc]


def test_physical_daemon_keeps_its_state_when_asked(mhub: SdkHub, tmp_path: Path) -> None:
    # create_daemon takes LucidLink's positional order: config, sandboxed, persist_files, root_path.
    daemon = lucidlink.create_daemon(
        {"fs.cache.size": "64"}, False, True, tmp_path, hub_url=mhub.url
    )
    assert daemon.storage == StorageConfig(StorageMode.PHYSICAL, True, tmp_path)
    assert daemon.persist_files and not daemon.sandboxed
    assert daemon.get_status().root_path == str(tmp_path)  # the configured root, before start
    with daemon:
        assert daemon.get_status().root_path == str(tmp_path)
        assert (tmp_path / ".lucid").is_dir()
    assert (tmp_path / ".lucid").is_dir()  # persist_on_exit: kept
    with lucidlink.create_daemon(
        sandboxed=False, root_path=str(tmp_path), hub_url=mhub.url
    ) as gone:
        assert not gone.persist_files
    assert not (tmp_path / ".lucid").exists()


def test_client_takes_a_storage_config(
    mhub: SdkHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LUCIDLINK_HUB_URL", mhub.url)
    creds = lucidlink.ServiceAccountCredentials(token=mhub.token)
    with lucidlink.Client(storage=StorageConfig(mode=StorageMode.SANDBOXED)) as client:
        client.login(creds)
        assert [w.name for w in client.list_workspaces()] == ["demo"]
    kept = StorageConfig(mode=StorageMode.PHYSICAL, persist_on_exit=True, root_path=tmp_path)
    with lucidlink.Client(storage=kept) as client:
        client.login(creds)
        assert (tmp_path / ".lucid").is_dir()
    assert (tmp_path / ".lucid").is_dir()  # persist_on_exit keeps it after close


# -- Filespace.workspace_id / workspace_name --------------------------------------------


def test_filespace_names_its_workspace(mhub: SdkHub) -> None:
    with lucidlink.create_daemon(hub_url=mhub.url) as daemon:
        workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=mhub.token))
        with workspace.link_filespace(name="small") as filespace:
            assert filespace.is_linked
            assert filespace.workspace_id == workspace.id and len(filespace.workspace_id) == 32
            assert filespace.workspace_name == workspace.name == "demo"
            assert filespace.full_name == f"{filespace.name}.{filespace.workspace_name}"
        assert not filespace.is_linked
        assert filespace.workspace_name == "demo"  # identity outlives the link


def test_link_filespace_takes_lucidlinks_parameters_in_order(mhub: SdkHub) -> None:
    with lucidlink.create_daemon(hub_url=mhub.url) as daemon:
        workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=mhub.token))
        ids = {info.name: info.id for info in workspace.list_filespaces()}
        # (name, id, root_path, sync_mode), positionally as in LucidLink's reference.
        filespace = workspace.link_filespace(None, ids["small"], "/", lucidlink.SyncMode.SYNC_NONE)
        assert filespace.name == "small" and filespace.id == ids["small"]
        filespace.unlink()
        with pytest.raises(lucidlink.ConfigurationError, match="root_path"):
            workspace.link_filespace(name="small", root_path="/projects")


# -- LucidFileStream, open_buffered, open_text -------------------------------------------


def test_open_buffered_round_trip(mspace: lucidlink.Filespace) -> None:
    fs, path = mspace.fs, f"/{unique('buffered')}.bin"
    data = bytes(range(256)) * 1000
    with lucidlink.open_buffered(fs, path, "wb", buffer_size=4096) as out:
        assert isinstance(out, io.BufferedWriter) and isinstance(out.raw, lucidlink.LucidFileStream)
        out.write(data)
    with lucidlink.open_buffered(fs, path) as f:
        assert isinstance(f, io.BufferedReader) and f.raw.name == path and f.raw.mode == "rb"
        assert f.read(10) == data[:10]
        assert f.read() == data[10:]
    with lucidlink.open_buffered(fs, path, "r+") as f:  # LucidLink's 'r+' is binary here
        assert isinstance(f, io.BufferedRandom)
        f.seek(5)
        f.write(b"XY")
    assert fs.read_file(path) == data[:5] + b"XY" + data[7:]
    with pytest.raises(ValueError, match="binary"):
        lucidlink.open_buffered(fs, path, "rt")
    with pytest.raises(ValueError, match="buffer_size"):
        lucidlink.open_buffered(fs, path, buffer_size=0)
    with pytest.raises(FileNotFoundError):
        lucidlink.open_buffered(fs, f"/{unique('missing')}")


def test_open_text_round_trip(mspace: lucidlink.Filespace) -> None:
    fs, path = mspace.fs, f"/{unique('text')}.txt"
    with lucidlink.open_text(fs, path, "w") as out:
        assert isinstance(out, io.TextIOWrapper) and out.encoding == "utf-8"
        out.write("héllo\nwörld\n")
    with lucidlink.open_text(fs, path) as f:
        assert list(f) == ["héllo\n", "wörld\n"]
    assert fs.read_file(path) == "héllo\nwörld\n".encode()
    with lucidlink.open_text(fs, path, "a", encoding="latin-1", newline="\r\n") as out:
        out.write("ß\n")
    with lucidlink.open_text(fs, path, encoding="latin-1", errors="replace", newline="") as f:
        assert f.read().endswith("ß\r\n")
    with pytest.raises(UnicodeDecodeError):
        with lucidlink.open_text(fs, path) as f:
            f.read()
    with pytest.raises(ValueError, match="text mode"):
        lucidlink.open_text(fs, path, "rb")


def test_lucid_file_stream_opened_directly_and_with_a_lock(mspace: lucidlink.Filespace) -> None:
    fs, path = mspace.fs, f"/{unique('raw')}.bin"
    with lucidlink.LucidFileStream(fs, path, "w") as raw:  # LucidLink's 'w' is binary here
        assert isinstance(raw, io.RawIOBase) and raw.writable() and not raw.readable()
        assert raw.write(b"0123456789") == 10
    with lucidlink.LucidFileStream(fs, path, lock_type="shared") as raw:
        assert raw.seekable() and not raw.isatty()
        assert [lock.mode for lock in fs.get_locks(path)] == ["shared"]
        raw.seek(-4, io.SEEK_END)
        assert raw.read() == b"6789" and raw.tell() == 10
        buf = bytearray(3)
        raw.seek(1)
        assert raw.readinto(buf) == 3 and buf == b"123"
        with pytest.raises(io.UnsupportedOperation):
            raw.fileno()
    assert raw.closed and fs.get_locks(path) == []
    with pytest.raises(ValueError, match="binary"):
        lucidlink.LucidFileStream(fs, path, "rt")


def test_fs_open_unbuffered_is_a_lucid_file_stream(mspace: lucidlink.Filespace) -> None:
    path = f"/{unique('unbuffered')}"
    mspace.fs.write_file(path, b"abc")
    with mspace.fs.open(path, "rb", buffering=0) as raw:
        assert isinstance(raw, lucidlink.LucidFileStream) and raw.read() == b"abc"


# -- open_legacy and FileHandle (deprecated) --------------------------------------------


def test_open_legacy_warns_and_reads_and_writes_at_offsets(mspace: lucidlink.Filespace) -> None:
    fs, path = mspace.fs, f"/{unique('legacy')}.txt"
    with pytest.warns(DeprecationWarning, match=r"open_legacy.*fs\.open") as caught:
        handle = fs.open_legacy(path, "w")
    assert caught[0].filename == __file__  # points at the caller
    with handle:
        assert isinstance(handle, lucidlink.FileHandle)
        assert (handle.path, handle.mode, handle.closed) == (path, "w", False)
        handle.write(b"hello world")
        handle.write(b"HELLO", offset=0)
        assert handle.read(5, offset=6) == b"world"
    assert handle.closed
    handle.close()  # idempotent
    with pytest.warns(DeprecationWarning):
        with fs.open_legacy(path) as handle:
            assert handle.read() == b"HELLO world" and handle.read(3, 2) == b"LLO"
            assert handle.read(100, 8) == b"rld" and handle.read(offset=11) == b""
    with pytest.warns(DeprecationWarning):
        with fs.open_legacy(path, "a") as handle:
            handle.write(b"!", offset=0)  # appends, whatever the offset
    assert fs.read_file(path) == b"HELLO world!"
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="'r', 'w' or 'a'"):
        fs.open_legacy(path, "x")
    with pytest.warns(DeprecationWarning), pytest.raises(FileNotFoundError):
        fs.open_legacy(f"/{unique('missing')}")


# -- Connect names -------------------------------------------------------------------------


def test_connect_names_as_documented(mspace: lucidlink.Filespace) -> None:
    assert lucidlink.ConnectManager is lucidlink.Connect
    assert type(mspace.connect) is lucidlink.ConnectManager
    assert DataStoreKind.S3 == "S3DataStore" and str(DataStoreKind.S3) == "S3DataStore"
    assert DataStoreKind("s3") is DataStoreKind.S3  # the hub's wire name
    assert {s.name: s.value for s in DataStoreRekeyState} == {
        "NO_REKEY": "no_rekey", "IN_PROGRESS": "in_progress"
    }  # fmt: skip
    assert lucidlink.DataStoreCredentials is S3Credentials
    creds = S3Credentials(access_key="AKIAEXAMPLE", secret_key="s3cr3t-value")
    assert creds.kind is DataStoreKind.S3
    assert "s3cr3t-value" not in repr(creds) and "s3cr3t-value" not in str(creds)
    with pytest.raises(lucidlink.ConfigurationError, match="secret_key"):
        S3Credentials(access_key="AKIAEXAMPLE", secret_key="")
    info = DataStoreInfo(name="store")
    assert info.kind is DataStoreKind.S3 and info.rekey_state is DataStoreRekeyState.NO_REKEY
    assert (info.access_key, info.url_expiration_minutes, info.use_virtual_addressing) == (
        "",
        0,
        False,
    )
    round_trip = DataStoreInfo.from_dict(
        {"name": "s", "bucket_name": "b", "rekey_state": "in_progress"}
    )
    assert (
        round_trip.bucket_name == "b" and round_trip.rekey_state is DataStoreRekeyState.IN_PROGRESS
    )
    # rekey_data_store takes S3Credentials or the keyword pair, not both (checked before any call).
    with pytest.raises(lucidlink.ConfigurationError, match="not both"):
        mspace.connect.rekey_data_store("store", creds, new_access_key="AKIAOTHER")
    with pytest.raises(lucidlink.ConfigurationError, match="S3Credentials"):
        mspace.connect.rekey_data_store("store", new_access_key="AKIAOTHER")
    assert "credentials" in inspect.signature(lucidlink.ConnectManager.rekey_data_store).parameters
    assert mspace.connect.are_data_stores_available()


def test_filespace_already_linked_error_as_documented() -> None:
    err = lucidlink.FilespaceAlreadyLinkedError("already linked", filespace_id="fs-1")
    assert isinstance(err, lucidlink.FilespaceError) and isinstance(err, lucidlink.ClientError)
    assert err.filespace_id == "fs-1"
    assert lucidlink.FilespaceAlreadyLinkedError("x").filespace_id == ""


# -- the package's exports ---------------------------------------------------------------


def _public(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


@pytest.mark.parametrize("module", [lucidlink, lucidlink.aio], ids=lambda m: m.__name__)
def test_all_lists_every_public_name(module: types.ModuleType) -> None:
    assert len(module.__all__) == len(set(module.__all__)), "no duplicates"
    modules = {
        name for name in module.__all__ if isinstance(getattr(module, name), types.ModuleType)
    }
    assert modules <= {"exceptions"}
    assert set(module.__all__) - modules == _public(module)
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def test_every_lucidlink_export_is_importable() -> None:
    missing = [name for name in LUCIDLINK_EXPORTS if name not in lucidlink.__all__]
    assert missing == []
    namespace: dict[str, object] = {}
    exec("from lucidlink import *", namespace)  # noqa: S102 - the star import users write
    assert set(LUCIDLINK_EXPORTS) <= set(namespace)


def test_lucidlink_aio_has_the_async_twins() -> None:
    for name in LUCIDLINK_EXPORTS:
        if name in BLOCKING_ONLY:
            continue
        value = getattr(lucidlink, name)
        if isinstance(value, type) and issubclass(value, Facade):
            twin = ASYNC_TWINS.get(name, f"Async{name}")
            assert value._async_class is getattr(lucidlink.aio, twin), name
            assert twin in lucidlink.aio.__all__
        else:  # value and exception classes, and create_daemon's async form
            assert name in lucidlink.aio.__all__, name
            if name != "create_daemon":
                assert getattr(lucidlink.aio, name) is value, name
