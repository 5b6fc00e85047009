"""Client crash points: nothing written and closed is ever lost.

A client process (``tests/support/crashworker.py``, a physical daemon with ``persist_files``)
writes a plan of files and SIGKILLs itself at the n-th hit of one point of the write
path: a staging write, a block PUT, the pending record (before and after its rename),
just before the commit POST, after the POST was answered but before the record was
dropped, and while ``_resolve`` deletes records. A second process then starts a daemon
on the same root, links the filespace and calls ``sync_all()``, which lands what the
first one left. The hub, read over its raw HTTP API (no SDK), must then show:

* every file the first process logged as closed, with exactly its bytes (lost = 0);
* every planned file that is present at all, with exactly its bytes (torn = 0);
* one create entry in the change journal per present file and none for absent ones:
  a commit that landed before the kill and was retried after it landed once;
* nothing left in the root's ``pending/`` and ``staging/`` dirs.

Hypothesis picks the point and n; one deterministic test per point (n = 1) makes sure
every point is exercised in every run whatever hypothesis picks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.crashworker import POINTS, file_bytes
from tests.support.sdkfixtures import SMALL_BLOCK, SdkHub

WORKER = str(Path(__file__).resolve().parents[1] / "support" / "crashworker.py")
FILESPACE = "small"
SIZES = (0, 1000, SMALL_BLOCK, 3 * SMALL_BLOCK + 3392, 9 * SMALL_BLOCK + 10177)
"""The plan: an empty file, a part of a block, exactly one block, and multi-block files
whose last block is partial (the ``small`` filespace has 64 KiB blocks)."""
CHUNK = 24_000
"""Write size: not a divisor of the block size, so writes straddle block boundaries."""
SYNC_AFTER = 2
"""Index of the file after whose close the writer calls ``sync_all()`` (and at the end)."""
CONFIG = {"fs.flush.delay_ms": "20"}
"""A short flush delay: the flusher commits between closes some of the time."""
REACH = {
    "staging_write": 39,
    "block_put": 16,
    "record_tmp": 5,
    "record_written": 5,
    "before_post": 4,
    "after_post": 4,
    "resolve_partial": 5,
}
"""How often an uninterrupted run of the plan hits each point (``before_post`` and
``after_post``: at most, as closes may share a commit). Hypothesis draws n up to one
past it, so a run that never reaches its point is checked too."""
WORKER_TIMEOUT = 120.0


@attrs.frozen
class Outcome:
    """What one crash-and-resume example left in the hub."""

    returncode: int
    closed: dict[str, str]
    present: dict[str, bytes]
    direct_writes: int | None
    """Staging writes that went past the page cache (``None``: the worker was killed first)."""


def _http(hub: SdkHub, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """One request to the hub (loopback, no proxy); JSON bodies are decoded."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {hub.token}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    full = url if url.startswith("http") else hub.url + url
    request = urllib.request.Request(full, data=data, method=method, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=60) as resp:
            raw, status, ctype = resp.read(), resp.status, resp.headers.get_content_type()
    except urllib.error.HTTPError as err:
        with err:
            raw, status, ctype = err.read(), err.code, err.headers.get_content_type()
    return status, json.loads(raw) if ctype == "application/json" else raw


def _ok(hub: SdkHub, method: str, url: str, body: Any = None) -> Any:
    status, answer = _http(hub, method, url, body)
    assert status == 200, (method, url, status, answer)
    return answer


def _filespace_id(hub: SdkHub) -> str:
    body = _ok(hub, "GET", "/v1/filespaces")
    return str(next(f["id"] for f in body["filespaces"] if f["name"] == FILESPACE))


def _hub_read(hub: SdkHub, fs_id: str, path: str) -> bytes | None:
    """A file's bytes as the hub has them (assembled from its block list), ``None`` if absent."""
    status, info = _http(hub, "GET", f"/v1/filespaces/{fs_id}/file?path={quote(path, safe='/')}")
    if status == 404:
        return None
    assert status == 200, (path, status, info)
    size, block_size = info["entry"]["size"], info["block_size"]
    out = bytearray(size)
    hashes = [b["hash"] for b in info["blocks"] if "data" not in b]  # small blocks come inline
    urls: dict[str, str] = {}
    if hashes:
        body = {"op": "get", "hashes": hashes}
        urls = _ok(hub, "POST", f"/v1/filespaces/{fs_id}/blocks/urls", body)["urls"]
    for b in info["blocks"]:
        if "data" in b:
            status, data = 200, base64.b64decode(b["data"])
        else:
            status, data = _http(hub, "GET", urls[b["hash"]])
        assert status == 200, (path, b, status)
        digest = hashlib.sha256(data).hexdigest()
        assert digest == b["hash"], f"{path}: block {b['index']} is corrupt"
        start = b["index"] * block_size
        out[start:start + b["used"]] = data[: b["used"]]
    return bytes(out)


