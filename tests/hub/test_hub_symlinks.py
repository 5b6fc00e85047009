"""Symbolic links over HTTP: create, stat (with and without following), list, delete, move,
copy, the journal, statistics, rights, locks and input limits; on both metadata stores."""

from __future__ import annotations

from typing import Any

import pytest

from lucidlink.paths import MAX_PATH_BYTES
from tests.support.hubfixtures import Api, make_token, q
from tests.support.seaweed import running_seaweed

pytest_plugins = ["tests.support.hubfixtures"]

pytestmark = pytest.mark.asyncio


async def link(api: Api, path: str, target: str, expect: int = 201, **kw: Any) -> Any:
    return await api.ok(
        "POST", api.p("symlink"), expect, json={"path": path, "target": target}, **kw
    )


async def follow(api: Api, path: str) -> tuple[int, Any]:
    return await api.call("GET", api.p("entry") + "?" + q(path=path, follow="true"))


async def test_create_stat_and_list_show_the_link_itself(api: Api) -> None:
    await api.mkdir("/d")
    await api.write("/d/f.txt", [b"hello"])
    entry = await link(api, "/d/l", "f.txt")
    assert {k: entry[k] for k in ("path", "name", "type", "size", "target", "version")} == {
        "path": "/d/l",
        "name": "l",
        "type": "link",
        "size": len("f.txt"),
        "target": "f.txt",
        "version": 1,
    }
    status, same = await api.stat("/d/l")
    assert (
        status == 200
        and same["type"] == "link"
        and same["target"] == "f.txt"
        and same["id"] == entry["id"]
    )
    body = await api.ok("GET", api.p("list") + "?" + q(path="/d"))
    assert [(e["name"], e["type"], e.get("target")) for e in body["entries"]] == [
        ("f.txt", "file", None),
        ("l", "link", "f.txt"),
    ]
    # Following: the target's entry, at its canonical path.
    status, target = await follow(api, "/d/l")
    assert (
        status == 200
        and target["path"] == "/d/f.txt"
        and target["type"] == "file"
        and target["size"] == 5
    )
    # A name that exists, a missing parent, a file as parent.
    await api.fail(
        "POST",
        api.p("symlink"),
        409,
        "exists",
        "/d/f.txt",
        json={"path": "/d/f.txt", "target": "/x"},
    )
    await api.fail(
        "POST", api.p("symlink"), 409, "exists", "/d", json={"path": "/d", "target": "/x"}
    )
    await api.fail(
        "POST",
        api.p("symlink"),
        404,
        "not_found",
        "/nope",
        json={"path": "/nope/l", "target": "/x"},
    )
    await api.fail(
        "POST",
        api.p("symlink"),
        409,
        "not_a_directory",
        "/d/f.txt",
        json={"path": "/d/f.txt/l", "target": "/x"},
    )
    # Listing through a link is not following: a link is not a directory.
    await link(api, "/dl", "/d")
    await api.fail(
        "GET", api.p("list") + "?path=/dl", 409, "not_a_directory", "/dl", "symbolic link"
    )


async def test_follow_absolute_relative_chains_and_directories(api: Api) -> None:
    await api.mkdir("/a/b")
    await api.write("/a/b/f", [b"x"])
    await link(api, "/abs", "/a/b/f")
    await link(api, "/a/rel", "./b/../b/f")
    await link(api, "/a/b/up", "../rel")  # a chain: up -> rel -> f
    await link(api, "/dirlink", "a/b")  # a link to a directory, followed in the middle of a path
    for path in ("/abs", "/a/rel", "/a/b/up", "/dirlink/f", "/dirlink/up"):
        status, body = await follow(api, path)
        assert status == 200 and body["path"] == "/a/b/f", (path, body)
    status, body = await follow(api, "/dirlink")
    assert status == 200 and body["type"] == "dir" and body["path"] == "/a/b"
    # Without follow, a path through a link is not resolved.
    status, body = await api.stat("/dirlink/f")
    assert status == 409 and body["error"]["code"] == "not_a_directory"
    # A plain path follows like stat; a missing one answers as stat does (details.parent).
    status, body = await follow(api, "/a/b/f")
    assert status == 200 and body["path"] == "/a/b/f"
    status, body = await follow(api, "/a/missing")
    assert status == 404 and body["error"]["details"]["parent"] == "dir"


