"""The examples run as documented, against a throw-away embedded hub.

Each example that says it targets the embedded hub (its docstring shows
``lucidlink hub embedded -- python examples/<name>.py``) is run exactly that way, from
the repository root, in Python's development mode with warnings as errors. Examples
that another test module already runs (it names ``<name>.py`` in a string) are left to it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stderr import stderr_noise

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))
TESTS = Path(__file__).resolve().parents[1]


def _run_elsewhere(example: Path) -> str | None:
    """The test module that already runs ``example`` (names it in a string), if any."""
    needle = re.compile(rf"[\"'/]{re.escape(example.name)}[\"']")
    for test in sorted(TESTS.rglob("test_*.py")):
        if test.name != Path(__file__).name and needle.search(test.read_text(encoding="utf-8")):
            return str(test.relative_to(TESTS))
    return None


def _targets_embedded_hub(example: Path) -> bool:
    return f"lucidlink hub embedded -- python examples/{example.name}" in example.read_text(
        encoding="utf-8"
    )


#: Examples whose output is checked by a test of their own below.
CHECKED_HERE = {"quickstart.py", "file_operations.py", "async_quickstart.py"}


def _cases() -> list[object]:
    cases: list[object] = []
    for example in EXAMPLES:
        elsewhere = _run_elsewhere(example)
        marks = []
        if example.name in CHECKED_HERE:
            marks.append(pytest.mark.skip(reason="its output is checked by its own test here"))
        elif elsewhere:
            marks.append(pytest.mark.skip(reason=f"run by tests/{elsewhere}"))
        elif not _targets_embedded_hub(example):
            marks.append(pytest.mark.skip(reason="does not target the embedded hub"))
        cases.append(pytest.param(example, id=example.stem, marks=marks))
    return cases


def run_example(example: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "lucidlink", "hub", "embedded", "--", sys.executable, str(example)],
        cwd=REPO,
        timeout=180,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "PYTHONDEVMODE": "1",
            "PYTHONWARNINGS": "error",
        },
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    # No warnings, no tracebacks (see stderr_noise for what else may be there).
    assert stderr_noise(proc.stderr) == [], proc.stderr
    return proc


def test_the_documented_examples_are_covered() -> None:
    names = {e.name for e in EXAMPLES}
    assert names >= CHECKED_HERE
    assert _run_elsewhere(REPO / "examples" / "file_locking.py") == "sdk/test_locks.py"
    for example in EXAMPLES:  # every example is run here or by another module
        assert _run_elsewhere(example) or _targets_embedded_hub(example), example.name


@pytest.mark.parametrize("example", _cases())
def test_example_exits_cleanly(example: Path) -> None:
    proc = run_example(example)
    assert proc.stdout.strip(), "an example shows what it did"


def test_quickstart_prints_what_it_promises() -> None:
    out = run_example(REPO / "examples" / "quickstart.py").stdout.splitlines()
    assert out[0] == "workspace demo: ['production-data']"
    assert out[1] == "Hello from lucidlink!"  # the file written, read back
    assert out[2:4] == ["notes: first line", "notes: second line"]  # text mode, line by line
    listing = out[4:6]  # the directory listing: type, size, time, path
    assert re.fullmatch(
        r"file +22  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00  /projects/2024/hello\.txt", listing[0]
    )
    assert re.fullmatch(r"file +23  \S+  /projects/2024/notes\.txt", listing[1])
    assert out[6] == "2 files, 2 directories, 45 bytes of data (45 stored), 0 external files"
    assert len(out) == 7


def test_file_operations_tour_prints_its_results() -> None:
    out = run_example(REPO / "examples" / "file_operations.py").stdout.splitlines()
    assert out == [
        "written: 12582912 bytes",
        "patched bytes: b'PATCHED'",
        "log: ['started', 'finished']",
        "truncated to 1024",
        "processed: ['video.bin']",
        "exists? False True",
        "as expected: /tour/missing.txt does not exist in this filespace",
        out[7],
        "size after cleanup: 0 entries, 0 bytes of data, 0 bytes stored, "
        "0 external files (0 bytes)",
    ]
    assert (
        out[7].startswith("as expected: ") and "recursive=True" in out[7]
    )  # the error says what to do


def test_async_quickstart_prints_its_lines_and_listing() -> None:
    out = run_example(REPO / "examples" / "async_quickstart.py").stdout.splitlines()
    assert out[:3] == ["line 0", "line 1", "line 2"]  # async for over the file
    assert out[3] == str(sorted([f"{i}.bin" for i in range(10)] + ["lines.txt"]))
    assert len(out) == 4
