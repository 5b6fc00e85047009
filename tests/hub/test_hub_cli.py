"""The ``lucidlink hub ...`` command line: admin commands in-process, ``serve`` as a process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lucidlink.cli import main
from lucidlink.hub.embedded import EmbeddedHub
from tests.support.ports import free_port

pytest_plugins = ["tests.support.hubfixtures"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``lucidlink <argv>`` in-process: exit code, stdout, stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def http(url: str, token: str | None = None, method: str = "GET", body: Any = None,
         timeout: float = 10) -> tuple[int, Any]:
    """A blocking request (the CLI tests have no event loop)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "hubdata"


def test_init_is_idempotent_and_prints_a_working_token_last(capsys: Any, data_dir: Path) -> None:
    args = ("hub", "init", "--data-dir", str(data_dir), "--workspace", "acme", "--filespace", "media",
            "--filespace", "raw")
    code, out, err = run(capsys, *args)
    assert code == 0 and err == ""
    first = out.strip().splitlines()[-1]
    assert first.startswith("sa_live:")
    code, out, _ = run(capsys, *args)
    assert code == 0
    second = out.strip().splitlines()[-1]
    assert second.startswith("sa_live:") and second != first
    code, out, _ = run(capsys, "hub", "filespace", "list", "--data-dir", str(data_dir), "--workspace", "acme")
    assert code == 0 and [line.split()[1] for line in out.splitlines()] == ["media", "raw"]
    code, out, _ = run(capsys, "hub", "workspace", "list", "--data-dir", str(data_dir))
    assert [line.split()[1] for line in out.splitlines()] == ["acme"]
    with EmbeddedHub(data_dir) as hub:
        for token in (first, second):
            status, who = http(hub.url + "/v1/whoami", token)
            assert status == 200 and who["workspace"]["name"] == "acme" and who["admin"] is True
            status, body = http(hub.url + "/v1/filespaces", token)
            assert sorted(f["name"] for f in body["filespaces"]) == ["media", "raw"]


def test_token_commands(capsys: Any, data_dir: Path) -> None:
    dd = ("--data-dir", str(data_dir))
    run(capsys, "hub", "init", *dd, "--workspace", "acme", "--filespace", "media", "--filespace", "raw")
    code, out, _ = run(capsys, "hub", "token", "create", *dd, "--workspace", "acme", "--read-only",
                       "--filespace", "media", "--description", "reader")
    assert code == 0
    reader = out.strip()
    assert reader.startswith("sa_live:") and len(out.strip().splitlines()) == 1
    code, out, _ = run(capsys, "hub", "token", "create", *dd, "--workspace", "acme", "--admin")
    admin_token = out.strip()
    code, out, _ = run(capsys, "hub", "token", "create", *dd, "--workspace", "acme")
    plain = out.strip()
    code, out, _ = run(capsys, "hub", "token", "list", *dd)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 4  # init's admin token and the three above
    for token in (reader, admin_token, plain):
        key_id, secret = token.split(":")[1], token.split(":")[2]
        assert any(line.startswith(key_id) for line in lines)
        assert secret not in out  # never a secret
    reader_line = next(line for line in lines if line.startswith(reader.split(":")[1]))
    assert "read-only" in reader_line and "active" in reader_line
    code, out, _ = run(capsys, "hub", "token", "list", *dd, "--workspace", "acme")
    assert len(out.strip().splitlines()) == 4
    with EmbeddedHub(data_dir) as hub:
        who = http(hub.url + "/v1/whoami", reader)[1]
        assert who["read_only"] is True and who["admin"] is False and len(who["filespaces"]) == 1
        media = who["filespaces"][0]
        assert [f["name"] for f in http(hub.url + "/v1/filespaces", reader)[1]["filespaces"]] == ["media"]
        status, body = http(hub.url + f"/v1/filespaces/{media}/mkdir", reader, "POST", {"path": "/x"})
        assert status == 403 and body["error"]["code"] == "read_only"
        assert http(hub.url + "/v1/whoami", admin_token)[1]["admin"] is True
        assert http(hub.url + "/v1/whoami", plain)[1] | {"key_id": ""} == {
            "workspace": who["workspace"], "key_id": "", "read_only": False, "admin": False, "filespaces": None}
        status, _ = http(hub.url + "/v1/admin/gc", plain, "POST", {})
        assert status == 403
        # Revocation from the command line takes effect on the running hub at once.
        code, out, _ = run(capsys, "hub", "token", "revoke", *dd, reader.split(":")[1])
        assert code == 0 and reader.split(":")[1] in out
        status, body = http(hub.url + "/v1/whoami", reader)
        assert status == 401 and body["error"]["code"] == "unauthenticated"
    code, out, _ = run(capsys, "hub", "token", "list", *dd)
    assert "revoked" in next(line for line in out.splitlines() if line.startswith(reader.split(":")[1]))
    code, _, err = run(capsys, "hub", "token", "revoke", *dd, "nosuchkey")
    assert code == 1 and "nosuchkey" in err and "token list" in err


