"""The hub's lock rules over raw HTTP, one test per rule (SQLite and PostgreSQL).

* A session acts only for the token that opened it: another token naming it is refused
  (403) and nothing changes; an unknown or expired session counts as none.
* A commit's lock must be its own session's live exclusive lock on that very file.
* A held lock of another session, exclusive or shared, refuses every change to its file:
  commit, truncate, delete (also of a directory above it), move (away, onto it, of a
  directory above it), copy onto it, Connect link at it, unlink, store removal. The
  holders themselves may change it.
* A lock belongs to the file: a move by its holder carries it, deleting the file ends it.
* A lock on a path not created yet reserves the path for its holder.
* Lock and session ids are shown only to the token that owns them; no error names them.

Each refusal is checked against a dump of every table (row values, locks included) and
the block files, taken before and after: a refused request changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from tests.support.hubfixtures import Api, expect_error, make_token, q, snapshot
from tests.support.seaweed import running_seaweed

pytest_plugins = ["tests.support.hubfixtures"]

pytestmark = pytest.mark.asyncio

TABLES = ("workspaces", "filespaces", "tokens", "sessions", "nodes", "file_blocks", "blocks", "changes",
          "file_changes", "applied_changes", "counters", "locks", "data_stores", "external_files", "symlinks",
          "range_locks")


def state(api: Api) -> dict[str, Any]:
    """Every row of every table (by value, on both engines) and the block files."""

    def dump(tx: Any) -> dict[str, Any]:
        return {t: sorted(tuple(str(v) for v in dict(r).values()) for r in tx.all(f"SELECT * FROM {t}"))
                for t in TABLES}

    return {"rows": api.hub.hub.write(dump), "snapshot": snapshot(api.hub)}


@attrs.define
class Daemon:
    """One session on filespace ``data``, opened with ``token``, as a daemon would hold it."""

    api: Api
    token: str
    sid: str | None
    session: str | None = None
    """The X-Lucid-Session to send (default: ``sid``)."""

    def headers(self) -> dict[str, str]:
        sid = self.session if self.session is not None else self.sid
        return {"X-Lucid-Session": sid} if sid else {}

    async def call(self, method: str, route: str, **kw: Any) -> tuple[int, Any]:
        url = route if route.startswith("/v1/") else self.api.p(route)
        return await self.api.call(method, url, token=self.token, headers=self.headers(), **kw)

    async def ok(self, method: str, route: str, expect: int = 200, **kw: Any) -> Any:
        status, body = await self.call(method, route, **kw)
        assert status == expect, (method, route, status, body)
        return body

    async def lock(self, path: str, mode: str = "exclusive") -> dict[str, Any]:
        body = await self.ok("POST", "locks", json={"path": path, "mode": mode})
        assert body["state"] == "held", body
        return body  # type: ignore[no-any-return]

    async def change(self, path: str, data: bytes, lock_id: str | None = None) -> dict[str, Any]:
        """A commit replacing ``path`` with ``data``, its block uploaded (the upload is a change too)."""
        digest = await self.api.upload(data)
        change: dict[str, Any] = {"path": path, "size": len(data), "replace": True,
                                  "blocks": [{"index": 0, "hash": digest, "length": len(data)}]}
        if lock_id is not None:
            change["lock_id"] = lock_id
        return change

    async def commit(self, path: str, data: bytes, lock_id: str | None = None) -> tuple[int, Any]:
        return await self.call("POST", "commit", json=await self.change(path, data, lock_id))

    async def refused(self, method: str, route: str, http: int, code: str, *words: str,
                      hidden: tuple[str, ...] = (), **kw: Any) -> dict[str, Any]:
        """A request that must be refused with this status and code, and change nothing."""
        before = state(self.api)
        status, body = await self.call(method, route, **kw)
        err = expect_error(status, body, http, code, *words)
        for secret in hidden:
            assert secret not in json.dumps(body), (secret, body)
        assert state(self.api) == before, f"{method} {route} was refused but changed the hub"
        return err


async def daemon(api: Api, token: str | None = None, client: str = "test daemon") -> Daemon:
    token = token or api.raw.token
    body = await api.ok("POST", api.p("sessions"), 201, json={"client": client}, token=token)
    return Daemon(api, token, body["session_id"])


def no_session(api: Api, token: str | None = None) -> Daemon:
    return Daemon(api, token or api.raw.token, None)


def changes_of(path: str, other: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Every change that touches the file ``path`` (``other`` is another file)."""
    return {
        "commit": ("POST", "commit", {"path": path, "size": 0, "blocks": [], "replace": True}),
        "truncate": ("POST", "truncate", {"path": path, "size": 1}),
        "delete": ("POST", "delete", {"path": path}),
        "move away": ("POST", "move", {"src": path, "dst": "/moved-away"}),
        "move onto": ("POST", "move", {"src": other, "dst": path, "overwrite": True}),
        "copy onto": ("POST", "copy", {"src": other, "dst": path}),
    }


