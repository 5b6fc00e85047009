"""LucidLink SDK 0.12's ``Client`` API, beside the daemon API, on both faces.

Scenario tests written from the documented behaviour: ``Client(*, storage=None,
config=None)`` as a context manager (and ``close``), ``login``, ``is_logged_in``,
``list_workspaces``, ``get_workspace`` (a ``ValueError`` for an unknown id),
``Workspace.link_filespace(id=...)`` (the live filespace when already linked) and
``Workspace.linked_filespaces``. Then LucidLink's own newest examples
(``LucidLink/lucidlink-python-sdk-examples``), run unmodified against an embedded hub
when a checkout of them is at hand (``LUCIDLINK_SDK_EXAMPLES``, else the mirror).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import lucidlink
import lucidlink.aio
from lucidlink.exceptions import (
    AuthenticationError,
    ClientError,
    FilespaceAlreadyLinkedError,
    FilespaceNotFoundError,
    LucidLinkError,
)
from tests.support.sdkfixtures import SdkHub
from tests.support.seaweed import SeaweedS3
from tests.support.stderr import stderr_noise

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub_env(sdk_hub: SdkHub, monkeypatch: pytest.MonkeyPatch) -> SdkHub:
    """``sdk_hub`` with ``LUCIDLINK_HUB_URL`` pointing at it, as the Client reads it."""
    monkeypatch.setenv("LUCIDLINK_HUB_URL", sdk_hub.url)
    return sdk_hub


def _creds(token: str) -> lucidlink.ServiceAccountCredentials:
    return lucidlink.ServiceAccountCredentials(token=token)


def test_names_are_exported_on_both_faces() -> None:
    for name in ("Client", "ClientConfig", "ClientError", "FilespaceAlreadyLinkedError", "WorkspaceInfo"):
        assert name in lucidlink.__all__ and hasattr(lucidlink, name)
    for name in ("AsyncClient", "ClientConfig", "WorkspaceInfo"):
        assert name in lucidlink.aio.__all__ and hasattr(lucidlink.aio, name)
    assert issubclass(lucidlink.ClientError, LucidLinkError)
    assert issubclass(lucidlink.FilespaceAlreadyLinkedError, lucidlink.ClientError)
    # The blocking docstring is the async one, rewritten for the blocking face.
    assert lucidlink.Client.__doc__ == lucidlink.aio.AsyncClient.__doc__.replace("async with", "with")


def test_value_objects_are_frozen() -> None:
    info = lucidlink.WorkspaceInfo(id="w1", name="demo")
    assert (info.id, info.name) == ("w1", "demo") and "demo" in str(info)
    assert lucidlink.ClientConfig().fs_cache_size_mb is None
    with pytest.raises(AttributeError):
        info.name = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        lucidlink.ClientConfig(fs_cache_size_mb=64).fs_cache_size_mb = 1  # type: ignore[misc]


def test_blocking_client_scenario(hub_env: SdkHub, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with lucidlink.Client(config=lucidlink.ClientConfig(fs_cache_size_mb=64)) as client:
            assert not client.is_logged_in
            with pytest.raises(ClientError):
                client.list_workspaces()
            client.login(_creds(hub_env.token))
            assert client.is_logged_in
            [info] = client.list_workspaces()
            assert isinstance(info, lucidlink.WorkspaceInfo) and info.name == "demo"
            workspace = client.get_workspace(info.id)
            assert isinstance(workspace, lucidlink.Workspace)
            assert (workspace.id, workspace.name) == (info.id, "demo")
            with pytest.raises(ValueError) as raised:
                client.get_workspace("no-such-workspace")
            assert isinstance(raised.value, ClientError)

            ids = {f.name: f.id for f in workspace.list_filespaces()}
            assert workspace.linked_filespaces == []
            with workspace.link_filespace(id=ids["small"]) as small:
                assert small.name == "small" and small.is_linked
                small.fs.write_file("/a.txt", b"hello")
                big = workspace.link_filespace(id=ids["big"])
                assert {f.name for f in workspace.linked_filespaces} == {"small", "big"}
                again = workspace.link_filespace(id=ids["small"])
                assert again == small and again._async is small._async
                with pytest.raises(FilespaceAlreadyLinkedError):
                    workspace.link_filespace(id=ids["small"], sync_mode=lucidlink.SyncMode.SYNC_NONE)
                with pytest.raises(FilespaceNotFoundError):
                    workspace.link_filespace(id="no-such-id")
                big.fs.write_file("/b.txt", b"world")
                assert small.fs.read_file("/a.txt") == b"hello"
            assert {f.name for f in workspace.linked_filespaces} == {"big"}
        assert not client.is_logged_in
        assert not big.is_linked
        client.close()  # idempotent
        with pytest.raises(ClientError):
            client.get_workspace(info.id)

    # What the Client wrote, the daemon API reads (both APIs side by side).
    with lucidlink.create_daemon(hub_url=hub_env.url) as daemon:
        ws = daemon.authenticate(_creds(hub_env.token))
        with ws.link_filespace(name="small") as fs:
            assert fs.fs.read_file("/a.txt") == b"hello"
        with ws.link_filespace(name="big") as fs:
            assert fs.fs.read_file("/b.txt") == b"world"


def test_blocking_client_storage_and_close(hub_env: SdkHub, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "mine.txt").write_text("keep")
    client = lucidlink.Client(storage=str(root))
    client.login(_creds(hub_env.token))
    assert (root / ".lucid").is_dir()
    workspace = client.get_workspace(client.list_workspaces()[0].id)
    small_id = next(f.id for f in workspace.list_filespaces() if f.name == "small")
    filespace = workspace.link_filespace(id=small_id)
    filespace.fs.write_file("/c.txt", b"closed")
    client.close()
    assert not filespace.is_linked
    assert not (root / ".lucid").exists() and (root / "mine.txt").read_text() == "keep"


def test_blocking_login_refusals(hub_env: SdkHub) -> None:
    with lucidlink.Client() as client:
        with pytest.raises(AuthenticationError):
            client.login(_creds("sa_live:notakey:notasecret"))
        assert not client.is_logged_in


def test_blocking_several_workspaces(hub_env: SdkHub) -> None:
    other = hub_env.hub.init("other", ["elsewhere"])
    with lucidlink.Client() as client:
        client.login(_creds(hub_env.token))
        client.login(_creds(other))
        names = {w.name: w.id for w in client.list_workspaces()}
        assert set(names) == {"demo", "other"}
        ws = client.get_workspace(names["other"])
        assert [f.name for f in ws.list_filespaces()] == ["elsewhere"]


def test_async_client_scenario(hub_env: SdkHub) -> None:
    async def scenario() -> None:
        async with lucidlink.aio.AsyncClient() as client:
            assert not client.is_logged_in
            await client.login(lucidlink.aio.ServiceAccountCredentials(token=hub_env.token))
            assert client.is_logged_in
            [info] = await client.list_workspaces()
            workspace = await client.get_workspace(info.id)
            assert isinstance(workspace, lucidlink.aio.AsyncWorkspace)
            with pytest.raises(ValueError):
                await client.get_workspace("nope")
            ids = {f.name: f.id for f in await workspace.list_filespaces()}
            async with workspace.link_filespace(id=ids["small"]) as small:
                big = await workspace.link_filespace(id=ids["big"])
                assert await workspace.link_filespace(id=ids["small"]) is small
                assert {f.name for f in workspace.linked_filespaces} == {"small", "big"}
                await small.fs.write_file("/x.txt", b"async")
                assert await big.fs.file_exists("/x.txt") is False
            assert workspace.linked_filespaces == [big]
        assert not client.is_logged_in and not big.is_linked
        await client.close()

    asyncio.run(scenario())


# --- LucidLink's newest examples, unmodified -------------------------------------------

def _examples_dir() -> Iterator[Path]:
    """Where the examples are: ``LUCIDLINK_SDK_EXAMPLES``, or the mirror's bare repo extracted."""
    given = os.environ.get("LUCIDLINK_SDK_EXAMPLES")
    if given:
        yield Path(given)
        return
    mirror = Path("/work/.mirror/LucidLink+lucidlink-python-sdk-examples/repo")
    if mirror.is_dir():
        yield mirror


