"""A hub in a child process for benchmarks, so clients and hub do not share one GIL."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


def quiet_logs() -> None:
    """Only warnings and errors from structlog (the hub logs every request at info)."""
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def add_event_loop_flag(parser: argparse.ArgumentParser) -> None:
    """``--hub-event-loop``: the loop the benchmark's hub runs on (``HubSettings.event_loop``)."""
    from lucidlink.hub.eventloop import EVENT_LOOPS

    parser.add_argument("--hub-event-loop", default=EVENT_LOOPS[0], choices=EVENT_LOOPS,
                        help=f"the hub's event loop (default {EVENT_LOOPS[0]})")


def _serve_hub(data_dir: str, conn: Connection, settings: dict[str, Any],
               env: dict[str, str]) -> None:
    """Child process: run an embedded hub until the parent says stop."""
    import os

    from lucidlink.hub.embedded import EmbeddedHub

    os.environ.update(env)
    quiet_logs()
    with EmbeddedHub(data_dir, gc_interval_seconds=3600, **settings) as hub:
        token = hub.init("bench", ["data"], admin=True)
        conn.send((hub.url, token))
        conn.recv()


class HubProcess:
    """An embedded hub in a child process (or in this one with ``in_process``).

    ``settings`` are extra ``HubSettings`` (e.g. ``block_store="s3://..."``) and ``env``
    environment variables of the child (e.g. ``AWS_ENDPOINT_URL``).
    """

    def __init__(self, data_dir: Path, in_process: bool, settings: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.in_process = in_process
        self.settings = settings or {}
        self.env = env or {}
        self.url = self.token = ""
        self._proc: Any = None
        self._conn: Connection | None = None
        self._hub: Any = None

    def __enter__(self) -> HubProcess:
        if self.in_process:
            from lucidlink.hub.embedded import EmbeddedHub

            quiet_logs()
            self._hub = EmbeddedHub(self.data_dir, gc_interval_seconds=3600,
                                    **self.settings).start()
            self.url, self.token = self._hub.url, self._hub.init("bench", ["data"], admin=True)
        else:
            ctx = multiprocessing.get_context("spawn")
            self._conn, child = ctx.Pipe()
            self._proc = ctx.Process(
                target=_serve_hub, args=(str(self.data_dir), child, self.settings, self.env),
                daemon=True,
            )
            self._proc.start()
            if not self._conn.poll(60):
                raise RuntimeError("the hub did not start within 60 s")
            self.url, self.token = self._conn.recv()
        return self

    @property
    def pid(self) -> int | None:
        """The hub's child process id (``None`` in-process or before it started)."""
        return None if self._proc is None else self._proc.pid

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the hub's child process has used so far (0 in-process)."""
        if self._proc is None or self._proc.pid is None:
            return 0.0
        import os

        fields = Path(f"/proc/{self._proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc: Any) -> None:
        if self._hub is not None:
            self._hub.stop()
        if self._proc is not None and self._conn is not None:
            self._conn.send("stop")
            self._proc.join(30)
            self._conn.close()
