"""The one background event loop that runs the blocking API's coroutines.

The blocking classes in :mod:`lucidlink` are thin wrappers over :mod:`lucidlink.aio`:
each call hands a coroutine to :func:`run`, which executes it on a single asyncio loop
living in a daemon thread shared by the whole process, and blocks the calling thread
until it finishes. One loop means one set of connections and caches however many
threads use the SDK, and it also works when the calling thread runs an unrelated
asyncio loop of its own (Jupyter, an ``async def`` test, a ``run_in_executor`` worker):
that thread is simply blocked.

Nothing starts at import time: the thread is created by the first :func:`get_loop`.
After :func:`os.fork` the child process gets a fresh loop and thread on first use (the
parent's thread does not exist in the child).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["call", "get_loop", "in_loop_thread", "run"]

T = TypeVar("T")

#: How long a waiting thread blocks at a time; short so Ctrl-C is handled promptly.
WAIT_SLICE = 0.1
#: How long :func:`run` waits for a coroutine to finish cancelling after Ctrl-C or a
#: timeout before giving up on it and re-raising.
CANCEL_GRACE = 5.0

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
# Loops replaced after a fork or a dead thread. One inherited from the parent process is
# never closed (it looks "running" forever as its thread does not exist here); keeping a
# reference stops its finalizer from complaining.
_orphans: list[asyncio.AbstractEventLoop] = []


def _serve(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(started.set)
    loop.run_forever()


def get_loop() -> asyncio.AbstractEventLoop:
    """Return the process-wide background loop, starting its daemon thread if needed."""
    return _ensure()[0]


def _ensure() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    global _loop, _thread
    loop, thread = _loop, _thread
    if loop is not None and thread is not None and thread.is_alive():
        return loop, thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            if _loop is not None:
                # The thread died (a BaseException escaped a loop callback): start over
                # rather than let every later call wait forever.
                if not _loop.is_running():
                    _loop.close()
                _orphans.append(_loop)
            new_loop = asyncio.new_event_loop()
            started = threading.Event()
            new_thread = threading.Thread(
                target=_serve, args=(new_loop, started), name="lucidlink-loop", daemon=True
            )
            new_thread.start()
            started.wait()
            _thread = new_thread
            _loop = new_loop
        return _loop, _thread


def in_loop_thread() -> bool:
    """Return True when called from the background loop's own thread."""
    thread = _thread
    return thread is not None and threading.current_thread() is thread


def _reset_after_fork() -> None:
    global _lock, _loop, _thread
    # The lock may have been held by another parent thread at fork time.
    _lock = threading.Lock()
    if _loop is not None:
        _orphans.append(_loop)
    _loop = None
    _thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


