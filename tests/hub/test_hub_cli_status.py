"""``lucidlink hub status`` and ``lucidlink hub gc`` against a running hub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lucidlink
from lucidlink.cli import main
from lucidlink.hub.embedded import EmbeddedHub


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``lucidlink <argv>`` in-process: exit code, stdout, stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_shows_health_stores_sizes_sessions_and_locks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "hub"
    with EmbeddedHub(data_dir, gc_interval_seconds=3600) as hub:
        token = hub.init("acme", ["media", "raw"], admin=True)
        creds = lucidlink.ServiceAccountCredentials(token=token)
        with lucidlink.create_daemon(hub_url=hub.url) as daemon:
            with daemon.authenticate(creds).link_filespace(name="media") as media:
                media.fs.create_dir("/d")
                media.fs.write_file("/d/a.bin", b"x" * 3000)
                media.sync_all()
                with media.fs.open("/d/a.bin", "r+b", lock_type="exclusive"):
                    code, out, err = run(capsys, "hub", "status", "--data-dir", str(data_dir),
                                         "--hub-url", hub.url)
                    assert code == 0, err
                    assert f"hub {hub.url}: up (metadata sqlite, blocks local)" in out
                    assert "workspace acme" in out
                    media_line = next(line for line in out.splitlines() if "media:" in line)
                    assert "1 files, 1 directories, 2.9 KiB of data" in media_line
                    assert "1 sessions, 1 locks held, 0 waiting" in media_line
                    assert "raw: 0 files" in out and "0 sessions" in out

                    code, out, _ = run(capsys, "hub", "status", "--data-dir", str(data_dir),
                                       "--hub-url", hub.url, "--json")
                    report = json.loads(out)
                    (ws,) = report["workspaces"]
                    spaces = {fs["name"]: fs for fs in ws["filespaces"]}
                    assert spaces["media"]["statistics"]["data_size"] == 3000
                    assert spaces["media"]["locks"] == {"held": 1}
                    assert report["hub"]["up"] is True
                    assert report["version"] == lucidlink.__version__
                    assert token.split(":")[2] not in out  # no secret anywhere
    # The hub is gone: status still reads the stores and says the hub is not reachable.
    code, out, _ = run(capsys, "hub", "status", "--data-dir", str(data_dir), "--hub-url", hub.url)
    assert code == 0 and ": not reachable (" in out and "media: 1 files" in out


def test_gc_asks_the_running_hub_with_an_admin_token(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EmbeddedHub(tmp_path / "hub", gc_interval_seconds=3600) as hub:
        admin_token = hub.init("acme", ["media"], admin=True)
        plain = hub.init("acme", [])
        monkeypatch.delenv("LUCIDLINK_TOKEN", raising=False)
        monkeypatch.delenv("LUCIDLINK_SA_TOKEN", raising=False)
        code, _, err = run(capsys, "hub", "gc", "--hub-url", hub.url)
        assert code == 2 and "no token" in err
        code, out, err = run(capsys, "hub", "gc", "--hub-url", hub.url, "--token", admin_token)
        assert code == 0 and out.startswith("deleted ") and "unreferenced blocks" in out, err
        code, out, err = run(capsys, "hub", "gc", "--hub-url", hub.url, "--token", plain)
        assert code == 1 and "admin" in err and plain.split(":")[2] not in err + out
        monkeypatch.setenv("LUCIDLINK_TOKEN", admin_token)
        code, out, _ = run(capsys, "hub", "gc", "--hub-url", hub.url, "--grace-seconds", "1")
        assert code == 1  # shorter than the hub's url_ttl_seconds: refused, saying so
    code, _, err = run(capsys, "hub", "gc", "--hub-url", hub.url, "--token", admin_token)
    assert code == 1 and "not reachable" in err


