"""The event loop a hub runs on: asyncio's own (the default), or uvloop's on request.

uvloop (libuv, in C) does the loop's socket and callback work with less CPU. Measured on
this project's 2-vCPU test VM, interleaved pairs of runs (docs/architecture.md, "The
hub's event loop"): the hub's CPU per stat of 16 concurrent clients fell 220-235 →
202-225 µs, the throughput moved within the VM's noise, and small-file writes, whose
cost is the metadata writer's thread, did not change. Too little for a dependency
every install carries, so it is an option: ``pip install 'lucidlink[uvloop]'`` and
``event_loop="uvloop"`` (``serve --event-loop uvloop``).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine
from typing import Any, TypeVar

from lucidlink.exceptions import ConfigurationError

T = TypeVar("T")

EVENT_LOOPS = ("asyncio", "uvloop")
"""The ``event_loop`` choices; the first is the default."""


def uvloop_available() -> bool:
    """Whether uvloop can be imported here."""
    return importlib.util.find_spec("uvloop") is not None


def check_event_loop(value: str) -> None:
    """Raise :class:`ConfigurationError` unless ``value`` names a loop this process can run."""
    if value not in EVENT_LOOPS:
        raise ConfigurationError(
            f"event_loop must be one of {', '.join(EVENT_LOOPS)}, not {value!r}",
            field="event_loop")
    if value == "uvloop" and not uvloop_available():
        raise ConfigurationError(
            "event_loop 'uvloop' was asked for but uvloop is not installed: "
            "pip install 'lucidlink[uvloop]' (Linux and macOS), or use 'asyncio'",
            field="event_loop")


def new_event_loop(choice: str = EVENT_LOOPS[0]) -> asyncio.AbstractEventLoop:
    """A new, not yet running event loop of the kind ``choice`` names."""
    check_event_loop(choice)
    if choice == "asyncio":
        return asyncio.new_event_loop()
    import uvloop

    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run(main: Coroutine[Any, Any, T], choice: str = EVENT_LOOPS[0]) -> T:
    """``asyncio.run(main)`` on the loop ``choice`` names."""
    check_event_loop(choice)
    if choice == "asyncio":
        return asyncio.run(main)
    import uvloop

    result: T = uvloop.run(main)
    return result


def running_loop_name() -> str:
    """The kind of the running loop: ``asyncio`` or ``uvloop`` (or another's module name)."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]