@pytest.fixture(scope="module")
def newest_examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout of LucidLink's examples (its ``examples/`` dir), or skip."""
    for source in _examples_dir():
        if (source / "examples").is_dir():
            return source / "examples"
        out = tmp_path_factory.mktemp("llex")
        archive = subprocess.run(["git", "-C", str(source), "archive", "HEAD"], capture_output=True, check=False)
        if archive.returncode == 0:
            subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
            return out / "examples"
    pytest.skip("LucidLink's examples are not available (set LUCIDLINK_SDK_EXAMPLES to a checkout)")


def _run_newest(example: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # The examples read LUCIDLINK_SA_TOKEN (and LUCIDLINK_WORKSPACE for fsspec URLs); the
    # embedded hub sets LUCIDLINK_TOKEN, so a shell hands it on under their name.
    command = f'LUCIDLINK_SA_TOKEN="$LUCIDLINK_TOKEN" exec "{sys.executable}" "{example}"'
    proc = subprocess.run(
        [sys.executable, "-m", "lucidlink", "hub", "embedded", "--", "sh", "-c", command],
        cwd=example.parent, timeout=180, capture_output=True, text=True,
        env={**os.environ, **(extra_env or {}), "LUCIDLINK_WORKSPACE": "demo", "PYTHONUNBUFFERED": "1",
             "PYTHONDEVMODE": "1", "PYTHONWARNINGS": "error"},
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert stderr_noise(proc.stderr) == [], proc.stderr
    return proc


NEWEST = {
    "01_quickstart.py": "Cleaned up /hello.txt",
    "02_file_operations.py": "Cleaned up /examples_demo",
    "03_file_locking.py": "Cleaned up /locking_demo",
    "05_fsspec_operations.py": "Cleaned up",
    "06_fsspec_integration.py": "Cleaned up",
}


@pytest.mark.parametrize("name", sorted(NEWEST))
def test_newest_example_runs_unmodified(newest_examples: Path, name: str) -> None:
    example = newest_examples / name
    if name.startswith("06_"):
        pytest.importorskip("pandas")
        pytest.importorskip("pyarrow")
    proc = _run_newest(example)
    assert proc.stdout.rstrip().endswith(NEWEST[name]), proc.stdout


def test_newest_connect_example_runs_unmodified(newest_examples: Path, seaweed: SeaweedS3) -> None:
    # The example links two objects it expects to exist in the bucket.
    async def put_objects() -> None:
        await seaweed.put("reports/2024/q1-report.pdf", b"%PDF-1.4 q1")
        await seaweed.put("data/dataset.csv", b"a,b\n1,2\n")

    asyncio.run(put_objects())
    proc = _run_newest(newest_examples / "04_connect_s3.py", seaweed.env())
    assert "Linked /dataset.csv" in proc.stdout and "/report.pdf" in proc.stdout
    assert proc.stdout.rstrip().endswith("Removed data store: example-store"), proc.stdout
    assert seaweed.secret_key not in proc.stdout + proc.stderr
