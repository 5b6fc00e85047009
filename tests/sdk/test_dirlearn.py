"""The listing pages the client reads (``dirlearn.page_entries``): the hub's compact form
(``form=rows``), the entries form of a hub that does not know it, and a mismatch refused."""

from __future__ import annotations

import pytest

from lucidlink.aio import filesystem
from lucidlink.aio.dirlearn import page_entries
from lucidlink.exceptions import FilespaceError
from lucidlink.shared import LIST_ROW_COLUMNS
from tests.sdk.test_metacache import count_calls, linked
from tests.support.sdkfixtures import SdkHub

ENTRY = {"id": 7, "path": "/d/a", "name": "a", "type": "file", "size": 5, "mtime": 2,
         "ctime": 1, "version": 3}
LINK = {"id": 8, "path": "/d/l", "name": "l", "type": "link", "size": 1, "mtime": 4,
        "ctime": 4, "version": 1, "target": "a"}


def as_row(entry: dict[str, object]) -> list[object]:
    return [entry[c] for c in LIST_ROW_COLUMNS]


def test_rows_become_the_entries_the_hub_would_have_sent() -> None:
    page = {"columns": list(LIST_ROW_COLUMNS), "rows": [as_row(ENTRY), as_row(LINK)],
            "extra": {"l": {"target": "a"}}, "cursor": None}
    assert page_entries("/d", page) == [ENTRY, LINK]
    root = {**page, "rows": [as_row(ENTRY)], "extra": {}}
    assert page_entries("/", root) == [{**ENTRY, "path": "/a"}]


def test_a_hub_without_the_rows_form_answers_entries() -> None:
    assert page_entries("/d", {"entries": [ENTRY, LINK], "cursor": None}) == [ENTRY, LINK]


def test_other_columns_are_refused_not_misread() -> None:
    page = {"columns": ["id", "name", "size", "type", "mtime", "ctime", "version"],
            "rows": [[7, "a", 5, "file", 2, 1, 3]], "extra": {}, "cursor": None}
    with pytest.raises(FilespaceError, match="/d") as info:
        page_entries("/d", page)
    assert "same release" in str(info.value)


@pytest.mark.asyncio
async def test_read_dir_over_several_pages_of_rows(sdk_hub: SdkHub,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh daemon lists a directory page by page in the rows form: every entry once,
    in order, with the path, size, type and link target the hub's entries form gives."""
    monkeypatch.setattr(filesystem, "_PAGE", 7)
    async with linked(sdk_hub.url, sdk_hub.token) as a:
        await a.fs.create_dir("/pages/sub")
        for i in range(20):
            await a.fs.write_file(f"/pages/f{i:02d}", b"x" * i)
        await a.fs.create_symlink("f03", "/pages/ln")
        await a.sync_all()
        want = [(e.name, e.path, e.size, e.type, e.target, e.file_id)
                for e in await a.fs.read_dir("/pages")]
    assert len(want) == 22 and ("ln", "/pages/ln", 3, "link", "f03") == want[20][:5]
    async with linked(sdk_hub.url, sdk_hub.token) as b:
        calls = count_calls(b)
        got = [(e.name, e.path, e.size, e.type, e.target, e.file_id)
               for e in await b.fs.read_dir("/pages")]
        assert calls["list"] == 4  # 22 entries, 7 a page
    assert got == want
