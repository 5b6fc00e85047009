"""The listing pages the client reads (``dirlearn.page_entries``): the hub's compact form
(``form=rows``), the entries form of a hub that does not know it, and a mismatch refused."""

from __future__ import annotations

import pytest

from lucidlink.aio.dirlearn import ROW_COLUMNS, page_entries
from lucidlink.exceptions import FilespaceError

ENTRY = {"id": 7, "path": "/d/a", "name": "a", "type": "file", "size": 5, "mtime": 2,
         "ctime": 1, "version": 3}
LINK = {"id": 8, "path": "/d/l", "name": "l", "type": "link", "size": 1, "mtime": 4,
        "ctime": 4, "version": 1, "target": "a"}


def as_row(entry: dict[str, object]) -> list[object]:
    return [entry[c] for c in ROW_COLUMNS]


def test_rows_become_the_entries_the_hub_would_have_sent() -> None:
    page = {"columns": list(ROW_COLUMNS), "rows": [as_row(ENTRY), as_row(LINK)],
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
