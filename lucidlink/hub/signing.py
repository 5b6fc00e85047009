"""HMAC-signed block URLs for the hub's own block endpoint, and where the signing key comes from.

``/v1/blocks/<filespace-id>/<sha256>?op=get|put&exp=<unix-seconds>&sig=<hex>`` where
``sig = HMAC-SHA256(key, "op\\nfilespace-id\\nsha256\\nexp")``. A URL grants exactly one
operation on exactly one block of one filespace until it expires.

The key is resolved once, when the hub starts (after its metadata store is open), by
:func:`resolve_signing_key`, from the first of:

1. ``LUCIDHUB_SECRET_KEY`` (at least 32 bytes, as hex or base64), for deployments that
   keep keys in a secret manager; give every hub of a deployment the same value;
2. with the embedded SQLite store, ``<data-dir>/hub.key`` (64 hex digits, mode 0600),
   created on first start;
3. with a shared (PostgreSQL) store, the ``meta`` row ``url_signing_key``, created by the
   first hub to start. Hubs that share a metadata store must sign and accept each
   other's URLs, and a file in one host's data dir is not visible to the others.

A new key is never seen half-made: the file is written and fsynced under a temporary
name, then hard-linked into place (which fails if another hub got there first: that
hub's key is then read and used), and the row is inserted ``ON CONFLICT DO NOTHING``
and read back, so of two hubs starting at once both end up with the winner's key. A key
that is empty, short or not hex/base64 stops the hub from starting with an error that
says where the key came from and how to fix it: a short key would make URLs forgeable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread

from lucidlink.exceptions import ConfigurationError, SignedUrlError
from lucidlink.hub import disk

if TYPE_CHECKING:
    from lucidlink.hub.config import HubSettings
    from lucidlink.hub.store.base import MetadataStore, Tx

KEY_ENV = "LUCIDHUB_SECRET_KEY"
"""Environment variable holding the URL-signing key (hex or base64 of at least 32 bytes)."""
KEY_BYTES = 32
"""The length of a new key, and the least a given key may have."""
META_KEY = "url_signing_key"
"""The ``meta`` row holding the key of hubs that share a metadata store."""
GENERATE_HINT = "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'"

# ASCII only: str.isdigit() and int() also take "²" or "٣", and 19 digits fit an int64.
_EXP_RE = re.compile(r"[0-9]{1,19}")
_SIG_RE = re.compile(r"[0-9a-f]{64}")


def decode_key(text: str) -> bytes:
    """The bytes of a key written as hex, or base64 (standard or URL-safe); ``b""`` if neither."""
    text = text.strip()
    try:
        return bytes.fromhex(text)
    except ValueError:
        pass
    try:
        padded = text + "=" * (-len(text) % 4)
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return b""


def parse_key(text: str, source: str, fix: str = GENERATE_HINT) -> bytes:
    """A signing key from its text form; :class:`ConfigurationError` naming ``source`` if unfit."""
    key = decode_key(text)
    if len(key) < KEY_BYTES:
        what = "is empty" if not text.strip() else (
            f"holds {len(key)} bytes" if key else "is neither hex nor base64")
        raise ConfigurationError(
            f"the URL-signing key in {source} {what}; it must be at least {KEY_BYTES} random bytes "
            f"written as hex or base64 (a shorter key would make block URLs forgeable): {fix}",
            field=KEY_ENV,
        )
    return key


def load_or_create_key(path: Path) -> bytes:
    """Read the signing key file, creating it (0600, durably, atomically) on first use.

    Of several processes creating it at once, one links its file into place and the
    others read that one. An existing key file readable by others is tightened to 0600
    (with a warning). Blocking file I/O: call it in a worker thread.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        key = secrets.token_bytes(KEY_BYTES)
        if disk.create_file(path, key.hex().encode()):
            return key
        raw = path.read_bytes()  # another hub process created it meanwhile: use its key
    disk.tighten(path, disk.PRIVATE_FILE)
    fix = (f"restore {path} from a backup, or delete it to have the hub create a new key (block URLs "
           f"already handed out then stop working); or set {KEY_ENV}")
    return parse_key(raw.decode("ascii", errors="replace"), str(path), fix)


def stored_key(tx: Tx, name: str, candidate: str) -> str:
    """The ``meta`` row ``name``, set to ``candidate`` unless a hub set it first."""
    tx.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (name, candidate))
    row = tx.one("SELECT value FROM meta WHERE key = ?", (name,))
    assert row is not None, "the row was just inserted or found"
    return str(row["value"])


async def resolve_signing_key(
    settings: HubSettings, store: MetadataStore, environ: Mapping[str, str] | None = None
) -> bytes:
    """The hub's URL-signing key (see the module's docstring); the store must be open."""
    env = os.environ if environ is None else environ
    if KEY_ENV in env:
        return parse_key(env[KEY_ENV], f"the environment variable {KEY_ENV}", f"unset it or {GENERATE_HINT}")
    if store.engine == "sqlite":
        return await anyio.to_thread.run_sync(load_or_create_key, settings.key_path)
    text = await store.write(stored_key, META_KEY, secrets.token_bytes(KEY_BYTES).hex())
    return parse_key(text, f"the metadata store (meta row {META_KEY!r})",
                     f"delete that row to have the next hub create a new key, or set {KEY_ENV}")


class UrlSigner:
    """Signs and checks block URLs with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < KEY_BYTES:
            raise ValueError(f"a URL-signing key has at least {KEY_BYTES} bytes")
        self._key = key

    def __repr__(self) -> str:
        return "<UrlSigner>"

    def _mac(self, op: str, filespace_id: str, digest: str, exp: int) -> str:
        msg = f"{op}\n{filespace_id}\n{digest}\n{exp}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def sign(self, base_url: str, filespace_id: str, digest: str, op: str, ttl: float) -> str:
        """A URL for ``op`` on one block, valid for ``ttl`` seconds."""
        exp = int(time.time() + ttl)
        sig = self._mac(op, filespace_id, digest, exp)
        return f"{base_url}/v1/blocks/{filespace_id}/{digest}?op={op}&exp={exp}&sig={sig}"

    def check(self, op: str, filespace_id: str, digest: str, exp: str | None, sig: str | None) -> None:
        """Raise :class:`SignedUrlError` unless the URL is genuine, for ``op``, and fresh.

        ``filespace_id`` and ``digest`` must already be validated (ASCII); ``exp`` and
        ``sig`` are checked here, as they come, from an unauthenticated caller.
        """
        if not exp or not sig:
            raise SignedUrlError(
                f"block URL for {digest[:12]} is not signed; ask the hub for a URL (POST .../blocks/urls)"
            )
        if not _EXP_RE.fullmatch(exp) or not _SIG_RE.fullmatch(sig):
            raise SignedUrlError(
                f"block URL for {digest[:12]} is malformed ('exp' must be Unix seconds, 'sig' 64 hex "
                "digits); ask the hub for a fresh URL"
            )
        expected = self._mac(op, filespace_id, digest, int(exp))
        if not hmac.compare_digest(expected.encode("ascii"), sig.encode("ascii")):
            raise SignedUrlError(
                f"block URL for {digest[:12]} has a bad signature (forged, altered or for "
                "another operation); ask the hub for a fresh URL"
            )
        if int(exp) < time.time():
            raise SignedUrlError(
                f"block URL for {digest[:12]} expired; ask the hub for a fresh URL", expired=True
            )