async def listing(d: Daemon, path: str | None = None) -> list[dict[str, Any]]:
    route = "locks" + (f"?{q(path=path)}" if path else "")
    return (await d.ok("GET", route))["locks"]  # type: ignore[no-any-return]


# -- sessions belong to their token ------------------------------------------------------


async def test_another_tokens_session_is_refused_and_changes_nothing(api: Api) -> None:
    holder = await daemon(api)
    await api.write("/locked.txt", [b"precious"])
    await api.write("/other.txt", [b"other"])
    held = await holder.lock("/locked.txt")
    thief = Daemon(api, make_token(api.hub), None, session=holder.sid)
    assert holder.sid is not None
    hidden = (holder.sid, held["lock_id"])
    for name, (method, route, body) in {
        **changes_of("/locked.txt", "/other.txt"),
        "mkdir": ("POST", "mkdir", {"path": "/new-dir"}),
        "commit under the holder's lock": ("POST", "commit", {"path": "/locked.txt", "size": 0, "blocks": [],
                                                              "replace": True, "lock_id": held["lock_id"]}),
        "batch commit": ("POST", "commits", {"commits": [{"path": "/locked.txt", "size": 0, "blocks": []}]}),
        "lock": ("POST", "locks", {"path": "/other.txt", "mode": "exclusive"}),
    }.items():
        err = await thief.refused(method, route, 403, "permission_denied", "another token", hidden=hidden, json=body)
        assert "X-Lucid-Session" in err["message"], name
    await thief.refused("DELETE", f"locks/{held['lock_id']}", 403, "permission_denied", hidden=hidden)
    await thief.refused("POST", f"/v1/sessions/{holder.sid}/heartbeat", 403, "permission_denied", hidden=hidden)
    await thief.refused("DELETE", f"/v1/sessions/{holder.sid}", 403, "permission_denied", hidden=hidden)
    assert await api.read("/locked.txt") == b"precious"
    # Without the stolen session it is just another writer, and the lock refuses it.
    thief.session = None
    await thief.refused("POST", "truncate", 409, "lock_conflict", "/locked.txt", "locked", hidden=hidden,
                        json={"path": "/locked.txt", "size": 0})
    # The holder's own session still acts for the holder.
    await holder.ok("POST", "truncate", json={"path": "/locked.txt", "size": 3})
    assert await api.read("/locked.txt") == b"pre"


async def test_unknown_or_expired_session_counts_as_none(api: Api) -> None:
    holder = await daemon(api)
    await api.write("/locked.txt", [b"precious"])
    await api.write("/free.txt", [b"free"])
    held = await holder.lock("/locked.txt")
    ghost = Daemon(api, api.raw.token, None, session="0" * 32)
    # It holds no lock: the holder's lock refuses it, an unlocked file does not.
    await ghost.refused("POST", "truncate", 409, "lock_conflict", "/locked.txt", json={"path": "/locked.txt",
                                                                                        "size": 0})
    await ghost.ok("POST", "truncate", json={"path": "/free.txt", "size": 2})
    # Where the session itself is the subject, it is refused as expired.
    await ghost.refused("POST", "locks", 410, "session_expired", "expired", json={"path": "/free.txt",
                                                                                    "mode": "shared"})
    await ghost.refused("POST", "/v1/sessions/" + "0" * 32 + "/heartbeat", 410, "session_expired")
    # The holder's session expires (its daemon stopped renewing): its own lock no longer
    # answers for it, so a commit made under it is refused as a lost lease.
    api.hub.hub.write(lambda tx: tx.execute("UPDATE sessions SET expires = 0 WHERE id = ?", (holder.sid,)))
    before = state(api)
    status, body = await holder.commit("/locked.txt", b"late", held["lock_id"])
    expect_error(status, body, 409, "lease_expired", "/locked.txt")
    after = state(api)
    assert after["rows"]["nodes"] == before["rows"]["nodes"] and after["rows"]["changes"] == before["rows"]["changes"]
    assert await api.read("/locked.txt") == b"precious"
    await holder.refused("POST", f"/v1/sessions/{holder.sid}/heartbeat", 410, "session_expired",
                         hidden=(str(holder.sid),))


