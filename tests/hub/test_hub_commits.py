"""Commits (change-based and atomic), versions, modes, conflicts, and the change journal."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.hubfixtures import SMALL_BLOCK, Api, digest_of, random_bytes, snapshot
from tests.support.pgfixture import with_block_stores

pytest_plugins = ["tests.support.hubfixtures"]

pytestmark = [pytest.mark.asyncio, with_block_stores]


def blk(index: int, digest: str, length: int) -> dict[str, object]:
    return {"index": index, "hash": digest, "length": length}


async def test_commits_to_different_slots_of_one_file_both_land(api: Api) -> None:
    fs = api.small
    size = 2 * SMALL_BLOCK
    old = [await api.upload(random_bytes(SMALL_BLOCK), fs) for _ in range(2)]
    await api.ok("POST", api.p("commit", fs), json={
        "path": "/f", "size": size, "blocks": [blk(0, old[0], SMALL_BLOCK), blk(1, old[1], SMALL_BLOCK)]})
    new0, new1 = random_bytes(SMALL_BLOCK), random_bytes(SMALL_BLOCK)
    h0, h1 = await api.upload(new0, fs), await api.upload(new1, fs)
    # Two writers, each replacing only its slot, neither knowing the other's change.
    a, b = await asyncio.gather(
        api.ok("POST", api.p("commit", fs), json={"path": "/f", "size": size, "blocks": [blk(0, h0, SMALL_BLOCK)]}),
        api.ok("POST", api.p("commit", fs), json={"path": "/f", "size": size, "blocks": [blk(1, h1, SMALL_BLOCK)]}),
    )
    assert sorted([a["entry"]["version"], b["entry"]["version"]]) == [2, 3]
    info = await api.file("/f", fs)
    assert [b["hash"] for b in info["blocks"]] == [h0, h1]
    assert info["entry"]["version"] == 3
    assert await api.read("/f", fs) == new0 + new1


async def test_replace_drops_every_old_slot(api: Api) -> None:
    fs = api.small
    h = [await api.upload(random_bytes(SMALL_BLOCK), fs) for _ in range(3)]
    await api.ok("POST", api.p("commit", fs), json={
        "path": "/f", "size": 3 * SMALL_BLOCK, "blocks": [blk(i, h[i], SMALL_BLOCK) for i in range(3)]})
    small = await api.upload(b"tiny", fs)
    # Without replace, slot 0 changes and the others stay (clipped to the size).
    await api.ok("POST", api.p("commit", fs), json={"path": "/f", "size": 3 * SMALL_BLOCK, "blocks": [blk(0, small, 4)]})
    assert [b["hash"] for b in (await api.file("/f", fs))["blocks"]] == [small, h[1], h[2]]
    # With replace (a file opened with 'w'), only the new slots remain.
    body = await api.ok("POST", api.p("commit", fs), json={
        "path": "/f", "size": 4, "blocks": [blk(0, small, 4)], "replace": True})
    assert body["entry"]["version"] == 3 and body["created"] is False
    info = await api.file("/f", fs)
    assert info["blocks"] == [{"index": 0, "hash": small, "length": 4, "used": 4}]
    assert await api.read("/f", fs) == b"tiny"


async def test_commit_modes(api: Api) -> None:
    h = await api.upload(b"abc")
    change = {"path": "/f", "size": 3, "blocks": [blk(0, h, 3)]}
    before = snapshot(api.hub)
    await api.fail("POST", api.p("commit"), 404, "not_found", "/f", json={**change, "mode": "existing"})
    assert snapshot(api.hub) == before
    body = await api.ok("POST", api.p("commit"), json={**change, "mode": "exclusive"})
    assert body["created"] is True and body["entry"]["version"] == 1
    before = snapshot(api.hub)
    await api.fail("POST", api.p("commit"), 409, "exists", "/f", json={**change, "mode": "exclusive"})
    assert snapshot(api.hub) == before
    assert (await api.ok("POST", api.p("commit"), json={**change, "mode": "existing"}))["entry"]["version"] == 2
    body = await api.ok("POST", api.p("commit"), json={**change, "mode": "create"})
    assert body["entry"]["version"] == 3 and body["created"] is False
    # An empty file needs no blocks.
    body = await api.ok("POST", api.p("commit"), json={"path": "/empty", "size": 0})
    assert body["entry"]["size"] == 0 and (await api.file("/empty"))["blocks"] == []


async def test_base_version_conflict(api: Api) -> None:
    h = await api.upload(b"abc")
    change = {"path": "/f", "size": 3, "blocks": [blk(0, h, 3)]}
    await api.ok("POST", api.p("commit"), json=change)
    assert (await api.ok("POST", api.p("commit"), json={**change, "base_version": 1}))["entry"]["version"] == 2
    before = snapshot(api.hub)
    err = await api.fail("POST", api.p("commit"), 409, "version_conflict", "/f", "version 2", "version 1",
                         json={**change, "base_version": 1})
    assert err["path"] == "/f"
    assert snapshot(api.hub) == before
    assert (await api.ok("POST", api.p("commit"), json={**change, "base_version": 2}))["entry"]["version"] == 3


async def test_block_missing_commit_changes_nothing(api: Api) -> None:
    good = await api.upload(b"good")
    await api.ok("POST", api.p("commit"), json={"path": "/f", "size": 4, "blocks": [blk(0, good, 4)]})
    never = digest_of(b"never uploaded")
    before = snapshot(api.hub)
    err = await api.fail("POST", api.p("commit"), 409, "block_missing", "not in the block store", json={
        "path": "/f", "size": 4 * 1024 * 1024 + 1,
        "blocks": [blk(0, good, 4), blk(1, never, 1)]})
    assert err["details"] == {"missing": [never]}
    err = await api.fail("POST", api.p("commit"), 409, "block_missing", json={
        "path": "/new", "size": 1, "blocks": [blk(0, never, 1)]})
    assert snapshot(api.hub) == before
    assert not await api.exists("/new")
    # A block known to another filespace is not known to this one.
    other = await api.upload(b"elsewhere", fs=api.small)
    await api.fail("POST", api.p("commit"), 409, "block_missing", json={
        "path": "/x", "size": 9, "blocks": [blk(0, other, 9)]})


async def test_versions_and_mtime(api: Api) -> None:
    h = await api.upload(b"abc")
    versions = []
    for _ in range(3):
        body = await api.ok("POST", api.p("commit"), json={"path": "/f", "size": 3, "blocks": [blk(0, h, 3)]})
        versions.append(body["entry"]["version"])
    assert versions == [1, 2, 3]
    body = await api.ok("POST", api.p("commit"), json={"path": "/f", "size": 3, "mtime": 1_000_000_000})
    assert body["entry"]["mtime"] == 1_000_000_000 and body["entry"]["version"] == 4
    # Moves and renames do not change a file's version.
    await api.ok("POST", api.p("move"), json={"src": "/f", "dst": "/g"})
    assert (await api.stat("/g"))[1]["version"] == 4


async def test_commit_batch_is_one_transaction(api: Api) -> None:
    h = await api.upload(b"abc")
    ok_change = {"path": "/a", "size": 3, "blocks": [blk(0, h, 3)]}
    before = snapshot(api.hub)
    await api.fail("POST", api.p("commits"), 409, "block_missing", json={"commits": [
        ok_change, {"path": "/b", "size": 1, "blocks": [blk(0, digest_of(b"?"), 1)]}]})
    assert snapshot(api.hub) == before
    body = await api.ok("POST", api.p("commits"), json={"commits": [ok_change, {**ok_change, "path": "/b"}]})
    seqs = [r["seq"] for r in body["results"]]
    assert seqs == [seqs[0], seqs[0] + 1]
    assert await api.names("/") == ["a", "b"]


# -- the journal -------------------------------------------------------------------------


async def test_journal_records_every_change_in_order(api: Api) -> None:
    h = await api.upload(b"abc")
    await api.mkdir("/d")
    await api.ok("POST", api.p("commit"), json={"path": "/d/f", "size": 3, "blocks": [blk(0, h, 3)]})
    await api.ok("POST", api.p("commit"), json={"path": "/d/f", "size": 2})
    await api.ok("POST", api.p("move"), json={"src": "/d/f", "dst": "/d/g"})
    await api.ok("POST", api.p("copy"), json={"src": "/d/g", "dst": "/h"})
    await api.ok("POST", api.p("delete"), json={"path": "/d", "recursive": True})
    body = await api.ok("GET", api.p("changes") + "?since=0")
    got = [(c["seq"], c["op"], c["path"], c["new_path"], c["type"], c["size"], c["version"])
           for c in body["changes"]]
    assert got == [
        (1, "mkdir", "/d", None, "dir", None, None),
        (2, "create", "/d/f", None, "file", 3, 1),
        (3, "modify", "/d/f", None, "file", 2, 2),
        (4, "move", "/d/f", "/d/g", "file", None, None),
        (5, "create", "/h", None, "file", 2, 1),
        (6, "delete", "/d", None, "dir", None, None),
    ]
    assert body["seq"] == 6 and body["more"] is False
    assert all(c["time"] > 0 for c in body["changes"])
    # since=N returns only what came after N; limit pages with 'more'.
    body = await api.ok("GET", api.p("changes") + "?since=4")
    assert [c["seq"] for c in body["changes"]] == [5, 6]
    body = await api.ok("GET", api.p("changes") + "?since=1&limit=2")
    assert [c["seq"] for c in body["changes"]] == [2, 3] and body["more"] is True and body["seq"] == 6
    body = await api.ok("GET", api.p("changes") + "?since=6")
    assert body == {"changes": [], "seq": 6, "more": False}
    assert await api.seq() == 6
    # Each filespace has its own sequence.
    assert await api.seq(api.small) == 0


async def test_journal_carries_the_session_of_a_change(api: Api) -> None:
    sid = (await api.ok("POST", api.p("sessions"), 201, json={"client": "t"}))["session_id"]
    await api.ok("POST", api.p("mkdir"), json={"path": "/s"}, headers={"X-Lucid-Session": sid})
    await api.mkdir("/n")
    body = await api.ok("GET", api.p("changes") + "?since=0")
    assert [(c["path"], c["session_id"]) for c in body["changes"]] == [("/s", sid), ("/n", None)]


async def test_long_poll_returns_when_another_request_commits(api: Api) -> None:
    since = await api.seq()
    started = time.monotonic()
    poll = asyncio.create_task(api.ok("GET", api.p("changes") + f"?since={since}&wait=5"))
    await asyncio.sleep(0.3)
    assert not poll.done()
    await api.mkdir("/woke")
    body = await poll
    assert time.monotonic() - started < 4.5  # well before its 5 s wait ran out
    assert [(c["op"], c["path"]) for c in body["changes"]] == [("mkdir", "/woke")]


async def test_long_poll_returns_empty_after_the_wait(api: Api) -> None:
    since = await api.seq()
    await api.mkdir("/other", fs=api.small)  # another filespace does not wake it
    started = time.monotonic()
    body = await api.ok("GET", api.p("changes") + f"?since={since}&wait=1")
    assert time.monotonic() - started >= 0.9
    assert body == {"changes": [], "seq": since, "more": False}


async def test_long_poll_answers_at_once_when_changes_are_waiting(api: Api) -> None:
    await api.mkdir("/x")
    started = time.monotonic()
    body = await api.ok("GET", api.p("changes") + "?since=0&wait=30")
    assert time.monotonic() - started < 5
    assert [c["path"] for c in body["changes"]] == ["/x"]
    await api.fail("GET", api.p("changes") + "?since=0&wait=61", 400, "bad_request", "'wait'")


# -- partial overwrites built on an older version: merged or refused --------------------


async def _three_slot_file(api: Api) -> tuple[str, list[bytes]]:
    """``/m`` in the small filespace: three full slots and a partial fourth (version 1)."""
    chunks = [random_bytes(SMALL_BLOCK) for _ in range(3)] + [random_bytes(1000)]
    await api.write("/m", chunks, fs=api.small)
    return api.small, chunks


async def _partial(api: Api, fs: str, slot: int, data: bytes, *, size: int, base: int, **kw: object) -> tuple[int, dict]:
    h = await api.upload(data, fs)
    return await api.call("POST", api.p("commit", fs), json={
        "path": "/m", "size": size, "mode": "existing", "base_version": base,
        "blocks": [blk(slot, h, len(data))], **kw})


async def test_disjoint_partial_overwrites_on_one_base_merge(api: Api) -> None:
    fs, chunks = await _three_slot_file(api)
    size = 3 * SMALL_BLOCK + 1000
    a, b = random_bytes(SMALL_BLOCK), random_bytes(SMALL_BLOCK)
    status, body = await _partial(api, fs, 0, a, size=size, base=1)
    assert status == 200 and body["entry"]["version"] == 2
    status, body = await _partial(api, fs, 2, b, size=size, base=1)  # built on 1, lands on 2
    assert status == 200, body
    assert body["entry"]["version"] == 3
    assert await api.read("/m", fs) == a + chunks[1] + b + chunks[3]


async def test_overlapping_partial_overwrite_is_refused_and_changes_nothing(api: Api) -> None:
    fs, chunks = await _three_slot_file(api)
    size = 3 * SMALL_BLOCK + 1000
    a = random_bytes(SMALL_BLOCK)
    assert (await _partial(api, fs, 1, a, size=size, base=1))[0] == 200
    h = await api.upload(random_bytes(SMALL_BLOCK), fs)
    before = snapshot(api.hub)
    await api.fail("POST", api.p("commit", fs), 409, "version_conflict", "/m", "version 1", "version 2",
                   json={"path": "/m", "size": size, "mode": "existing", "base_version": 1,
                         "blocks": [blk(1, h, SMALL_BLOCK)]})
    assert snapshot(api.hub) == before
    assert await api.read("/m", fs) == chunks[0] + a + chunks[2] + chunks[3]


async def test_append_and_a_disjoint_write_merge_and_keep_the_appended_size(api: Api) -> None:
    fs, chunks = await _three_slot_file(api)
    size = 3 * SMALL_BLOCK + 1000
    # Writer A appends: slot 3 grows to a full block and slot 4 is new.
    tail3, tail4 = chunks[3] + random_bytes(SMALL_BLOCK - 1000), random_bytes(10)
    h3, h4 = await api.upload(tail3, fs), await api.upload(tail4, fs)
    grown = 4 * SMALL_BLOCK + 10
    await api.ok("POST", api.p("commit", fs), json={
        "path": "/m", "size": grown, "mode": "existing", "base_version": 1,
        "blocks": [blk(3, h3, SMALL_BLOCK), blk(4, h4, 10)]})
    # Writer B rewrites slot 0 of the version it opened (it does not know of the append).
    a = random_bytes(SMALL_BLOCK)
    status, body = await _partial(api, fs, 0, a, size=size, base=1)
    assert status == 200, body
    assert body["entry"]["size"] == grown
    assert await api.read("/m", fs) == a + chunks[1] + chunks[2] + tail3 + tail4


async def test_a_write_to_the_tail_another_writer_resized_is_refused(api: Api) -> None:
    fs, chunks = await _three_slot_file(api)
    size = 3 * SMALL_BLOCK + 1000
    await api.ok("POST", api.p("commit", fs), json={  # A truncates into slot 2
        "path": "/m", "size": 2 * SMALL_BLOCK + 5, "mode": "existing", "base_version": 1, "blocks": []})
    status, body = await _partial(api, fs, 3, chunks[3][:500] + b"x" * 500, size=size, base=1)
    assert (status, body["error"]["code"]) == (409, "version_conflict"), body
    status, body = await _partial(api, fs, 2, random_bytes(SMALL_BLOCK), size=size, base=1)
    assert (status, body["error"]["code"]) == (409, "version_conflict"), body
    assert await api.read("/m", fs) == chunks[0] + chunks[1] + chunks[2][:5]


async def test_two_resizes_on_one_base_conflict(api: Api) -> None:
    fs, _ = await _three_slot_file(api)
    await api.ok("POST", api.p("commit", fs), json={
        "path": "/m", "size": 10 * SMALL_BLOCK, "mode": "existing", "base_version": 1, "blocks": []})
    await api.fail("POST", api.p("commit", fs), 409, "version_conflict", json={
        "path": "/m", "size": SMALL_BLOCK, "mode": "existing", "base_version": 1, "truncate_to": SMALL_BLOCK,
        "blocks": []})


async def test_a_whole_file_replace_conflicts_with_any_older_partial_change(api: Api) -> None:
    fs, _ = await _three_slot_file(api)
    await api.write("/m", [random_bytes(100)], fs=fs)  # 'w': replaces everything (version 2)
    status, body = await _partial(api, fs, 2, random_bytes(SMALL_BLOCK), size=3 * SMALL_BLOCK + 1000, base=1)
    assert (status, body["error"]["code"]) == (409, "version_conflict"), body


async def test_a_change_built_on_a_forgotten_version_is_refused(api: Api) -> None:
    fs, _ = await _three_slot_file(api)
    await _partial(api, fs, 0, random_bytes(SMALL_BLOCK), size=3 * SMALL_BLOCK + 1000, base=1)
    api.hub.hub.write(lambda tx: tx.execute("DELETE FROM file_changes"))
    await api.fail("POST", api.p("commit", fs), 409, "version_conflict", "too old to merge", json={
        "path": "/m", "size": 3 * SMALL_BLOCK + 1000, "mode": "existing", "base_version": 1, "blocks": []})


async def test_appending_to_a_file_created_meanwhile_by_another_writer_conflicts(api: Api) -> None:
    fs = api.small
    await api.write("/m", [b"theirs"], fs=fs)
    status, body = await _partial(api, fs, 0, b"mine", size=4, base=0, mode="create")
    assert (status, body["error"]["code"]) == (409, "version_conflict"), body
    assert await api.read("/m", fs) == b"theirs"


# -- idempotent commits: a retried change is answered, never applied twice -------------


async def test_a_retried_commit_is_answered_with_the_first_result(api: Api) -> None:
    h = await api.upload(b"once")
    change = {"path": "/once", "size": 4, "blocks": [blk(0, h, 4)], "change_id": "c" * 32}
    first = await api.ok("POST", api.p("commit"), json=change)
    seq = await api.seq()
    again = await api.ok("POST", api.p("commit"), json=change)
    assert again.pop("replayed") is True
    assert again == first
    assert await api.seq() == seq  # nothing new in the journal
    assert (await api.file("/once"))["entry"]["version"] == 1


async def test_a_retried_batch_lands_each_change_once(api: Api) -> None:
    h1, h2, h3 = [await api.upload(d) for d in (b"one", b"two", b"three")]
    batch = [{"path": "/b1", "size": 3, "blocks": [blk(0, h1, 3)], "change_id": "batch-1-" + "a" * 20},
             {"path": "/b2", "size": 3, "blocks": [blk(0, h2, 3)], "change_id": "batch-2-" + "a" * 20}]
    first = (await api.ok("POST", api.p("commits"), json={"commits": batch}))["results"]
    seq = await api.seq()
    # The retry carries one change more (the queue grew meanwhile): only it is applied.
    extra = {"path": "/b3", "size": 5, "blocks": [blk(0, h3, 5)], "change_id": "batch-3-" + "a" * 20}
    again = (await api.ok("POST", api.p("commits"), json={"commits": batch + [extra]}))["results"]
    assert [r.get("replayed", False) for r in again] == [True, True, False]
    assert [r["entry"]["version"] for r in again[:2]] == [r["entry"]["version"] for r in first] == [1, 1]
    assert await api.seq() == seq + 1
    changes = (await api.ok("GET", api.p("changes") + "?since=0"))["changes"]
    assert sorted(c["path"] for c in changes if c["op"] in ("create", "modify")) == ["/b1", "/b2", "/b3"]


@pytest.mark.parametrize("bad", ["short", "x" * 65, "has space!", 12345678, ["list"]])
async def test_a_malformed_change_id_is_refused_and_changes_nothing(api: Api, bad: object) -> None:
    h = await api.upload(b"x")
    before = snapshot(api.hub)
    await api.fail("POST", api.p("commit"), 400, "bad_request", "change_id", json={
        "path": "/x", "size": 1, "blocks": [blk(0, h, 1)], "change_id": bad})
    assert snapshot(api.hub) == before


async def test_applied_change_ids_are_forgotten_after_a_week(api: Api) -> None:
    from lucidlink.hub.collector import collect_garbage
    from lucidlink.hub.core.idempotency import KEEP_SECONDS
    from tests.support.hubfixtures import hub_state

    h = await api.upload(b"old")
    for name in ("old", "new"):
        await api.ok("POST", api.p("commit"), json={"path": f"/{name}", "size": 3, "blocks": [blk(0, h, 3)],
                                                    "change_id": f"{name}-change-id"})
    week_ago = time.time_ns() - int((KEEP_SECONDS + 60) * 1e9)
    api.hub.hub.write(lambda tx: tx.execute(
        "UPDATE applied_changes SET created = ? WHERE change_id = 'old-change-id'", (week_ago,)))
    state = hub_state(api.hub)
    api.hub.hub.call(collect_garbage(state, state.settings.url_ttl_seconds))
    left = api.hub.hub.write(lambda tx: [r["change_id"] for r in tx.all("SELECT change_id FROM applied_changes")])
    assert left == ["new-change-id"]
