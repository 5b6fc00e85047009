"""A small S3 client for Connect: presigned URLs for a bucket, and HEAD requests over aiohttp.

Only the hub holds a data store's credentials. It uses them for two things:

* **presigned URLs** (SigV4 query-string authentication, ``UNSIGNED-PAYLOAD``, only
  the ``host`` header signed), which clients then use for ranged GETs straight from
  the store;
* **HEAD requests** it makes itself: HeadBucket when a store is added or rekeyed (is it
  reachable, does the bucket exist, are the credentials good?) and HeadObject when a
  file is linked without a size.

Signing is :mod:`lucidlink.hub.s3.sigv4`'s. URLs are returned already encoded; send them
as they are (``yarl.URL(url, encoded=True)``). ``endpoint=""`` means AWS
(``https://s3.<region>.amazonaws.com``); path-style addressing (``/<bucket>/<key>``) unless ``virtual`` (``<bucket>.<host>``).
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import re
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

import aiohttp
import attrs
import yarl

from lucidlink.exceptions import (
    AccessDeniedError,
    ConfigurationError,
    HubUnavailableError,
    NotFoundError,
)
from lucidlink.hub.s3 import sigv4
from lucidlink.hub.s3.errors import error_code
from lucidlink.hub.s3.sigv4 import DEFAULT_REGION
from lucidlink.hub.s3.sigv4 import MAX_EXPIRES as MAX_EXPIRES  # a presigned URL's longest life
from lucidlink.shared import normalize_etag

HEAD_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10, sock_read=20)


@attrs.frozen(repr=False)
class S3Target:
    """A bucket and the credentials to reach it."""

    bucket: str
    access_key: str
    secret_key: str
    region: str = ""
    endpoint: str = ""
    virtual: bool = False

    def __repr__(self) -> str:
        return f"S3Target(bucket={self.bucket!r}, endpoint={self.where!r}, access_key={self.access_key!r})"

    @property
    def signing_region(self) -> str:
        """The region in the credential scope (``us-east-1`` when an endpoint is given without one)."""
        return self.region or DEFAULT_REGION

    @property
    def where(self) -> str:
        """The endpoint, for messages."""
        return self.endpoint or f"https://s3.{self.region}.amazonaws.com"

    def _scheme_host(self) -> tuple[str, str]:
        parts = urlsplit(self.where)
        host = (parts.hostname or "").lower()
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        port = parts.port
        if port is not None and not ((parts.scheme == "http" and port == 80) or
                                     (parts.scheme == "https" and port == 443)):
            host = f"{host}:{port}"
        return parts.scheme, host

    def location(self, key: str) -> tuple[str, str, str]:
        """``(scheme, host, canonical URI)`` of an object (``key=""``: the bucket)."""
        scheme, host = self._scheme_host()
        encoded = quote(key, safe="-_.~/")
        if self.virtual:
            return scheme, f"{self.bucket}.{host}", "/" + encoded
        return scheme, host, f"/{self.bucket}" + (f"/{encoded}" if key else "")


def presign(target: S3Target, method: str, key: str, expires: int, *,
            params: Mapping[str, str] | None = None, now: datetime.datetime | None = None) -> str:
    """A presigned URL for ``method`` on object ``key`` (``""``: the bucket), valid ``expires`` seconds."""
    scheme, host, uri = target.location(key)
    return sigv4.presign(method, f"{scheme}://{host}{uri}", region=target.signing_region,
                         access_key=target.access_key, secret_key=target.secret_key,
                         expires=expires, params=params, now=now)


_ETAG_RE = re.compile(r"[0-9a-f]{32}(-[0-9]{1,5})?")


def looks_like_etag(value: str) -> bool:
    """Whether a caller's checksum has the form of an S3 ETag (MD5 hex, or ``<hex>-<parts>``)."""
    return bool(_ETAG_RE.fullmatch(normalize_etag(value) or ""))


@attrs.frozen
class ObjectInfo:
    """What HeadObject says about an object."""

    size: int
    etag: str | None
    mtime: int | None
    """Last-Modified, nanoseconds since the epoch."""


def _parse_http_date(value: str | None) -> int | None:
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return int(when.timestamp()) * 1_000_000_000


def session() -> aiohttp.ClientSession:
    """A client session for a batch of S3 requests (the caller closes it)."""
    return aiohttp.ClientSession(timeout=HEAD_TIMEOUT, auto_decompress=False)


async def _request(http: aiohttp.ClientSession, method: str, url: str) -> tuple[int, Mapping[str, str], bytes]:
    async with http.request(method, yarl.URL(url, encoded=True), allow_redirects=False) as resp:
        body = await resp.read() if method != "HEAD" else b""
        return resp.status, resp.headers, body[:65536]


