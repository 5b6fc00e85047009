"""Where the S3 block store keeps blocks and how to reach them: :class:`S3Settings`."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

import attrs

from lucidlink.exceptions import ConfigurationError
from lucidlink.hub.s3.sigv4 import DEFAULT_REGION

_BUCKET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}")
_PREFIX_PART_RE = re.compile(r"[A-Za-z0-9._-]+")



def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@attrs.frozen(repr=False)
class S3Settings:
    """Where the blocks live and how to reach them (``repr`` shows no secret).

    Build it with :meth:`from_url`; the constructor takes every field as given.
    """

    bucket: str
    prefix: str
    """Key prefix, no slash at either end (``""``: keys start with the filespace id)."""
    endpoint: str
    """``scheme://host[:port]`` of the store; ``""``: AWS S3 in :attr:`region`."""
    region: str
    access_key: str
    secret_key: str
    session_token: str | None
    path_style: bool
    """``<endpoint>/<bucket>/<key>`` rather than ``<bucket>.<host>/<key>``."""
    allow_http: bool

    def __repr__(self) -> str:
        return (f"S3Settings(url={self.url!r}, endpoint={self.where!r}, region={self.region!r}, "
                f"access_key={self.access_key!r}, path_style={self.path_style})")

    @property
    def url(self) -> str:
        """``s3://bucket/prefix``, for messages and logs."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def where(self) -> str:
        """The endpoint requests go to (AWS's regional one when none is set)."""
        return self.endpoint or f"https://s3.{self.region}.amazonaws.com"

    @classmethod
    def from_url(
        cls,
        url: str,
        environ: Mapping[str, str] = os.environ,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        path_style: bool | None = None,
        allow_http: bool | None = None,
    ) -> S3Settings:
        """Settings from ``s3://BUCKET[/PREFIX]``, keyword overrides and ``environ``.

        An override left ``None`` falls back to the standard variables:
        ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (none: AWS S3), ``AWS_REGION`` or
        ``AWS_DEFAULT_REGION`` (else ``us-east-1``), ``AWS_ACCESS_KEY_ID``,
        ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``. ``path_style`` defaults to
        ``True`` with an endpoint (MinIO, SeaweedFS and Ceph serve it with no DNS set-up)
        and ``False`` for AWS; ``allow_http`` defaults to ``True`` only for an
        ``http://`` endpoint on loopback.

        Raises ``ConfigurationError`` whose ``details["field"]`` names the setting to fix.
        """
        def env(*names: str) -> str | None:
            for name in names:
                value = environ.get(name, "").strip()
                if value:
                    return value
            return None

        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ConfigurationError(
                f"block store URL {url!r} is not of the form s3://BUCKET[/PREFIX]",
                field="block_store")
        if "@" in parts.netloc:
            raise ConfigurationError(
                "the block store URL must not carry credentials; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY instead", field="block_store")
        if parts.query or parts.fragment:
            raise ConfigurationError(
                f"block store URL {url!r} has a query or fragment; give the endpoint, region and "
                "the rest as options or AWS_* variables", field="block_store")
        if endpoint is None:
            endpoint = env("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL") or ""
        endpoint = endpoint.rstrip("/")
        if allow_http is None:
            ep = urlsplit(endpoint)
            allow_http = ep.scheme == "http" and _is_loopback(ep.hostname or "")
        settings = cls(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint=endpoint,
            region=region or env("AWS_REGION", "AWS_DEFAULT_REGION") or DEFAULT_REGION,
            access_key=env("AWS_ACCESS_KEY_ID") or "" if access_key is None else access_key,
            secret_key=env("AWS_SECRET_ACCESS_KEY") or "" if secret_key is None else secret_key,
            session_token=env("AWS_SESSION_TOKEN") if session_token is None else session_token,
            path_style=bool(endpoint) if path_style is None else path_style,
            allow_http=allow_http,
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse settings that cannot work, naming the setting to fix."""
        if not _BUCKET_RE.fullmatch(self.bucket):
            raise ConfigurationError(f"{self.bucket!r} is not a valid bucket name", field="bucket")
        parts = self.prefix.split("/") if self.prefix else []
        if any(p in (".", "..") or not _PREFIX_PART_RE.fullmatch(p) for p in parts):
            raise ConfigurationError(
                f"block store prefix {self.prefix!r} must be '/'-separated names of letters, "
                "digits, '.', '_' and '-' (no empty, '.' or '..' parts)", field="prefix")
        if not self.access_key or not self.secret_key:
            raise ConfigurationError(
                f"the block store {self.url} needs an access key and a secret key; set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or pass access_key and secret_key)",
                field="access_key")
        if self.endpoint:
            ep = urlsplit(self.endpoint)
            if ep.scheme not in ("http", "https") or not ep.hostname or ep.path or ep.query:
                raise ConfigurationError(
                    f"block store endpoint {self.endpoint!r} must be scheme://host[:port] "
                    "(http or https, no path)", field="endpoint")
            if ep.scheme == "http" and not self.allow_http:
                raise ConfigurationError(
                    f"block store endpoint {self.endpoint} is plain HTTP, which is allowed by "
                    "default only on loopback; use https, or allow_http=True on a trusted network",
                    field="endpoint")

    def _scheme_host(self) -> tuple[str, str]:
        parts = urlsplit(self.where)
        return parts.scheme, parts.netloc.lower()

    def service_url(self) -> str:
        """The endpoint obstore is given: for virtual hosting, the bucket's own host."""
        scheme, host = self._scheme_host()
        return f"{scheme}://{host}" if self.path_style else f"{scheme}://{self.bucket}.{host}"

    def object_url(self, key: str) -> str:
        """The URL of object ``key`` (``""``: the bucket), its path percent-encoded once."""
        scheme, host = self._scheme_host()
        encoded = quote(key, safe="-_.~/")
        if self.path_style:
            return f"{scheme}://{host}/{self.bucket}" + (f"/{encoded}" if key else "")
        return f"{scheme}://{self.bucket}.{host}/{encoded}"
