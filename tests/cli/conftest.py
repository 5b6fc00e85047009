"""The command line's fixtures: one embedded hub per module, and ``lucidlink`` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

import lucidlink
from lucidlink.hub.embedded import EmbeddedHub


@attrs.frozen
class Result:
    """What a ``lucidlink`` run printed and returned."""

    code: int
    out: str
    err: str


@attrs.frozen
class CliHub:
    """A hub with workspace ``demo``, filespaces ``media`` and ``archive``, an admin token."""

    url: str
    token: str
    read_only_token: str
    home: Path
    """An empty ``XDG_CONFIG_HOME``, so no profile of the machine's user is read."""

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a run: hub, token and a private config home."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("LUCIDLINK_") and k != "_LUCIDLINK_COMPLETE"
        }
        env.update(
            LUCIDLINK_HUB_URL=self.url,
            LUCIDLINK_TOKEN=self.token,
            XDG_CONFIG_HOME=str(self.home),
            COLUMNS="200",
        )
        env.update(extra)
        return {k: v for k, v in env.items() if v != ""}

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        stdin: bytes | None = None,
        cwd: Path | None = None,
        timeout: float = 120,
    ) -> Result:
        """``python -m lucidlink ARGS``: exit code, stdout, stderr."""
        proc = subprocess.run(
            [sys.executable, "-m", "lucidlink", *args],
            input=stdin,
            capture_output=True,
            env=env or self.env(),
            cwd=cwd,
            timeout=timeout,
        )
        return Result(
            proc.returncode,
            proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
        )

    def run_all(
        self, *runs: tuple[str, ...] | tuple[tuple[str, ...], dict[str, str]], timeout: float = 120
    ) -> list[Result]:
        """Several independent runs at once (each ``args`` or ``(args, env)``), in order."""
        procs = []
        for run in runs:
            args, env = (run[0], run[1]) if run and isinstance(run[0], tuple) else (run, None)
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "lucidlink", *args],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                    env=env or self.env(),
                )
            )
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            results.append(
                Result(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
            )
        return results

    def url_of(self, path: str = "", filespace: str = "media") -> str:
        """``lucidlink://demo/FILESPACE/PATH``."""
        return f"lucidlink://demo/{filespace}/{path.lstrip('/')}".rstrip("/")


@pytest.fixture(scope="module")
def cli_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliHub]:
    """An embedded hub shared by one test module."""
    root = tmp_path_factory.mktemp("cli-hub")
    with EmbeddedHub(root / "hub", gc_interval_seconds=3600) as hub:
        token = hub.init("demo", ["media", "archive"], admin=True)
        read_only = hub.init("demo", [], read_only=True)
        home = root / "config"
        home.mkdir()
        yield CliHub(hub.url, token, read_only, home)


@pytest.fixture(scope="module")
def sdk(cli_hub: CliHub) -> Iterator[dict[str, lucidlink.Filespace]]:
    """Filespaces ``media`` and ``archive`` linked in this process, to set up and check runs."""
    with lucidlink.create_daemon(hub_url=cli_hub.url) as daemon:
        ws = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=cli_hub.token))
        yield {name: ws.link_filespace(name=name) for name in ("media", "archive")}


def listing(filespace: lucidlink.Filespace, path: str) -> dict[str, int]:
    """Everything under ``path`` (names relative to it; directories end in ``/``), with sizes."""
    out: dict[str, int] = {}
    for e in filespace.fs.read_dir(path):
        rel = e.name + ("/" if e.is_dir() else "")
        out[rel] = e.size
        if e.is_dir():
            out.update(
                {f"{e.name}/{k}": v for k, v in listing(filespace, f"{path}/{e.name}").items()}
            )
    return out


def one_line_error(result: Result) -> str:
    """The single stderr line of a failed run (asserting there is exactly one)."""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("lucidlink: error: "), result.err
    assert "Traceback" not in result.err
    return lines[0]