async def test_loops_long_chains_and_dangling_links(api: Api) -> None:
    await link(api, "/loop1", "/loop2")
    await link(api, "/loop2", "loop1")
    await link(api, "/self", "self")
    for path in ("/loop1", "/self"):
        await api.fail(
            "GET",
            api.p("entry") + "?" + q(path=path, follow="true"),
            409,
            "too_many_links",
            path,
            "40",
        )
    # 40 links in a chain resolve; 41 do not.
    await api.write("/end", [b"e"])
    await link(api, "/c0", "/end")
    for i in range(1, 41):
        await link(api, f"/c{i}", f"/c{i - 1}")
    status, body = await follow(api, "/c39")
    assert status == 200 and body["path"] == "/end"
    await api.fail(
        "GET", api.p("entry") + "?" + q(path="/c40", follow="true"), 409, "too_many_links"
    )
    # Dangling: FileNotFoundError naming the link and its target.
    await link(api, "/dangling", "/gone/away")
    err = await api.fail(
        "GET",
        api.p("entry") + "?" + q(path="/dangling", follow="true"),
        404,
        "not_found",
        "/dangling",
        "/gone/away",
    )
    assert err["details"]["link"] == "/dangling" and err["details"]["target"] == "/gone/away"
    # A relative link moved until its target climbs above the root no longer resolves.
    await api.mkdir("/m")
    await link(api, "/m/l", "../end")
    await api.ok("POST", api.p("move"), json={"src": "/m/l", "dst": "/moved"})
    await api.fail(
        "GET",
        api.p("entry") + "?" + q(path="/moved", follow="true"),
        404,
        "not_found",
        "outside the filespace",
    )