def test_workspace_and_filespace_commands(capsys: Any, data_dir: Path) -> None:
    dd = ("--data-dir", str(data_dir))
    code, out, _ = run(capsys, "hub", "workspace", "create", *dd, "studio")
    assert code == 0 and out.split()[1] == "studio" and len(out.split()[0]) == 32
    code, _, err = run(capsys, "hub", "workspace", "create", *dd, "studio")
    assert code == 1 and "studio" in err and "already exists" in err
    code, out, _ = run(capsys, "hub", "filespace", "create", *dd, "--workspace", "studio", "renders",
                       "--block-size", str(1024 * 1024))
    assert code == 0 and "renders" in out and "block_size=1048576" in out
    code, out, _ = run(capsys, "hub", "filespace", "create", *dd, "--workspace", "studio", "plain")
    assert code == 0 and "block_size=4194304" in out
    code, out, _ = run(capsys, "hub", "filespace", "list", *dd, "--workspace", "studio")
    assert [(line.split()[1], line.split()[2]) for line in out.splitlines()] == [
        ("plain", "block_size=4194304"), ("renders", "block_size=1048576")]
    code, _, err = run(capsys, "hub", "filespace", "create", *dd, "--workspace", "studio", "renders")
    assert code == 1 and "already exists" in err
    code, _, err = run(capsys, "hub", "filespace", "list", *dd, "--workspace", "nope")
    assert code == 1 and "'nope' does not exist" in err and "studio" in err
    code, _, err = run(capsys, "hub", "token", "create", *dd, "--workspace", "studio", "--filespace", "nope")
    assert code == 1 and "'nope' does not exist" in err


@pytest.mark.parametrize("argv, words", [
    (("workspace", "create", "bad name"), ("workspace name 'bad name' is invalid", "letters")),
    (("workspace", "create", "_underscore-first"), ("is invalid", "starting with a letter or digit")),
    (("workspace", "create", "x" * 64), ("is invalid", "1-63")),
    (("filespace", "create", "--workspace", "ok", "bad/name"), ("filespace name 'bad/name' is invalid",)),
    (("filespace", "create", "--workspace", "ok", "fine", "--block-size", "1000"),
     ("block size 1000 is invalid", "power of two")),
    (("filespace", "create", "--workspace", "ok", "fine", "--block-size", str(128 * 1024 * 1024)),
     ("is invalid",)),
    (("init", "--workspace", "bad name"), ("workspace name 'bad name' is invalid",)),
    (("init", "--workspace", "ok", "--filespace", "a b"), ("filespace name 'a b' is invalid",)),
])
def test_invalid_names_exit_1_with_a_clear_message(capsys: Any, data_dir: Path, argv: tuple[str, ...],
                                                    words: tuple[str, ...]) -> None:
    run(capsys, "hub", "workspace", "create", "--data-dir", str(data_dir), "ok")
    code, out, err = run(capsys, "hub", *argv, "--data-dir", str(data_dir))
    assert code == 1 and out == ""
    assert err.startswith("error: ")
    for word in words:
        assert word in err
    code, out, _ = run(capsys, "hub", "workspace", "list", "--data-dir", str(data_dir))
    assert [line.split()[1] for line in out.splitlines()] == ["ok"]  # nothing was created


# -- lucidlink hub serve -----------------------------------------------------------------


