"""The hub's cache of verified tokens: used, and never stale (the auth generation).

A hub verifies a token in full once and then answers from its cache while the store's
auth generation is unchanged; a revocation or a change of rights writes a new
generation, so the very next request, on this hub or any other hub sharing the store,
is checked in full again. Counts, never timings.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lucidlink.hub.core import admin
from lucidlink.hub.core.principal import (
    AUTH_GENERATION_KEY,
    auth_generation,
    bump_auth_generation,
)
from lucidlink.hub.store.postgres import PostgresStore
from tests.hub.test_scale_out import HubProc
from tests.support.hubfixtures import Api, expect_error, hub_state, key_id_of, make_token
from tests.support.pgfixture import fresh_schema

pytest_plugins = ["tests.support.hubfixtures"]

pytestmark = pytest.mark.asyncio


def make_read_only(tx: Any, key_id: str) -> None:
    """A change of rights, made as every such change must be: with a new auth generation."""
    tx.execute("UPDATE tokens SET read_only = 1 WHERE key_id = ?", (key_id,))
    bump_auth_generation(tx)


@pytest.fixture
def full_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The key ids of the tokens the hub checked in full against the store, in order."""
    seen: list[str] = []
    real = admin.authenticate

    def counting(tx: Any, key_id: str, secret: str) -> Any:
        seen.append(key_id)
        return real(tx, key_id, secret)

    monkeypatch.setattr(admin, "authenticate", counting)
    return seen


async def test_a_token_is_checked_in_full_once_then_from_the_cache(
        api: Api, full_checks: list[str]) -> None:
    token = make_token(api.hub)
    for _ in range(10):
        assert (await api.ok("GET", api.p("entry") + "?path=/", token=token))["type"] == "dir"
    assert full_checks.count(key_id_of(token)) == 1
    # A wrong secret for a cached key id is refused, and not by the cache.
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    await api.fail("GET", "/v1/whoami", 401, "unauthenticated", token=wrong)
    assert full_checks.count(key_id_of(token)) == 2
    assert (await api.ok("GET", "/v1/whoami", token=token))["key_id"] == key_id_of(token)
    assert full_checks.count(key_id_of(token)) == 2


async def test_revocation_empties_the_cache_at_once(api: Api, full_checks: list[str]) -> None:
    token, other = make_token(api.hub), make_token(api.hub)
    for t in (token, other, token, other):
        await api.ok("GET", "/v1/whoami", token=t)
    assert len(full_checks) == 2
    api.hub.hub.write(admin.revoke_token, key_id_of(token))
    for _ in range(3):  # refused on the very next request, and on every one after
        await api.fail("GET", "/v1/whoami", 401, "unauthenticated", "revoked", token=token)
    # The other token is checked in full once more (the generation changed), then cached.
    for _ in range(3):
        assert (await api.ok("GET", "/v1/whoami", token=other))["key_id"] == key_id_of(other)
    assert full_checks.count(key_id_of(other)) == 2
    assert full_checks.count(key_id_of(token)) == 4  # 1 before, 3 refusals (never cached)


async def test_a_change_of_rights_applies_to_the_next_request(api: Api) -> None:
    token = make_token(api.hub)
    await api.ok("POST", api.p("mkdir"), json={"path": "/before"}, token=token)
    api.hub.hub.write(make_read_only, key_id_of(token))
    status, body = await api.call("POST", api.p("mkdir"), json={"path": "/after"}, token=token)
    expect_error(status, body, 403, "read_only")
    assert not await api.exists("/after")


def narrow_to(tx: Any, key_id: str, filespace_ids: list[str]) -> None:
    """A change of the filespaces a token may use, with a new auth generation."""
    tx.execute("UPDATE tokens SET filespaces = ? WHERE key_id = ?",
               (json.dumps(sorted(filespace_ids)), key_id))
    bump_auth_generation(tx)


