"""The peer benchmark runs end to end at its smoke size (no figure is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PEERS = Path(__file__).resolve().parent.parent / "benchmarks" / "peers.py"


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
                "16 fresh clients", "JuiceFS 5,023"):
        assert row in out, row
    assert "Peak RSS" in out