async def test_a_session_on_another_filespace_is_refused(api: Api) -> None:
    other_fs = await api.raw.filespace_id("other")
    body = await api.ok("POST", api.p("sessions", other_fs), 201, json={})
    await api.write("/f", [b"f"])
    d = Daemon(api, api.raw.token, body["session_id"])
    await d.refused("POST", "truncate", 400, "bad_request", "another filespace", hidden=(body["session_id"],),
                    json={"path": "/f", "size": 0})
    await d.refused("POST", "locks", 400, "bad_request", "another filespace", json={"path": "/f", "mode": "shared"})


# -- a commit's lock ---------------------------------------------------------------------


async def test_a_commits_lock_is_its_sessions_exclusive_lock_on_that_file(api: Api) -> None:
    one, two = await daemon(api, client="one"), await daemon(api, client="two")
    await api.write("/f", [b"f0"])
    await api.write("/g", [b"g0"])
    on_f = await one.lock("/f")
    on_g = await two.lock("/g", "shared")
    data = b"new contents"

    async def refused(d: Daemon, path: str, lock_id: str, *words: str) -> None:
        change = await d.change(path, data, lock_id)
        await d.refused("POST", "commit", 409, "lock_conflict", path, *words, json=change)

    await refused(two, "/f", on_f["lock_id"], "another session")  # another session's lock
    await refused(one, "/free", on_f["lock_id"], "another file")  # the session's lock on another file
    await refused(two, "/g", on_g["lock_id"], "shared")  # a shared lock protects reading only
    status, body = await one.commit("/f", data, on_f["lock_id"])
    assert status == 200, body
    assert await api.read("/f") == data


# -- other sessions' locks refuse every change -------------------------------------------


@pytest.mark.parametrize("mode", ["exclusive", "shared"])
async def test_another_sessions_lock_refuses_every_change_to_its_file(api: Api, mode: str) -> None:
    holder = await daemon(api, client="holder")
    await api.mkdir("/d/e")
    await api.write("/d/e/locked.txt", [b"precious"])
    await api.write("/other.txt", [b"other"])
    held = await holder.lock("/d/e/locked.txt", mode)
    other_token = make_token(api.hub)
    others = [await daemon(api, client="same token"), no_session(api), await daemon(api, other_token, "other token")]
    for other in others:
        hidden = (str(holder.sid), held["lock_id"])
        for name, (method, route, body) in {
            **changes_of("/d/e/locked.txt", "/other.txt"),
            "delete a directory above": ("POST", "delete", {"path": "/d", "recursive": True}),
            "move a directory above": ("POST", "move", {"src": "/d", "dst": "/d2"}),
        }.items():
            err = await other.refused(method, route, 409, "lock_conflict", "/d/e/locked.txt", "locked", mode,
                                      hidden=hidden, json=body)
            assert err["path"] == "/d/e/locked.txt", name
        change = await other.change("/d/e/locked.txt", b"mine")
        await other.refused("POST", "commit", 409, "lock_conflict", "/d/e/locked.txt", hidden=hidden, json=change)
    assert await api.read("/d/e/locked.txt") == b"precious"
    # Reading stays open to everyone.
    assert await others[1].ok("GET", "file?" + q(path="/d/e/locked.txt"))