@pytest.fixture
def generation_reads(api: Api, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The meta keys the hub read on their own (outside a handler's read), in order."""
    store = hub_state(api.hub).store
    seen: list[str] = []
    real = store.meta_value

    async def counting(key: str) -> str | None:
        seen.append(key)
        return await real(key)

    monkeypatch.setattr(store, "meta_value", counting)
    return seen


def _reads(api: Api, fs: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every route that only reads its filespace (``context.read_access``), as calls."""
    return [("GET", api.p("entry", fs) + "?path=/d/f", {}),
            ("GET", api.p("entry", fs) + "?path=/d/missing", {}),
            ("GET", api.p("list", fs) + "?path=/d", {}),
            ("GET", api.p("list", fs) + "?path=/d&form=rows", {}),
            ("GET", api.p("file", fs) + "?path=/d/f", {}),
            ("GET", api.p("file", fs) + "?path=/d/f&prefetch=4", {}),
            ("POST", api.p("files", fs), {"json": {"paths": ["/d/f"]}}),
            ("GET", api.p("statistics", fs), {})]


async def test_reads_confirm_a_cached_token_in_their_own_transaction(
        api: Api, full_checks: list[str], generation_reads: list[str]) -> None:
    # A read-only route answers a cached token with one read transaction: the auth
    # generation is read in the handler's snapshot, not on its own; a revocation or a
    # change of rights made since still applies to the very next read of every kind.
    for fs in (api.fs, api.small):
        await api.mkdir("/d", fs)
    await api.write("/d/f", [b"x" * 10])
    token = make_token(api.hub)
    generation_reads.clear()
    await api.ok("GET", "/v1/whoami", token=token)
    assert full_checks == [key_id_of(token)] and generation_reads == [AUTH_GENERATION_KEY]
    statuses = [(await api.call(m, path, token=token, **kw))[0] for m, path, kw in _reads(api, api.fs)]
    assert statuses == [200, 404, 200, 200, 200, 200, 200, 200]
    assert full_checks == [key_id_of(token)] and generation_reads == [AUTH_GENERATION_KEY]

    # Rights narrowed to the other filespace: this one is out of reach at once, the other is not.
    await api.write("/d/f", [b"y"], fs=api.small)
    api.hub.hub.write(narrow_to, key_id_of(token), [api.small])
    for method, path, kw in _reads(api, api.fs):
        await api.fail(method, path, 404, "filespace_not_found", token=token, **kw)
    statuses = [(await api.call(m, path, token=token, **kw))[0] for m, path, kw in _reads(api, api.small)]
    assert statuses == [200, 404, 200, 200, 200, 200, 200, 200]

    # Revoked: every read is refused, a missing path too (401, never the 404 that would
    # tell a revoked token what exists).
    api.hub.hub.write(admin.revoke_token, key_id_of(token))
    for method, path, kw in _reads(api, api.small):
        await api.fail(method, path, 401, "unauthenticated", "revoked", token=token, **kw)
    assert full_checks.count(key_id_of(token)) == 2 + len(_reads(api, api.small))


async def test_a_read_refused_by_the_cache_is_checked_in_full(api: Api, full_checks: list[str]) -> None:
    # A cached token whose filespace the cached rights do not reach is checked in full
    # before it is answered; the answer is the store's (here: still not visible).
    await api.mkdir("/d")
    await api.write("/d/f", [b"x"])
    token = make_token(api.hub, filespaces=["small"])
    await api.ok("GET", api.p("entry", api.small) + "?path=/", token=token)
    await api.fail("GET", api.p("entry") + "?path=/d/f", 404, "filespace_not_found", token=token)
    assert full_checks.count(key_id_of(token)) == 1  # the generation is unchanged: cached
    # A wrong secret under a cached key id is not vouched for by the cache.
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    await api.fail("GET", api.p("entry", api.small) + "?path=/", 401, "unauthenticated", token=wrong)
    assert full_checks.count(key_id_of(token)) == 2


async def test_a_revocation_by_another_process_reaches_the_next_read(tmp_path: Path) -> None:
    # 'lucidlink hub token revoke' in its own process writes the hub's SQLite store while
    # the hub, another process, answers a cached token's stats from one read each.
    data = tmp_path / "data"

    def cli(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "lucidlink", "hub", *args, "--data-dir", str(data)],
                             capture_output=True, text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip().splitlines()[-1]

    admin_token = cli("init", "--workspace", "demo", "--filespace", "data")
    token = cli("token", "create", "--workspace", "demo", "--filespace", "data")
    hub = HubProc("sqlite", ["--data-dir", str(data)], dict(os.environ), tmp_path)
    try:
        async with aiohttp.ClientSession() as http:
            await hub.wait_healthy(http)
            async with http.get(f"{hub.url}/v1/filespaces",
                                headers={"Authorization": f"Bearer {admin_token}"}) as resp:
                fs = (await resp.json())["filespaces"][0]["id"]

            async def stat(path: str, tok: str) -> tuple[int, Any]:
                async with http.get(f"{hub.url}/v1/filespaces/{fs}/entry", params={"path": path},
                                    headers={"Authorization": f"Bearer {tok}"}) as resp:
                    return resp.status, await resp.json()

            for _ in range(3):
                assert (await stat("/", token))[0] == 200
            cli("token", "revoke", key_id_of(token))
            for path in ("/", "/missing"):
                status, body = await stat(path, token)
                expect_error(status, body, 401, "unauthenticated", "revoked")
            assert (await stat("/", admin_token))[0] == 200
    finally:
        hub.stop()


# -- several hub processes on one PostgreSQL ----------------------------------------------


@pytest.fixture
def two_hubs(tmp_path: Path, postgres_dsn: str) -> Iterator[tuple[list[HubProc], str, str]]:
    """Two ``lucidlink hub serve`` processes sharing a fresh schema; a token; the store URL."""
    with fresh_schema(postgres_dsn) as url:
        store = ["--metadata-url", url]
        out = subprocess.run(
            [sys.executable, "-m", "lucidlink", "hub", "init", *store, "--workspace", "demo",
             "--filespace", "data", "--data-dir", str(tmp_path / "data")],
            capture_output=True, text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr
        token = out.stdout.strip().splitlines()[-1]
        hubs: list[HubProc] = []
        try:
            for name in "AB":
                hubs.append(HubProc(name, [*store, "--data-dir", str(tmp_path / "data")],
                                    dict(os.environ), tmp_path))
            yield hubs, token, url
        finally:
            for hub in hubs:
                hub.stop()


async def test_revocation_and_rights_reach_every_hub_on_the_next_request(
        two_hubs: tuple[list[HubProc], str, str]) -> None:
    hubs, admin_token, url = two_hubs
    async with aiohttp.ClientSession() as http:
        for hub in hubs:
            await hub.wait_healthy(http)

        async def call(hub: HubProc, method: str, path: str, tok: str,
                       body: Any = None) -> tuple[int, Any]:
            async with http.request(method, hub.url + path, json=body,
                                    headers={"Authorization": f"Bearer {tok}"}) as resp:
                return resp.status, await resp.json()

        status, body = await call(hubs[0], "GET", "/v1/filespaces", admin_token)
        assert status == 200, body
        fs = body["filespaces"][0]["id"]
        store = PostgresStore(url)
        await store.open()
        try:
            tokens = [await store.write(_new_token) for _ in range(2)]
            # Warm both hubs' caches with both tokens.
            for _ in range(3):
                for hub in hubs:
                    for t in tokens:
                        status, body = await call(hub, "GET", "/v1/whoami", t)
                        assert status == 200, body
            # Revoked by a third process (the store directly, as 'lucidlink hub token revoke').
            await store.write(admin.revoke_token, key_id_of(tokens[0]))
            for hub in hubs:
                status, body = await call(hub, "GET", "/v1/whoami", tokens[0])
                expect_error(status, body, 401, "unauthenticated", "revoked")
            # Rights: read-only from the next request on, on both hubs.
            for i, hub in enumerate(hubs):
                status, body = await call(hub, "POST", f"/v1/filespaces/{fs}/mkdir",
                                          tokens[1], {"path": f"/rw{i}"})
                assert status == 200, body
            await store.write(make_read_only, key_id_of(tokens[1]))
            for i, hub in enumerate(hubs):
                status, body = await call(hub, "POST", f"/v1/filespaces/{fs}/mkdir",
                                          tokens[1], {"path": f"/ro{i}"})
                expect_error(status, body, 403, "read_only")
                status, body = await call(hub, "GET", f"/v1/filespaces/{fs}/entry?path=/ro{i}",
                                          tokens[1])
                assert status == 404, body
        finally:
            await store.close()


def _new_token(tx: Any) -> str:
    ws = admin.get_workspace(tx, "demo")
    token, _ = admin.create_token(tx, ws["id"])
    return token


async def test_postgres_meta_reads_on_the_loop_see_every_commit(postgres_dsn: str) -> None:
    """The auth generation read on the loop's own connection (shared by the calls that
    arrive together) is never older than the last commit before the call."""
    with fresh_schema(postgres_dsn) as url:
        store = PostgresStore(url)
        await store.open()
        try:
            assert await store.meta_value(AUTH_GENERATION_KEY) is None
            for _ in range(5):
                await store.write(bump_auth_generation)
                want = await store.read(auth_generation)
                got = await asyncio.gather(
                    *(store.meta_value(AUTH_GENERATION_KEY) for _ in range(50)))
                assert set(got) == {want}
                # Calls made while a write commits: each sees the old or the new value,
                # and once the write has returned, only the new one.
                during = asyncio.gather(
                    *(store.meta_value(AUTH_GENERATION_KEY) for _ in range(20)))
                await store.write(bump_auth_generation)
                after = await store.read(auth_generation)
                assert set(await during) <= {want, after}
                assert await store.meta_value(AUTH_GENERATION_KEY) == after
        finally:
            await store.close()
