"""The S3 block store: blocks as objects ``<prefix>/<filespace-id>/<sha256>`` in one bucket.

For the scale-out deployment (DESIGN §1): several hubs share one bucket of an
S3-compatible store (AWS S3, MinIO, SeaweedFS, Ceph, R2) and clients move bytes to and
from it directly, on URLs the hub presigns. The hub serves no blocks itself
(``serves_blocks = False``).

Invariants, and why the module is built the way it is:

* **The store checks the hash of an upload.** A presigned PUT is signed together with
  the header ``x-amz-checksum-sha256`` (base64 of the raw SHA-256 that names the
  block): the client must send it with exactly that value (else 403), and a store that
  implements S3 checksums refuses other bytes (400 ``BadDigest``) and keeps the
  checksum with the object. AWS S3 reads the checksum only from a header, never from
  the query string, so it cannot be folded into the URL alone.
* **The hub verifies before it trusts.** :meth:`S3BlockStore.verify` is what may make
  an uploaded block ``live``: a HEAD in checksum mode must show the expected length and
  checksum. On a store that keeps no checksum the bytes are read and hashed instead:
  such a store is slower to verify, never wrong.
* **Two signers, one key layout.** obstore (Rust ``object_store``) makes the hub's
  object requests (get, put, head, bulk delete) and signs download URLs. Its signer
  signs only ``host`` and takes no headers, so what needs a signed header (upload URLs,
  the checksum HEAD of ``verify``) and the bucket calls obstore lacks (HeadBucket,
  CreateBucket) are presigned by :func:`lucidlink.hub.s3.sigv4.presign` and sent with
  aiohttp. Both take
  their endpoint and addressing from :class:`S3Settings` (a test checks they agree).
* **Configuration is explicit.** obstore also reads the process's ``AWS_*`` variables
  for whatever it is not given; what would make it disagree with the presigner
  (endpoint, credentials, session token, ``skip_signature``) is always passed, so
  :meth:`S3Settings.from_url` is the one source of truth. Credentials are static (access
  key, secret, optional session token), because both signers need the same ones.
* Nothing blocks the event loop: obstore's coroutines run on its own runtime, large
  buffers are hashed in a thread, and presigning is pure computation (15-25 µs a URL).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio.to_thread
import structlog
import yarl

from lucidlink.exceptions import (
    BadRequestError,
    ConfigurationError,
    HubUnavailableError,
    IntegrityError,
    PathNotFoundError,
)
from lucidlink.hub.blockstore.base import BlockStore, PresignedRequest
from lucidlink.hub.blockstore.s3_settings import S3Settings
from lucidlink.hub.identifiers import HASH_RE, ID_RE
from lucidlink.hub.s3.errors import error_code
from lucidlink.hub.s3.sigv4 import DEFAULT_REGION, MAX_EXPIRES, presign

try:
    import obstore
    import obstore.exceptions
    from obstore.store import S3Store
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("the S3 block store needs obstore: pip install 'lucidlink[s3]'") from exc

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Credential

log = structlog.get_logger("lucidlink.hub")

CHECKSUM_HEADER = "x-amz-checksum-sha256"
"""The header a client sends with a presigned block upload (its value: :func:`checksum_of`)."""

_HTTP_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)
_HASH_IN_THREAD = 256 * 1024
_CHECKSUM_MISMATCH = ("BadDigest", "XAmzContentChecksumMismatch", "InvalidDigest")
"""Error codes of a store refusing bytes that do not match their checksum header."""


def checksum_of(digest: str) -> str:
    """The ``x-amz-checksum-sha256`` value of a block: base64 of its raw SHA-256."""
    return base64.b64encode(bytes.fromhex(digest)).decode("ascii")


async def _sha256_hex(data: bytes) -> str:
    if len(data) >= _HASH_IN_THREAD:
        return await anyio.to_thread.run_sync(lambda: hashlib.sha256(data).hexdigest())
    return hashlib.sha256(data).hexdigest()


# -- the store ---------------------------------------------------------------------------

# S3 error code -> (reason, the setting to fix, what to tell the operator).
_BUCKET_ERRORS: dict[str, tuple[str, str, str]] = {
    "InvalidAccessKeyId": (
        "invalid_access_key", "access_key",
        "the store does not know access key {key}; fix AWS_ACCESS_KEY_ID"),
    "SignatureDoesNotMatch": (
        "signature_mismatch", "secret_key",
        "the store refused the secret key of access key {key} (the signature does not match); "
        "fix AWS_SECRET_ACCESS_KEY"),
    "AuthorizationHeaderMalformed": (
        "wrong_region", "region", "the bucket is not in region {region}; fix AWS_REGION"),
    "PermanentRedirect": (
        "wrong_region", "region", "the bucket is not in region {region}; fix AWS_REGION"),
    "AccessDenied": (
        "access_denied", "access_key",
        "access key {key} may not use the bucket; grant it s3:ListBucket, s3:GetObject, "
        "s3:PutObject and s3:DeleteObject"),
}


def _brief(exc: BaseException) -> str:
    """An error's first line, short: obstore's messages run to a page of debug output."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"


