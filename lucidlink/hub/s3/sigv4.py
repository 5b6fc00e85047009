"""AWS Signature V4 query-string presigning: the one signer of the hub's S3 URLs.

Follows AWS "Authenticating Requests: Using Query Parameters": the canonical URI is the
path with every segment URI-encoded once (RFC 3986 unreserved characters kept), the
canonical query string is sorted by key with keys and values URI-encoded, the payload
is ``UNSIGNED-PAYLOAD``. Headers given to :func:`presign` are signed too (``host``
always), so a request must carry each with exactly that value. URLs come back already
encoded: send them as they are (``yarl.URL(url, encoded=True)``), or a client that
re-quotes the path breaks the signature. Pure computation (15-25 us a URL).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_EXPIRES = 7 * 24 * 3600
"""SigV4's longest presigned-URL lifetime, in seconds."""
DEFAULT_REGION = "us-east-1"




def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


@functools.lru_cache(maxsize=16)
def signing_key(secret_key: str, date: str, region: str, service: str = "s3") -> bytes:
    """The SigV4 signing key for one day, region and service."""
    # Four HMACs, the same for a whole day: most of the cost of a URL.
    return _hmac(_hmac(_hmac(_hmac(("AWS4" + secret_key).encode("utf-8"), date), region), service),
                 "aws4_request")


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def presign(
    method: str,
    url: str,
    *,
    region: str,
    access_key: str,
    secret_key: str,
    expires: float,
    session_token: str | None = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    now: datetime.datetime | None = None,
) -> str:
    """A SigV4 presigned URL (AWS "Authenticating Requests: Using Query Parameters") that
    also signs ``headers``.

    ``url`` is ``scheme://host[:port]/path`` with the path already percent-encoded
    (:meth:`S3Settings.object_url`). Every header given is part of the signature: the
    request must carry each with exactly this value. ``params`` are extra query
    parameters, signed too; ``now`` backdates the signature (tests of expiry). The
    result is encoded: send it as it is (``yarl.URL(url, encoded=True)``).
    """
    expires_s = max(1, min(int(expires), MAX_EXPIRES))
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    parts = urlsplit(url)
    path = parts.path or "/"
    signed = {k.lower(): " ".join(v.split()) for k, v in (headers or {}).items()}
    signed["host"] = parts.netloc.lower()
    names = ";".join(sorted(signed))
    query = {
        **(params or {}),
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{access_key}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires_s),
        "X-Amz-SignedHeaders": names,
    }
    if session_token:
        query["X-Amz-Security-Token"] = session_token
    canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query.items()))
    canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in sorted(signed))
    canonical = "\n".join(
        [method.upper(), path, canonical_query, canonical_headers, names, UNSIGNED_PAYLOAD])
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    to_sign = "\n".join([ALGORITHM, amz_date, scope, digest])
    signature = hmac.new(signing_key(secret_key, amz_date[:8], region), to_sign.encode("utf-8"),
                         hashlib.sha256).hexdigest()
    return f"{parts.scheme}://{parts.netloc}{path}?{canonical_query}&X-Amz-Signature={signature}"
