"""The metadata cache of one linked filespace, kept true by the change journal.

It holds what hub answers said (entries, complete directory listings, the names and
types of a directory's entries, and small files' read answers with their inline bytes)
and drops what each change of the journal touches. The rules every user relies on:

* **Nothing is served unless the journal is fresh**: the poller is connected, caught
  up (its last answer was not cut by ``limit``), and that answer arrived less than
  ``POLL_WAIT + FRESH_MARGIN`` seconds ago (a long-poll answers at least every
  ``POLL_WAIT`` seconds). Otherwise every lookup misses and the caller asks the hub, as
  without a cache: a cut connection degrades to uncached, never to stale.
* **The journal is applied in order and without gaps** (its ``seq`` is gap-free per
  filespace): every change drops the records of its path, of its subtree when it can
  be a directory, and its parent's entry and listing; the name sets of directories are
  updated (a create adds a name, a delete removes it). A gap or a journal that went
  backwards clears everything.
* **A slow answer never overwrites news.** An answer is inserted only if nothing that
  touches its path was applied (by the poller, by ``sync_all``'s pull, or by this
  client's own changes) while its request was in flight, and if its path had no change
  of this client pending when the request started or when it ended (:class:`Ticket`).
* **Own changes count at once** (read-your-writes): a closed file or a namespace call
  drops what it touches before the caller goes on.
* **Bounded**: at most ``max_entries`` records (a listing counts its entries) and
  ``max_bytes`` of inline file bytes, least recently used dropped first.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import attrs
import pybase64

from lucidlink._log import get_logger
from lucidlink.exceptions import LucidLinkError
from lucidlink.paths import parent_and_name

log = get_logger("lucidlink")

POLL_WAIT = 4
"""Seconds a journal long-poll waits for a change before answering empty."""
FRESH_MARGIN = 1.0
"""How late beyond ``POLL_WAIT`` the poller's next answer may be before the cache stops serving."""
MAX_ENTRIES = 100_000
MAX_BYTES = 64 * 1024 * 1024
_LOG_KEEP = 4096
"""Invalidations remembered for tickets in flight (an older ticket inserts nothing)."""
ABSENT = "absent"
"""What :meth:`MetaCache.kind` says of a name a complete listing does not hold."""
_NAMESPACE_CALLS = ("/mkdir", "/delete", "/move", "/copy", "/truncate", "/symlink")
"""The calls whose paths say what they change (others, such as Connect's, clear the cache)."""
_PLAIN = ("file", "link", "external")
"""Node types that have no subtree."""

Fetch = Callable[[int, int, int], Awaitable[Any]]
"""``fetch(since, limit, wait)``: one ``GET .../changes`` answer."""


@attrs.frozen
class Ticket:
    """Where the cache stood when a request started (see the module docstring)."""

    epoch: int
    pending: frozenset[str]


@attrs.define
class Names:
    """The complete ``{name: type}`` of a directory's entries.

    A listing may reflect changes the journal has not delivered yet; replaying one of
    them onto it could make it wrong (a delete undone), so until the journal has been
    pulled past the listing (``confirmed``) any change in the directory drops it.
    """

    names: dict[str, str]
    needs: int
    """The first journal pull whose answer confirms it (0: confirmed already)."""

    def __len__(self) -> int:
        return len(self.names)


@attrs.frozen
class FileAnswer:
    """A file's read answer (entry, block size, block list) and its blocks' verified bytes."""

    info: dict[str, Any]
    inline: dict[str, bytes]

    def content(self) -> bytes | None:
        """The whole file, when every block is held inline; else ``None``."""
        size = int(self.info["entry"]["size"])
        bs = int(self.info["block_size"])
        blocks = self.info["blocks"]
        if len(blocks) == 1 and blocks[0]["index"] == 0 and blocks[0]["used"] == size:
            data = self.inline.get(blocks[0]["hash"])
            return None if data is None else data[:size]
        if any(b["hash"] not in self.inline for b in blocks):
            return None  # before allocating: a large file's blocks are never all inline
        out = bytearray(size)
        for b in blocks:
            data = self.inline.get(b["hash"])
            if data is None:
                return None
            start = int(b["index"]) * bs
            n = max(0, min(int(b["used"]), size - start))
            out[start:start + n] = data[:n]
        return bytes(out)


def answer_from_json(info: dict[str, Any]) -> FileAnswer:
    """A :class:`FileAnswer` from the hub's answer; inline bytes that do not match their
    block's SHA-256 and length are left out (the block is then fetched as usual)."""
    inline: dict[str, bytes] = {}
    blocks = []
    for b in info.get("blocks", ()):
        raw = b.get("data")
        if raw is not None:
            data = pybase64.b64decode(raw)
            if len(data) == b["length"] and hashlib.sha256(data).hexdigest() == b["hash"]:
                inline[b["hash"]] = data
            b = {k: v for k, v in b.items() if k != "data"}
        blocks.append(b)
    return FileAnswer({**info, "blocks": blocks}, inline)


