"""The benchmarks run end to end at a smoke size (no figure is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PEERS = Path(__file__).resolve().parent.parent / "benchmarks" / "peers.py"
HUB_COMMITS = PEERS.with_name("hub_commits.py")


@pytest.mark.slow
def test_peers_quick_runs() -> None:
    """``peers.py --quick --rounds 1`` starts its servers, measures and prints its tables."""
    pytest.importorskip("s3fs", reason="the 'bench' extra is not installed")
    pytest.importorskip("obstore", reason="the 'bench' extra is not installed")
    done = subprocess.run([sys.executable, str(PEERS), "--quick", "--rounds", "1"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "| scenario | unit | lucidlink | s3fs (best form) | obstore |" in out
    for row in ("cold sequential read", "write + sync", "written + synced", "read, fresh client",
                "4 KiB read in", "list 100 entries", "warm re-read", "empty files, 16 clients",
                "16 fresh clients", "JuiceFS 5,023", "1000 x 4 KiB written + synced",
                "64 MiB streamed in and out, peak RSS"):
        assert row in out, row
    assert "Peak RSS" in out
    assert "| goal | ours, S3 blocks | plain HTTP, one object per block |" in out
    assert "(seek+read) | " in out.split("plain HTTP, one object per block")[1]


def test_hub_commits_runs() -> None:
    """``hub_commits.py`` at 256 files commits them all and prints its figures."""
    done = subprocess.run([sys.executable, str(HUB_COMMITS), "--files", "256", "--batch", "64"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for kind in ("sorted", "random"):
        assert f"{kind} commit ids, 256 files of 4096 bytes, 64 per transaction" in done.stdout
    assert done.stdout.count("     256 files:") == 2
    assert done.stdout.count("files/s;") == 2


def test_small_write_costs_runs() -> None:
    """``small_write_costs.py`` writes a few files in each form and prints its costs."""
    script = PEERS.with_name("small_write_costs.py")
    done = subprocess.run([sys.executable, str(script), "--files", "40", "--rounds", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for form in ("write_file", "open", "aio"):
        assert f"{form} round 1/1: " in done.stdout, done.stdout
    assert done.stdout.count("    client CPU µs/file: ") == 3
    assert done.stdout.count("    hub CPU µs/file: ") == 3
    assert "'POST commits'" in done.stdout


def test_stat_costs_runs() -> None:
    """``stat_costs.py`` at a smoke size, the hub on uvloop, stats and prints its medians."""
    done = subprocess.run([sys.executable, str(PEERS.with_name("stat_costs.py")), "--passes", "1",
                           "--clients", "2", "--files", "20", "--hub-event-loop", "uvloop"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "pass 1/1: " in done.stdout
    assert "CPU µs per stat: hub" in done.stdout and "(hub on uvloop)" in done.stdout
