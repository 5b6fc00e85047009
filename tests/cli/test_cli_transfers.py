"""Big transfers through ``lucidlink cp``: 200 MiB each way with progress on and off, and
Ctrl-C mid-transfer leaving no partial file in the filespace or on disk."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import lucidlink
from tests.cli.conftest import CliHub, one_line_error

SIZE = 200 << 20
PART = ".lucidlink-part-"


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 200 MiB file of random bytes and its SHA-256."""
    path = tmp_path_factory.mktemp("big") / "big.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(SIZE >> 22):
            block = os.urandom(4 << 20)
            digest.update(block)
            f.write(block)
    return path, digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(4 << 20):
            digest.update(block)
    return digest.hexdigest()


def test_200_mib_up_with_progress_and_down_without(
    cli_hub: CliHub, sdk: dict[str, lucidlink.Filespace], big_file: tuple[Path, str], tmp_path: Path
) -> None:
    src, digest = big_file
    up = cli_hub.run("--progress", "cp", str(src), cli_hub.url_of("big.bin"))
    assert up.code == 0, up.err
    # stdout is a pipe: the bar was forced, drawn on stderr, and reached the end.
    assert "copying" in up.err and "100%" in up.err and "200.0/200.0 MiB" in up.err
    assert up.out == ""
    assert sdk["media"].fs.get_entry("/big.bin").size == SIZE
    down = cli_hub.run("cp", cli_hub.url_of("big.bin"), str(tmp_path / "copy.bin"))
    assert down.code == 0 and down.err == "" and down.out == ""
    assert _sha256(tmp_path / "copy.bin") == digest
    # -q wins over a bar forced from the environment.
    (tmp_path / "small").write_bytes(b"s" * 1000)
    quiet = cli_hub.run(
        "-q",
        "cp",
        str(tmp_path / "small"),
        cli_hub.url_of("small"),
        env=cli_hub.env(LUCIDLINK_PROGRESS="1"),
    )
    assert quiet.code == 0 and quiet.err == ""


def _interrupt_mid_transfer(cli_hub: CliHub, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run ``cp`` with progress forced and a rate limit; SIGINT once the bar shows 1-89 %."""
    seen = bytearray()
    started = threading.Event()
    argv = [sys.executable, "-m", "lucidlink", "--progress", "cp", "--bwlimit", "40M", *args]
    with subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cli_hub.env()
    ) as proc:

        def read() -> None:
            assert proc.stderr is not None
            while chunk := proc.stderr.read1(4096):
                seen.extend(chunk)
                # Only the newest bytes: the hub runs in this process and needs the GIL.
                if re.search(rb"\b([1-9]|[1-8]\d)%", bytes(seen[-300:])):
                    started.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert started.wait(60), seen.decode(errors="replace")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        reader.join(10)  # stderr is read by the reader alone, to its end
    return subprocess.CompletedProcess(argv, proc.returncode, b"", bytes(seen))


def test_ctrl_c_leaves_no_partial_file(
    cli_hub: CliHub, sdk: dict[str, lucidlink.Filespace], big_file: tuple[Path, str], tmp_path: Path
) -> None:
    src, _ = big_file
    fs = sdk["media"].fs
    fs.create_dir("/up")
    up = _interrupt_mid_transfer(cli_hub, str(src), cli_hub.url_of("up/big.bin"))
    assert up.returncode == 130, up.stderr
    assert "interrupted" in up.stderr.decode().splitlines()[-1]
    assert fs.list_dir("/up") == []  # neither the target nor the temporary
    if not fs.file_exists("/big.bin"):
        fs.write_file("/big.bin", src.read_bytes())
        sdk["media"].sync_all()
    # Down, over an existing file: it is left as it was, and nothing else appears.
    down_dir = tmp_path / "down"
    down_dir.mkdir()
    (down_dir / "big.bin").write_bytes(b"old")
    down = _interrupt_mid_transfer(cli_hub, cli_hub.url_of("big.bin"), str(down_dir / "big.bin"))
    assert down.returncode == 130, down.stderr
    assert os.listdir(down_dir) == ["big.bin"] and (down_dir / "big.bin").read_bytes() == b"old"
    bad_rate = cli_hub.run("cp", "--bwlimit", "fast", str(src), cli_hub.url_of("x"))
    assert bad_rate.code == 2 and "not a rate" in one_line_error(bad_rate)
