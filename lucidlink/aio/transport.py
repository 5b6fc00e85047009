"""The one function that owns every request to the hub and to block URLs.

Session, timeouts, retries with bounded exponential backoff, and the translation of
errors into the SDK's exceptions all happen here, exactly once. Logs never include
bodies, tokens or signed URLs' signatures.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp
import yarl

from lucidlink._log import get_logger
from lucidlink.aio.retry import backoff_delay
from lucidlink.exceptions import (
    HubUnavailableError,
    LucidLinkError,
    SignedUrlError,
    error_from_envelope,
)

log = get_logger("lucidlink")

_RETRY_STATUS = {502, 503, 504}
_IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE"}


class Transport:
    """HTTP to one hub with one token, on the loop that created it."""

    def __init__(self, hub_url: str, token: str, *, timeout: float = 60.0, retries: int = 4,
                 connections: int = 64) -> None:
        self.hub_url = hub_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout)
        self._retries = retries
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session, created on first use on the running loop."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=self._connections,
                                             ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout,
                                                  auto_decompress=False)
        return self._session

    async def close(self) -> None:
        """Close connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _backoff(self, attempt: int) -> None:
        await asyncio.sleep(backoff_delay(attempt))

    async def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                   idempotent: bool | None = None, timeout: float | None = None,
                   session_id: str | None = None) -> Any:
        """One JSON request to the hub; returns the decoded body or raises the mapped error.

        Connection failures and 502/503/504 are retried for idempotent requests (reads,
        and writes the hub makes idempotent by content addressing).
        """
        if idempotent is None:
            idempotent = method in _IDEMPOTENT
        headers = {"Authorization": f"Bearer {self._token}"}
        if session_id:
            headers["X-Lucid-Session"] = session_id  # the daemon session a change is made under
        url = self.hub_url + path
        req_timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout) if timeout else None
        attempt = 0
        while True:
            try:
                async with self.session.request(method, url, json=json, params=params, headers=headers,
                                                timeout=req_timeout or self._timeout) as resp:
                    if resp.status in _RETRY_STATUS and idempotent and attempt < self._retries:
                        attempt += 1
                        await self._backoff(attempt)
                        continue
                    body = await resp.json(content_type=None) if resp.content_length != 0 else None
                    status = resp.status
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError, aiohttp.ClientPayloadError) as exc:
                if idempotent and attempt < self._retries:
                    attempt += 1
                    log.debug("lucidlink.retry", method=method, path=path, attempt=attempt, error=type(exc).__name__)
                    await self._backoff(attempt)
                    continue
                raise HubUnavailableError(
                    f"the hub at {self.hub_url} did not answer {method} {path} ({type(exc).__name__}: {exc}); "
                    "check that it runs and that hub_url / LUCIDLINK_HUB_URL points at it"
                ) from exc
            except ValueError as exc:  # a non-JSON body
                raise LucidLinkError(f"the hub answered {method} {path} with a body that is not JSON") from exc
            # Raised outside the try: a hub error such as LockTimeoutError is a
            # TimeoutError too and must not be mistaken for a transport timeout.
            if status >= 400:
                raise error_from_envelope(status, body)
            return body

    async def get_bytes(self, url: str, *, headers: dict[str, str] | None = None) -> bytes:
        """GET a block URL; retries transient failures; raises :class:`SignedUrlError` on 403."""
        return await self._transfer("GET", url, None, headers or {}, _RETRY_STATUS)

    async def put_bytes(self, url: str, data: bytes | memoryview, *, retries: int | None = None) -> None:
        """PUT a block on a signed URL (idempotent: blocks are content-addressed, so 500 is retried).

        ``retries`` overrides the transport's count (0: one attempt, for best-effort
        uploads that something else retries).
        """
        # A file-like body: aiohttp streams it in chunks (raw bytes this large make it
        # warn that the event loop may stall while it writes them).
        await self._transfer("PUT", url, data, {"Content-Type": "application/octet-stream"},
                             _RETRY_STATUS | {500}, retries)

    async def _transfer(self, method: str, url: str, data: bytes | memoryview | None,
                        headers: dict[str, str], retry_status: set[int], retries: int | None = None) -> bytes:
        """One block transfer on a signed URL, with bounded retries; the body on success."""
        retries = self._retries if retries is None else retries
        attempt = 0
        while True:
            try:
                body = io.BytesIO(data) if data is not None else None
                async with self.session.request(method, yarl.URL(url, encoded=True), data=body,
                                                headers=headers) as resp:
                    if resp.status in (200, 201, 204, 206):
                        return await resp.read()
                    if resp.status in retry_status and attempt < retries:
                        attempt += 1
                        await self._backoff(attempt)
                        continue
                    error = await self._block_error(resp)
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError, aiohttp.ClientPayloadError) as exc:
                if attempt < retries:
                    attempt += 1
                    await self._backoff(attempt)
                    continue
                raise HubUnavailableError(
                    f"block {'download' if method == 'GET' else 'upload'} failed after {attempt} retries: "
                    f"{type(exc).__name__}"
                ) from exc
            raise error

    @staticmethod
    async def _block_error(resp: aiohttp.ClientResponse) -> LucidLinkError:
        try:
            body = await resp.json(content_type=None)
        except ValueError:
            body = None
        if body is None:
            if resp.status == 403:
                return SignedUrlError("the block store refused the signed URL (HTTP 403)")
            return LucidLinkError(f"the block store answered HTTP {resp.status}")
        return error_from_envelope(resp.status, body)