class _Call:
    """One :func:`run` request: the coroutine's task on the loop and its outcome.

    The waiting thread blocks on a plain lock, held from creation until the outcome is
    recorded (cheaper than an Event and its Condition), and the outcome is recorded
    at the end of the task's own step rather than by a done callback one loop
    iteration later: a blocking call costs as few thread and loop round trips as can be.
    """

    __slots__ = (
        "loop", "source", "_lock", "finished", "task", "cancel_requested", "value", "error",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        coro_or_factory: Awaitable[Any] | Callable[[], Awaitable[Any]],
    ) -> None:
        self.loop = loop
        self.source: object = coro_or_factory
        self._lock = threading.Lock()
        self._lock.acquire()  # released once, by _finish, on the loop thread
        self.finished = False
        self.task: asyncio.Task[None] | None = None
        self.cancel_requested = False
        self.value: Any = None
        self.error: BaseException | None = None

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for the outcome; return whether it is recorded."""
        return self.finished or self._lock.acquire(timeout=timeout)

    def _finish(self) -> None:
        # Only ever called on the loop thread, so "finished" needs no lock of its own.
        if not self.finished:
            _discard(self.source)
            self.source = None
            self.finished = True
            self._lock.release()

    def start(self) -> None:
        """Create the task (on the loop thread)."""
        if self.cancel_requested:
            self.error = asyncio.CancelledError()
            self._finish()
            return
        self.task = self.loop.create_task(self._main())
        self.task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        # A task cancelled before its first step never enters _main's body, so the
        # outcome is recorded here rather than in _main.
        if task.cancelled() and self.error is None and not self.finished:
            self.error = asyncio.CancelledError()
        self._finish()

    async def _main(self) -> None:
        try:
            source = self.source
            if inspect.isawaitable(source):
                awaitable = source
            else:
                awaitable = source()  # type: ignore[operator]
                if not inspect.isawaitable(awaitable):
                    raise TypeError(
                        f"run() factory {source!r} returned {type(awaitable).__name__}, "
                        "not an awaitable"
                    )
            self.value = await awaitable
        except BaseException as exc:
            # Everything, KeyboardInterrupt and SystemExit included, goes back to the
            # caller: re-raising here would stop the loop for every other thread.
            self.error = exc
        self._finish()

    def cancel(self) -> None:
        """Ask the loop to cancel the task (from any thread)."""

        def _cancel() -> None:
            self.cancel_requested = True
            if self.task is not None:
                self.task.cancel()

        try:
            self.loop.call_soon_threadsafe(_cancel)
        except RuntimeError:  # loop closed: nothing left to cancel
            pass


def _discard(source: object) -> None:
    """Close a coroutine that will never run, so Python does not warn it was not awaited."""
    if inspect.iscoroutine(source):
        source.close()


def _wait(call: _Call, thread: threading.Thread, timeout: float | None) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        remaining = WAIT_SLICE
        if deadline is not None:
            remaining = min(remaining, deadline - time.monotonic())
            if remaining <= 0:
                raise TimeoutError(f"lucidlink call did not finish within {timeout} seconds")
        if call.wait(remaining):
            return
        if not thread.is_alive():
            raise RuntimeError("the lucidlink event-loop thread stopped while a call was running")


def run(
    coro_or_factory: Awaitable[T] | Callable[[], Awaitable[T]], timeout: float | None = None
) -> T:
    """Run an awaitable on the background loop and block until it finishes.

    ``coro_or_factory`` is an awaitable (usually a coroutine object) or a zero-argument
    callable returning one; a callable is invoked on the loop thread, for awaitables that
    must be created while the loop is running. The caller's :mod:`contextvars` context is
    copied to the task. The result is returned and an exception is re-raised as the same
    object. May be called from any thread, including one running its own event loop,
    except the background loop's thread, where blocking would deadlock:
    :class:`RuntimeError` is raised instead.

    ``timeout`` (seconds) cancels the coroutine and raises the builtin
    :class:`TimeoutError` when exceeded. A :class:`KeyboardInterrupt` received while
    waiting cancels the coroutine, waits up to :data:`CANCEL_GRACE` seconds for it to
    finish cancelling, then propagates.
    """
    if in_loop_thread():
        _discard(coro_or_factory)
        raise RuntimeError(
            "a blocking lucidlink call was made from the SDK's event-loop thread, where it "
            "would deadlock; from async code use lucidlink.aio and await it instead"
        )
    if not inspect.isawaitable(coro_or_factory) and not callable(coro_or_factory):
        raise TypeError(
            f"run() needs an awaitable or a callable returning one, "
            f"not {type(coro_or_factory).__name__}"
        )
    loop, thread = _ensure()
    call = _Call(loop, coro_or_factory)
    try:
        # Inside the try: Ctrl-C may arrive as soon as the coroutine starts running.
        loop.call_soon_threadsafe(call.start, context=contextvars.copy_context())
        _wait(call, thread, timeout)
    except BaseException:
        # Ctrl-C, a timeout, or anything else that stops the wait: the coroutine must not
        # keep running unobserved.
        call.cancel()
        call.wait(CANCEL_GRACE)
        raise
    error = call.error
    if error is not None:
        call.error = None
        try:
            raise error
        finally:
            del error
    return call.value  # type: ignore[no-any-return]


async def _invoke(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    return fn(*args, **kwargs)


def call(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Call the plain function ``fn(*args, **kwargs)`` on the background loop's thread.

    For synchronous code of the async core that needs a running loop (for example a
    factory creating loop-bound objects). Same rules as :func:`run`.
    """
    return run(_invoke(fn, args, kwargs))