class Served:
    """A ``lucidlink hub serve`` subprocess whose stderr is collected by a thread."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lucidlink", "hub", "serve", "--data-dir", str(data_dir),
             "--port", str(self.port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]

    def wait_ready(self, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = [e for e in self.events() if e.get("event") == "hub.ready"]
            if ready:
                return ready[0]
            assert self.proc.poll() is None, self.lines
            time.sleep(0.05)
        raise AssertionError(f"no ready line: {self.lines}")

    def finish(self, timeout: float = 20) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code


@pytest.fixture
def served(capsys: Any, data_dir: Path) -> Iterator[tuple[Served, str]]:
    code, out, _ = run(capsys, "hub", "init", "--data-dir", str(data_dir), "--workspace", "demo",
                       "--filespace", "data")
    assert code == 0
    server = Served(data_dir)
    try:
        yield server, out.strip().splitlines()[-1]
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
        server.finish()


def test_serve_prints_one_ready_line_and_stops_on_sigterm(served: tuple[Served, str], data_dir: Path) -> None:
    server, token = served
    ready = server.wait_ready()
    assert ready["url"] == server.url and ready["data_dir"] == str(data_dir)
    assert ready["metadata"] == "sqlite" and ready["blocks"] == "local" and ready["level"] == "info"
    assert [e["event"] for e in server.events()].count("hub.ready") == 1
    assert ready["event_loop"] == "asyncio"
    assert http(server.url + "/healthz") == (
        200, {"status": "ok", "metadata": "sqlite", "blocks": "local", "event_loop": "asyncio"})
    assert http(server.url + "/v1/whoami", token)[1]["workspace"]["name"] == "demo"
    server.proc.send_signal(signal.SIGTERM)
    assert server.finish() == 0
    events = [e["event"] for e in server.events()]
    assert events[-2:] == ["hub.stopping", "hub.stopped"]
    assert (data_dir / "metadata.sqlite3").exists() and (data_dir / "hub.key").exists()
    assert oct((data_dir / "hub.key").stat().st_mode & 0o777) == "0o600"


def test_serve_exits_0_on_sigint_while_a_long_poll_is_in_flight(served: tuple[Served, str]) -> None:
    server, token = served
    server.wait_ready()
    fs = http(server.url + "/v1/filespaces", token)[1]["filespaces"][0]["id"]
    result: dict[str, Any] = {}

    def poll() -> None:
        result["answer"] = http(server.url + f"/v1/filespaces/{fs}/changes?since=0&wait=30", token, timeout=30)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(1.0)  # let the poll reach the hub (a request is logged only once it completes)
    assert poller.is_alive()
    started = time.monotonic()
    server.proc.send_signal(signal.SIGINT)
    poller.join(20)
    assert not poller.is_alive()
    assert result["answer"] == (200, {"changes": [], "seq": 0, "more": False})  # completed, not cut off
    assert server.finish() == 0
    assert time.monotonic() - started < 15  # well before the poll's 30 s wait
    polls = [e for e in server.events() if e.get("event") == "hub.request" and e["route"].endswith("/changes")]
    assert [e["status"] for e in polls] == [200]
    assert [e["event"] for e in server.events()][-1] == "hub.stopped"
    assert not any(e.get("level") == "error" for e in server.events())


def test_serve_on_an_s3_block_store_from_aws_variables(capsys: Any, data_dir: Path,
                                                      seaweed: Any) -> None:
    from tests.support.s3fixtures import s3_env

    code, out, _ = run(capsys, "hub", "init", "--data-dir", str(data_dir), "--workspace", "demo",
                       "--filespace", "data")
    assert code == 0
    token = out.strip().splitlines()[-1]
    bucket = f"lucid-cli-{os.getpid()}-{time.monotonic_ns() % 100000}"  # created by the hub
    # On uvloop (the other serve tests take the default, asyncio's loop).
    server = Served(data_dir, "--block-store", f"s3://{bucket}/blocks", "--event-loop", "uvloop",
                    env=s3_env(seaweed))
    try:
        ready = server.wait_ready()
        assert ready["blocks"] == "s3" and ready["metadata"] == "sqlite"
        assert http(server.url + "/healthz") == (200, {"status": "ok", "metadata": "sqlite",
                                                      "blocks": "s3", "event_loop": "uvloop"})
        fs = http(server.url + "/v1/filespaces", token)[1]["filespaces"][0]["id"]
        status, body = http(server.url + f"/v1/filespaces/{fs}/blocks/urls", token, "POST",
                            {"op": "put", "hashes": ["a" * 64]})
        assert status == 200 and body["urls"]["a" * 64].startswith(f"{seaweed.endpoint}/{bucket}/")
        assert body["headers"]["a" * 64] == {"x-amz-checksum-sha256": mock_checksum("a" * 64)}
        server.proc.send_signal(signal.SIGTERM)
        assert server.finish() == 0
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.finish()
    assert seaweed.secret_key not in "\n".join(server.lines)
    assert not (data_dir / "blocks").exists()


def mock_checksum(digest: str) -> str:
    """The ``x-amz-checksum-sha256`` header of a block: base64 of its raw SHA-256."""
    import base64

    return base64.b64encode(bytes.fromhex(digest)).decode()


def test_serve_on_s3_with_a_wrong_secret_names_what_to_fix(capsys: Any, data_dir: Path,
                                                            seaweed: Any) -> None:
    from tests.support.s3fixtures import s3_env

    env = s3_env(seaweed, AWS_SECRET_ACCESS_KEY="not-the-secret")
    result = subprocess.run(
        [sys.executable, "-m", "lucidlink", "hub", "serve", "--data-dir", str(data_dir),
         "--port", str(free_port()), "--block-store", f"s3://{seaweed.bucket}/x"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "AWS_SECRET_ACCESS_KEY" in result.stderr and "not-the-secret" not in result.stderr


def test_a_data_dir_is_needed_unless_both_stores_are_remote(capsys: Any) -> None:
    code, _, err = run(capsys, "hub", "workspace", "list")
    assert code == 1 and "--data-dir" in err and "SQLite" in err
    code, _, err = run(capsys, "hub", "workspace", "list", "--metadata-url",
                       "postgresql://nobody@127.0.0.1:1/none")
    assert code == 1 and "--data-dir" in err and "block directory" in err
    code, _, err = run(capsys, "hub", "workspace", "list", "--data-dir", "/tmp/x",
                       "--block-store", "gs://bucket")
    assert code == 1 and "s3://BUCKET" in err


def test_without_obstore_the_s3_store_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lucidlink.exceptions import ConfigurationError
    from lucidlink.hub.blockstore import create_block_store
    from lucidlink.hub.config import HubSettings

    monkeypatch.setitem(sys.modules, "obstore", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "lucidlink.hub.blockstore.s3", raising=False)
    settings = HubSettings(data_dir=tmp_path, block_store="s3://bucket/prefix")
    with pytest.raises(ConfigurationError, match=r"pip install 'lucidlink\[s3\]'"):
        create_block_store(settings, {})