def _landings(hub: SdkHub, fs_id: str, prefix: str) -> tuple[Counter[str], list[dict[str, Any]]]:
    """Create/modify journal entries per file under ``prefix``, and any other entry there."""
    body = _ok(hub, "GET", f"/v1/filespaces/{fs_id}/changes?since=0&limit=10000")
    assert not body["more"], "the journal outgrew one page; raise the limit"
    landed: Counter[str] = Counter()
    other = []
    for entry in body["changes"]:
        if not str(entry["path"]).startswith(prefix + "/"):
            continue
        if entry["op"] in ("create", "modify"):
            landed[entry["path"]] += 1
        else:
            other.append(entry)
    return landed, other


def _run_worker(args: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, WORKER, json.dumps(args)], capture_output=True,
                          text=True, timeout=WORKER_TIMEOUT, check=False)


def _log_lines(path: Path) -> list[str]:
    """The newline-terminated lines of a worker's log."""
    if not path.exists():
        return []
    text = path.read_text()
    return text.split("\n")[:-1]


def crash_and_resume(hub: SdkHub, work: Path, point: str, nth: int, *,
                     sizes: tuple[int, ...] = SIZES, chunk: int = CHUNK) -> Outcome:
    """Run one example end to end and check every invariant; return what it saw."""
    name = uuid.uuid4().hex[:12]
    prefix = f"/crash-{name}"
    root = work / name
    seed = uuid.uuid4().int & (2**63 - 1)
    plan: list[dict[str, Any]] = [{"path": f"{prefix}/f{i}.bin", "size": size, "seed": seed + i}
                                  for i, size in enumerate(sizes)]
    expected = {f["path"]: file_bytes(f["seed"], f["size"]) for f in plan}
    common = {"hub_url": hub.url, "token": hub.token, "root": str(root), "filespace": FILESPACE,
              "config": CONFIG}

    crash_log = work / f"{name}.crash.log"
    crashed = _run_worker({**common, "log": str(crash_log), "prefix": prefix, "files": plan,
                           "chunk": chunk, "sync_after": SYNC_AFTER, "point": point, "nth": nth})
    assert crashed.returncode in (0, -signal.SIGKILL), (
        f"the crashing worker ({point} #{nth}) failed on its own: rc {crashed.returncode}\n"
        f"{crashed.stderr}")
    lines = _log_lines(crash_log)
    if crashed.returncode == 0:
        assert lines[-1:] == ["done"], lines
        hits = json.loads(next(line[5:] for line in lines if line.startswith("hits ")))
        assert hits[point] < nth, f"{point} was hit {hits[point]} times, yet #{nth} did not kill"

    resume_log = work / f"{name}.resume.log"
    resumed = _run_worker({**common, "log": str(resume_log)})
    assert resumed.returncode == 0, (
        f"the resuming worker failed: rc {resumed.returncode}\n{resumed.stderr}")
    assert _log_lines(resume_log)[-2:] == ["synced", "done"]

    closed: dict[str, str] = {}
    for line in lines:
        if line.startswith("closed "):
            _, path, sha = line.split(" ")
            assert sha == hashlib.sha256(expected[path]).hexdigest(), f"{path}: other bytes written"
            closed[path] = sha

    fs_id = _filespace_id(hub)
    present: dict[str, bytes] = {}
    for path in expected:
        data = _hub_read(hub, fs_id, path)
        if data is not None:
            present[path] = data
    lost = sorted(p for p in closed if p not in present)
    torn = sorted(p for p, data in present.items() if data != expected[p])
    landed, other = _landings(hub, fs_id, prefix)
    twice = {p: n for p, n in landed.items() if n != 1}
    ghosts = sorted(p for p in landed if p not in present)
    state = root / ".lucid"
    left = sorted(str(f.relative_to(state))
                  for sub in ("pending", "staging") for f in (state / sub).iterdir())

    print(f"client crash: point={point} nth={nth} rc={crashed.returncode} closed={len(closed)} "
          f"present={len(present)}/{len(plan)} lost={len(lost)} torn={len(torn)}")
    assert not lost, f"{point} #{nth}: closed files lost after the resume: {lost}"
    assert not torn, f"{point} #{nth}: files present with other bytes than written: {torn}"
    assert not twice, f"{point} #{nth}: files that landed more than once (journal entries): {twice}"
    assert not ghosts, f"{point} #{nth}: journal entries for files that are not there: {ghosts}"
    assert sorted(landed) == sorted(present), (landed, sorted(present))
    assert not other, f"{point} #{nth}: unexpected journal entries: {other}"
    assert not left, f"{point} #{nth}: the resumed daemon left state behind: {left}"
    if crashed.returncode == 0:
        assert sorted(closed) == sorted(expected), "an uninterrupted run closes every file"
    if point == "record_written" and crashed.returncode != 0:
        # The record was durable when the process died, before close() could return
        # and the file be logged: the resume alone must land it.
        durable = plan[nth - 1]["path"]
        assert durable in present, f"{durable} had its record written, yet is lost"
    direct = next((int(line[7:]) for line in lines if line.startswith("direct ")), None)
    return Outcome(crashed.returncode, closed, present, direct)