def _unreachable(target: S3Target, exc: BaseException) -> str:
    return f"the data store endpoint {target.where} is not reachable ({type(exc).__name__}: {exc})"


async def check_bucket(http: aiohttp.ClientSession, target: S3Target) -> None:
    """HeadBucket: the store answers, the bucket exists and the credentials may use it.

    Raises ``ConfigurationError`` whose ``details.field`` names the setting to fix and
    ``details.reason`` says what is wrong: ``unreachable``, ``bucket_not_found``,
    ``invalid_access_key``, ``signature_mismatch``, ``access_denied``, ``wrong_region``
    or ``bad_response``.
    """
    try:
        status, headers, _ = await _request(http, "HEAD", presign(target, "HEAD", "", 300))
        if status == 200:
            return
        body = b""
        if status in (301, 400, 403):
            # HEAD answers carry no body: ask again with a GET (ListObjectsV2 of nothing) to
            # learn the store's error code.
            url = presign(target, "GET", "", 300, params={"list-type": "2", "max-keys": "0"})
            status2, headers2, body = await _request(http, "GET", url)
            if status2 == 200:
                return
            headers = {**headers2, **headers}
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise ConfigurationError(
            _unreachable(target, exc) + "; check the endpoint (scheme, host and port) and that the store runs",
            field="endpoint", reason="unreachable",
        ) from None
    code = error_code(body)
    bucket = target.bucket
    if status == 404 or code == "NoSuchBucket":
        raise ConfigurationError(
            f"the bucket {bucket!r} does not exist at {target.where}; create it first or fix bucket_name",
            field="bucket_name", reason="bucket_not_found",
        )
    actual_region = headers.get("x-amz-bucket-region")
    if status in (301, 400) and (actual_region or code in ("PermanentRedirect", "AuthorizationHeaderMalformed")):
        where = f" (the bucket is in {actual_region})" if actual_region else ""
        raise ConfigurationError(
            f"the bucket {bucket!r} is not in region {target.signing_region!r}{where}; fix region",
            field="region", reason="wrong_region",
        )
    if code == "InvalidAccessKeyId":
        raise ConfigurationError(
            f"the store at {target.where} does not know the access key {target.access_key!r}; fix access_key",
            field="access_key", reason="invalid_access_key",
        )
    if code == "SignatureDoesNotMatch":
        raise ConfigurationError(
            f"the store at {target.where} refused the secret key of access key {target.access_key!r} (the "
            "signature does not match); fix secret_key",
            field="secret_key", reason="signature_mismatch",
        )
    if status == 403:
        raise ConfigurationError(
            f"the store at {target.where} refused access to bucket {bucket!r} with access key "
            f"{target.access_key!r} ({code or 'HTTP 403'}); check the credentials and the key's permissions",
            field="access_key", reason="access_denied",
        )
    raise ConfigurationError(
        f"the store at {target.where} answered HTTP {status}{f' ({code})' if code else ''} for bucket {bucket!r}; "
        "check the endpoint and region",
        field="endpoint", reason="bad_response",
    )


async def head_object(http: aiohttp.ClientSession, target: S3Target, key: str, store_name: str) -> ObjectInfo:
    """HeadObject: the object's size, ETag and modification time."""
    try:
        status, headers, _ = await _request(http, "HEAD", presign(target, "HEAD", key, 300))
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise HubUnavailableError(
            _unreachable(target, exc) + f"; linking {key!r} from data store {store_name!r} failed, retry later"
        ) from None
    if status == 200:
        length = headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise HubUnavailableError(
                f"the data store {store_name!r} answered HeadObject for {key!r} without a size; pass size= "
                "and checksum= to link it"
            )
        return ObjectInfo(int(length), normalize_etag(headers.get("ETag")), _parse_http_date(headers.get("Last-Modified")))
    if status == 404:
        raise NotFoundError(
            f"the object {key!r} does not exist in bucket {target.bucket!r} of data store {store_name!r}; "
            "check object_id (S3 keys are case-sensitive)",
            reason="object_not_found", store=store_name, object_id=key,
        )
    if status == 403:
        raise AccessDeniedError(
            f"the data store {store_name!r} refused HeadObject on {key!r} (HTTP 403): its credentials may not "
            "read the object (or it is missing and they may not list the bucket); rekey the store or fix "
            "the key's permissions",
            reason="store_access_denied",
        )
    raise HubUnavailableError(
        f"the data store {store_name!r} answered HTTP {status} to HeadObject on {key!r}; retry later"
    )

