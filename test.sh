#!/usr/bin/env bash
# The one test command: make a virtualenv, install the package with its test extras,
# run the whole suite (benchmarks and soak tests marked "slow" are skipped; run them
# with: .venv/bin/python -m pytest -m slow).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test,docs]'
# Hub tests run on SQLite and on PostgreSQL: use the server on 127.0.0.1:5432, or start one.
tools/ensure_postgres.sh || echo "test.sh: no PostgreSQL; its tests will skip (and fail under CI)" >&2
.venv/bin/python tools/generate_sync.py --check
# Types: lucidlink/ (strict for lucidlink.aio and lucidlink.hub; settings in pyproject.toml).
.venv/bin/python -m mypy
# The documentation site, strict: a broken API reference or link fails here.
.venv/bin/mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
# Two worker processes (pytest-xdist), a test file each at a time: most tests wait on a
# hub, a disk or a subprocess, so two halve the wall time on a 2-core machine (27 -> 15
# min). Every test already starts its own hub on a free port, and its own PostgreSQL
# schema. LUCIDLINK_TEST_WORKERS=0 runs them in this process.
exec .venv/bin/python -m pytest -m "not slow" -p no:cacheprovider \
    -n "${LUCIDLINK_TEST_WORKERS:-2}" --dist loadfile "$@"
