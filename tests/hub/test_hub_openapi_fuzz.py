"""schemathesis against the hub's own OpenAPI document (issue 10).

A real hub (SQLite, then PostgreSQL) with a filespace, a daemon session, a held lock and
a Connect data store on a real S3 (SeaweedFS) is fuzzed from ``/v1/openapi.json`` with
the ids filled in, so generated requests reach the handlers' logic. Phases: coverage
(schema boundaries, valid and invalid), fuzzing (random valid and invalid requests) and
stateful (sequences along the document's links). Checks: no 5xx, every status and
content type documented, every body matching its schema, invalid requests refused,
valid requests accepted (or refused only for the state they meet: 404, 409, 410), and
auth enforced. The CI run is bounded (8 examples an operation, about 40 s per store);
the long one is ``slow``.

What the document cannot say in JSON Schema, the run is told here:

* ``lucid-path`` strings are generated within the byte limits (``pattern`` and
  ``maxLength`` count code points; the hub counts UTF-8 bytes, see lucidlink/paths.py);
* generated strings hold no NUL (PostgreSQL cannot store one; such requests are
  refused with 400 and are covered by tests/hub/test_hub_hardening.py);
* 410 (``session_expired``) is a state answer, like 404: a well-formed session id
  that is not (or no longer) live;
* the connection fields of a data store's config are pinned to the SeaweedFS server
  (the hub checks the bucket before it stores a data store; a random endpoint is a
  refused configuration, not a schema violation), and ``wait`` is bounded by this
  hub's ``long_poll_max_seconds`` (1 s here), which the document states.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.engine import events, from_schema

from lucidlink.hub.core.admin import MAX_BLOCK_SIZE
from lucidlink.hub.embedded import EmbeddedHub
from lucidlink.paths import MAX_NAME_BYTES
from tests.support.seaweed import SeaweedS3

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "negative_data_rejection", "positive_data_acceptance", "ignored_auth")
STORE = "fuzz"


def _names() -> st.SearchStrategy[str]:
    text = st.text(st.characters(exclude_characters="/\x00", exclude_categories=("Cs",)), min_size=1, max_size=24)
    return text.filter(lambda n: n not in (".", "..") and len(n.encode()) <= MAX_NAME_BYTES)


@st.composite
def _paths(draw: st.DrawFn) -> str:
    names = draw(st.lists(st.one_of(_names(), st.sampled_from(["a", "b", "dir", "f.txt"])), max_size=4))
    seps = [draw(st.sampled_from(["/", "/", "/", "//"])) for _ in names]
    tail = draw(st.sampled_from(["", "", "", "/"]))
    return ("".join(s + n for s, n in zip(seps, names, strict=True)) or "/") + tail


schemathesis.openapi.format("lucid-path", _paths())

SEAWEED: dict[str, Any] = {}
"""The S3 connection of the running test (read by the hook below)."""


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """Make valid requests meet the rules between fields that the document states only in words.

    Only cases generated as valid are touched, and they stay valid for the document:
    a commit's slots start before its size and appear once; a new data store points at
    the test's S3 server (the hub checks the bucket before it stores a store); a lock
    request waits at most 0.1 s (the document allows 30).
    """
    if case.meta is None or not case.meta.generation.mode.is_positive or not isinstance(case.body, dict):
        return case
    name = case.operation.definition.raw.get("operationId")
    if name == "commit":
        _fit_change(case.body)
    elif name == "commit_batch" and isinstance(case.body.get("commits"), list):
        for change in case.body["commits"]:
            if isinstance(change, dict):
                _fit_change(change)
    elif name == "add_store" and isinstance(case.body.get("config"), dict) and SEAWEED:
        case.body["config"].update(SEAWEED)
    elif name == "request_lock" and isinstance(case.body.get("wait"), (int, float)):
        case.body["wait"] = min(case.body["wait"], 0.1)  # a valid wait, kept short: the run stays bounded
    elif name == "rekey_store" and SEAWEED:
        case.body.update(access_key=SEAWEED["access_key"], secret_key=SEAWEED["secret_key"])
    return case


def _fit_change(change: dict[str, Any]) -> None:
    blocks = change.get("blocks")
    if not isinstance(blocks, list):
        return
    by_index: dict[int, Any] = {}
    for block in blocks:
        if isinstance(block, dict) and isinstance(block.get("index"), (int, float)):
            block["index"] = int(block["index"]) % 1024  # keeps index * block_size + 1 within int64
            by_index.setdefault(block["index"], block)
    blocks[:] = list(by_index.values())
    need = max((i * MAX_BLOCK_SIZE + 1 for i in by_index), default=0)
    if isinstance(change.get("size"), (int, float)) and change["size"] < need:
        change["size"] = need


@attrs.frozen
class FuzzHub:
    """A hub with everything the document's operations refer to."""

    url: str
    token: str
    fs: str
    session: str
    lock: str


