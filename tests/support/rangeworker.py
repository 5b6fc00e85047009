"""A byte-range lock worker: one OS process, one blocking-API daemon, JSON lines on stdin.

    python tests/support/rangeworker.py HUB_URL TOKEN FILESPACE PATH

It links FILESPACE, takes a handle on PATH (``fs.open_handle``), reports ``ready`` and
runs each command line: ``{"op": "lock", "offset", "length", "mode", "blocking"}`` ->
``locked`` with ``granted``; ``{"op": "unlock_all"}`` -> ``unlocked``; ``{"op": "exit"}``
(or end of input) -> ``bye``. A failure is ``{"event": "error", "type", "message"}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import lucidlink


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def main() -> None:
    hub_url, token, name, path = sys.argv[1:5]
    with lucidlink.create_daemon(hub_url=hub_url) as daemon:
        fs = (
            daemon.authenticate(lucidlink.ServiceAccountCredentials(token=token))
            .link_filespace(name=name)
            .fs
        )
        handle = fs.open_handle(path)
        emit("ready", handle=handle)
        for line in sys.stdin:
            cmd = json.loads(line)
            try:
                if cmd["op"] == "lock":
                    granted = fs.lock_byte_range(
                        handle, cmd["offset"], cmd["length"], cmd["mode"], cmd["blocking"]
                    )
                    emit("locked", granted=granted)
                elif cmd["op"] == "unlock_all":
                    fs.unlock_all_byte_ranges(handle)
                    emit("unlocked")
                elif cmd["op"] == "exit":
                    break
            except Exception as exc:  # reported to the test, which decides
                emit("error", type=type(exc).__name__, message=str(exc))
    emit("bye")


if __name__ == "__main__":
    main()
