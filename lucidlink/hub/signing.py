"""HMAC-signed block URLs for the hub's own block endpoint.

``/v1/blocks/<filespace-id>/<sha256>?op=get|put&exp=<unix-seconds>&sig=<hex>`` where
``sig = HMAC-SHA256(hub key, "op\\nfilespace-id\\nsha256\\nexp")``. The key lives in
``<data-dir>/hub.key`` (created on first start, mode 0600). A URL grants exactly one
operation on exactly one block of one filespace until it expires.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from pathlib import Path

from lucidlink.exceptions import SignedUrlError
from lucidlink.hub import disk


def load_or_create_key(path: Path) -> bytes:
    """Read the hub's signing key, creating it (0600, durably, atomically) on first use.

    An existing key file readable by others is tightened to 0600 (with a warning).
    """
    try:
        key = bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        key = secrets.token_bytes(32)
        if disk.create_file(path, key.hex().encode()):
            return key
        key = bytes.fromhex(path.read_text().strip())  # another hub process created it meanwhile
    disk.tighten(path, disk.PRIVATE_FILE)
    return key


class UrlSigner:
    """Signs and checks block URLs with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, op: str, filespace_id: str, digest: str, exp: int) -> str:
        msg = f"{op}\n{filespace_id}\n{digest}\n{exp}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def sign(self, base_url: str, filespace_id: str, digest: str, op: str, ttl: float) -> str:
        """A URL for ``op`` on one block, valid for ``ttl`` seconds."""
        exp = int(time.time() + ttl)
        sig = self._mac(op, filespace_id, digest, exp)
        return f"{base_url}/v1/blocks/{filespace_id}/{digest}?op={op}&exp={exp}&sig={sig}"

    def check(self, op: str, filespace_id: str, digest: str, exp: str | None, sig: str | None) -> None:
        """Raise :class:`SignedUrlError` unless the URL is genuine, for ``op``, and fresh."""
        if not exp or not sig or not exp.isdigit():
            raise SignedUrlError(
                f"block URL for {digest[:12]} is not signed; ask the hub for a URL (POST .../blocks/urls)"
            )
        expected = self._mac(op, filespace_id, digest, int(exp))
        if not hmac.compare_digest(expected, sig):
            raise SignedUrlError(
                f"block URL for {digest[:12]} has a bad signature (forged, altered or for "
                "another operation); ask the hub for a fresh URL"
            )
        if int(exp) < time.time():
            raise SignedUrlError(
                f"block URL for {digest[:12]} expired; ask the hub for a fresh URL", expired=True
            )
