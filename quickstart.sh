#!/usr/bin/env bash
# The main job on the embedded default: install, start a hub (SQLite + local blocks in
# a temporary data dir, on a free loopback port), run examples/quickstart.py against it,
# stop the hub.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
exec .venv/bin/lucidlink hub embedded -- .venv/bin/python examples/quickstart.py
