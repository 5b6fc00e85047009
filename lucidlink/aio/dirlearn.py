"""Learning a directory from one listing: what lets creates and stats skip the hub.

A create in a directory the metadata cache does not know lists it once (at most
:data:`LEARN` entries) and, once the journal confirms the names, creates the next files
there without asking; a second stat missing the cache in one directory lists it the same
way and answers the directory's next stats from the entries (stat-ahead). A directory
too big for one such listing, or one whose listing fails, is asked about per file for
:data:`RELEARN` seconds.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from lucidlink.aio.metacache import ABSENT
from lucidlink.aio.singleflight import SingleFlight
from lucidlink.exceptions import FilespaceError, LucidLinkError
from lucidlink.paths import parent_and_name
from lucidlink.shared import LIST_ROW_COLUMNS, entries_from_rows

if TYPE_CHECKING:
    from lucidlink.aio.link import FilespaceLink

LEARN = 256
"""Entries a create or a stat-ahead lists of a directory it does not know."""
RELEARN = 10.0
"""Seconds before trying again to learn a directory that could not be learned."""


def page_entries(directory: str, page: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries (the hub's entry JSON) of one page of ``GET .../list`` of ``directory``.

    The page is the compact form (``form=rows``: a row per entry, what links add by name
    in ``extra``), or, from a hub that does not know that form, the entries themselves.
    """
    if "rows" not in page:
        return page["entries"]  # type: ignore[no-any-return]
    if page["columns"] != list(LIST_ROW_COLUMNS):
        raise FilespaceError(f"the hub listed {directory} with the columns {page['columns']}, "
                             f"not {list(LIST_ROW_COLUMNS)}: update the client or the hub to the "
                             "same release")
    return entries_from_rows(directory, page["rows"], page["extra"])


class DirectoryLearner:
    """The directories one link learns with a listing (see the module docstring)."""

    def __init__(self, link: FilespaceLink) -> None:
        self._link = link
        self._unlearnable: dict[str, float] = {}  # directory -> when learning it failed
        self._last_miss = ""  # the directory of the last stat the cache could not answer
        self._listings: SingleFlight[str, list[dict[str, Any]] | None] = SingleFlight()

    async def listing(self, path: str, page_size: int, *, complete: bool,
                      entries: bool = False) -> list[dict[str, Any]] | None:
        """A directory's entries from the hub (remembered; with ``entries`` each also as
        a stat's answer); ``None`` when not ``complete`` and more than one page."""
        cache = self._link.metacache
        ticket = cache.ticket()
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"path": path, "limit": str(page_size), "form": "rows"}
            if cursor is not None:
                params["cursor"] = cursor
            page = await self._link.call("GET", "/list", params=params)
            found.extend(page_entries(path, page))
            cursor = page["cursor"]
            if cursor is None:
                if entries:
                    cache.put_entries(ticket, found)
                    if cache.has_names(path):
                        # Names learned already (and confirmed by the journal, or about to
                        # be): a listing now would start that confirmation over, and the
                        # creates that rely on it would ask the hub meanwhile.
                        return found
                cache.put_listing(ticket, path, found)
                return found
            if not complete:
                return None

    async def stat_ahead(self, path: str) -> dict[str, Any] | None:
        """Stat-ahead: the cached entry of ``path`` once its directory is listed, or ``None``.

        A stat that misses the cache in the directory of the previous miss lists that
        directory (one page of at most ``LEARN`` entries, shared by concurrent misses)
        and keeps every entry, so the stats of a directory's files (``ls -l``, a walk,
        fsspec ``info`` in a loop) cost two requests, not one each. A directory with more
        entries, or one that cannot be listed, is stat-ed file by file for ``RELEARN``
        seconds, as creates learn it (Lustre's statahead and NFS's READDIRPLUS do the same
        on a detected scan).
        """
        parent = parent_and_name(path)[0]
        previous, self._last_miss = self._last_miss, parent
        if previous != parent or path == "/" or not self._link.metacache.fresh():
            return None
        if self._failed_lately(parent):
            return None
        try:
            listed = await self._listings.run(
                parent, lambda: self.listing(parent, LEARN, complete=False, entries=True))
        except LucidLinkError:  # the stat itself reports what is wrong with the path
            listed = None
        if listed is None:
            self._remember_unlearnable(parent)
            return None
        return self._link.metacache.entry(path)

    def _failed_lately(self, directory: str) -> bool:
        """Whether learning ``directory`` failed less than :data:`RELEARN` seconds ago."""
        failed = self._unlearnable.get(directory)
        return failed is not None and time.monotonic() - failed < RELEARN

    def _remember_unlearnable(self, directory: str) -> None:
        self._unlearnable[directory] = time.monotonic()
        while len(self._unlearnable) > 1024:
            self._unlearnable.pop(next(iter(self._unlearnable)))

    async def known_creatable(self, path: str, *, exclusive: bool) -> bool:
        """Whether the cache proves ``path`` may be created without asking the hub: its
        parent is a directory and it is absent (or, unless ``exclusive``, a plain file).
        Conflicts the journal has not delivered yet are settled by the hub at commit."""
        cache = self._link.metacache
        parent = parent_and_name(path)[0]
        if (cache.kind(parent) != "dir" or cache.kind(path) is None) and cache.fresh():
            if self._failed_lately(parent):
                return False
            # Unknown: learn the parent's names with one short listing, if it fits.
            try:
                if not cache.has_names(parent) and await self.listing(
                        parent, LEARN, complete=False) is None:
                    learned = False
                else:
                    # The listing may already hold changes the journal has not
                    # delivered: its names count once the journal is pulled past it.
                    await cache.catch_up()
                    learned = cache.kind(path) is not None
            except LucidLinkError:
                learned = False
            if not learned:  # too big, or changing: ask the hub for a while
                self._remember_unlearnable(parent)
        if cache.kind(parent) != "dir":
            return False
        kind = cache.kind(path)
        return kind == ABSENT or (kind == "file" and not exclusive)
