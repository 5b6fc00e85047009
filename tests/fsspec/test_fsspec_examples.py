"""The fsspec examples run as documented: ``lucidlink hub embedded -- python examples/X.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "example, needs",
    [
        ("fsspec_operations.py", []),
        ("pandas_integration.py", ["pandas", "pyarrow"]),
    ],
)
def test_example_runs_against_an_embedded_hub(example: str, needs: list[str]) -> None:
    for module in needs:
        pytest.importorskip(module)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lucidlink",
            "hub",
            "embedded",
            "--",
            sys.executable,
            f"examples/{example}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"{example} failed:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