@st.composite
def crash_cases(draw: st.DrawFn) -> tuple[str, int]:
    """A point and the hit to die at: up to one past the last hit of an uninterrupted run."""
    point = draw(st.sampled_from(POINTS))
    return point, draw(st.integers(1, REACH[point] + 1))


@pytest.mark.parametrize("point", POINTS)
def test_crash_at_first_hit(sdk_hub: SdkHub, tmp_path: Path, point: str) -> None:
    """Every point, at its first hit: the worker dies there, the resume loses nothing."""
    outcome = crash_and_resume(sdk_hub, tmp_path, point, 1)
    assert outcome.returncode == -signal.SIGKILL, f"{point} #1 was never reached"


DIRECT_SIZES = (2 * 1024 * 1024, 3 * 1024 * 1024 + 5000, 1000, 1024 * 1024)
"""Files written in 1 MiB writes at aligned offsets: staging writes that go past the page
cache (where the file system allows ``O_DIRECT``), then a partial tail."""


def _supports_o_direct(directory: Path) -> bool:
    probe = directory / "o_direct_probe"
    probe.touch()
    try:
        os.close(os.open(probe, os.O_WRONLY | getattr(os, "O_DIRECT", 0)))
        return hasattr(os, "O_DIRECT")
    except OSError:
        return False
    finally:
        probe.unlink()


@pytest.mark.parametrize(("point", "nth"), [
    ("staging_write", 2), ("staging_write", 4), ("block_put", 20), ("record_written", 2),
    ("after_post", 1), ("resolve_partial", 1_000),
])
def test_crash_with_direct_staging_writes(sdk_hub: SdkHub, tmp_path: Path, point: str,
                                          nth: int) -> None:
    """Staging written with O_DIRECT: a kill after close still loses and tears nothing."""
    outcome = crash_and_resume(sdk_hub, tmp_path, point, nth, sizes=DIRECT_SIZES,
                               chunk=1024 * 1024)
    if point == "resolve_partial":  # never reached that often: the run finished
        assert outcome.returncode == 0 and len(outcome.closed) == len(DIRECT_SIZES)
        if _supports_o_direct(tmp_path):
            assert outcome.direct_writes, "no staging write went past the page cache"
    else:
        assert outcome.returncode == -signal.SIGKILL, f"{point} #{nth} was never reached"


def _crash_case(sdk_hub: SdkHub, tmp_path: Path, case: tuple[str, int]) -> None:
    point, nth = case
    work = tmp_path / uuid.uuid4().hex[:8]
    work.mkdir()
    crash_and_resume(sdk_hub, work, point, nth)


# CI draws 8 cases a run (a case is a killed worker and a resume, 3-4 s; every point's first
# hit is covered above); the long run draws 60.
@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=crash_cases())
def test_crash_anywhere(sdk_hub: SdkHub, tmp_path: Path, case: tuple[str, int]) -> None:
    """Kill -9 at a point and hit hypothesis picks, then resume: lost = 0, torn = 0, once each."""
    _crash_case(sdk_hub, tmp_path, case)


@pytest.mark.slow
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=crash_cases())
def test_crash_anywhere_at_length(sdk_hub: SdkHub, tmp_path: Path, case: tuple[str, int]) -> None:
    """As :func:`test_crash_anywhere`, 60 cases."""
    _crash_case(sdk_hub, tmp_path, case)
