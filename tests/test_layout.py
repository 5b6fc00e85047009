"""The house rules a reader relies on: small modules, a small generator.

No module of ``lucidlink/`` over 600 lines (the generated facade included: it grows
with the async API it mirrors, and a class that outgrows it is split in the core), and
``tools/generate_sync.py`` at most 400 lines: the generator stays a map, not a compiler.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 600
MAX_GENERATOR_LINES = 400


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize(
    "module", sorted(REPO.joinpath("lucidlink").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO))
)
def test_no_module_is_over_600_lines(module: Path) -> None:
    lines = _lines(module)
    assert lines <= MAX_MODULE_LINES, (
        f"{module.relative_to(REPO)} has {lines} lines (limit {MAX_MODULE_LINES}): split it by job"
    )


def test_the_generator_stays_small() -> None:
    lines = _lines(REPO / "tools" / "generate_sync.py")
    assert lines <= MAX_GENERATOR_LINES, f"tools/generate_sync.py has {lines} lines"
