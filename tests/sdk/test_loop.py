"""Tests of the shared background event loop (lucidlink._loop)."""

from __future__ import annotations

import _thread
import asyncio
import contextvars
import os
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lucidlink import _loop

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOP_THREAD = "lucidlink-loop"


async def where(value: object = None) -> tuple[str, object]:
    """Return the running thread's name and ``value``, after yielding to the loop once."""
    asyncio.get_running_loop()
    await asyncio.sleep(0)
    return threading.current_thread().name, value


def test_nothing_runs_at_import() -> None:
    code = (
        "import threading, lucidlink._loop as l\n"
        "assert l._loop is None\n"
        "assert all(t.name != 'lucidlink-loop' for t in threading.enumerate())\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=60)


def test_run_from_main_thread() -> None:
    assert _loop.run(where(1)) == (LOOP_THREAD, 1)
    assert _loop.get_loop() is _loop.get_loop()
    assert not _loop.in_loop_thread()


def test_run_factory_is_called_on_the_loop_thread() -> None:
    seen: list[str] = []

    def factory():  # type: ignore[no-untyped-def]
        asyncio.get_running_loop()  # raises outside a running loop
        seen.append(threading.current_thread().name)
        return where("f")

    assert _loop.run(factory) == (LOOP_THREAD, "f")
    assert seen == [LOOP_THREAD]


def test_run_rejects_non_awaitables() -> None:
    with pytest.raises(TypeError):
        _loop.run(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not an awaitable"):
        _loop.run(lambda: 42)  # type: ignore[arg-type,return-value]


def test_call_runs_plain_function_on_loop_thread() -> None:
    def plain(a: int, *, b: int) -> tuple[str, int]:
        asyncio.get_running_loop()
        return threading.current_thread().name, a + b

    assert _loop.call(plain, 1, b=2) == (LOOP_THREAD, 3)


def test_many_threads_share_one_loop() -> None:
    loops: set[int] = set()

    async def job(i: int, j: int) -> tuple[int, int]:
        loops.add(id(asyncio.get_running_loop()))
        await asyncio.sleep(0)
        return i, j

    def worker(i: int) -> list[tuple[int, int]]:
        return [_loop.run(job(i, j)) for j in range(50)]

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(worker, range(16)))
    assert results == [[(i, j) for j in range(50)] for i in range(16)]
    assert loops == {id(_loop.get_loop())}


@pytest.mark.asyncio
async def test_run_inside_executor_worker_of_running_loop() -> None:
    running = asyncio.get_running_loop()
    name, value = await running.run_in_executor(None, lambda: _loop.run(where("x")))
    assert (name, value) == (LOOP_THREAD, "x")
    assert _loop.get_loop() is not running


@pytest.mark.asyncio
async def test_run_blocks_a_thread_running_another_loop() -> None:
    # Calling the blocking API straight from async code just blocks this loop.
    assert _loop.run(where("y")) == (LOOP_THREAD, "y")


def test_exception_is_the_same_object() -> None:
    error = ValueError("boom")

    async def fail() -> None:
        await asyncio.sleep(0)
        raise error

    with pytest.raises(ValueError) as info:
        _loop.run(fail())
    assert info.value is error


def test_base_exceptions_come_back_without_stopping_the_loop() -> None:
    async def leave() -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        _loop.run(leave())
    assert _loop.run(where(2)) == (LOOP_THREAD, 2)


def test_run_from_loop_thread_raises_instead_of_deadlocking() -> None:
    async def nested() -> None:
        _loop.run(where())

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the refused coroutine must not warn "never awaited"
        with pytest.raises(RuntimeError, match="deadlock"):
            _loop.run(nested(), timeout=30)


def test_contextvars_are_copied_to_the_task() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def read() -> str:
        return var.get()

    token = var.set("caller")
    try:
        assert _loop.run(read()) == "caller"
    finally:
        var.reset(token)


def test_timeout_cancels_the_coroutine() -> None:
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        _loop.run(slow(), timeout=0.2)
    assert cancelled.is_set()


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="main")
def test_keyboard_interrupt_cancels_the_coroutine() -> None:
    started = threading.Event()
    cancelled = threading.Event()
    cleaned_up = threading.Event()

    async def sleeper() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            await asyncio.sleep(0.05)  # cancellation takes a little while; run waits
            cleaned_up.set()
            raise

    def interrupt() -> None:
        if started.wait(30):
            _thread.interrupt_main()

    timer = threading.Thread(target=interrupt)
    timer.start()
    begin = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            _loop.run(sleeper())
    finally:
        timer.join()
    assert time.monotonic() - begin < 30
    assert cancelled.is_set()
    assert cleaned_up.is_set()
    assert _loop.run(where(5)) == (LOOP_THREAD, 5)


def test_loop_thread_restarts_if_it_died() -> None:
    # In a subprocess: killing the shared loop here would break other tests' objects.
    code = """
import asyncio, threading
from lucidlink import _loop

async def name():
    return threading.current_thread().name

assert _loop.run(name()) == "lucidlink-loop"
old, old_thread = _loop.get_loop(), _loop._thread

def die():
    raise SystemExit  # a BaseException escaping a callback stops run_forever

old.call_soon_threadsafe(die)
old_thread.join(30)
assert not old_thread.is_alive()
assert _loop.run(name(), timeout=30) == "lucidlink-loop"
assert _loop.get_loop() is not old
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_gets_a_fresh_loop() -> None:
    assert _loop.run(where("parent")) == (LOOP_THREAD, "parent")
    parent_loop = _loop.get_loop()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # child: report through the exit status only
        status = 1
        try:
            signal_alarm = getattr(__import__("signal"), "alarm", None)
            if signal_alarm:
                signal_alarm(60)
            ok = _loop.run(where("child"), timeout=30) == (LOOP_THREAD, "child")
            ok = ok and _loop.get_loop() is not parent_loop
            ok = ok and _loop.call(lambda: 6 * 7) == 42
            status = 0 if ok else 2
        finally:
            os._exit(status)
    deadline = time.monotonic() + 90
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("child process hung")
        time.sleep(0.05)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert _loop.get_loop() is parent_loop
    assert _loop.run(where("again")) == (LOOP_THREAD, "again")
