"""The one function that owns every request to the hub and to block URLs.

Session, timeouts, retries with bounded exponential backoff, failover between hubs,
and the translation of errors into the SDK's exceptions all happen here, exactly once.
Logs never include bodies, tokens or signed URLs' signatures.
"""

from __future__ import annotations

import asyncio
import io
import json as jsonlib
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import aiohttp.abc
import aiohttp.payload
import orjson
import yarl

from lucidlink._log import get_logger
from lucidlink.aio import rawget
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
_CONNECTION_ERRORS = (
    aiohttp.ClientConnectionError,
    asyncio.TimeoutError,
    aiohttp.ClientPayloadError,
)
_BLOCK_ROUTE = "/v1/blocks/"
_BODY_MAX = 64 * 1024 * 1024
"""The largest block answer accepted (the hub's largest block size)."""
_SEND_SLICE = 256 * 1024
_PLAIN = re.compile(r"[A-Za-z0-9_.~/-]*")
"""Query text that needs no escaping (most paths): sent as it is, without ``quote``."""


class BlockBody(aiohttp.payload.Payload):
    """A block's bytes as a request body, sent as slices of the caller's buffer.

    aiohttp's own forms copy a block before the socket does: raw bytes (one write,
    and a warning that it may stall the loop), or a BytesIO (copied out of the
    caller's buffer, then again in pieces). Slices of a memoryview are handed to the
    transport as they are, each followed by aiohttp's drain.
    """

    def __init__(self, value: bytes | bytearray | memoryview) -> None:
        view = memoryview(value).cast("B")
        super().__init__(view, content_type="application/octet-stream")
        self._view = view
        self._size = view.nbytes

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """The bytes as text (aiohttp's interface; not used for blocks)."""
        return bytes(self._view).decode(encoding, errors)

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        """The bytes (aiohttp's interface; not used for blocks)."""
        return bytes(self._view)

    async def write(self, writer: aiohttp.abc.AbstractStreamWriter) -> None:
        """Send every byte."""
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: aiohttp.abc.AbstractStreamWriter, content_length: int | None
    ) -> None:
        """Send the bytes (at most ``content_length``), a slice at a time."""
        view = self._view if content_length is None else self._view[:content_length]
        for start in range(0, len(view), _SEND_SLICE):
            await writer.write(view[start:start + _SEND_SLICE])


async def _envelope(resp: aiohttp.ClientResponse) -> Any:
    """The hub's JSON error envelope in ``resp``; ``None`` when it holds none (a proxy's page)."""
    try:
        raw = await resp.read()
    except aiohttp.ClientPayloadError:
        return None
    return _raw_envelope(raw)


class HubRing:
    """The hubs a daemon may talk to (hubs sharing one metadata store), and which is current.

    Every request goes to the current hub. When one fails to answer (refused, reset,
    timed out, or a proxy's 502/503/504), the ring moves on to the next hub, and after
    the last back to the first; requests that fail on a hub the ring already left do
    not move it again, so each switch happens, and is logged, once.
    """

    def __init__(self, urls: Sequence[str]) -> None:
        if not urls:
            raise ValueError("a HubRing needs at least one hub URL")
        self.urls: tuple[str, ...] = tuple(u.rstrip("/") for u in urls)
        self._current = 0

    @property
    def current(self) -> str:
        """The hub requests go to now."""
        return self.urls[self._current]

    def __len__(self) -> int:
        return len(self.urls)

    def failed(self, url: str, reason: str) -> str:
        """``url`` did not answer: move on from it if it is still current; the hub to use now."""
        if len(self.urls) > 1 and self.urls[self._current] == url:
            self._current = (self._current + 1) % len(self.urls)
            log.warning("lucidlink.hub_switch", failed=url, now=self.current, reason=reason)
        return self.current

    def owner(self, url: str) -> str | None:
        """The hub whose own block endpoint ``url`` is on, or ``None`` (S3, a proxy)."""
        for hub in self.urls:
            if url.startswith(hub + _BLOCK_ROUTE):
                return hub
        return None