def _ttl(ttl: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=max(1, min(int(ttl), MAX_EXPIRES)))


class S3BlockStore(BlockStore):
    """Blocks as objects ``<prefix>/<filespace-id>/<sha256>`` in an S3-compatible bucket.

    ``create_bucket``: :meth:`open` creates a missing bucket (else it refuses to start).
    """

    engine = "s3"
    serves_blocks = False

    def __init__(self, settings: S3Settings, *, create_bucket: bool = True) -> None:
        settings.validate()
        self.settings = settings
        self.create_bucket = create_bucket
        self.enforces_checksums: bool | None = None
        """Whether the store refused a mismatched upload when :meth:`open` tried one."""
        self._http: aiohttp.ClientSession | None = None
        credential: S3Credential = {
            "access_key_id": settings.access_key, "secret_access_key": settings.secret_key,
            "token": settings.session_token, "expires_at": None,
        }
        client: ClientConfig = {
            "allow_http": settings.allow_http, "timeout": datetime.timedelta(seconds=120),
            "connect_timeout": datetime.timedelta(seconds=10),
        }
        # obstore retries for up to 3 minutes by default; a hub request should fail
        # sooner and let its client retry.
        retry: RetryConfig = {"max_retries": 3, "retry_timeout": datetime.timedelta(seconds=30)}
        service = settings.service_url()
        self._store = S3Store(
            settings.bucket,
            prefix=settings.prefix or None,
            endpoint=service,
            aws_endpoint_url_s3=service,  # else AWS_ENDPOINT_URL_S3 of the process wins
            region=settings.region,
            virtual_hosted_style_request=not settings.path_style,
            skip_signature=False,
            checksum_algorithm="SHA256",
            # A provider rather than access_key_id=...: obstore would add an
            # AWS_SESSION_TOKEN of the process environment to static keys.
            credential_provider=lambda: credential,
            client_options=client,
            retry_config=retry,
        )

    @classmethod
    def from_url(cls, url: str, environ: Mapping[str, str] = os.environ, *,
                 create_bucket: bool = True, **overrides: Any) -> S3BlockStore:
        """A store for ``s3://BUCKET[/PREFIX]``; :meth:`S3Settings.from_url` says the rest."""
        return cls(S3Settings.from_url(url, environ, **overrides), create_bucket=create_bucket)

    def __repr__(self) -> str:
        return f"S3BlockStore({self.settings!r})"

    # -- keys and URLs ------------------------------------------------------------------

    def path(self, filespace_id: str, digest: str) -> str:
        """A block's key below the prefix, as obstore takes it: ``<filespace-id>/<sha256>``.

        Both parts are checked, so no name can reach outside its filespace's keys.
        """
        if not ID_RE.fullmatch(filespace_id):
            raise BadRequestError(f"{filespace_id[:40]!r} is not a filespace id")
        if not HASH_RE.fullmatch(digest):
            raise BadRequestError(f"{digest[:80]!r} is not a SHA-256 hex digest")
        return f"{filespace_id}/{digest}"

    def key(self, filespace_id: str, digest: str) -> str:
        """A block's object key: ``<prefix>/<filespace-id>/<sha256>``."""
        return self._key(self.path(filespace_id, digest))

    def _key(self, path: str) -> str:
        return f"{self.settings.prefix}/{path}" if self.settings.prefix else path

    def _presign(self, method: str, key: str, ttl: float, *,
                 headers: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None,
                 now: datetime.datetime | None = None) -> str:
        s = self.settings
        return presign(method, s.object_url(key), region=s.region, access_key=s.access_key,
                       secret_key=s.secret_key, session_token=s.session_token, expires=ttl,
                       headers=headers, params=params, now=now)

    def upload_request(self, filespace_id: str, digest: str, ttl: float, *,
                       now: datetime.datetime | None = None) -> PresignedRequest:
        """A presigned PUT of one block, with the checksum header the client must send."""
        headers = {CHECKSUM_HEADER: checksum_of(digest)}
        url = self._presign("PUT", self.key(filespace_id, digest), ttl, headers=headers, now=now)
        return PresignedRequest(url, headers)

    def signed_url(self, base_url: str, filespace_id: str, digest: str, op: str,
                   ttl: float) -> str:
        """A presigned GET (op ``get``) or PUT (op ``put``) URL; ``base_url`` is not used.

        A PUT must carry ``x-amz-checksum-sha256: checksum_of(digest)``: prefer
        :meth:`sign_urls`, whose answer says so.
        """
        if op == "get":
            return obstore.sign(self._store, "GET", self.path(filespace_id, digest), _ttl(ttl))
        if op == "put":
            return self.upload_request(filespace_id, digest, ttl).url
        raise BadRequestError(f"'op' must be 'get' or 'put', not {op!r}")

    async def sign_urls(self, base_url: str, filespace_id: str, digests: Sequence[str], op: str,
                        ttl: float) -> dict[str, PresignedRequest]:
        """Presigned requests for a batch of blocks of one filespace, by digest.

        The batch form of :meth:`signed_url` (``base_url`` is not used either), with
        the headers each request must carry.
        """
        if op == "get":
            paths = [self.path(filespace_id, d) for d in digests]
            if not paths:
                return {}
            urls = await obstore.sign_async(self._store, "GET", paths, _ttl(ttl))
            return {d: PresignedRequest(u) for d, u in zip(digests, urls, strict=True)}
        if op == "put":
            return {d: self.upload_request(filespace_id, d, ttl) for d in digests}
        raise BadRequestError(f"'op' must be 'get' or 'put', not {op!r}")

    # -- life cycle ---------------------------------------------------------------------

    async def open(self) -> None:
        """Check the bucket (create it if missing and allowed) and that the hub may write there.

        Also learns whether the store enforces upload checksums, by trying a mismatched
        one (logged as ``checksums``). Raises ``ConfigurationError`` naming the bucket,
        the endpoint and the setting to fix.
        """
        try:
            await self._check_bucket()
            await self._probe()
        except BaseException:
            await self.close()
            raise
        s = self.settings
        checksums = "enforced" if self.enforces_checksums else "not enforced: verified by reading"
        log.info("hub.blocks.s3.open", url=s.url, endpoint=s.where, region=s.region,
                 path_style=s.path_style, checksums=checksums)

    async def close(self) -> None:
        """Close the hub's own HTTP session (obstore's connections go with the store)."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=_HTTP_TIMEOUT, auto_decompress=False)
        return self._http

    async def _send(self, method: str, url: str, headers: Mapping[str, str] | None = None,
                    data: bytes | None = None) -> tuple[int, Mapping[str, str], bytes]:
        """One request on a presigned URL: status, headers and the body's first 64 KiB."""
        async with self._session().request(method, yarl.URL(url, encoded=True), data=data,
                                           headers=dict(headers or {}),
                                           allow_redirects=False) as resp:
            body = await resp.read() if method != "HEAD" else b""
            return resp.status, resp.headers, body[:65536]

    def _unreachable(self, exc: BaseException) -> ConfigurationError:
        return ConfigurationError(
            f"the block store endpoint {self.settings.where} is not reachable ({_brief(exc)}); "
            "check AWS_ENDPOINT_URL (scheme, host and port) and that the store runs",
            field="endpoint", reason="unreachable")

    async def _check_bucket(self) -> None:
        s = self.settings
        try:
            status, headers, _ = await self._send("HEAD", self._presign("HEAD", "", 300))
            if status == 200:
                return
            code = "NoSuchBucket" if status == 404 else ""
            if not code:
                # HEAD answers carry no body: ask again with a GET to learn the error code.
                listing = {"list-type": "2", "max-keys": "0"}
                status, more, body = await self._send(
                    "GET", self._presign("GET", "", 300, params=listing))
                if status == 200:
                    return
                code = error_code(body)
                headers = more if "x-amz-bucket-region" in more else headers
            if code == "NoSuchBucket":
                await self._create_missing_bucket()
                return
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise self._unreachable(exc) from None
        reason, field, hint = _BUCKET_ERRORS.get(
            code, ("bad_response", "endpoint", "check the endpoint, region and credentials"))
        actual = headers.get("x-amz-bucket-region")
        if status == 301 or (actual and actual != s.region):
            reason, field, hint = _BUCKET_ERRORS["PermanentRedirect"]
        advice = hint.format(key=repr(s.access_key), region=repr(s.region))
        if actual and reason == "wrong_region":
            advice += f" (the bucket is in {actual})"
        raise ConfigurationError(
            f"the block store {s.url} at {s.where} answered HTTP {status}"
            f"{f' ({code})' if code else ''}: {advice}", field=field, reason=reason)

    async def _create_missing_bucket(self) -> None:
        s = self.settings
        if not self.create_bucket:
            raise ConfigurationError(
                f"the bucket {s.bucket!r} does not exist at {s.where}; create it, or let the hub "
                "create it (create_bucket) with credentials that may", field="bucket",
                reason="bucket_not_found")
        body = None
        if s.region not in (DEFAULT_REGION, "auto"):
            body = ('<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    f"<LocationConstraint>{s.region}</LocationConstraint></CreateBucketConfiguration>"
                    ).encode()
        status, _, answer = await self._send("PUT", self._presign("PUT", "", 300), data=body)
        code = error_code(answer)
        if status == 200 or code == "BucketAlreadyOwnedByYou":
            log.info("hub.blocks.s3.bucket_created", bucket=s.bucket, endpoint=s.where)
            return
        taken = "; that name belongs to another account: choose another" \
            if code == "BucketAlreadyExists" else ""
        raise ConfigurationError(
            f"the bucket {s.bucket!r} does not exist at {s.where} and the hub could not create it "
            f"(HTTP {status}{f' {code}' if code else ''}){taken}; create it, or allow access key "
            f"{s.access_key!r} to (s3:CreateBucket)", field="bucket", reason="bucket_not_creatable")

    async def _probe(self) -> None:
        """Upload a probe object and delete it: with a wrong checksum, then through obstore."""
        s = self.settings
        probe = f".lucidlink-probe-{uuid.uuid4().hex}"
        wrong = {CHECKSUM_HEADER: checksum_of(hashlib.sha256(b"other bytes").hexdigest())}
        try:
            status, _, body = await self._send(
                "PUT", self._presign("PUT", self._key(probe), 300, headers=wrong), wrong, b"probe")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise self._unreachable(exc) from None
        code = error_code(body)
        failed = f"HTTP {status}{f' {code}' if code else ''}"
        if status == 403:
            raise ConfigurationError(
                f"the block store {s.url} at {s.where} refused a test upload ({failed}): access "
                f"key {s.access_key!r} must be allowed to write, read and delete objects there "
                "(s3:PutObject, s3:GetObject, s3:DeleteObject)", field="access_key",
                reason="access_denied")
        if status not in (200, 201) and not (status == 400 and code in _CHECKSUM_MISMATCH):
            raise ConfigurationError(
                f"the block store {s.url} at {s.where} refused a test upload signed with "
                f"{CHECKSUM_HEADER} ({failed}); it must accept S3 checksum headers (AWS S3 and "
                "SeaweedFS do)", field="endpoint", reason="checksums_unsupported")
        self.enforces_checksums = status == 400
        try:
            # The same key: this also removes the first probe if the store kept it.
            await obstore.put_async(self._store, probe, b"probe", use_multipart=False)
            await obstore.delete_async(self._store, probe)
        except (obstore.exceptions.BaseError, OSError) as exc:
            raise ConfigurationError(
                f"the block store {s.url} at {s.where} refused a test upload ({_brief(exc)}); "
                "check the endpoint, path_style and the access key's rights", field="endpoint",
                reason="probe_failed") from None

    # -- blocks -------------------------------------------------------------------------

    def _failed(self, exc: BaseException, what: str) -> HubUnavailableError:
        s = self.settings
        return HubUnavailableError(
            f"the S3 block store {s.url} at {s.where} failed to {what} ({_brief(exc)}); retry "
            "later. If this persists, check that the store runs and that the hub's access key may "
            "read, write and delete there")

    async def exists(self, filespace_id: str, digest: str) -> bool:
        """Whether the bucket holds the block (one HEAD; :meth:`verify` checks its bytes)."""
        try:
            await obstore.head_async(self._store, self.path(filespace_id, digest))
        except FileNotFoundError:
            return False
        except (obstore.exceptions.BaseError, OSError) as exc:
            raise self._failed(exc, f"look up block {digest[:12]}...") from exc
        return True

    async def stored_length(self, filespace_id: str, digest: str) -> int | None:
        """The object's size (one HEAD), ``None`` when the bucket does not hold the block."""
        try:
            meta = await obstore.head_async(self._store, self.path(filespace_id, digest))
        except FileNotFoundError:
            return None
        except (obstore.exceptions.BaseError, OSError) as exc:
            raise self._failed(exc, f"look up block {digest[:12]}...") from exc
        return int(meta["size"])

    async def delete(self, filespace_id: str, digests: list[str]) -> None:
        """Delete blocks, 1000 keys a request (DeleteObjects); missing ones are ignored."""
        paths = [self.path(filespace_id, d) for d in digests]
        if not paths:
            return
        try:
            await obstore.delete_async(self._store, paths)
        except FileNotFoundError:
            pass
        except (obstore.exceptions.BaseError, OSError) as exc:
            what = f"delete {len(paths)} blocks of filespace {filespace_id}"
            raise self._failed(exc, what) from exc

    async def verify(self, filespace_id: str, digest: str, length: int) -> bool:
        """Whether the stored block is ``length`` bytes that hash to ``digest``.

        One HEAD in checksum mode when the store enforces upload checksums (it checked
        the bytes as they arrived: AWS S3, SeaweedFS; :meth:`open` finds out) and kept
        the upload's; otherwise the block is read and hashed. ``False`` when the block is
        missing too.
        """
        key = self.key(filespace_id, digest)
        mode = {"x-amz-checksum-mode": "ENABLED"}
        try:
            status, headers, _ = await self._send(
                "HEAD", self._presign("HEAD", key, 300, headers=mode), mode)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise self._failed(exc, f"verify block {digest[:12]}...") from exc
        if status == 404:
            return False
        if status != 200:
            raise self._failed(RuntimeError(f"HTTP {status} to HEAD {key}"),
                               f"verify block {digest[:12]}...")
        if headers.get("Content-Length") != str(length):
            return False
        stored = headers.get(CHECKSUM_HEADER)
        if stored is not None and self.enforces_checksums:
            return stored == checksum_of(digest)
        # A store that did not check the upload's checksum may keep the one the client
        # claimed, whatever the bytes: only reading them tells.
        try:
            data = await self._read(filespace_id, digest)
        except PathNotFoundError:
            return False
        return len(data) == length and await _sha256_hex(data) == digest

    async def _read(self, filespace_id: str, digest: str) -> bytes:
        try:
            result = await obstore.get_async(self._store, self.path(filespace_id, digest))
            return bytes(await result.bytes_async())
        except FileNotFoundError:
            raise PathNotFoundError(
                f"block {digest[:12]}... of filespace {filespace_id} is not in the block store "
                f"{self.settings.url}") from None
        except (obstore.exceptions.BaseError, OSError) as exc:
            raise self._failed(exc, f"read block {digest[:12]}...") from exc

    async def get(self, filespace_id: str, digest: str) -> bytes:
        """A block's bytes, checked against its hash (for the hub itself: tests, migration).

        Raises ``PathNotFoundError`` when it is missing, ``IntegrityError`` when the
        stored bytes do not hash to ``digest``.
        """
        data = await self._read(filespace_id, digest)
        actual = await _sha256_hex(data)
        if actual != digest:
            raise IntegrityError(
                f"block {digest[:12]}... of filespace {filespace_id} in {self.settings.url} hashes "
                f"to {actual[:12]}...: the object is damaged; delete it and upload the block again",
                expected=digest, actual=actual)
        return data

    async def put(self, filespace_id: str, digest: str, data: bytes) -> None:
        """Store a block from the hub itself (tests, migration); its bytes must hash to ``digest``.

        obstore sends the SHA-256 checksum, so the object verifies by HEAD like an upload.
        """
        path = self.path(filespace_id, digest)
        actual = await _sha256_hex(data)
        if actual != digest:
            raise IntegrityError(
                f"block bytes hash to {actual[:12]}..., not {digest[:12]}...; nothing was stored",
                expected=digest, actual=actual)
        try:
            await obstore.put_async(self._store, path, data, use_multipart=False)
        except (obstore.exceptions.BaseError, OSError) as exc:
            raise self._failed(exc, f"store block {digest[:12]}...") from exc
