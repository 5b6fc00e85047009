"""tests/support/stderr.py: only the banner and asyncio's slow-step reports are let through."""

from __future__ import annotations

from tests.support.stderr import stderr_noise


def test_warnings_and_tracebacks_are_noise_the_banner_and_slow_steps_are_not() -> None:
    stderr = "\n".join([
        "lucidhub: serving http://127.0.0.1:4000 (data dir /tmp/x); running: python ex.py",
        "Executing <Task pending name='Task-1' coro=<EmbeddedHub._serve() running at "
        "/x/embedded.py:64> cb=[_run_until_complete_cb() at /y.py:180] created at "
        "/z.py:680> took 0.113 seconds",
        "Executing <Handle cb() at /a.py:1> took 2 seconds",
        "/x/y.py:3: ResourceWarning: unclosed <socket.socket fd=5>",
        "Traceback (most recent call last):",
        "Executing <Task> took a while",
    ])
    assert stderr_noise(stderr) == [
        "/x/y.py:3: ResourceWarning: unclosed <socket.socket fd=5>",
        "Traceback (most recent call last):",
        "Executing <Task> took a while",
    ]