class Transport:
    """HTTP to the hubs with one token, on the loop that created it.

    ``hubs`` is a :class:`HubRing` (a daemon shares one between its transports, so they
    agree on the current hub), or a hub URL, or several separated by commas.
    """

    def __init__(
        self,
        hubs: HubRing | str,
        token: str,
        *,
        timeout: float = 60.0,
        retries: int = 4,
        connections: int = 64,
    ) -> None:
        self._hubs = hubs if isinstance(hubs, HubRing) else HubRing(hubs.split(","))
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout)
        self._retries = retries
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        # Block GETs receive their body in place (see rawget); aiohttp after an answer
        # that client does not parse.
        self._raw: rawget.RawGet | None = rawget.RawGet(limit=_BODY_MAX, timeout=timeout)
        # The hub's JSON GETs (stat, list, file info) through the same small client:
        # aiohttp's request machinery cost the loop most of a stat's 300-400 µs.
        self._hub_raw: rawget.RawGet | None = rawget.RawGet(limit=_BODY_MAX, timeout=timeout)
        self._hub_slots = asyncio.Semaphore(connections)
        """At most ``connections`` raw GETs at once (the raw client keeps no limit, aiohttp's
        connector does)."""

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session, created on first use on the running loop."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._connections, limit_per_host=self._connections, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, auto_decompress=False
            )
        return self._session

    async def close(self) -> None:
        """Close connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        for raw in (self._raw, self._hub_raw):
            if raw is not None:
                raw.close()

    @property
    def hub_url(self) -> str:
        """The hub requests go to now (the current one of the daemon's hubs)."""
        return self._hubs.current

    @property
    def hubs(self) -> HubRing:
        """The hubs this transport may talk to."""
        return self._hubs

    async def _backoff(self, attempt: int) -> None:
        await asyncio.sleep(backoff_delay(attempt))

    async def _fail_over(self, hub: str, reason: str, tried: set[str], attempt: int) -> None:
        """``hub`` failed a request: move on; wait only once every hub has failed this request."""
        tried.add(hub)
        if self._hubs.failed(hub, reason) in tried:
            await self._backoff(attempt)

    def _unavailable(self, method: str, what: str, why: BaseException | str) -> HubUnavailableError:
        if len(self._hubs) == 1:
            where = f"the hub at {self._hubs.current} did not answer"
        else:
            where = f"none of the hubs {', '.join(self._hubs.urls)} answered"
        reason = why if isinstance(why, str) else f"{type(why).__name__}: {why}"
        return HubUnavailableError(
            f"{where} {method} {what} ({reason}); "
            "check that the hub runs and that hub_url / LUCIDLINK_HUB_URL points at it"
        )

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool | None = None,
        timeout: float | None = None,
        session_id: str | None = None,
        encoded: bytes | None = None,
    ) -> Any:
        """One JSON request to the hub; returns the decoded body or raises the mapped error.

        ``encoded`` is a body the caller already encoded as JSON (instead of ``json``):
        the write-back encodes its large commit bodies with orjson, whose output for
        their values (text, integers, booleans) is the standard library's.

        Connection failures and 502/503/504 are retried for idempotent requests (reads,
        and writes the hub makes idempotent by content addressing), on the next hub
        when there are several; a refused connection (nothing was sent) is retried for
        every request. Each failure moves the daemon's current hub on (see
        :class:`HubRing`); the backoff applies once every hub has failed the request.
        """
        if idempotent is None:
            idempotent = method in _IDEMPOTENT
        headers = {"Authorization": f"Bearer {self._token}"}
        if session_id:
            headers["X-Lucid-Session"] = session_id  # the daemon session a change is made under
        if encoded is not None:
            headers["Content-Type"] = "application/json"
        req_timeout = (
            aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout)
            if timeout
            else None
        )
        budget = self._retries + len(self._hubs) - 1
        tried: set[str] = set()
        attempt = 0
        # A plain GET (no body, the transport's own timeout) goes through the raw client.
        raw_query = _raw_query(params) if method == "GET" and json is None and not timeout else None
        while True:
            hub = self._hubs.current
            try:
                if raw_query is not None and self._hub_raw is not None:
                    try:
                        async with self._hub_slots:
                            answer = await self._hub_raw.get(hub + path + raw_query, headers)
                    except rawget.Unsupported as exc:
                        log.info("lucidlink.rawget_off", reason=str(exc), what="hub")
                        self._hub_raw = None  # this hub's answers need aiohttp: ask again
                        continue
                    status = answer.status
                    if 300 <= status < 400:  # a redirect (a proxy's): aiohttp follows those
                        raw_query = None
                        continue
                    if status in _RETRY_STATUS:
                        if idempotent and attempt < budget:
                            attempt += 1
                            await self._fail_over(hub, f"HTTP {status}", tried, attempt)
                            continue
                        body = _raw_envelope(answer.body)
                    else:
                        body = decode_json(answer.body) if answer.body else None
                else:
                    async with self.session.request(
                        method,
                        hub + path,
                        json=json,
                        data=_body(encoded),
                        params=params,
                        headers=headers,
                        timeout=req_timeout or self._timeout,
                    ) as resp:
                        status = resp.status
                        if status in _RETRY_STATUS:
                            if idempotent and attempt < budget:
                                attempt += 1
                                await self._fail_over(hub, f"HTTP {status}", tried, attempt)
                                continue
                            body = await _envelope(resp)
                        elif resp.content_length != 0:
                            raw = (await resp.read()).strip()
                            body = decode_json(raw) if raw else None
                        else:
                            body = None
            except _CONNECTION_ERRORS as exc:
                # A refused connection sent nothing: safe to retry whatever the request.
                if (
                    idempotent or isinstance(exc, aiohttp.ClientConnectorError)
                ) and attempt < budget:
                    attempt += 1
                    log.debug(
                        "lucidlink.retry",
                        method=method,
                        path=path,
                        attempt=attempt,
                        error=type(exc).__name__,
                    )
                    await self._fail_over(hub, type(exc).__name__, tried, attempt)
                    continue
                self._hubs.failed(hub, type(exc).__name__)
                raise self._unavailable(method, path, exc) from exc
            except ValueError as exc:  # a non-JSON body
                raise LucidLinkError(
                    f"the hub answered {method} {path} with a body that is not JSON"
                ) from exc
            # Raised outside the try: a hub error such as LockTimeoutError is a
            # TimeoutError too and must not be mistaken for a transport timeout.
            if status in _RETRY_STATUS:
                self._hubs.failed(hub, f"HTTP {status}")
                if body is None:  # not the hub's own answer: a proxy's page (transient)
                    raise self._unavailable(method, path, f"HTTP {status} from a proxy")
            if status >= 400:
                raise error_from_envelope(status, body)
            return body

    async def get_bytes(self, url: str, *, headers: dict[str, str] | None = None) -> bytes:
        """GET a block URL; retries transient failures; raises :class:`SignedUrlError` on 403."""
        data = await self._transfer("GET", url, None, headers or {}, _RETRY_STATUS)
        return data if isinstance(data, bytes) else bytes(data)

    async def get_block(self, url: str, into: memoryview | None = None,
                        ) -> bytes | bytearray | memoryview:
        """GET a whole block like :meth:`get_bytes`, without a copy of its body.

        The body is received in place into one buffer, handed over as it is (usually a
        ``bytearray``, which the caller then owns: it must not give it out mutable).
        With ``into``, a body of exactly ``len(into)`` bytes is received into it and
        ``into`` itself is returned; any other answer comes in a buffer of its own.
        """
        return await self._transfer("GET", url, None, {}, _RETRY_STATUS, into=into)

    async def put_bytes(
        self, url: str, data: bytes | memoryview, *, retries: int | None = None
    ) -> None:
        """PUT a block on a signed URL (idempotent: blocks are content-addressed: 500 is retried).

        ``retries`` overrides the transport's count (0: one attempt, for best-effort
        uploads that something else retries).
        """
        await self._transfer(
            "PUT",
            url,
            data,
            {"Content-Type": "application/octet-stream"},
            _RETRY_STATUS | {500},
            retries,
        )

    async def _transfer(
        self,
        method: str,
        url: str,
        data: bytes | memoryview | None,
        headers: dict[str, str],
        retry_status: set[int],
        retries: int | None = None,
        into: memoryview | None = None,
    ) -> bytes | bytearray | memoryview:
        """One block transfer on a signed URL, with bounded retries; the body on success.

        A URL on one of the daemon's hubs' own block endpoint goes to the current hub
        instead (hubs sharing a metadata store share the signing key), so URLs a hub
        handed out before it died still work through the others.
        """
        retries = self._retries if retries is None else retries
        owner = self._hubs.owner(url)
        if owner is not None:
            retries += len(self._hubs) - 1
        tried: set[str] = set()
        attempt = 0
        while True:
            hub = self._hubs.current if owner is not None else None
            target = hub + url[len(owner) :] if hub is not None and owner is not None else url
            try:
                if data is None and self._raw is not None:
                    try:
                        answer = await self._raw.get(target, headers, into)
                    except rawget.Unsupported as exc:
                        log.info("lucidlink.rawget_off", reason=str(exc))
                        self._raw = None  # this store's answers need aiohttp: ask again
                        continue
                    if answer.status in (200, 206):
                        return answer.body
                    if answer.status in retry_status and attempt < retries:
                        attempt += 1
                        await self._after_block_failure(
                            hub, f"HTTP {answer.status}", tried, attempt)
                        continue
                    raise _answer_error(answer.status, bytes(answer.body))
                body = BlockBody(data) if data is not None else None
                async with self.session.request(
                    method, yarl.URL(target, encoded=True), data=body, headers=headers
                ) as resp:
                    if resp.status in (200, 201, 204, 206):
                        return await resp.read()
                    if resp.status in retry_status and attempt < retries:
                        attempt += 1
                        await self._after_block_failure(hub, f"HTTP {resp.status}", tried, attempt)
                        continue
                    error = await self._block_error(resp)
            except _CONNECTION_ERRORS as exc:
                if attempt < retries:
                    attempt += 1
                    await self._after_block_failure(hub, type(exc).__name__, tried, attempt)
                    continue
                kind = "download" if method == "GET" else "upload"
                raise HubUnavailableError(
                    f"block {kind} failed after {attempt} retries: {type(exc).__name__}"
                ) from exc
            raise error

    async def _after_block_failure(
        self, hub: str | None, reason: str, tried: set[str], attempt: int
    ) -> None:
        if hub is None:
            await self._backoff(attempt)
        else:
            await self._fail_over(hub, reason, tried, attempt)

    @staticmethod
    async def _block_error(resp: aiohttp.ClientResponse) -> LucidLinkError:
        return _answer_error(resp.status, await resp.read())


