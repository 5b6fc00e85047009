"""A writer for the hub-kill tests: one OS process, the blocking SDK, a log of what it did.

    python tests/support/faultworker.py '{"hub_url": ..., "token": ..., "log": ..., "stop": ...}'

Settings (JSON, first argument): ``hub_url``, ``token``, ``filespace`` (default
``small``), ``log`` (the record file), ``stop`` (a path: the worker stops once it
exists), ``seed``, ``sync_every`` (files between two ``sync_all`` calls, default 5),
``rewrite`` (the chance that a file rewrites an earlier path instead of a new one,
default 0.1), ``block_size``, ``config`` (the daemon's settings), ``final_timeout``
(seconds the last ``sync_all`` may keep failing before the worker gives up).

The worker writes files of random sizes (fresh random bytes, some several blocks
long), closes them, and calls ``sync_all`` every few files, while the test kills and
restarts the hub. The log gets one JSON line per event, written and fsync'd *after*
the event happened, so the log never claims more than was done:

* ``{"ev": "closed", "i", "path", "sha256", "size"}`` once ``close()`` returned;
* ``{"ev": "ack", "closed": n, "final": bool}`` once a ``sync_all()`` returned: the
  first ``n`` closed files (all those closed before it) are acknowledged;
* ``{"ev": "sync_failed", "error", "types", "message"}`` when a ``sync_all()`` raised;
* ``{"ev": "open_retry", "error"}`` when opening a new file raised (the hub is down);
* ``{"ev": "write_failed", "path", "error", "message"}`` when ``write``/``close`` raised;
* ``{"ev": "ready"}`` after linking, ``{"ev": "bye"}`` after the daemon stopped.

It ends by calling ``sync_all()`` until it succeeds (the hub is up again by then),
then stops the daemon; the exit status is 0 only if that final sync succeeded.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from collections.abc import Callable
from typing import IO, Any, TypeVar

import lucidlink
from lucidlink.exceptions import HubUnavailableError, LucidLinkError

T = TypeVar("T")
RETRY_PAUSE = 0.1


class Log:
    """An append-only record file; every line is on disk before :meth:`write` returns."""

    def __init__(self, path: str) -> None:
        self._f: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, **fields: Any) -> None:
        self._f.write(json.dumps(fields) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


def transient(exc: BaseException) -> bool:
    """Whether an error means only "the hub is not answering now": retry later."""
    return isinstance(exc, (HubUnavailableError, TimeoutError, ConnectionError))


def until_up(what: Callable[[], T], log: Log, deadline: float) -> T:
    """``what()``, retried while the hub is unreachable (until ``deadline``)."""
    while True:
        try:
            return what()
        except Exception as exc:  # transient ones are retried, the others re-raised
            if not transient(exc) or time.monotonic() > deadline:
                raise
            log.write(ev="setup_retry", error=type(exc).__name__)
            time.sleep(RETRY_PAUSE)


def pick_size(rng: random.Random, block: int) -> int:
    """Small files, files of a few blocks, and larger ones."""
    roll = rng.random()
    if roll < 0.35:
        return rng.randrange(0, 4096)
    if roll < 0.8:
        return rng.randrange(block - 100, 3 * block + 100)
    return rng.randrange(3 * block, 8 * block + 1)


def main() -> int:
    setup = json.loads(sys.argv[1])
    rng = random.Random(setup.get("seed"))
    log = Log(setup["log"])
    stop_file = setup["stop"]
    block = int(setup.get("block_size", 65536))
    sync_every = int(setup.get("sync_every", 5))
    rewrite = float(setup.get("rewrite", 0.1))
    final_timeout = float(setup.get("final_timeout", 120))

    daemon = lucidlink.create_daemon(hub_url=setup["hub_url"], config=setup.get("config"))
    daemon.start()
    setup_deadline = time.monotonic() + 60
    creds = lucidlink.ServiceAccountCredentials(token=setup["token"])
    workspace = until_up(lambda: daemon.authenticate(creds), log, setup_deadline)
    name = setup.get("filespace", "small")
    filespace = until_up(lambda: workspace.link_filespace(name=name), log, setup_deadline)
    fs = filespace.fs
    log.write(ev="ready")

    def sync(final: bool) -> bool:
        try:
            filespace.sync_all()
        except Exception as exc:  # recorded; the test decides which ones are acceptable
            log.write(
                ev="sync_failed",
                error=type(exc).__name__,
                types=[c.__name__ for c in type(exc).__mro__],
                message=str(exc)[:500],
            )
            return False
        log.write(ev="ack", closed=closed, final=final)
        return True

    closed = 0
    paths: list[str] = []
    while not os.path.exists(stop_file):
        if paths and rng.random() < rewrite:
            path = rng.choice(paths)
        else:
            path = f"/kill-{len(paths):05d}.bin"
            paths.append(path)
        data = rng.randbytes(pick_size(rng, block))
        f = None
        while f is None and not os.path.exists(stop_file):
            try:
                f = fs.open(path, "wb")
            except Exception as exc:  # a new file needs the hub; retry while it is down
                log.write(
                    ev="open_retry",
                    error=type(exc).__name__,
                    transient=transient(exc),
                    message=str(exc)[:300],
                )
                if not transient(exc) and not isinstance(exc, LucidLinkError):
                    raise
                time.sleep(RETRY_PAUSE)
        if f is None:
            break
        try:
            view = memoryview(data)
            for start in range(0, len(data), 100_000):
                f.write(view[start : start + 100_000])
            f.close()
        except Exception as exc:  # must not happen: close queues the commit
            log.write(
                ev="write_failed", path=path, error=type(exc).__name__, message=str(exc)[:500]
            )
            continue
        log.write(
            ev="closed",
            i=closed,
            path=path,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
        )
        closed += 1
        if closed % sync_every == 0:
            sync(final=False)

    ok = False
    deadline = time.monotonic() + final_timeout
    while time.monotonic() < deadline:
        if sync(final=True):
            ok = True
            break
        time.sleep(RETRY_PAUSE)
    try:
        daemon.stop()
    except LucidLinkError as exc:
        log.write(ev="stop_failed", error=type(exc).__name__, message=str(exc)[:500])
        ok = False
    log.write(ev="bye", ok=ok)
    log.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