async def test_a_shared_lock_refuses_changes_by_the_other_shared_holders(api: Api) -> None:
    one, two = await daemon(api, client="one"), await daemon(api, client="two")
    await api.write("/f", [b"read by two"])
    await one.lock("/f", "shared")
    await two.lock("/f", "shared")
    await one.refused("POST", "truncate", 409, "lock_conflict", "/f", "shared", json={"path": "/f", "size": 0})
    await one.refused("POST", "delete", 409, "lock_conflict", "/f", json={"path": "/f"})


async def test_holders_may_change_their_file(api: Api) -> None:
    holder = await daemon(api)
    await api.write("/f", [b"0123456789"])
    await api.write("/src", [b"copied"])
    held = await holder.lock("/f")
    await holder.ok("POST", "truncate", json={"path": "/f", "size": 4})
    assert await api.read("/f") == b"0123"
    status, body = await holder.commit("/f", b"under the lock", held["lock_id"])
    assert status == 200, body
    await holder.ok("POST", "copy", json={"src": "/src", "dst": "/f"})
    assert await api.read("/f") == b"copied"
    [row] = await listing(holder, "/f")
    assert row["lock_id"] == held["lock_id"] and row["state"] == "held"


# -- a lock belongs to its file ----------------------------------------------------------


async def test_a_lock_follows_its_file_when_the_holder_moves_it(api: Api) -> None:
    holder, other = await daemon(api, client="holder"), await daemon(api, client="other")
    await api.mkdir("/d")
    await api.write("/d/a", [b"a"])
    held = await holder.lock("/d/a")
    await holder.ok("POST", "move", json={"src": "/d/a", "dst": "/b"})
    assert await listing(holder, "/d/a") == []
    [row] = await listing(holder, "/b")
    assert (row["lock_id"], row["state"], row["mode"]) == (held["lock_id"], "held", "exclusive")
    # Other sessions cannot change it at its new path; the old path is free again.
    await other.refused("POST", "truncate", 409, "lock_conflict", "/b", json={"path": "/b", "size": 0})
    status, body = await other.commit("/d/a", b"a new file where the old one was")
    assert status == 200 and body["created"], body
    # The holder's commit names its lock on the file's new path.
    status, body = await holder.commit("/b", b"b1", held["lock_id"])
    assert status == 200, body
    # A directory moved by the holder carries the locks below it.
    await api.mkdir("/dir/sub")
    await api.write("/dir/sub/x", [b"x"])
    sub = await holder.lock("/dir/sub/x", "shared")
    await holder.ok("POST", "move", json={"src": "/dir", "dst": "/dir2"})
    [row] = await listing(holder, "/dir2/sub/x")
    assert row["lock_id"] == sub["lock_id"]
    await other.refused("POST", "delete", 409, "lock_conflict", "/dir2/sub/x", json={"path": "/dir2",
                                                                                      "recursive": True})
    # A file moved over the locked one (by its holder) replaces it, and the lock with it.
    await api.write("/c", [b"c"])
    await holder.ok("POST", "move", json={"src": "/c", "dst": "/b", "overwrite": True})
    assert await listing(holder, "/b") == []


async def test_deleting_a_file_ends_its_locks(api: Api) -> None:
    holder, other = await daemon(api, client="holder"), await daemon(api, client="other")
    await api.write("/f", [b"f"])
    held = await holder.lock("/f")
    await holder.ok("POST", "delete", json={"path": "/f"})
    assert await listing(holder, "/f") == []
    # A commit under the ended lock is refused; a new file at the path is anyone's.
    status, body = await holder.commit("/f", b"late", held["lock_id"])
    expect_error(status, body, 409, "lease_expired", "/f")
    status, body = await other.commit("/f", b"a new file")
    assert status == 200, body
    await other.lock("/f")
    # A recursive delete by the holder ends the locks below the directory.
    await api.mkdir("/d/e")
    await api.write("/d/e/g", [b"g"])
    await holder.lock("/d/e/g", "shared")
    await holder.ok("POST", "delete", json={"path": "/d", "recursive": True})
    assert [r["path"] for r in await listing(holder)] == ["/f"]