def _body(encoded: bytes | None) -> Any:
    """An encoded body for one attempt (a fresh stream each time: a retry sends it all
    again); over 1 MiB as a stream, which aiohttp sends without warning."""
    if encoded is None or len(encoded) <= _BYTES_BODY_MAX:
        return encoded
    return io.BytesIO(encoded)


_BYTES_BODY_MAX = 1 << 20
"""The largest body aiohttp takes as bytes without a warning."""


def _raw_query(params: dict[str, Any] | None) -> str | None:
    """``params`` as a URL query (``""`` for none); ``None`` when a value is not a string
    (left to aiohttp's encoding)."""
    if not params:
        return ""
    parts = []
    for key, value in params.items():
        if not isinstance(value, str):
            return None
        if _PLAIN.fullmatch(value) is None:
            try:
                value = quote(value, safe="/")
            except UnicodeEncodeError:  # a lone surrogate: aiohttp decides what to do
                return None
        try:
            parts.append(f"{quote(key, safe='')}={value}")
        except UnicodeEncodeError:  # a lone surrogate: aiohttp decides what to do
            return None
    return "?" + "&".join(parts)


def decode_json(raw: bytes | bytearray | memoryview) -> Any:
    """A JSON answer's value: orjson (a 1,000-entry listing in a third of the standard
    library's time), or the standard library for what orjson refuses (an integer
    beyond 64 bits), whose errors (``ValueError``) are the ones raised."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return jsonlib.loads(bytes(raw))


def _raw_envelope(raw: bytes | bytearray | memoryview) -> Any:
    """The hub's JSON error envelope in an answer's bytes; ``None`` when it holds none."""
    try:
        body = decode_json(raw) if raw else None
    except ValueError:
        return None
    return body if isinstance(body, dict) and isinstance(body.get("error"), dict) else None


def _answer_error(status: int, raw: bytes) -> LucidLinkError:
    """The error a block store's failed answer means (the hub's envelope, or its status)."""
    try:
        body = decode_json(raw) if raw else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        if status == 403:
            return SignedUrlError("the block store refused the signed URL (HTTP 403)")
        return LucidLinkError(f"the block store answered HTTP {status}", status=status)
    return error_from_envelope(status, body)
