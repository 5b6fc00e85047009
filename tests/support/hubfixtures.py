"""Fixtures and helpers for the hub's HTTP tests (real hubs on loopback, no mocks).

Register with ``pytest_plugins = ["tests.support.hubfixtures"]`` in a test module. Builds on the
``hub`` and ``raw`` fixtures of ``tests/conftest.py`` and ``tests/support/hubclient.py``.

Test modules also import the helpers below, before pytest reads their ``pytest_plugins``;
so this module opts out of assertion rewriting (its asserts carry their own messages):
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
import pytest_asyncio

from lucidlink.hub.api.app_keys import HUB_KEY
from lucidlink.hub.blockstore.local import LocalBlockStore
from lucidlink.hub.core import admin, tree
from lucidlink.hub.embedded import EmbeddedHub
from lucidlink.hub.signing import UrlSigner
from lucidlink.hub.state import Hub
from tests.conftest import RunningHub
from tests.support.hubclient import RawHub

SMALL_BLOCK = 64 * 1024
"""Block size of the ``small`` filespace the ``api`` fixture creates (the hub's minimum)."""


def digest_of(data: bytes) -> str:
    """The SHA-256 hex digest naming a block."""
    return hashlib.sha256(data).hexdigest()


def hub_state(hub: RunningHub) -> Hub:
    """The running :class:`Hub` behind an embedded hub."""
    assert hub.hub.app is not None
    return hub.hub.app[HUB_KEY]


def snapshot(hub: RunningHub) -> dict[str, Any]:
    """Everything the hub stores: every metadata table and the files of the block store.

    Compared before and after a refused request to prove that nothing changed.
    """

    def dump(tx: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for table in ("workspaces", "filespaces", "tokens", "sessions", "nodes", "file_blocks",
                      "blocks", "changes", "file_changes", "applied_changes"):
            # Values, on both engines (a PostgreSQL row is a dict: tuple() of it would
            # give only the column names, and every comparison would pass).
            rows = tx.all(f"SELECT * FROM {table}")
            out[table] = sorted(tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows)
        return out

    state = hub.hub.call(hub_state(hub).store.read(dump))
    if not hub_state(hub).blocks.serves_blocks:
        # S3: a commit, even a refused one, first has the hub check the uploads it names
        # and make them live; that records a fact about the bucket, not a change.
        state["blocks"] = sorted(row[:2] for row in state["blocks"])
    blocks_dir = hub.data_dir / "blocks"
    state["block_files"] = sorted(
        str(p.relative_to(blocks_dir)) for p in blocks_dir.rglob("*") if p.is_file()
    )
    return state


def block_file(hub: RunningHub, fs_id: str, digest: str) -> Path:
    """Where the embedded block store keeps a block."""
    return hub.data_dir / "blocks" / fs_id / digest[:2] / digest


def block_exists(hub: RunningHub, fs_id: str, digest: str) -> bool:
    """Whether the hub's block store (a directory, or an S3 bucket) holds a block."""
    return bool(hub.hub.call(hub_state(hub).blocks.exists(fs_id, digest)))


def signer_of(hub: RunningHub) -> UrlSigner:
    """The hub's own signer (its key is in ``<data-dir>/hub.key`` or, on PostgreSQL, in the store)."""
    blocks = hub_state(hub).blocks
    assert isinstance(blocks, LocalBlockStore), blocks
    return blocks.signer


def make_token(hub: RunningHub, workspace: str = "demo", filespaces: list[str] | None = None,
               **rights: Any) -> str:
    """A new token of ``workspace`` (created if missing) with the given rights."""

    def create(tx: Any) -> str:
        ws, _ = admin.ensure_workspace(tx, workspace)
        ids = None
        if filespaces is not None:
            ids = [admin.ensure_filespace(tx, ws["id"], name)[0]["id"] for name in filespaces]
        token, _ = admin.create_token(tx, ws["id"], filespace_ids=ids, **rights)
        return token

    return str(hub.hub.write(create))


def key_id_of(token: str) -> str:
    """The public key id of a token."""
    return token.split(":")[1]


def expect_error(status: int, body: Any, http: int, code: str, *words: str) -> dict[str, Any]:
    """Assert a JSON error envelope with this HTTP status and code whose message names ``words``."""
    assert status == http, (status, body)
    assert isinstance(body, dict) and "error" in body, body
    err = body["error"]
    assert err["code"] == code, err
    for word in words:
        assert word in err["message"], (word, err["message"])
    return err


@attrs.define
class Api:
    """Convenience calls over :class:`RawHub` for one hub."""

    raw: RawHub
    hub: RunningHub
    fs: str
    """Id of filespace ``data`` (block size 4 MiB)."""
    small: str
    """Id of filespace ``small`` (block size 64 KiB)."""

    async def call(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.raw.call(method, path, **kw)

    async def url(self, method: str, url: str, data: Any = None,
                  headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """A request to an absolute URL (a signed block URL), without a token."""
        data = body_of(data)
        async with self.raw.session.request(method, url, data=data, headers=headers or {}) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.read()

    async def ok(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        """A call that must succeed with ``expect``."""
        status, body = await self.raw.call(method, path, **kw)
        assert status == expect, (method, path, status, body)
        return body

    async def fail(self, method: str, path: str, http: int, code: str, *words: str, **kw: Any) -> dict[str, Any]:
        """A call that must fail with this status and error code."""
        status, body = await self.raw.call(method, path, **kw)
        return expect_error(status, body, http, code, *words)

    def p(self, route: str, fs: str | None = None) -> str:
        """``/v1/filespaces/<fs>/<route>``."""
        return f"/v1/filespaces/{fs or self.fs}/{route}"

    async def mkdir(self, path: str, fs: str | None = None, **kw: Any) -> dict[str, Any]:
        return await self.ok("POST", self.p("mkdir", fs), json={"path": path, **kw})  # type: ignore[no-any-return]

    async def stat(self, path: str, fs: str | None = None) -> tuple[int, Any]:
        return await self.raw.call("GET", self.p("entry", fs) + "?" + _q(path=path))

    async def exists(self, path: str, fs: str | None = None) -> bool:
        status, body = await self.stat(path, fs)
        assert status in (200, 404), body
        return status == 200

    async def file(self, path: str, fs: str | None = None) -> dict[str, Any]:
        return await self.ok("GET", self.p("file", fs) + "?" + _q(path=path))  # type: ignore[no-any-return]

    async def names(self, path: str = "/", fs: str | None = None) -> list[str]:
        body = await self.ok("GET", self.p("list", fs) + "?" + _q(path=path, limit=5000))
        return [e["name"] for e in body["entries"]]

    async def upload(self, data: bytes, fs: str | None = None) -> str:
        """Upload one block (through a signed URL); return its hash."""
        digest = digest_of(data)
        body = await self.ok("POST", self.p("blocks/urls", fs), json={"op": "put", "hashes": [digest]})
        if digest in body["urls"]:
            headers = body.get("headers", {}).get(digest, {})  # S3: the signed checksum header
            async with self.raw.session.put(body["urls"][digest], data=body_of(data),
                                            headers=headers) as resp:
                assert resp.status in (200, 201), await resp.text()  # S3 answers 200
        return digest

    async def write(self, path: str, chunks: list[bytes], fs: str | None = None, **change: Any) -> dict[str, Any]:
        """Upload ``chunks`` as slots 0.. and commit them as the whole file ``path``."""
        fs = fs or self.fs
        block_size = SMALL_BLOCK if fs == self.small else admin.DEFAULT_BLOCK_SIZE
        blocks = []
        for i, chunk in enumerate(chunks):
            assert len(chunk) <= block_size
            blocks.append({"index": i, "hash": await self.upload(chunk, fs), "length": len(chunk)})
        size = change.pop("size", None)
        if size is None:
            size = (len(chunks) - 1) * block_size + len(chunks[-1]) if chunks else 0
        body = {"path": path, "size": size, "blocks": blocks, "replace": True, **change}
        return await self.ok("POST", self.p("commit", fs), json=body)  # type: ignore[no-any-return]

    async def block_url(self, digest: str, op: str = "get", fs: str | None = None) -> str:
        body = await self.ok("POST", self.p("blocks/urls", fs), json={"op": op, "hashes": [digest]})
        return body["urls"][digest]  # type: ignore[no-any-return]

    async def read(self, path: str, fs: str | None = None) -> bytes:
        """A file's bytes, assembled from its block list as a client would (holes are zeros)."""
        info = await self.file(path, fs)
        size, block_size = info["entry"]["size"], info["block_size"]
        out = bytearray(size)
        for b in info["blocks"]:
            if "data" in b:  # a small block kept with the metadata comes in the answer
                data = base64.b64decode(b["data"])
                assert digest_of(data) == b["hash"]
            else:
                url = await self.block_url(b["hash"], fs=fs)
                async with self.raw.session.get(url) as resp:
                    assert resp.status == 200
                    data = await resp.read()
            start = b["index"] * block_size
            out[start : start + b["used"]] = data[: b["used"]]
        return bytes(out)

    async def seq(self, fs: str | None = None) -> int:
        body = await self.ok("GET", f"/v1/filespaces/{fs or self.fs}")
        return int(body["seq"])

    async def gc(self, grace: float = 0) -> int:
        """Run the GC as if with ``grace``: the hub refuses less than its URL lifetime.

        A shorter grace is played as time passing: every block's ``last_seen`` moves
        back by the difference, and the GC runs with the hub's minimum.
        """
        minimum = hub_state(self.hub).settings.url_ttl_seconds
        if grace < minimum:
            shift = int((minimum - grace) * 1e9)
            self.hub.hub.write(lambda tx: tx.execute("UPDATE blocks SET last_seen = last_seen - ?", (shift,)))
            grace = minimum
        body = await self.ok("POST", "/v1/admin/gc", json={"grace_seconds": grace})
        return int(body["deleted_blocks"])


def body_of(data: Any) -> Any:
    """Large bodies as a file object (aiohttp warns about big ``bytes`` bodies)."""
    if isinstance(data, bytes) and len(data) > 1024 * 1024:
        return io.BytesIO(data)
    return data


def _q(**params: Any) -> str:
    """A query string, percent-encoding everything (so '+' and '&' in paths survive)."""
    from urllib.parse import quote

    return "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in params.items())


q = _q


@pytest_asyncio.fixture
async def api(hub: RunningHub, raw: RawHub) -> Api:
    """:class:`Api` for the ``hub`` fixture, with an extra filespace ``small`` of 64 KiB blocks."""

    def small(tx: Any) -> str:
        ws = admin.get_workspace(tx, "demo")
        return str(admin.ensure_filespace(tx, ws["id"], "small", SMALL_BLOCK)[0]["id"])

    small_id = hub.hub.write(small)
    return Api(raw, hub, await raw.filespace_id("data"), small_id)


@pytest.fixture
def make_hub(tmp_path: Path) -> Iterator[Callable[..., RunningHub]]:
    """Start extra hubs with custom settings: ``make_hub(max_json_bytes=1024)``."""
    started: list[EmbeddedHub] = []

    def start(**settings: Any) -> RunningHub:
        data_dir = tmp_path / f"hub-{len(started)}"
        settings.setdefault("gc_interval_seconds", 3600)
        embedded = EmbeddedHub(data_dir, **settings).start()
        started.append(embedded)
        token = embedded.init("demo", ["data", "other"], admin=True)
        return RunningHub(embedded, embedded.url, token, "demo", ("data", "other"), data_dir)

    yield start
    for embedded in started:
        embedded.stop()


@pytest_asyncio.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session (for hubs started with ``make_hub``)."""
    async with aiohttp.ClientSession() as s:
        yield s


def insert_entries(hub: RunningHub, fs_id: str, parent: str, names: list[str], batch: int = 20_000) -> None:
    """Insert many file entries into one directory straight through the store (fast)."""

    def insert(tx: Any, chunk: list[str]) -> None:
        parent_id = tree.get_dir(tx, fs_id, parent)["id"]
        now = 1_700_000_000_000_000_000
        tx.executemany(
            "INSERT INTO nodes (filespace_id, parent_id, name, type, size, mtime, ctime, version) "
            "VALUES (?, ?, ?, 'file', 0, ?, ?, 1)",
            [(fs_id, parent_id, name, now, now) for name in chunk],
        )

    for start in range(0, len(names), batch):
        hub.hub.write(insert, names[start : start + batch])


def random_bytes(n: int) -> bytes:
    """``n`` random bytes (distinct blocks in every test)."""
    return os.urandom(n)


def dumps(obj: Any) -> bytes:
    """JSON bytes of ``obj``."""
    return json.dumps(obj).encode()
