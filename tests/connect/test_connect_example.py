"""``examples/connect.py`` runs as documented, against an embedded hub and SeaweedFS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.seaweed import SeaweedS3

REPO = Path(__file__).resolve().parents[2]


def test_connect_example_runs(seaweed: SeaweedS3) -> None:
    env = {**os.environ, **seaweed.env(), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "lucidlink", "hub", "embedded", "--", sys.executable, "examples/connect.py"],
        cwd=REPO, timeout=120, capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "1,alpha" in proc.stdout and "linked: ['/proj1/dataset1/file1.csv']" in proc.stdout
    assert "read-only:" in proc.stdout and proc.stdout.rstrip().endswith("done")
    assert seaweed.secret_key not in proc.stdout + proc.stderr


def test_connect_example_without_s3_settings_exits_0() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("S3_")}
    proc = subprocess.run([sys.executable, "examples/connect.py"], cwd=REPO, timeout=60, capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "S3_ENDPOINT" in proc.stdout and "Nothing to do" in proc.stdout