@pytest.fixture
def fuzz_hub(tmp_path: Path, metadata_url: str | None, seaweed: SeaweedS3) -> Iterator[FuzzHub]:
    with EmbeddedHub(tmp_path / "hub", metadata_url=metadata_url, gc_interval_seconds=3600,
                     long_poll_max_seconds=1, lease_seconds=3600) as hub:
        # The largest block size: any block length the document allows fits this filespace.
        token = hub.init("demo", ["data"], admin=True, block_size=MAX_BLOCK_SIZE)
        yield FuzzHub(hub.url, token, *asyncio.run(_populate(hub.url, token, seaweed)))


async def _populate(url: str, token: str, seaweed: SeaweedS3) -> tuple[str, str, str]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
        async with s.get(url + "/v1/filespaces") as r:
            fs = (await r.json())["filespaces"][0]["id"]
        base = f"{url}/v1/filespaces/{fs}"
        async with s.post(base + "/sessions", json={"client": "fuzz"}) as r:
            session = (await r.json())["session_id"]
        async with s.post(base + "/mkdir", json={"path": "/dir/sub"}) as r:
            assert r.status == 200, await r.text()
        async with s.post(base + "/locks", json={"path": "/dir/locked.txt", "mode": "shared"},
                          headers={"X-Lucid-Session": session}) as r:
            assert r.status == 200, await r.text()
            lock = (await r.json())["lock_id"]
        config = {"access_key": seaweed.access_key, "secret_key": seaweed.secret_key,
                  "bucket_name": seaweed.bucket, "region": seaweed.region, "endpoint": seaweed.endpoint}
        async with s.post(base + "/connect/stores", json={"name": STORE, "config": config}) as r:
            assert r.status == 201, await r.text()
        key = seaweed.prefix() + "linked.txt"
        await seaweed.put(key, b"linked bytes")
        async with s.post(base + "/connect/links", json={"links": [{"path": "/linked.txt", "store": STORE,
                                                                     "object_id": key}]}) as r:
            assert r.status == 201, await r.text()
    return fs, session, lock


