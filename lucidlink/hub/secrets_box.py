"""Encryption at rest of the secrets the hub keeps for Connect (data store secret keys).

A secret is sealed with AES-256-GCM under the hub's *Connect key*, with the data
store's id as associated data (a sealed secret copied onto another store's row does
not open). The sealed form is ``v1:<key-fingerprint>:<base64url(nonce || ciphertext)>``;
the fingerprint (an HMAC of the key, not the key) lets the hub say clearly that a
secret was sealed under another key than the one it has.

The Connect key is 32 random bytes, resolved once when the hub starts (after its
metadata store is open; :func:`resolve_connect_key`), from the first of:

1. the environment variable ``LUCIDHUB_CONNECT_KEY`` (64 hex digits, or base64 of 32
   bytes), for deployments that keep keys in a secret manager;
2. with the embedded SQLite store, ``<data-dir>/connect.key`` (hex, mode 0600), created
   on first start. Back it up with the metadata: without it the stored secrets cannot
   be opened and every data store must be rekeyed;
3. with a shared (PostgreSQL) store, the ``meta`` row ``connect_key``, created by the
   first hub to start (seeded with that hub's own ``connect.key`` if an older version
   left one, so secrets it sealed still open): every hub on the store must open the
   secrets the others sealed. The key then sits in the same database as the secrets it
   seals; set ``LUCIDHUB_CONNECT_KEY`` to keep a stolen database dump useless.

Creation is atomic as for the URL-signing key (:mod:`lucidlink.hub.signing`); an empty
or malformed key stops the hub from starting, naming where it came from.

Why the ``cryptography`` dependency: the standard library has no authenticated cipher,
and hand-written cryptography is not an option for credentials. ``cryptography`` is
the maintained binding to OpenSSL's AES-GCM (constant-time, hardware-accelerated),
ships wheels for every platform we support, and is already present in most Python
deployments (it is a dependency of many TLS and cloud libraries).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lucidlink.exceptions import ConfigurationError, LucidLinkError
from lucidlink.hub import disk
from lucidlink.hub.signing import decode_key, stored_key

if TYPE_CHECKING:
    from lucidlink.hub.config import HubSettings
    from lucidlink.hub.store.base import MetadataStore

log = structlog.get_logger("lucidlink.hub")

KEY_ENV = "LUCIDHUB_CONNECT_KEY"
KEY_FILE = "connect.key"
META_KEY = "connect_key"
"""The ``meta`` row holding the Connect key of hubs that share a metadata store."""
_VERSION = "v1"
_NONCE = 12


class SecretUnavailableError(LucidLinkError):
    """A sealed secret cannot be opened with the hub's Connect key (500 with a clear message)."""


def parse_key(text: str, source: str | None = None) -> bytes:
    """A Connect key from its text form: 64 hex digits or base64 (standard or URL-safe) of 32 bytes."""
    key = decode_key(text)
    if len(key) != 32:
        where = source or f"{KEY_ENV} or {KEY_FILE}"
        what = "is empty" if not text.strip() else "is not 32 bytes"
        raise ConfigurationError(
            f"the Connect key ({where}) {what}: it must be 32 bytes written as 64 hex digits or "
            "base64; generate one with: python -c 'import secrets; print(secrets.token_hex(32))'",
            field=KEY_ENV,
        )
    return key


def _read_key_file(path: Path) -> bytes | None:
    """The key in ``path`` (tightened to 0600), or ``None`` if there is no such file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    disk.tighten(path, disk.PRIVATE_FILE)  # an older hub or an operator may have loosened it
    return parse_key(raw.decode("ascii", errors="replace"), str(path))


def load_or_create_key(data_dir: Path | None, environ: Mapping[str, str] | None = None) -> bytes:
    """The hub's Connect key: from the environment, else ``<data-dir>/connect.key`` (created 0600).

    Blocking file I/O: call it in a worker thread.
    """
    env = os.environ if environ is None else environ
    if KEY_ENV in env:
        return parse_key(env[KEY_ENV], f"the environment variable {KEY_ENV}")
    if data_dir is None:
        raise ConfigurationError(f"this hub has no data dir to keep {KEY_FILE} in; set {KEY_ENV}",
                                 field=KEY_ENV)
    path = data_dir / KEY_FILE
    key = _read_key_file(path)
    if key is not None:
        return key
    key = secrets.token_bytes(32)
    # Written whole under a temporary name and linked into place: never a partial key file.
    if not disk.create_file(path, key.hex().encode()):  # another hub process created it meanwhile
        found = _read_key_file(path)
        assert found is not None, "create_file failed because the file exists"
        return found
    return key


async def resolve_connect_key(
    settings: HubSettings, store: MetadataStore, environ: Mapping[str, str] | None = None
) -> bytes:
    """The hub's Connect key (see the module's docstring); the store must be open."""
    env = os.environ if environ is None else environ
    if KEY_ENV in env or store.engine == "sqlite":
        return await anyio.to_thread.run_sync(load_or_create_key, settings.data_dir, env)
    local = None if settings.data_dir is None else await anyio.to_thread.run_sync(
        _read_key_file, settings.data_dir / KEY_FILE)
    candidate = local if local is not None else secrets.token_bytes(32)
    key = parse_key(await store.write(stored_key, META_KEY, candidate.hex()),
                    f"the metadata store (meta row {META_KEY!r})")
    if local is not None and local != key:
        log.warning("hub.connect.key_differs", file=str(settings.data_dir or "") + f"/{KEY_FILE}",
                    why="hubs sharing this metadata store use the key stored in it; secrets sealed "
                        "with this hub's old file key must be rekeyed")
    return key


class SecretBox:
    """Seals and opens secrets with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a Connect key is 32 bytes")
        self._aead = AESGCM(key)
        self.fingerprint = hmac.new(key, b"lucidhub connect key fingerprint", hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"<SecretBox key {self.fingerprint}>"

    def seal(self, plaintext: str, context: str) -> str:
        """Encrypt ``plaintext`` bound to ``context`` (the data store id)."""
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        blob = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{_VERSION}:{self.fingerprint}:{blob}"

    def open(self, sealed: str, context: str, what: str = "a secret") -> str:
        """Decrypt what :meth:`seal` made for ``context``; a clear error if it cannot be opened."""
        version, _, rest = sealed.partition(":")
        fingerprint, _, blob = rest.partition(":")
        if version != _VERSION or not blob:
            raise SecretUnavailableError(f"{what} is stored in an unknown format; rekey it")
        if fingerprint != self.fingerprint:
            raise SecretUnavailableError(
                f"{what} was sealed with Connect key {fingerprint}, but this hub's key is {self.fingerprint}: "
                f"restore the original <data-dir>/{KEY_FILE} (or {KEY_ENV}), or rekey the data store"
            )
        try:
            raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode("utf-8"))
        except (InvalidTag, ValueError, binascii.Error):
            raise SecretUnavailableError(
                f"{what} does not decrypt with this hub's Connect key (it was altered or moved); rekey the "
                "data store"
            ) from None
        return plain.decode("utf-8")