async def test_targets_above_the_root_and_input_limits_are_refused(api: Api) -> None:
    await api.mkdir("/d")
    for path, target in (
        ("/l", ".."),
        ("/l", "../x"),
        ("/d/l", "../../x"),
        ("/l", "/../x"),
        ("/d/l", "a/../../../x"),
    ):
        await api.fail(
            "POST",
            api.p("symlink"),
            409,
            "link_outside_filespace",
            "outside the filespace",
            json={"path": path, "target": target},
        )
    await link(api, "/d/ok", "../d/./x")  # climbing back down stays inside
    for target, words in (
        ("", ()),
        ("a\x00b", ("NUL",)),
        ("x" * (MAX_PATH_BYTES + 1), ("limit",)),
        ("é" * (MAX_PATH_BYTES // 2 + 1), ("bytes long",)),
    ):
        await api.fail(
            "POST",
            api.p("symlink"),
            400,
            "invalid_path",
            *words,
            json={"path": "/l", "target": target},
        )
    await link(api, "/max", "/" + "/".join(["a" * 255] * 16)[: MAX_PATH_BYTES - 1])
    await link(api, "/long-name", "n" * 300)  # as POSIX: a name too long to exist makes it dangle
    await api.fail(
        "GET", api.p("entry") + "?" + q(path="/long-name", follow="true"), 404, "not_found"
    )
    for body in (
        {"path": "/l"},
        {"target": "/x"},
        {"path": "/l", "target": 5},
        {"path": "/", "target": "/x"},
        {"path": "relative", "target": "/x"},
    ):
        status, answer = await api.call("POST", api.p("symlink"), json=body)
        assert status == 400, (body, status, answer)
    assert not await api.exists("/l")


async def test_delete_move_and_copy_act_on_the_link(api: Api) -> None:
    await api.write("/f", [b"data"])
    await link(api, "/l", "/f")
    # Copy: a link is copied as a link (same target text), onto a new path or over a file.
    body = await api.ok("POST", api.p("copy"), json={"src": "/l", "dst": "/l2"})
    assert (
        body["entry"]["type"] == "link"
        and body["entry"]["target"] == "/f"
        and body["created"] is True
    )
    await api.write("/other", [b"o"])
    body = await api.ok("POST", api.p("copy"), json={"src": "/l", "dst": "/other"})
    assert body["created"] is False and (await api.stat("/other"))[1]["type"] == "link"
    await api.fail(
        "POST",
        api.p("copy"),
        409,
        "exists",
        "/l2",
        json={"src": "/l", "dst": "/l2", "overwrite": False},
    )
    await api.mkdir("/dir")
    await api.fail(
        "POST", api.p("copy"), 409, "is_a_directory", "/dir", json={"src": "/l", "dst": "/dir"}
    )
    # Move: the link moves, its target stays.
    moved = await api.ok("POST", api.p("move"), json={"src": "/l2", "dst": "/dir/l3"})
    assert moved["type"] == "link" and moved["target"] == "/f" and moved["path"] == "/dir/l3"
    assert await api.read("/f") == b"data"
    # Delete: the link goes, its target stays; delete as a directory is refused.
    await api.fail(
        "POST", api.p("delete"), 409, "not_a_directory", json={"path": "/l", "type": "dir"}
    )
    body = await api.ok("POST", api.p("delete"), json={"path": "/l", "type": "file"})
    assert body["deleted"] == 1
    assert not await api.exists("/l") and await api.read("/f") == b"data"
    # A recursive delete takes links with it (and their rows).
    await api.ok("POST", api.p("delete"), json={"path": "/dir", "recursive": True})
    rows = api.hub.hub.write(lambda tx: tx.all("SELECT node_id FROM symlinks"))
    assert len(rows) == 1  # /other
    # A file may be moved over a link; a commit to a link's path is refused (the SDK follows it).
    await api.ok("POST", api.p("move"), json={"src": "/f", "dst": "/other", "overwrite": True})
    assert (await api.stat("/other"))[1]["type"] == "file"
    assert api.hub.hub.write(lambda tx: tx.all("SELECT node_id FROM symlinks")) == []


async def test_journal_and_statistics(api: Api) -> None:
    await api.write("/f", [b"data"])
    before = await api.seq()
    await link(api, "/l", "/f")
    await api.ok("POST", api.p("delete"), json={"path": "/l"})
    body = await api.ok("GET", api.p("changes") + f"?since={before}")
    assert [(c["op"], c["path"], c["type"]) for c in body["changes"]] == [
        ("create", "/l", "link"),
        ("delete", "/l", "link"),
    ]
    await link(api, "/l", "/f")
    stats = await api.ok("GET", api.p("statistics"))
    assert stats["symlink_count"] == 1 and stats["file_count"] == 1 and stats["entries"] == 2


async def test_rights_and_locks(api: Api) -> None:
    await api.write("/f", [b"data"])
    reader = make_token(api.hub, read_only=True)
    await api.fail(
        "POST",
        api.p("symlink"),
        403,
        "read_only",
        "read-only",
        json={"path": "/l", "target": "/f"},
        token=reader,
    )
    stranger = make_token(api.hub, workspace="acme")
    status, body = await api.call(
        "POST", api.p("symlink"), json={"path": "/l", "target": "/f"}, token=stranger
    )
    assert status in (403, 404) and "error" in body, body
    assert not await api.exists("/l")
    # A lock held (or reserved) by another session blocks creating a link at that path.
    sid = (await api.ok("POST", api.p("sessions"), 201, json={"client": "holder"}))["session_id"]
    held = await api.ok(
        "POST",
        api.p("locks"),
        json={"path": "/reserved", "mode": "exclusive"},
        headers={"X-Lucid-Session": sid},
    )
    assert held["state"] == "held"
    await api.fail(
        "POST",
        api.p("symlink"),
        409,
        "lock_conflict",
        "/reserved",
        json={"path": "/reserved", "target": "/f"},
    )
    assert not await api.exists("/reserved")
    # The holder may.
    entry = await link(api, "/reserved", "/f", headers={"X-Lucid-Session": sid})
    assert entry["type"] == "link"


async def test_connect_refuses_to_link_an_object_over_a_link(api: Api) -> None:
    s3 = running_seaweed()
    config = {
        "access_key": s3.access_key,
        "secret_key": s3.secret_key,
        "bucket_name": s3.bucket,
        "region": s3.region,
        "endpoint": s3.endpoint,
        "url_expiration_minutes": 60,
        "use_virtual_addressing": False,
    }
    await api.ok("POST", api.p("connect/stores"), 201, json={"name": "st", "config": config})
    await link(api, "/ext", "/elsewhere")
    item = {"path": "/ext", "store": "st", "object_id": "some/object", "size": 5, "checksum": "abc"}
    await api.fail("POST", api.p("connect/links"), 409, "exists", "/ext", json={"links": [item]})
    status, entry = await api.stat("/ext")
    assert status == 200 and entry["type"] == "link"
    # A link may point at a linked file; following it reaches the Connect entry.
    await api.ok("POST", api.p("connect/links"), 201, json={"links": [{**item, "path": "/obj"}]})
    await link(api, "/to-obj", "obj")
    status, body = await follow(api, "/to-obj")
    assert (
        status == 200
        and body["type"] == "external"
        and body["external"]["object_id"] == "some/object"
    )
