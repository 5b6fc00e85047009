"""An SDK worker: one OS process, one blocking daemon, driven by JSON lines on stdin.

    python tests/support/sdkworker.py '{"hub_url": ..., "token": ..., "filespaces": ["small"], ...}'

The argument is the daemon's set-up: ``hub_url``, ``token``, ``filespaces`` (linked in
order), and optionally ``sandboxed``, ``persist_files``, ``root_path``, ``config``. The
worker starts the daemon, links the filespaces, prints ``{"event": "ready"}`` and then
answers each command line with one result line (JSON, flushed at once):

* ``{"op": <Filesystem method>, "fs": "small", "args": [...]}`` -> ``{"ok": result}``
  (``DirEntry`` and other attrs values become dicts);
* ``{"op": "write", "path", "data"}`` (``data`` base64) -> ``{"ok": null}``;
  ``{"op": "read", "path"}`` -> ``{"ok": base64}``; ``{"op": "sha", "path"}`` -> the
  SHA-256 hex of the file's content;
* ``{"op": "open", "id", "path", "mode"}`` keeps a handle; ``{"op": "h", "id", "call",
  "args"}`` calls a method of it (``bytes`` arguments and results travel as
  ``{"b64": ...}``); ``{"op": "close", "id"}``;
* ``{"op": "sync"}`` runs ``sync_all()`` on every linked filespace;
* ``{"op": "pending"}`` -> the number of change records in ``<root>/.lucid/pending``;
* ``{"op": "exit"}`` (or end of input) unlinks, stops and exits.

Errors are ``{"error": class name, "types": [names in the MRO], "message": str}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import attrs

import lucidlink


def encode(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return {"b64": base64.b64encode(bytes(value)).decode()}
    if attrs.has(type(value)):
        return {k: encode(v) for k, v in attrs.asdict(value, recurse=False).items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def main() -> int:
    setup = json.loads(sys.argv[1])
    daemon = lucidlink.create_daemon(
        hub_url=setup["hub_url"],
        sandboxed=setup.get("sandboxed", True),
        persist_files=setup.get("persist_files", False),
        root_path=setup.get("root_path"),
        config=setup.get("config"),
    )
    daemon.start()
    workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=setup["token"]))
    spaces = {name: workspace.link_filespace(name=name) for name in setup["filespaces"]}
    first = setup["filespaces"][0]
    handles: dict[str, Any] = {}
    emit(event="ready", root=daemon.root_path)
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "exit":
            break
        fs = spaces[cmd.get("fs", first)].fs
        try:
            if op == "write":
                fs.write_file(cmd["path"], base64.b64decode(cmd["data"]))
                result: Any = None
            elif op == "read":
                result = base64.b64encode(fs.read_file(cmd["path"])).decode()
            elif op == "sha":
                result = hashlib.sha256(fs.read_file(cmd["path"])).hexdigest()
            elif op == "open":
                handles[cmd["id"]] = fs.open(cmd["path"], cmd.get("mode", "rb"))
                result = None
            elif op == "h":
                result = encode(
                    getattr(handles[cmd["id"]], cmd["call"])(*decode(cmd.get("args", [])))
                )
            elif op == "close":
                handles.pop(cmd["id"]).close()
                result = None
            elif op == "sync":
                for filespace in spaces.values():
                    filespace.sync_all()
                result = None
            elif op == "pending":
                result = len(list((Path(daemon.state_path or "") / "pending").glob("*.json")))
            else:
                result = encode(getattr(fs, op)(*decode(cmd.get("args", []))))
        except Exception as exc:  # reported to the test
            emit(
                error=type(exc).__name__,
                types=[c.__name__ for c in type(exc).__mro__],
                message=str(exc),
            )
            continue
        emit(ok=result)
    for handle in handles.values():
        handle.close()
    daemon.stop()
    emit(event="bye")
    return 0


if __name__ == "__main__":
    sys.exit(main())
