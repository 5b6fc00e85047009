"""A minimal raw HTTP client fixture for hub tests (no SDK involved)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio


class RawHub:
    """Sends requests to a hub and returns ``(status, json)``."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.session = session
        self.url = url
        self.token = token

    def headers(self, token: str | None = None) -> dict[str, str]:
        """Authorization header for ``token`` (default: the admin token)."""
        return {"Authorization": f"Bearer {token or self.token}"}

    async def call(self, method: str, path: str, *, json: Any = None, data: Any = None,
                   token: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """One request; the body decoded as JSON when it is JSON."""
        hdrs = {**self.headers(token), **(headers or {})}
        async with self.session.request(method, self.url + path, json=json, data=data, headers=hdrs) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.read()

    async def filespace_id(self, name: str = "data", token: str | None = None) -> str:
        """The id of a filespace by name."""
        status, body = await self.call("GET", "/v1/filespaces", token=token)
        assert status == 200, body
        return next(f["id"] for f in body["filespaces"] if f["name"] == name)


@pytest_asyncio.fixture
async def raw(hub: Any) -> AsyncIterator[RawHub]:
    """A raw HTTP client for the ``hub`` fixture's hub."""
    async with aiohttp.ClientSession() as session:
        yield RawHub(session, hub.url, hub.token)
