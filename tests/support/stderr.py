"""What an example run under ``PYTHONDEVMODE`` may print on stderr besides trouble."""

from __future__ import annotations

import re

_SLOW_STEP = re.compile(r"^Executing <.*> took \d+(\.\d+)? seconds$")
"""asyncio's debug-mode report of a loop step longer than 0.1 s of wall time."""


def stderr_noise(stderr: str) -> list[str]:
    """The lines of an example's stderr that are neither the embedded hub's banner nor
    asyncio's report of a slow loop step: warnings, tracebacks, anything else.

    The slow-step report measures wall time, so a busy machine makes it (two fresh-clone
    CI runs printed it for 0.11-0.19 s steps with two test workers on two cores): kept,
    it would be a timed assertion. What it once caught for real, anyio importing its
    backend on the hub's loop, is checked without a clock in ``tests/test_imports.py``.
    """
    return [line for line in stderr.splitlines()
            if not line.startswith("lucidhub: serving") and not _SLOW_STEP.match(line)]
