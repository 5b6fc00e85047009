"""Byte-range locks over raw HTTP (SQLite and PostgreSQL): the rules of
:mod:`lucidlink.hub.core.range_locks`.

* Overlapping ranges of two handles conflict unless both are shared; a refused request
  takes nothing (``granted: false``), a retried request id answers its first grant.
* Locks end on unlock, on unlock-all (the handle closing), with their session, and when
  their lease runs out without heartbeats.
* A commit touching a block that holds a byte of another session's exclusive range is
  refused (409 ``lock_conflict``); one outside it, or the holder's own, is accepted.
* A whole-file lock and another session's range lock exclude each other.
* Exclusive range locks need write rights; sessions belong to their token.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.hub.test_hub_lock_rules import Daemon, daemon
from tests.support.hubfixtures import Api, expect_error, make_token, q

pytest_plugins = ["tests.support.hubfixtures"]
pytestmark = pytest.mark.asyncio

MB4 = 4 * 1024 * 1024
_ids = iter(range(10**9))


async def lock(
    d: Daemon,
    path: str,
    offset: int,
    length: int,
    mode: str = "exclusive",
    handle: str = "h1",
    request_id: str | None = None,
    wait: float = 0,
) -> dict[str, Any]:
    body = {
        "path": path,
        "handle": handle,
        "offset": offset,
        "length": length,
        "mode": mode,
        "request_id": request_id or f"r{next(_ids)}",
        "wait": wait,
    }
    return await d.ok("POST", "range-locks", json=body)  # type: ignore[no-any-return]


async def unlock(d: Daemon, handle: str = "h1", **rng: int) -> int:
    body = await d.ok("POST", "range-locks/release", json={"handle": handle, **rng})
    return int(body["released"])


async def test_overlap_rules(api: Api) -> None:
    a, b = await daemon(api), await daemon(api)
    assert (await lock(a, "/f", 0, 100))["granted"]
    refused = await lock(b, "/f", 50, 10)
    assert (
        refused == {"granted": False, "held_by": refused["held_by"]}
        and "exclusive" in refused["held_by"]
    )
    assert not (await lock(b, "/f", 99, 1, "shared"))["granted"]
    assert (await lock(b, "/f", 100, 10))["granted"]  # adjacent, not overlapping
    assert (await lock(b, "/g", 0, 100))["granted"]  # another file
    assert (await lock(a, "/s", 0, 10, "shared"))["granted"]
    assert (await lock(b, "/s", 5, 10, "shared"))["granted"]  # shared with shared
    assert not (await lock(b, "/s", 0, 1, "exclusive", handle="h2"))["granted"]
    # Two handles of one session exclude each other too; the same handle does not.
    assert not (await lock(a, "/f", 10, 1, handle="h2"))["granted"]
    assert (await lock(a, "/f", 10, 1))["granted"]
    # Length 0 runs to the end of the file, however long.
    assert (await lock(a, "/z", 1000, 0))["granted"]
    assert not (await lock(b, "/z", 10**12, 1))["granted"]
    assert (await lock(b, "/z", 0, 1000))["granted"]
    listed = (await a.ok("GET", f"range-locks?{q(path='/z')}"))["ranges"]
    assert [(r["offset"], r["length"], r["mode"]) for r in listed] == [
        (0, 1000, "exclusive"),
        (1000, 0, "exclusive"),
    ]


async def test_a_range_past_the_largest_offset_runs_to_the_end(api: Api) -> None:
    # Each number is within the schema's bounds; their sum is not a reason to refuse.
    a, b = await daemon(api), await daemon(api)
    top = (1 << 62) - 1
    assert (await lock(a, "/e", top - 1, top, "shared"))["granted"]
    listed = (await a.ok("GET", f"range-locks?{q(path='/e')}"))["ranges"]
    assert [(r["offset"], r["length"]) for r in listed] == [(top - 1, 0)]  # to the end
    assert not (await lock(b, "/e", top - 1, 1))["granted"]
    assert await unlock(a, offset=top - 1, length=top) == 1


async def test_a_retried_request_answers_its_first_grant(api: Api) -> None:
    a, b = await daemon(api), await daemon(api)
    assert (await lock(a, "/f", 0, 10, request_id="same"))["granted"]
    assert (await lock(a, "/f", 0, 10, request_id="same"))["granted"]
    rows = api.hub.hub.write(lambda tx: tx.all("SELECT request_id FROM range_locks"))
    assert [r["request_id"] for r in rows] == ["same"]  # one lock, not two
    # Request ids are the session's own: another session's "same" is another request.
    assert not (await lock(b, "/f", 0, 1, "shared", request_id="same"))["granted"]
    assert await unlock(a, offset=0, length=10) == 1
    assert (await lock(b, "/f", 0, 1, "shared", request_id="same"))["granted"]


async def test_release_on_unlock_handle_close_and_session_end(api: Api) -> None:
    a, b = await daemon(api), await daemon(api)
    assert (await lock(a, "/f", 0, 10))["granted"] and (await lock(a, "/f", 20, 10))["granted"]
    assert await unlock(a, offset=0, length=5) == 0  # only whole ranges within it
    assert await unlock(a, offset=0, length=10) == 1
    assert (await lock(b, "/f", 0, 10))["granted"]
    assert not (await lock(b, "/f", 20, 1))["granted"]
    assert (await lock(a, "/f", 40, 10, handle="h2"))["granted"]
    assert await unlock(a) == 1  # the handle closes: all of h1's
    assert (await lock(b, "/f", 20, 1))["granted"] and not (await lock(b, "/f", 45, 1))["granted"]
    await a.ok("DELETE", f"/v1/sessions/{a.sid}")
    assert (await lock(b, "/f", 45, 1))["granted"]


async def test_blocking_request_waits_for_release(api: Api) -> None:
    a, b = await daemon(api), await daemon(api)
    assert (await lock(a, "/f", 0, 10))["granted"]
    waiter = asyncio.create_task(lock(b, "/f", 5, 1, wait=10))
    await asyncio.sleep(0.3)
    assert not waiter.done()
    await unlock(a)
    started = time.monotonic()
    assert (await waiter)["granted"] and time.monotonic() - started < 3


async def test_heartbeats_renew_range_locks(api: Api) -> None:
    a = await daemon(api)
    assert (await lock(a, "/f", 0, 10))["granted"]

    def expires(tx: Any) -> int:
        return int(tx.one("SELECT expires FROM range_locks")["expires"])

    before = api.hub.hub.write(expires)
    await asyncio.sleep(0.05)
    await a.ok("POST", f"/v1/sessions/{a.sid}/heartbeat", json={})
    assert api.hub.hub.write(expires) > before


async def test_lease_expires_without_heartbeats(api: Api) -> None:
    a, b = await daemon(api), await daemon(api)
    assert (await lock(a, "/f", 0, 10))["granted"]
    api.hub.hub.write(lambda tx: tx.execute("UPDATE range_locks SET expires = 0"))
    assert (await lock(b, "/f", 0, 10))["granted"]


async def test_commit_is_refused_inside_another_sessions_exclusive_range(api: Api) -> None:
    a, b = await daemon(api), await daemon(api)
    first, second = b"x" * MB4, b"tail!"
    d0, d1 = await api.upload(first), await api.upload(second)
    size = MB4 + len(second)
    await a.ok(
        "POST",
        "commit",
        json={
            "path": "/f",
            "size": size,
            "replace": True,
            "blocks": [
                {"index": 0, "hash": d0, "length": MB4},
                {"index": 1, "hash": d1, "length": len(second)},
            ],
        },
    )
    assert (await lock(b, "/f", 10, 100))["granted"]
    block0 = {"path": "/f", "size": size, "blocks": [{"index": 0, "hash": d0, "length": MB4}]}
    block1 = {
        "path": "/f",
        "size": size,
        "blocks": [{"index": 1, "hash": d1, "length": len(second)}],
    }
    await a.ok("POST", "commit", json=block1)  # outside the range's block
    status, body = await a.call("POST", "commit", json=block0)
    expect_error(status, body, 409, "lock_conflict", "/f", "byte range")
    for route, payload in (
        ("truncate", {"path": "/f", "size": 1}),
        ("delete", {"path": "/f"}),
        ("move", {"src": "/f", "dst": "/g"}),
    ):
        status, body = await a.call("POST", route, json=payload)
        expect_error(status, body, 409, "lock_conflict", "/f")
    await b.ok("POST", "commit", json=block0)  # the holder may
    await unlock(b)
    await a.ok("POST", "commit", json=block0)
    # A shared range refuses no change.
    assert (await lock(b, "/f", 0, 10, "shared"))["granted"]
    await a.ok("POST", "commit", json=block0)


async def test_whole_file_locks_and_range_locks_exclude_each_other(api: Api) -> None:
    a, b = await daemon(api), await daemon(api)
    held = await a.lock("/f", "exclusive")
    assert not (await lock(b, "/f", 0, 1, "shared"))["granted"]
    assert (await lock(a, "/f", 0, 1))["granted"]  # its own session
    await a.ok("DELETE", f"locks/{held['lock_id']}")
    await unlock(a)
    assert (await lock(b, "/f", 0, 1, "shared"))["granted"]
    await a.lock("/f", "shared")  # shared with shared
    assert (await lock(b, "/g", 0, 1, "shared"))["granted"]
    status, body = await a.call("POST", "locks", json={"path": "/g", "mode": "exclusive"})
    assert status == 202 and body["state"] == "waiting"
    await unlock(b)
    status, body = await a.call(
        "POST", "locks", json={"path": "/g", "mode": "exclusive", "lock_id": body["lock_id"]}
    )
    assert status == 200 and body["state"] == "held"


async def test_whole_file_lock_request_with_a_client_id_is_idempotent(api: Api) -> None:
    a = await daemon(api)
    first = await a.ok(
        "POST", "locks", json={"path": "/f", "mode": "exclusive", "lock_id": "mine-1"}
    )
    again = await a.ok(
        "POST", "locks", json={"path": "/f", "mode": "exclusive", "lock_id": "mine-1"}
    )
    assert first["lock_id"] == again["lock_id"] == "mine-1" and first["token"] == again["token"]
    locks = (await a.ok("GET", "locks"))["locks"]
    assert len(locks) == 1
    b = await daemon(api)
    status, body = await b.call(
        "POST", "locks", json={"path": "/f", "mode": "shared", "lock_id": "mine-1"}
    )
    assert status == 202 and body["lock_id"] != "mine-1"  # a request of its own, behind


async def test_rights_and_sessions(api: Api) -> None:
    ro_token = make_token(api.hub, read_only=True)
    ro = await daemon(api, ro_token)
    assert (await lock(ro, "/f", 0, 1, "shared"))["granted"]
    status, body = await ro.call(
        "POST",
        "range-locks",
        json={
            "path": "/f",
            "handle": "h",
            "offset": 0,
            "length": 1,
            "mode": "exclusive",
            "request_id": "x1",
        },
    )
    expect_error(status, body, 403, "read_only")
    other = await daemon(api, make_token(api.hub))
    other.session = ro.sid  # another token naming this session
    status, body = await other.call("POST", "range-locks/release", json={"handle": "h1"})
    assert status == 403, body
    status, body = await ro.call(
        "POST",
        "range-locks",
        json={
            "path": "/f",
            "handle": "bad handle!",
            "offset": 0,
            "length": 1,
            "mode": "shared",
            "request_id": "x2",
        },
    )
    expect_error(status, body, 400, "bad_request", "handle")
    status, body = await ro.call(
        "POST",
        "range-locks",
        json={
            "path": "/f",
            "handle": "h",
            "offset": -1,
            "length": 1,
            "mode": "shared",
            "request_id": "x3",
        },
    )
    expect_error(status, body, 400, "bad_request", "offset")


async def test_range_locks_follow_the_file(api: Api) -> None:
    a, b = await daemon(api), await daemon(api)
    await a.ok("POST", "commit", json=await a.change("/f", b"data"))
    assert (await lock(a, "/f", 0, 2))["granted"]
    await a.ok("POST", "move", json={"src": "/f", "dst": "/g"})
    assert (await a.ok("GET", f"range-locks?{q(path='/f')}"))["ranges"] == []
    assert [r["offset"] for r in (await a.ok("GET", f"range-locks?{q(path='/g')}"))["ranges"]] == [
        0
    ]
    assert not (await lock(b, "/g", 1, 1))["granted"]
    await a.ok("POST", "delete", json={"path": "/g"})
    assert (await a.ok("GET", f"range-locks?{q(path='/g')}"))["ranges"] == []
    assert (await lock(b, "/g", 1, 1))["granted"]
