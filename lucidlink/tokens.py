"""Service-account tokens: ``sa_live:<key-id>:<secret>``.

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
    if match is None:
        raise ValueError(
            "malformed service-account token: expected 'sa_live:<key-id>:<secret>' "
            "as printed by 'lucidlink hub init' or 'lucidlink hub token create'"
        )
    return ParsedToken(match.group(1), match.group(2))


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