async def test_a_lock_on_a_path_not_created_yet_reserves_it(api: Api) -> None:
    holder, other = await daemon(api, client="holder"), await daemon(api, client="other")
    await api.write("/elsewhere", [b"e"])
    held = await holder.lock("/new")
    await other.refused("POST", "commit", 409, "lock_conflict", "/new", json=await other.change("/new", b"first!"))
    await other.refused("POST", "move", 409, "lock_conflict", "/new", json={"src": "/elsewhere", "dst": "/new"})
    await other.refused("POST", "copy", 409, "lock_conflict", "/new", json={"src": "/elsewhere", "dst": "/new"})
    status, body = await holder.commit("/new", b"created under the lock", held["lock_id"])
    assert status == 200 and body["created"], body
    await other.refused("POST", "delete", 409, "lock_conflict", "/new", json={"path": "/new"})


# -- who may see the ids -----------------------------------------------------------------


async def test_lock_and_session_ids_are_shown_only_to_their_token(api: Api) -> None:
    holder = await daemon(api, client="holder daemon")
    await api.write("/f", [b"f"])
    held = await holder.lock("/f")
    mine = await listing(holder)
    assert [(r["path"], r["lock_id"], r["session_id"]) for r in mine] == [("/f", held["lock_id"], holder.sid)]
    stranger = await daemon(api, make_token(api.hub), "stranger")
    for rows in (await listing(stranger), await listing(stranger, "/f")):
        assert [{k: r[k] for k in ("path", "mode", "state", "client", "lock_id", "session_id")} for r in rows] == [
            {"path": "/f", "mode": "exclusive", "state": "held", "client": "holder daemon", "lock_id": None,
             "session_id": None}]
    # Nor in the answers of a wait, of a timed-out wait, or of a refusal.
    waiting = await stranger.ok("POST", "locks", 202, json={"path": "/f", "mode": "shared"})
    assert waiting["state"] == "waiting" and waiting["holders"][0]["session_id"] is None
    assert waiting["holders"][0]["lock_id"] is None and waiting["holders"][0]["client"] == "holder daemon"
    status, body = await stranger.call("DELETE", f"locks/{waiting['lock_id']}?" + q(timeout=1, path="/f"))
    err = expect_error(status, body, 409, "lock_timeout", "/f", "holder daemon")
    assert holder.sid not in json.dumps(body) and held["lock_id"] not in json.dumps(body), err
    await stranger.refused("POST", "truncate", 409, "lock_conflict", "/f", "holder daemon",
                           hidden=(str(holder.sid), held["lock_id"]), json={"path": "/f", "size": 0})


# -- Connect -----------------------------------------------------------------------------


async def test_connect_link_unlink_and_store_removal_respect_locks(api: Api) -> None:
    s3 = running_seaweed()
    await api.ok("POST", api.p("connect/stores"), 201, json={"name": "st", "config": {
        "access_key": s3.access_key, "secret_key": s3.secret_key, "bucket_name": s3.bucket, "region": s3.region,
        "endpoint": s3.endpoint, "url_expiration_minutes": 60, "use_virtual_addressing": False}})
    link = {"store": "st", "object_id": "some/object", "size": 5, "checksum": "abc"}
    await api.ok("POST", api.p("connect/links"), 201, json={"links": [{"path": "/ext/a", **link}]})
    holder, other = await daemon(api, client="holder"), await daemon(api, client="other")
    await holder.lock("/ext/a", "shared")
    await holder.lock("/ext/reserved")
    await other.refused("POST", "connect/unlink", 409, "lock_conflict", "/ext/a", json={"path": "/ext/a"})
    await other.refused("POST", "connect/links", 409, "lock_conflict", "/ext/reserved",
                        json={"links": [{"path": "/ext/b", **link}, {"path": "/ext/reserved", **link}]})
    await other.refused("POST", "connect/stores/remove", 409, "lock_conflict", "/ext/a",
                        json={"name": "st", "force": True})
    await other.refused("POST", "delete", 409, "lock_conflict", "/ext/a", json={"path": "/ext", "recursive": True})
    # The holder may: its link at the reserved path, its unlink (which ends its lock).
    await holder.ok("POST", "connect/links", 201, json={"links": [{"path": "/ext/reserved", **link}]})
    await holder.ok("POST", "connect/unlink", json={"path": "/ext/a"})
    assert [r["path"] for r in await listing(holder)] == ["/ext/reserved"]