def _config(hub: FuzzHub, seaweed: SeaweedS3, *, max_examples: int, seed: int | None) -> schemathesis.Config:
    s3 = {"access_key": seaweed.access_key, "secret_key": seaweed.secret_key, "bucket_name": seaweed.bucket,
          "region": seaweed.region, "endpoint": seaweed.endpoint, "use_virtual_addressing": False}
    data: dict[str, Any] = {
        "base-url": hub.url,
        "parameters": {"fs": hub.fs, "lock_id": hub.lock, "header.X-Lucid-Session": hub.session,
                       "query.name": STORE, "query.store": STORE},
        "auth": {"openapi": {"serviceAccountToken": {"bearer": hub.token}}},
        "generation": {"max-examples": max_examples, "allow-x00": False},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        "phases": {"examples": {"enabled": False}, "coverage": {"enabled": True},
                   "fuzzing": {"enabled": True}, "stateful": {"enabled": True}},
        "operations": [
            {"include-operation-id": "add_store", "parameters": {f"body.config.{k}": v for k, v in s3.items()}},
            {"include-operation-id": "rekey_store",
             "parameters": {"body.access_key": seaweed.access_key, "body.secret_key": seaweed.secret_key}},
            # A block's inline 'data' must hash to its 'hash', which no schema can state: a
            # generated one never does, and the hub refuses it as 422 hash_mismatch.
            *({"include-operation-id": op, "checks": {"positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "410", "422"]}}}
              for op in ("commit", "commit_batch")),
        ],
    }
    data["checks"]["positive_data_acceptance"]["expected-statuses"] = [
        "2xx", "401", "403", "404", "409", "410"]
    if seed is not None:
        data["seed"] = seed
    return schemathesis.Config.from_dict(data)


@attrs.define
class Outcome:
    cases: int = 0
    failures: collections.Counter[tuple[str, str, str]] = attrs.field(factory=collections.Counter)
    examples: dict[tuple[str, str, str], str] = attrs.field(factory=dict)
    errors: list[str] = attrs.field(factory=list)
    seconds: float = 0.0
    phases: dict[str, str] = attrs.field(factory=dict)
    """Phase name -> how it ended (or why it was skipped)."""

    def report(self) -> str:
        lines = [f"{self.cases} cases, {sum(self.failures.values())} failures, {len(self.errors)} errors, "
                 f"{self.seconds:.0f} s; phases: {self.phases}"]
        for key, n in sorted(self.failures.items()):
            lines.append(f"{n} x {key}\n    {self.examples[key]}")
        lines += self.errors
        return "\n".join(lines)


def _record(outcome: Outcome, recorder: Any) -> None:
    outcome.cases += len(recorder.cases)
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.failure_info is None:
                continue
            failure = check.failure_info.failure
            key = (recorder.label, check.name, getattr(failure, "title", type(failure).__name__))
            outcome.failures[key] += 1
            if key not in outcome.examples:
                case = recorder.cases[case_id].value
                interaction = recorder.interactions.get(case_id)
                response = interaction.response if interaction else None
                outcome.examples[key] = (
                    f"{case.method} {case.path} path={case.path_parameters} query={case.query} "
                    f"body={str(case.body)[:300]} -> "
                    f"{response.status_code if response else None} {response.content[:300] if response else b''!r}"
                    f"\n    {str(failure)[:600]}")


def run_schemathesis(hub: FuzzHub, seaweed: SeaweedS3, *, max_examples: int, seed: int | None = None) -> Outcome:
    SEAWEED.update(access_key=seaweed.access_key, secret_key=seaweed.secret_key, bucket_name=seaweed.bucket,
                   region=seaweed.region, endpoint=seaweed.endpoint, use_virtual_addressing=False)
    config = _config(hub, seaweed, max_examples=max_examples, seed=seed)
    schema = schemathesis.openapi.from_url(hub.url + "/v1/openapi.json", config=config)
    outcome = Outcome()
    started = time.monotonic()
    for event in from_schema(schema).execute():
        if isinstance(event, (events.ScenarioFinished, events.FuzzScenarioFinished)):
            _record(outcome, event.recorder)
        elif isinstance(event, events.PhaseFinished):
            phase = event.phase
            outcome.phases[phase.name.value] = str(phase.skip_reason.value if phase.skip_reason else event.status.value)
        elif isinstance(event, events.NonFatalError):
            outcome.errors.append(f"error in {event.label}: {str(event.value)[:800]}")
        elif isinstance(event, events.FatalError):
            outcome.errors.append(f"fatal: {event.exception!r}")
    outcome.seconds = time.monotonic() - started
    return outcome


def test_the_hub_meets_its_openapi_document(fuzz_hub: FuzzHub, seaweed: SeaweedS3) -> None:
    outcome = run_schemathesis(fuzz_hub, seaweed, max_examples=8, seed=10)
    print(outcome.report())
    assert outcome.cases > 1000, outcome.report()
    assert {outcome.phases.get(p) for p in ("coverage", "fuzzing", "stateful")} <= {"success"}, \
        outcome.report()
    assert not outcome.failures and not outcome.errors, outcome.report()


@pytest.mark.slow
def test_the_hub_meets_its_openapi_document_at_length(fuzz_hub: FuzzHub, seaweed: SeaweedS3) -> None:
    outcome = run_schemathesis(fuzz_hub, seaweed, max_examples=200)
    print(outcome.report())
    assert not outcome.failures and not outcome.errors, outcome.report()


def test_the_document_names_every_status_and_the_one_error_envelope() -> None:
    from lucidlink.hub.api.openapi import build_openapi
    from lucidlink.hub.config import HubSettings

    doc = build_openapi(HubSettings(data_dir=Path("/nonexistent"), long_poll_max_seconds=7, url_ttl_seconds=60))
    paths = doc["paths"]
    assert set(paths["/v1/filespaces/{fs}/sessions"]["post"]["responses"]) >= {"201", "400", "401", "404", "500"}
    assert "200" not in paths["/v1/filespaces/{fs}/sessions"]["post"]["responses"]
    assert set(paths["/v1/filespaces/{fs}/locks"]["post"]["responses"]) >= {"200", "202", "409", "410"}
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, ops in paths.items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                assert status != "default", (method, path)
                if int(status) >= 400:
                    assert response["content"]["application/json"]["schema"] == envelope, (method, path, status)
                elif op["operationId"] not in ("metrics", "get_block"):
                    assert "schema" in response["content"]["application/json"], (method, path, status)
    mkdir = paths["/v1/filespaces/{fs}/mkdir"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert mkdir["properties"]["exist_ok"] == {"type": "boolean"}  # no null
    waits = {p["name"]: p["schema"] for p in paths["/v1/filespaces/{fs}/changes"]["get"]["parameters"]}
    assert waits["wait"]["maximum"] == 7  # this hub's setting
    gc = paths["/v1/admin/gc"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert gc["properties"]["grace_seconds"]["minimum"] == 60
