"""Namespace semantics over HTTP: stat, list and its keyset cursor, mkdir, delete, move,
truncate and copy."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from tests.support.hubfixtures import SMALL_BLOCK, Api, block_file, insert_entries, q, snapshot

pytest_plugins = ["tests.support.hubfixtures"]

pytestmark = pytest.mark.asyncio


# -- stat and list ---------------------------------------------------------------------


async def test_stat_root_dir_and_file(api: Api) -> None:
    status, root = await api.stat("/")
    assert status == 200 and root["path"] == "/" and root["name"] == "" and root["type"] == "dir"
    await api.mkdir("/a")
    await api.write("/a/f.txt", [b"12345"])
    status, entry = await api.stat("/a/f.txt")
    assert status == 200
    assert {k: entry[k] for k in ("path", "name", "type", "size", "version")} == {
        "path": "/a/f.txt", "name": "f.txt", "type": "file", "size": 5, "version": 1}
    assert entry["mtime"] > 0 and entry["ctime"] > 0
    # Non-canonical spellings name the same entry; the answer is canonical.
    status, same = await api.stat("//a///f.txt/")
    assert status == 200 and same["id"] == entry["id"] and same["path"] == "/a/f.txt"
    await api.fail("GET", api.p("entry") + "?path=/a/nope", 404, "not_found", "/a/nope")
    await api.fail("GET", api.p("entry") + "?path=/nope/deeper", 404, "not_found", "/nope/deeper")


async def test_stat_paths_deeper_than_one_lookup_statement(api: Api) -> None:
    # tree.lookup finds 8 names per statement and walks a name at a time to say why a
    # path is not there: depths around and past 8 and 16, found, missing and blocked.
    names = [f"d{i}" for i in range(20)]
    await api.mkdir("/" + "/".join(names))
    ids = []
    for depth in range(1, 21):
        path = "/" + "/".join(names[:depth])
        status, entry = await api.stat(path)
        assert status == 200 and entry["path"] == path and entry["type"] == "dir", (path, entry)
        ids.append(entry["id"])
    assert len(set(ids)) == 20
    await api.write("/" + "/".join(names[:9]) + "/f", [b"x"])
    for depth in (8, 9, 16, 17, 20):  # missing as the last name, and below a missing name
        missing = "/" + "/".join([*names[:depth - 1], "nope"])
        err = await api.fail("GET", api.p("entry") + "?" + q(path=missing), 404, "not_found")
        assert err["details"]["parent"] == "dir", err
        err = await api.fail("GET", api.p("entry") + "?" + q(path=missing + "/below"), 404, "not_found")
        assert err["details"]["parent"] == "missing", err
    blocked = "/" + "/".join(names[:9]) + "/f"
    for below in ("/x", "/x/" + "/".join(names)):  # a file in the way, in the same or a later statement
        await api.fail("GET", api.p("entry") + "?" + q(path=blocked + below), 409, "not_a_directory",
                       blocked)
    status, entry = await api.stat(blocked)
    assert status == 200 and entry["type"] == "file" and entry["size"] == 1


async def test_list_pages_with_a_keyset_cursor(api: Api) -> None:
    names = ["b", "a", "ä", "Z", "10", "9", "a b", "é", "日本"]
    for name in names:
        await api.mkdir("/d/" + name)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"path": "/d", "limit": 2, **({"cursor": cursor} if cursor is not None else {})}
        body = await api.ok("GET", api.p("list") + "?" + q(**params))
        pages += 1
        seen += [e["name"] for e in body["entries"]]
        assert all(e["path"] == "/d/" + e["name"] for e in body["entries"])
        cursor = body["cursor"]
        if cursor is None:
            break
        assert cursor == body["entries"][-1]["name"]
    assert seen == sorted(names)  # code point order (= UTF-8 byte order)
    assert pages == 5
    # An exact multiple of the limit: the last full page says there is no more.
    body = await api.ok("GET", api.p("list") + "?" + q(path="/d", limit=len(names)))
    assert len(body["entries"]) == len(names) and body["cursor"] is None
    # The default page is the whole (small) directory; an empty directory lists empty.
    assert await api.names("/d") == sorted(names)
    await api.mkdir("/empty")
    assert await api.ok("GET", api.p("list") + "?path=/empty") == {"entries": [], "cursor": None}
    await api.fail("GET", api.p("list") + "?path=/missing", 404, "not_found", "/missing")


async def test_list_rows_form_holds_the_same_entries_as_the_entries_form(api: Api) -> None:
    names = ["b", "a", "ä", "10", "a b", "日本"]
    for name in names:
        await api.mkdir("/d/" + name)
    await api.write("/d/f.bin", [b"12345"])
    await api.ok("POST", api.p("symlink"), 201, json={"path": "/d/ln", "target": "a"})
    await api.write("/top.bin", [b"x"])
    for directory, limit in [("/d", 3), ("/d", 100), ("/", 1)]:
        pages: dict[str, list[dict[str, Any]]] = {"entries": [], "rows": []}
        for form in pages:
            cursor = None
            while True:
                params = {"path": directory, "limit": limit, "form": form,
                          **({"cursor": cursor} if cursor is not None else {})}
                body = await api.ok("GET", api.p("list") + "?" + q(**params))
                if form == "entries":
                    pages[form] += body["entries"]
                else:
                    assert set(body) == {"columns", "rows", "extra", "cursor"}
                    prefix = "" if directory == "/" else directory
                    for row in body["rows"]:
                        entry = {**dict(zip(body["columns"], row, strict=True)),
                                 "path": f"{prefix}/{row[1]}", **body["extra"].get(row[1], {})}
                        pages[form].append(entry)
                cursor = body["cursor"]
                if cursor is None:
                    break
        assert pages["rows"] == pages["entries"], directory
    body = await api.ok("GET", api.p("list") + "?" + q(path="/d", form="rows"))
    assert body["extra"] == {"ln": {"target": "a"}}
    await api.fail("GET", api.p("list") + "?" + q(path="/d", form="tuples"), 400, "bad_request",
                   "form")
    await api.fail("GET", api.p("list") + "?" + q(path="/d/f.bin", form="rows"), 409,
                   "not_a_directory", "/d/f.bin")


async def test_list_cursor_is_stable_while_the_directory_changes(api: Api) -> None:
    for name in "bdfh":
        await api.mkdir("/d/" + name)
    first = await api.ok("GET", api.p("list") + "?" + q(path="/d", limit=2))
    assert [e["name"] for e in first["entries"]] == ["b", "d"]
    # Between pages: remove a listed entry, add one before the cursor and one after.
    await api.ok("POST", api.p("delete"), json={"path": "/d/b"})
    await api.mkdir("/d/a")
    await api.mkdir("/d/e")
    rest = await api.ok("GET", api.p("list") + "?" + q(path="/d", limit=10, cursor=first["cursor"]))
    assert [e["name"] for e in rest["entries"]] == ["e", "f", "h"]


async def test_list_100000_entries_in_one_directory(api: Api) -> None:
    await api.mkdir("/big")
    # Deterministic, unordered names of varied length, some non-ASCII.
    names = []
    for i in range(100_000):
        h = hashlib.blake2b(i.to_bytes(4, "big"), digest_size=8).hexdigest()
        names.append(h[: 6 + i % 10] + ("é" if i % 7 == 0 else "") + f"-{i}")
    insert_entries(api.hub, api.fs, "/big", names)
    listed: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"path": "/big", "limit": 5000}
        if cursor is not None:
            params["cursor"] = cursor
        body = await api.ok("GET", api.p("list") + "?" + q(**params))
        assert len(body["entries"]) <= 5000
        listed += [e["name"] for e in body["entries"]]
        pages += 1
        cursor = body["cursor"]
        if cursor is None:
            break
    assert pages == 20
    assert len(listed) == 100_000
    assert len(set(listed)) == 100_000
    assert listed == sorted(names)
    body = await api.ok("GET", api.p("statistics"))
    assert body["file_count"] == 100_000 and body["directory_count"] == 1


# -- mkdir -------------------------------------------------------------------------------


async def test_mkdir_parents_and_exist_ok(api: Api) -> None:
    entry = await api.mkdir("/a/b/c")  # parents default to true
    assert entry["path"] == "/a/b/c"
    assert await api.names("/") == ["a"] and await api.names("/a") == ["b"]
    again = await api.mkdir("/a/b/c")  # exist_ok defaults to true
    assert again["id"] == entry["id"]
    before = snapshot(api.hub)
    await api.fail("POST", api.p("mkdir"), 409, "exists", "/a/b/c", "already exists",
                   json={"path": "/a/b/c", "exist_ok": False})
    await api.fail("POST", api.p("mkdir"), 404, "not_found", "/x/y", "parents",
                   json={"path": "/x/y/z", "parents": False})
    assert snapshot(api.hub) == before
    created = await api.mkdir("/a/new", parents=False, exist_ok=False)
    assert created["path"] == "/a/new"
    # The root always exists.
    assert (await api.mkdir("/"))["path"] == "/"
    await api.fail("POST", api.p("mkdir"), 409, "exists", "root", json={"path": "/", "exist_ok": False})
    # A file in the way, as the last name or as a parent.
    await api.write("/a/file", [b"x"])
    await api.fail("POST", api.p("mkdir"), 409, "exists", "/a/file", json={"path": "/a/file"})
    await api.fail("POST", api.p("mkdir"), 409, "not_a_directory", "/a/file",
                   json={"path": "/a/file/sub"})


async def test_mkdir_journal_has_one_entry_per_created_dir(api: Api) -> None:
    await api.mkdir("/a")
    await api.mkdir("/a/b/c")
    body = await api.ok("GET", api.p("changes") + "?since=0")
    assert [(c["op"], c["path"], c["type"]) for c in body["changes"]] == [
        ("mkdir", "/a", "dir"), ("mkdir", "/a/b", "dir"), ("mkdir", "/a/b/c", "dir")]


# -- delete ------------------------------------------------------------------------------


async def test_delete_file_and_empty_dir(api: Api) -> None:
    await api.mkdir("/d")
    await api.write("/d/f", [b"x"])
    assert (await api.ok("POST", api.p("delete"), json={"path": "/d/f", "type": "file"}))["deleted"] == 1
    assert not await api.exists("/d/f")
    assert (await api.ok("POST", api.p("delete"), json={"path": "/d", "type": "dir"}))["deleted"] == 1
    assert await api.names("/") == []


async def test_delete_non_empty_dir_refused_then_recursive_in_one_call(api: Api) -> None:
    await api.mkdir("/t/a/b")
    await api.mkdir("/t/c")
    await api.write("/t/a/b/f1", [b"1"])
    await api.write("/t/a/f2", [b"2"])
    await api.mkdir("/keep")
    before = snapshot(api.hub)
    err = await api.fail("POST", api.p("delete"), 409, "directory_not_empty", "/t", "recursive",
                         json={"path": "/t"})
    assert err["path"] == "/t"
    assert snapshot(api.hub) == before
    seq = await api.seq()
    body = await api.ok("POST", api.p("delete"), json={"path": "/t", "recursive": True})
    assert body["deleted"] == 6  # /t, /t/a, /t/a/b, /t/c and two files
    assert await api.seq() == seq + 1  # one call, one journal entry
    assert await api.names("/") == ["keep"]
    stats = await api.ok("GET", api.p("statistics"))
    assert stats["file_count"] == 0 and stats["directory_count"] == 1 and stats["block_count"] == 0


async def test_delete_with_wrong_expected_type(api: Api) -> None:
    await api.mkdir("/d")
    await api.write("/f", [b"x"])
    before = snapshot(api.hub)
    await api.fail("POST", api.p("delete"), 409, "is_a_directory", "/d", json={"path": "/d", "type": "file"})
    await api.fail("POST", api.p("delete"), 409, "not_a_directory", "/f", json={"path": "/f", "type": "dir"})
    await api.fail("POST", api.p("delete"), 404, "not_found", "/nope", json={"path": "/nope"})
    await api.fail("POST", api.p("delete"), 400, "invalid_path", "root", json={"path": "/"})
    assert snapshot(api.hub) == before


# -- move --------------------------------------------------------------------------------


async def test_move_renames_and_moves_subtrees(api: Api) -> None:
    await api.mkdir("/a/b")
    await api.write("/a/b/f", [b"data"])
    file_id = (await api.stat("/a/b/f"))[1]["id"]
    await api.mkdir("/z")
    entry = await api.ok("POST", api.p("move"), json={"src": "/a", "dst": "/z/a2"})
    assert entry["path"] == "/z/a2" and entry["name"] == "a2"
    status, moved = await api.stat("/z/a2/b/f")
    assert status == 200 and moved["id"] == file_id  # one row update: same node
    assert not await api.exists("/a")
    assert await api.read("/z/a2/b/f") == b"data"
    entry = await api.ok("POST", api.p("move"), json={"src": "/z/a2/b/f", "dst": "/g"})
    assert entry["path"] == "/g" and entry["type"] == "file"
    # Moving onto itself is a no-op.
    assert (await api.ok("POST", api.p("move"), json={"src": "/g", "dst": "/g"}))["path"] == "/g"
    changes = (await api.ok("GET", api.p("changes") + "?since=0"))["changes"]
    moves = [(c["path"], c["new_path"]) for c in changes if c["op"] == "move"]
    assert moves == [("/a", "/z/a2"), ("/z/a2/b/f", "/g")]


async def test_move_overwrite_rules(api: Api) -> None:
    await api.write("/f1", [b"one"])
    await api.write("/f2", [b"two"])
    await api.mkdir("/d1/inner")
    await api.mkdir("/d2")
    await api.mkdir("/empty")
    before = snapshot(api.hub)
    # Without overwrite an existing destination is refused, whatever it is.
    await api.fail("POST", api.p("move"), 409, "exists", "/f2", "overwrite", json={"src": "/f1", "dst": "/f2"})
    await api.fail("POST", api.p("move"), 409, "exists", "/empty", json={"src": "/d2", "dst": "/empty"})
    # With overwrite: never a file over a directory, nor a directory over a file,
    # nor over a directory that has entries.
    ow = {"overwrite": True}
    await api.fail("POST", api.p("move"), 409, "is_a_directory", "/d2", json={"src": "/f1", "dst": "/d2", **ow})
    await api.fail("POST", api.p("move"), 409, "not_a_directory", "/f1", json={"src": "/d2", "dst": "/f1", **ow})
    await api.fail("POST", api.p("move"), 409, "directory_not_empty", "/d1",
                   json={"src": "/d2", "dst": "/d1", **ow})
    assert snapshot(api.hub) == before
    # A file over a file, a directory over an empty directory.
    await api.ok("POST", api.p("move"), json={"src": "/f1", "dst": "/f2", **ow})
    assert await api.read("/f2") == b"one" and not await api.exists("/f1")
    await api.ok("POST", api.p("move"), json={"src": "/d1", "dst": "/empty", **ow})
    assert await api.names("/empty") == ["inner"] and not await api.exists("/d1")
    assert await api.names("/") == ["d2", "empty", "f2"]


async def test_move_into_itself_or_a_descendant_is_invalid(api: Api) -> None:
    await api.mkdir("/a/b/c")
    await api.write("/file", [b"x"])
    before = snapshot(api.hub)
    await api.fail("POST", api.p("move"), 400, "invalid_move", "/a", "into itself", json={"src": "/a", "dst": "/a/x"})
    await api.fail("POST", api.p("move"), 400, "invalid_move", "/a", json={"src": "/a", "dst": "/a/b/c/x"})
    await api.fail("POST", api.p("move"), 400, "invalid_move", "/a/b",
                   json={"src": "/a/b", "dst": "/a/b/c/d", "overwrite": True})
    await api.fail("POST", api.p("move"), 400, "invalid_move", "root", json={"src": "/", "dst": "/r"})
    await api.fail("POST", api.p("move"), 404, "not_found", "/nope", json={"src": "/nope", "dst": "/x"})
    await api.fail("POST", api.p("move"), 404, "not_found", "/nodir", json={"src": "/a", "dst": "/nodir/x"})
    await api.fail("POST", api.p("move"), 409, "not_a_directory", "/file", json={"src": "/a", "dst": "/file/x"})
    assert snapshot(api.hub) == before


# -- truncate and copy -------------------------------------------------------------------


async def test_truncate_shrinks_and_extends_with_holes(api: Api) -> None:
    b0, b1 = b"a" * SMALL_BLOCK, b"b" * 1000
    await api.write("/f", [b0, b1], fs=api.small)
    info = await api.file("/f", fs=api.small)
    assert [(b["index"], b["used"]) for b in info["blocks"]] == [(0, SMALL_BLOCK), (1, 1000)]
    # Shrink into slot 0: slot 1 goes, slot 0's visible length is clipped.
    body = await api.ok("POST", api.p("truncate", api.small), json={"path": "/f", "size": 100})
    assert body["entry"]["size"] == 100 and body["entry"]["version"] == 2
    info = await api.file("/f", fs=api.small)
    assert [(b["index"], b["length"], b["used"]) for b in info["blocks"]] == [(0, SMALL_BLOCK, 100)]
    # Extend past the old end: no bytes move, the rest reads as zeros (a hole).
    body = await api.ok("POST", api.p("truncate", api.small), json={"path": "/f", "size": 3 * SMALL_BLOCK})
    assert body["entry"]["size"] == 3 * SMALL_BLOCK and body["entry"]["version"] == 3
    info = await api.file("/f", fs=api.small)
    assert [(b["index"], b["length"], b["used"]) for b in info["blocks"]] == [(0, SMALL_BLOCK, 100)]
    data = await api.read("/f", fs=api.small)
    assert data == b"a" * 100 + bytes(3 * SMALL_BLOCK - 100)
    # To zero: no slots left.
    await api.ok("POST", api.p("truncate", api.small), json={"path": "/f", "size": 0})
    info = await api.file("/f", fs=api.small)
    assert info["blocks"] == [] and info["entry"]["size"] == 0
    changes = (await api.ok("GET", api.p("changes", api.small) + "?since=1"))["changes"]
    assert [(c["op"], c["size"], c["version"]) for c in changes] == [
        ("modify", 100, 2), ("modify", 3 * SMALL_BLOCK, 3), ("modify", 0, 4)]


async def test_truncate_refusals(api: Api) -> None:
    await api.mkdir("/d")
    before = snapshot(api.hub)
    await api.fail("POST", api.p("truncate"), 404, "not_found", "/nofile", json={"path": "/nofile", "size": 1})
    await api.fail("POST", api.p("truncate"), 409, "is_a_directory", "/d", json={"path": "/d", "size": 1})
    await api.fail("POST", api.p("truncate"), 400, "bad_request", "'size'", json={"path": "/d", "size": -1})
    assert snapshot(api.hub) == before


async def test_copy_shares_blocks(api: Api) -> None:
    chunks = [b"x" * SMALL_BLOCK, b"y" * 10]
    await api.write("/src", chunks, fs=api.small)
    # A hole inside slot 0 (shrink then extend), which the copy must keep.
    await api.ok("POST", api.p("truncate", api.small), json={"path": "/src", "size": 50})
    await api.ok("POST", api.p("truncate", api.small), json={"path": "/src", "size": 200})
    stats = await api.ok("GET", api.p("statistics", api.small))
    files_before = snapshot(api.hub)["block_files"]
    body = await api.ok("POST", api.p("copy", api.small), json={"src": "/src", "dst": "/dst"})
    assert body["created"] is True and body["entry"]["size"] == 200
    src, dst = await api.file("/src", fs=api.small), await api.file("/dst", fs=api.small)
    assert src["blocks"] == dst["blocks"] == [{"index": 0, "hash": src["blocks"][0]["hash"],
                                               "length": SMALL_BLOCK, "used": 50}]
    assert await api.read("/dst", fs=api.small) == b"x" * 50 + bytes(150)
    assert snapshot(api.hub)["block_files"] == files_before  # no bytes copied
    after = await api.ok("GET", api.p("statistics", api.small))
    assert after["block_count"] == stats["block_count"] and after["storage_size"] == stats["storage_size"]
    assert after["data_size"] == 400
    # Deleting the source leaves the copy's blocks referenced: GC keeps them.
    await api.ok("POST", api.p("delete", api.small), json={"path": "/src"})
    await api.gc()
    assert block_file(api.hub, api.small, src["blocks"][0]["hash"]).exists()
    assert await api.read("/dst", fs=api.small) == b"x" * 50 + bytes(150)


async def test_copy_overwrite_and_refusals(api: Api) -> None:
    await api.write("/a", [b"aaa"])
    await api.write("/b", [b"bbbb"])
    await api.mkdir("/d")
    before = snapshot(api.hub)
    await api.fail("POST", api.p("copy"), 409, "exists", "/b", json={"src": "/a", "dst": "/b", "overwrite": False})
    await api.fail("POST", api.p("copy"), 409, "is_a_directory", "/d", json={"src": "/a", "dst": "/d"})
    await api.fail("POST", api.p("copy"), 409, "is_a_directory", "/d", json={"src": "/d", "dst": "/e"})
    await api.fail("POST", api.p("copy"), 404, "not_found", "/nope", json={"src": "/nope", "dst": "/e"})
    await api.fail("POST", api.p("copy"), 404, "not_found", "/nodir", json={"src": "/a", "dst": "/nodir/e"})
    assert snapshot(api.hub) == before
    body = await api.ok("POST", api.p("copy"), json={"src": "/a", "dst": "/b"})  # overwrite by default
    assert body["created"] is False and body["entry"]["version"] == 2 and body["entry"]["size"] == 3
    assert await api.read("/b") == b"aaa"


async def test_names_with_url_and_shell_characters(api: Api) -> None:
    names = ["a+b c", "x&y=z", "100%", "q?#frag", "tab\there", "日本語 ファイル", "emoji-🙂", "back\\slash"]
    for name in names:
        await api.mkdir("/" + name)
        status, entry = await api.stat("/" + name)
        assert status == 200 and entry["name"] == name, (name, entry)
    assert await api.names("/") == sorted(names)
    body = await api.ok("GET", api.p("list") + "?" + q(path="/", limit=1, cursor="a+b c"))
    assert [e["name"] for e in body["entries"]] == [sorted(names)[sorted(names).index("a+b c") + 1]]
    # A name of exactly 255 bytes is fine (85 three-byte characters).
    assert (await api.mkdir("/" + "語" * 85))["name"] == "語" * 85
