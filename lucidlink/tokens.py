"""Service-account tokens: ``sa_live:<key-id>:<secret>``.

This hub issues and accepts ``sa_live`` tokens only. The SDK takes any token whose
shape LucidLink's SDK takes (:func:`check_token_shape`: a known prefix and at least
three colon-separated parts) and leaves it to the hub to accept or refuse it, so a
well-formed token of another environment fails at ``authenticate()``, as there.

The hub stores only ``sha256(secret)``; the secret is 256 bits from :mod:`secrets`, so
a fast hash is enough (no password stretching is needed for a random key) and the
comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

import attrs

PREFIX = "sa_live"
KNOWN_PREFIXES = ("lucid_sa", "sa_live", "sa_dev", "sa_staging", "sa_local")
"""The prefixes LucidLink's SDK accepts when a ``ServiceAccountCredentials`` is made."""
_TOKEN_RE = re.compile(r"sa_live:([A-Za-z0-9]{8,64}):([A-Za-z0-9_-]{16,256})")


@attrs.frozen(repr=False)
class ParsedToken:
    """A token split into its public key id and its secret."""

    key_id: str
    secret: str

    def __repr__(self) -> str:
        return f"ParsedToken(key_id={self.key_id!r}, secret='***')"


def parse_token(token: object) -> ParsedToken:
    """Split a token; raise ``ValueError`` (never echoing the secret) when malformed."""
    if not isinstance(token, str):
        raise ValueError(f"a service-account token must be a string, not {type(token).__name__}")
    match = _TOKEN_RE.fullmatch(token.strip())
    prefix = token.strip().split(":")[0]
    if match is None and prefix != PREFIX and prefix in KNOWN_PREFIXES:
        raise ValueError(f"this hub accepts only its own {PREFIX}:<key-id>:<secret> tokens, not a {prefix} "
                         "token (as printed by 'lucidlink hub init' or 'lucidlink hub token create')")
    if match is None:
        raise ValueError(
            "malformed service-account token: expected 'sa_live:<key-id>:<secret>' "
            "as printed by 'lucidlink hub init' or 'lucidlink hub token create'"
        )
    return ParsedToken(match.group(1), match.group(2))


def check_token_shape(token: object) -> str:
    """Check what LucidLink's SDK checks when credentials are made; return the token.

    Raises ``ValueError`` (never echoing the token) when it is not a string, is
    empty, has an unknown prefix or fewer than three colon-separated parts. Whether
    the hub accepts it is known only at ``authenticate()``.
    """
    if not isinstance(token, str):
        raise ValueError(f"a service-account token must be a string, not {type(token).__name__}")
    if not token.strip():
        raise ValueError("the service-account token is empty: pass the token printed by "
                         "'lucidlink hub init' or 'lucidlink hub token create'")
    parts = token.strip().split(":")
    if parts[0] not in KNOWN_PREFIXES:
        raise ValueError(f"malformed service-account token (unknown prefix): a token starts with one of "
                         f"{', '.join(p + ':' for p in KNOWN_PREFIXES)} (this hub issues {PREFIX}:<key-id>:<secret>)")
    if len(parts) < 3:
        raise ValueError(f"malformed service-account token: expected '{parts[0]}:<key-id>:<secret>'")
    return token


def new_token() -> tuple[str, str, str]:
    """Return ``(token, key_id, secret_hash)`` for a fresh token."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return f"{PREFIX}:{key_id}:{secret}", key_id, hash_secret(secret)


def hash_secret(secret: str) -> str:
    """The stored form of a secret."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time check of a presented secret against its stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)