def touches(changed: str, path: str) -> bool:
    """Whether a change at ``changed`` can make a record of ``path`` wrong: the path
    itself, anything under it, its parent directory (entries, mtime) or the parent's
    parent (whose listing holds the parent's mtime)."""
    if changed == "/" or path == changed:
        return True
    if path.startswith(changed + "/"):
        return True
    parent = parent_and_name(changed)[0]
    return parent == path or (parent != "/" and parent_and_name(parent)[0] == path)


def _under(path: str, top: str) -> bool:
    return top == "/" or path == top or path.startswith(top + "/")


class MetaCache:
    """The cache of one link, and the task that long-polls its journal."""

    def __init__(self, fetch: Fetch, pending: Callable[[], set[str]], *,
                 max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self._fetch = fetch
        self._pending = pending
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        # (kind, path) -> record: "e" entry JSON, "f" FileAnswer, "l" a directory's
        # complete listing (entry JSONs), "n" its Names.
        self._lru: collections.OrderedDict[tuple[str, str], Any] = collections.OrderedDict()
        self._weight = 0
        self._bytes = 0
        self._epoch = 0
        self._log: collections.deque[tuple[int, str]] = collections.deque()
        self._log_floor = 0
        self.seq = 0
        """The journal position: every change up to it has been applied."""
        self._pulls = 0  # journal requests sent
        self._pulled = 0  # the last request whose answer was applied and not cut by limit
        self._answered = float("-inf")
        self._caught_up = False
        self._connected = False
        self._task: asyncio.Task[None] | None = None
        self.stats = collections.Counter[str]()
        """Hits, misses and journal activity, for tests and diagnostics."""

    # -- the poller --------------------------------------------------------------------

    def start(self, seq: int) -> None:
        """Start long-polling the journal from ``seq`` (the hub's position at link time)."""
        self.seq = seq
        self._answered = time.monotonic()
        self._caught_up = self._connected = True
        self._task = asyncio.create_task(self._poll(), name="lucidlink-journal")

    async def stop(self) -> None:
        """Stop the poller and forget everything."""
        self._connected = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.clear()

    def fresh(self) -> bool:
        """Whether the cache may serve (see the module docstring)."""
        return (self._connected and self._caught_up
                and time.monotonic() - self._answered < POLL_WAIT + FRESH_MARGIN)

    async def _poll(self) -> None:
        failures = 0
        while True:
            try:
                await self._pull(1000, POLL_WAIT)
            except (LucidLinkError, OSError, asyncio.TimeoutError) as exc:
                self._connected = False
                failures += 1
                self.stats["poll_errors"] += 1
                log.debug("lucidlink.journal.poll_failed", error=str(exc))
                await asyncio.sleep(min(5.0, 0.1 * 2 ** min(failures, 6)))
                continue
            failures = 0
            self._connected = True

    async def catch_up(self) -> None:
        """Pull and apply the journal up to the hub's current position (``sync_all``)."""
        while not await self._pull(10_000, 0):
            pass

    async def _pull(self, limit: int, wait: int) -> bool:
        """One journal request, applied; whether it reached the hub's position."""
        self._pulls += 1
        number = self._pulls
        body = await self._fetch(self.seq, limit, wait)
        self.apply(body)
        if not body["more"]:
            self._pulled = max(self._pulled, number)
        return not body["more"]

    def apply(self, body: dict[str, Any]) -> None:
        """Apply one ``/changes`` answer (changes already applied are skipped)."""
        changes = [c for c in body["changes"] if int(c["seq"]) > self.seq]
        if changes and int(changes[0]["seq"]) != self.seq + 1:
            # Answers of requests sent at different positions overlap but never skip; a
            # gap means changes this cache never saw (a journal pruned or replaced).
            log.warning("lucidlink.journal.gap", at=self.seq, first=int(changes[0]["seq"]))
            self.clear()
        for change in changes:
            self._apply_change(change)
            self.seq = int(change["seq"])
        if not body["more"]:
            self.seq = max(self.seq, int(body["seq"]))
        self._caught_up = not body["more"]
        self._answered = time.monotonic()
        self.stats["changes"] += len(changes)

    def _apply_change(self, c: dict[str, Any]) -> None:
        op, path, kind = c["op"], c["path"], c.get("type") or "dir"
        if op == "move" and c.get("new_path"):
            self._removed(path, kind)
            self._added(c["new_path"], kind, replaces=True)
        elif op == "delete":
            self._removed(path, kind)
        elif op in ("create", "mkdir"):
            self._added(path, kind)
            if op == "mkdir":  # a new directory is empty; later changes fill it
                self._set(("n", path), Names({}, 0))
        else:  # modify, and anything new: the path's records go
            self.invalidate(path, subtree=kind not in _PLAIN)

    def _removed(self, path: str, kind: str) -> None:
        self.invalidate(path, subtree=kind not in _PLAIN)
        self._rename_in_parent(path, None)

    def _added(self, path: str, kind: str, replaces: bool = False) -> None:
        self.invalidate(path, subtree=replaces or kind not in _PLAIN)
        self._rename_in_parent(path, kind)

    def _rename_in_parent(self, path: str, kind: str | None) -> None:
        if path == "/":
            return
        parent, name = parent_and_name(path)
        record: Names | None = self._lru.get(("n", parent))
        if record is None:
            return
        if record.needs > self._pulled:  # perhaps a replay onto a newer listing
            self._drop(("n", parent))
        elif kind is None:
            record.names.pop(name, None)
        else:
            record.names[name] = kind

    # -- invalidation ------------------------------------------------------------------

    def invalidate(self, path: str, *, subtree: bool = True) -> None:
        """Drop what a change at ``path`` makes wrong, and remember it for tickets in flight."""
        self._epoch += 1
        self._log.append((self._epoch, path))
        if len(self._log) > _LOG_KEEP:
            self._log_floor = self._log.popleft()[0]
        if path == "/" and subtree:
            self.clear(keep_log=True)
            return
        keys = [("e", path), ("f", path), ("l", path)]
        if path != "/":
            parent = parent_and_name(path)[0]
            keys += [("e", parent), ("l", parent)]
            if parent != "/":  # its listing holds the parent's entry (mtime)
                keys.append(("l", parent_and_name(parent)[0]))
        for key in keys:
            self._drop(key)
        if subtree:
            self._drop(("n", path))
            prefix = path + "/"
            for key in [k for k in self._lru if k[1].startswith(prefix)]:
                self._drop(key)

    def clear(self, keep_log: bool = False) -> None:
        """Forget every record."""
        self._lru.clear()
        self._weight = self._bytes = 0
        if not keep_log:
            self._epoch += 1
            self._log.clear()
            self._log_floor = self._epoch

    def own_write(self, path: str) -> None:
        """This client queued a change of the file ``path`` (closed after writing)."""
        self.invalidate(path, subtree=False)
        self._rename_in_parent(path, "file")

    def own_call(self, suffix: str, body: Any) -> None:
        """This client made the namespace call ``POST suffix`` (answered or not)."""
        body = body if isinstance(body, dict) else {}
        paths = [body[k] for k in ("path", "src", "dst") if isinstance(body.get(k), str)]
        if suffix not in _NAMESPACE_CALLS or not paths:
            self.invalidate("/")  # anything else (Connect): start afresh
            return
        # Only a directory has a subtree to drop (a delete says which it removes).
        subtree = suffix == "/move" or (suffix == "/delete" and body.get("type") != "file")
        for p in paths:
            self.invalidate(p, subtree=subtree)
            # What the parents' name sets say of p is unknown now (created, removed,
            # replaced); mkdir may have created ancestors as well: their entries and
            # listings go too.
            here = p
            while here != "/":
                here = parent_and_name(here)[0]
                if suffix == "/mkdir":
                    self.invalidate(here, subtree=False)
                self._drop(("n", here))
                if suffix != "/mkdir":
                    break

    # -- records -----------------------------------------------------------------------

    def _drop(self, key: tuple[str, str]) -> None:
        value = self._lru.pop(key, None)
        if value is not None:
            self._weight -= _weight(key, value)
            if key[0] == "f":
                self._bytes -= sum(len(d) for d in value.inline.values())

    def _set(self, key: tuple[str, str], value: Any) -> None:
        self._drop(key)
        self._lru[key] = value
        self._weight += _weight(key, value)
        if key[0] == "f":
            self._bytes += sum(len(d) for d in value.inline.values())
        while self._lru and (self._weight > self._max_entries or self._bytes > self._max_bytes):
            self._drop(next(iter(self._lru)))

    def _get(self, key: tuple[str, str]) -> Any:
        if not self.fresh():
            self.stats["unfresh"] += 1
            return None
        value = self._lru.get(key)
        if value is None:
            self.stats["miss"] += 1
            return None
        self._lru.move_to_end(key)
        self.stats["hit"] += 1
        return value

    def ticket(self) -> Ticket:
        """Where things stand as a request starts; hand it back with its answer."""
        pending = self._pending()
        return Ticket(self._epoch, frozenset(pending) if pending else frozenset())

    def _valid(self, ticket: Ticket, path: str) -> bool:
        if ticket.epoch < self._log_floor:
            return False
        if path in ticket.pending or path in self._pending():
            return False
        for epoch, changed in reversed(self._log):
            if epoch <= ticket.epoch:
                break
            if touches(changed, path):
                return False
        return True

    def put_entry(self, ticket: Ticket, entry: dict[str, Any]) -> None:
        """Remember an entry the hub answered."""
        if self._valid(ticket, entry["path"]):
            self._set(("e", entry["path"]), entry)

    def put_entries(self, ticket: Ticket, entries: Iterable[dict[str, Any]]) -> None:
        """Remember the entries of a listing one by one (stat-ahead: each answers a stat)."""
        for entry in entries:
            self.put_entry(ticket, entry)

    def put_answer(self, ticket: Ticket, answer: FileAnswer) -> None:
        """Remember a file's read answer (not a Connect file's: its object may change)."""
        path = answer.info["entry"]["path"]
        if answer.info.get("external") or not self._valid(ticket, path):
            return
        self._set(("e", path), answer.info["entry"])
        self._set(("f", path), answer)

    def _child_pending(self, ticket: Ticket, path: str) -> bool:
        """Whether a change of this daemon to an entry of the directory ``path`` was
        pending when the listing's request started, or is now: the listing may lack it."""
        prefix = path.rstrip("/") + "/"
        return any(p.startswith(prefix) and "/" not in p[len(prefix):]
                   for pending in (ticket.pending, self._pending()) for p in pending)

    def put_listing(self, ticket: Ticket, path: str, entries: list[dict[str, Any]]) -> None:
        """Remember a directory's complete listing (not one taken while an entry of it had
        a change of this daemon pending)."""
        if not self._valid(ticket, path) or self._child_pending(ticket, path):
            return
        self._set(("l", path), entries)
        self._set(("n", path), Names({e["name"]: e["type"] for e in entries}, self._pulls + 1))

    def put_names(self, ticket: Ticket, path: str, names: Iterable[tuple[str, str]]) -> None:
        """Remember the complete names and types of a directory's entries."""
        if self._valid(ticket, path) and not self._child_pending(ticket, path):
            self._set(("n", path), Names(dict(names), self._pulls + 1))

    def entry(self, path: str) -> dict[str, Any] | None:
        """A fresh entry of ``path``, or ``None``."""
        found = self._get(("e", path))
        return dict(found) if found is not None else None

    def answer(self, path: str) -> FileAnswer | None:
        """A fresh read answer of the file ``path``, or ``None``."""
        found: FileAnswer | None = self._get(("f", path))
        return found

    def listing(self, path: str) -> list[dict[str, Any]] | None:
        """A fresh complete listing of the directory ``path``, or ``None``."""
        found = self._get(("l", path))
        return list(found) if found is not None else None

    def has_names(self, path: str) -> bool:
        """Whether the cache holds the names of the directory ``path`` (confirmed or not)."""
        return ("n", path) in self._lru

    def kind(self, path: str) -> str | None:
        """What is known to be at ``path``: a node type, :data:`ABSENT` (a complete listing
        of its parent lacks it; the parent is a directory), or ``None`` (unknown)."""
        return self._kind(path, touch=True)

    def peek_kind(self, path: str) -> str | None:
        """:meth:`kind`, safe from any thread: it reads the cache without reordering it.

        Another thread may see the cache between two steps of an update on the loop
        thread: as stale as an answer the journal has not corrected yet, which the hub
        settles at commit."""
        return self._kind(path, touch=False)

    def peek_writable_file(self, path: str) -> bool:
        """Whether the cache proves the parent of the canonical ``path`` a directory and
        ``path`` absent or a plain file: ``peek_kind(parent) == "dir"`` and ``peek_kind(path)
        in (ABSENT, "file")``, in one look (a program writing small files asks it twice per
        file). Safe from any thread, as :meth:`peek_kind`."""
        if path == "/" or not self.fresh() or ("n", path) in self._lru:
            return False
        parent, name = parent_and_name(path)
        record: Names | None = self._lru.get(("n", parent))
        if record is not None and record.needs <= self._pulled:  # names held: a directory
            return record.names.get(name, ABSENT) in (ABSENT, "file")
        return (self._kind(parent, touch=False) == "dir"
                and self._kind(path, touch=False) in (ABSENT, "file"))

    def _kind(self, path: str, *, touch: bool) -> str | None:
        if path == "/":
            return "dir"
        if not self.fresh():
            return None
        if ("n", path) in self._lru:
            return "dir"
        parent, name = parent_and_name(path)
        record: Names | None = self._lru.get(("n", parent))
        if record is not None and record.needs <= self._pulled:
            if touch:
                self._lru.move_to_end(("n", parent))
            return record.names.get(name, ABSENT)
        entry = self._lru.get(("e", path))
        return str(entry["type"]) if entry is not None else None


def _weight(key: tuple[str, str], value: Any) -> int:
    return max(1, len(value)) if key[0] in ("l", "n") else 1
