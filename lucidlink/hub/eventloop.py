"""The event loop a hub runs on: uvloop where it is installed, else asyncio's own.

A hub's request costs it about 100 µs of event-loop and aiohttp work before any metadata
is read (measured: ``GET /healthz`` at 95-115 µs of hub CPU on this project's 2-vCPU test
machine). uvloop's loop, written on libuv, does the same socket and callback work in C: a
stat of 16 concurrent clients rose 15-20 % (three interleaved pairs of runs) and small-file
writes 10-18 %. It is a dependency on the platforms it supports; elsewhere, or with
``event_loop="asyncio"``, the hub runs on asyncio's loop, unchanged.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine
from typing import Any, TypeVar

from lucidlink.exceptions import ConfigurationError

T = TypeVar("T")

EVENT_LOOPS = ("auto", "uvloop", "asyncio")
"""The ``event_loop`` choices: ``auto`` (uvloop when installed), ``uvloop`` or ``asyncio``."""


def check_event_loop(value: str) -> None:
    """Raise :class:`ConfigurationError` unless ``value`` names a loop this process can run."""
    if value not in EVENT_LOOPS:
        raise ConfigurationError(
            f"event_loop must be one of {', '.join(EVENT_LOOPS)}, not {value!r}: 'auto' runs "
            "on uvloop when it is installed, else on asyncio's loop", field="event_loop")
    if value == "uvloop" and not uvloop_available():
        raise ConfigurationError(
            "event_loop 'uvloop' was asked for but uvloop is not installed: "
            "pip install uvloop (Linux and macOS), or choose 'auto' or 'asyncio'",
            field="event_loop")


def uvloop_available() -> bool:
    """Whether uvloop can be imported here."""
    return importlib.util.find_spec("uvloop") is not None


def loop_name(choice: str) -> str:
    """The loop ``choice`` resolves to here: ``uvloop`` or ``asyncio``."""
    check_event_loop(choice)
    if choice == "asyncio" or (choice == "auto" and not uvloop_available()):
        return "asyncio"
    return "uvloop"


def new_event_loop(choice: str = "auto") -> asyncio.AbstractEventLoop:
    """A new, not yet running event loop of the kind ``choice`` resolves to."""
    if loop_name(choice) == "asyncio":
        return asyncio.new_event_loop()
    import uvloop

    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run(main: Coroutine[Any, Any, T], choice: str = "auto") -> T:
    """``asyncio.run(main)`` on the loop ``choice`` resolves to."""
    if loop_name(choice) == "asyncio":
        return asyncio.run(main)
    import uvloop

    result: T = uvloop.run(main)
    return result


def running_loop_name() -> str:
    """The kind of the running loop: ``uvloop`` or ``asyncio`` (or another's module name)."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]
