"""A lock-test worker: one OS process, one daemon, driven by JSON lines on stdin.

    python tests/support/lockworker.py HUB_URL TOKEN FILESPACE [--no-client-check] [--blocking]

Each line on stdin is a command; each line on stdout an event (JSON, flushed at
once). The process links FILESPACE with its own daemon (its own session on the hub),
reports ``{"event": "ready", ...}`` and then runs the commands one by one:

* ``{"op": "open", "path", "mode", "lock", "timeout"}`` -> ``acquired`` (with the
  fencing ``token`` and the time ``t`` of the grant, ``time.monotonic()``: one clock
  for every process of a Linux machine) or ``error``. The handle
  stays open for the commands that follow.
* ``{"op": "write", "data"}`` -> ``wrote``; ``{"op": "close"}`` -> ``closed`` (with ``t``).
* ``{"op": "wait_holders", "path", "n"}`` -> ``holders`` once ``n`` locks are held on
  ``path`` (or ``error`` after 20 s).
* ``{"op": "count", "path", "n"}`` -> ``counted``: ``n`` read-modify-write increments
  of a decimal counter file under an exclusive lock, with each step's token and value.
* ``{"op": "exit"}`` (or end of input) -> unlink, ``bye`` (or ``exit_error``).

Errors are reported as ``{"event": "error", "type", "types" (the MRO's names),
"message", "elapsed"}``. ``--no-client-check`` disables the SDK's own lease check, so
a change made under a lost lease reaches the hub and the hub's fencing is what refuses it.

``--blocking`` runs the daemon through the blocking API instead (``lucidlink``, as a
user's script would), with ``open`` (no ``token`` in ``acquired``), ``write``,
``close`` and these commands, each answered by its event or ``error``:

* ``{"op": "delete", "path"}`` -> ``deleted``; ``{"op": "move", "src", "dst"}`` ->
  ``moved``; ``{"op": "truncate", "path", "size"}`` -> ``truncated``;
* ``{"op": "write_file", "path", "data"}`` -> ``written`` once ``sync_all`` returned
  (so a refused commit is reported here);
* ``{"op": "read", "path"}`` -> ``read`` with ``data`` (UTF-8);
* ``{"op": "raw", "method", "route", "json", "session"}`` -> ``raw`` with ``status`` and
  ``body``: one HTTP request with this worker's token, sending ``session`` as
  ``X-Lucid-Session`` (a session id learnt elsewhere);
* ``{"op": "exit"}`` -> unlink, ``bye``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import structlog

import lucidlink
import lucidlink.aio
from lucidlink.aio.locks import HeldLock


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def error_fields(exc: BaseException, started: float) -> dict[str, Any]:
    return {"type": type(exc).__name__, "types": [c.__name__ for c in type(exc).__mro__],
            "message": str(exc), "elapsed": time.monotonic() - started}


async def stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def count(fs: Any, path: str, n: int) -> list[list[int]]:
    """``n`` increments; returns ``[token, value read]`` per step."""
    steps = []
    for _ in range(n):
        async with fs.open(path, "r+b", lock_type="exclusive", lock_timeout=None) as f:
            value = int(await f.read() or b"0")
            await f.seek(0)
            await f.write(str(value + 1).encode())
            await f.truncate()
            steps.append([f.lock_token, value])
    return steps


async def serve(hub_url: str, token: str, filespace_name: str) -> None:
    reader = await stdin_lines()
    async with lucidlink.aio.create_daemon(hub_url=hub_url) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=token))
        filespace = await ws.link_filespace(name=filespace_name)
        fs = filespace.fs
        emit("ready", pid=os.getpid(), session=filespace._link.session_id,
             client=f"lucidlink-python daemon {daemon._id}")
        handle: Any = None
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                cmd = json.loads(line)
                op = cmd["op"]
                if op == "exit":
                    break
                started = time.monotonic()
                try:
                    if op == "open":
                        emit("requesting", t=time.monotonic())
                        handle = await fs.open(cmd["path"], cmd.get("mode", "rb"), lock_type=cmd["lock"],
                                               lock_timeout=cmd.get("timeout", 30.0))
                        emit("acquired", token=handle.lock_token, t=time.monotonic())
                    elif op == "write":
                        await handle.write(cmd["data"].encode())
                        emit("wrote", t=time.monotonic())
                    elif op == "close":
                        h, handle = handle, None
                        await h.close()
                        emit("closed", t=time.monotonic())
                    elif op == "wait_holders":
                        while True:
                            held = [x for x in await fs.get_locks(cmd["path"]) if x.state == "held"]
                            if len(held) >= cmd["n"]:
                                emit("holders", n=len(held), t=time.monotonic())
                                break
                            if time.monotonic() - started > 20:
                                raise TimeoutError(f"only {len(held)} holder(s) on {cmd['path']}")
                            await asyncio.sleep(0.05)
                    elif op == "count":
                        t0 = time.monotonic()
                        steps = await count(fs, cmd["path"], cmd["n"])
                        emit("counted", steps=steps, t0=t0, t1=time.monotonic())
                    else:
                        raise ValueError(f"unknown op {op!r}")
                except Exception as exc:  # reported to the test, which decides
                    emit("error", op=op, **error_fields(exc, started))
        finally:
            started = time.monotonic()
            try:
                if handle is not None:
                    await handle.close()
                await filespace.unlink()
            except Exception as exc:
                emit("exit_error", **error_fields(exc, started))
    emit("bye")


def raw_request(hub_url: str, token: str, method: str, route: str, body: Any, session: str | None) -> tuple[int, Any]:
    """One HTTP request to the hub, bypassing the SDK: ``(status, decoded JSON body)``."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if session:
        headers["X-Lucid-Session"] = session
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(hub_url + route, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def serve_blocking(hub_url: str, token: str, filespace_name: str) -> None:
    daemon = lucidlink.create_daemon(hub_url=hub_url)
    daemon.start()
    try:
        filespace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=token)).link_filespace(
            name=filespace_name)
        fs = filespace.fs
        emit("ready", pid=os.getpid(), session=filespace._async._link.session_id)
        handle: Any = None
        for line in sys.stdin:
            if not line.strip():
                continue
            cmd = json.loads(line)
            op = cmd["op"]
            if op == "exit":
                break
            started = time.monotonic()
            try:
                if op == "open":
                    emit("requesting", t=time.monotonic())
                    handle = fs.open(cmd["path"], cmd.get("mode", "rb"), lock_type=cmd["lock"],
                                     lock_timeout=cmd.get("timeout", 30.0))
                    emit("acquired", t=time.monotonic())
                elif op == "write":
                    handle.write(cmd["data"].encode())
                    emit("wrote", t=time.monotonic())
                elif op == "close":
                    h, handle = handle, None
                    h.close()
                    emit("closed", t=time.monotonic())
                elif op == "delete":
                    fs.delete(cmd["path"])
                    emit("deleted")
                elif op == "move":
                    fs.move(cmd["src"], cmd["dst"])
                    emit("moved")
                elif op == "truncate":
                    fs.truncate(cmd["path"], cmd["size"])
                    emit("truncated")
                elif op == "write_file":
                    fs.write_file(cmd["path"], cmd["data"].encode())
                    filespace.sync_all()
                    emit("written")
                elif op == "read":
                    emit("read", data=fs.read_file(cmd["path"]).decode())
                elif op == "raw":
                    status, body = raw_request(hub_url, token, cmd["method"], cmd["route"], cmd.get("json"),
                                               cmd.get("session"))
                    emit("raw", status=status, body=body)
                else:
                    raise ValueError(f"unknown op {op!r}")
            except Exception as exc:  # reported to the test, which decides
                emit("error", op=op, **error_fields(exc, started))
        if handle is not None:
            handle.close()
        filespace.unlink()
    finally:
        daemon.stop()
    emit("bye")


def main() -> None:
    hub_url, token, filespace_name = sys.argv[1:4]
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))  # stdout is for events
    if "--no-client-check" in sys.argv[4:]:
        HeldLock.lost = lambda self: False  # type: ignore[method-assign]
    if "--blocking" in sys.argv[4:]:
        serve_blocking(hub_url, token, filespace_name)
    else:
        asyncio.run(serve(hub_url, token, filespace_name))


if __name__ == "__main__":
    main()
