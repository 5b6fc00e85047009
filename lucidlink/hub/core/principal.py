"""Who is calling: the rights a token carries, checked on every request (and cached, see below)."""

from __future__ import annotations

import uuid

import attrs

from lucidlink.exceptions import AccessDeniedError, FilespaceNotFoundError, ReadOnlyError
from lucidlink.hub.store.base import Tx, meta_value
from lucidlink.tokens import ParsedToken, hash_secret, secret_matches


@attrs.frozen
class Principal:
    """The holder of a valid token: one workspace, some filespaces, some rights."""

    key_id: str
    workspace_id: str
    workspace_name: str
    filespaces: frozenset[str] | None
    """Filespace ids the token may use; ``None`` means every filespace of the workspace."""
    read_only: bool
    admin: bool

    def may_use(self, filespace_id: str) -> bool:
        """Whether the token names this filespace (its workspace is checked separately)."""
        return self.filespaces is None or filespace_id in self.filespaces

    def require_write(self, what: str) -> None:
        """Refuse a change for a read-only token."""
        if self.read_only:
            raise ReadOnlyError(
                f"the token {self.key_id} is read-only and cannot {what}; "
                "use a read-write token (lucidlink hub token create)"
            )

    def require_admin(self, what: str) -> None:
        """Refuse an admin operation for a non-admin token."""
        if not self.admin:
            raise AccessDeniedError(
                f"the token {self.key_id} is not an admin token and cannot {what}; "
                "create one with 'lucidlink hub token create --admin'"
            )


def filespace_not_visible(filespace_id: str) -> FilespaceNotFoundError:
    """The one error for a filespace that is missing or outside the token's reach.

    Both cases answer the same so a token cannot probe other workspaces' ids.
    """
    return FilespaceNotFoundError(
        f"filespace {filespace_id!r} does not exist or this token may not use it; "
        "list the filespaces the token can see with GET /v1/filespaces"
    )


# -- the cache of verified tokens ---------------------------------------------------------
#
# Checking a token costs a store read (the token's row and its workspace) and a hash of
# the secret. A hub caches the outcome of a successful check per key id: the stored hash
# the secret matched, and the rights read with it. A request whose secret hashes to the
# cached hash gets the cached rights, provided the *auth generation* it reads from the
# store (one short read) is the one the entry was verified under. Every change that can
# make a verified token fail or change its rights (revocation, a change of rights) writes
# a new generation in the same transaction, so the next request on every hub sharing the
# store sees a new generation, drops its cache and checks the token in full: a revoked
# token is refused on its very next request, whichever hub serves it. A failed check is
# never cached.

AUTH_GENERATION_KEY = "auth_generation"
CACHE_LIMIT = 4096
"""Verified tokens a hub remembers; beyond that it forgets them all and verifies again."""


def bump_auth_generation(tx: Tx) -> None:
    """Record that a token's validity or rights changed (in the transaction changing them)."""
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (AUTH_GENERATION_KEY, uuid.uuid4().hex),
    )


def auth_generation(tx: Tx) -> str:
    """The current auth generation ('' until the first change)."""
    return meta_value(tx, AUTH_GENERATION_KEY) or ""


@attrs.frozen
class _Verified:
    secret_hash: str
    principal: Principal
    generation: str


class PrincipalCache:
    """Successful token checks of one hub, valid while the auth generation is unchanged."""

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        self._limit = limit
        self._entries: dict[str, _Verified] = {}
        self._generation = ""

    def get(self, key_id: str, secret: str, generation: str) -> Principal | None:
        """The cached rights of this token, or ``None`` (check it in full)."""
        if generation != self._generation:
            self._entries.clear()
            self._generation = generation
            return None
        entry = self._matching(key_id, secret)
        return None if entry is None else entry.principal

    def peek(self, token: ParsedToken) -> tuple[Principal, str] | None:
        """The cached rights of this token and the generation they were verified under, read
        from the cache alone; the caller must confirm the generation in the store before it
        answers (:func:`lucidlink.hub.api.context.read_access`)."""
        entry = self._matching(token.key_id, token.secret)
        return None if entry is None else (entry.principal, entry.generation)

    def _matching(self, key_id: str, secret: str) -> _Verified | None:
        """The entry of ``key_id`` if ``secret`` hashes to the hash it was verified with."""
        entry = self._entries.get(key_id)
        return entry if entry is not None and secret_matches(secret, entry.secret_hash) else None

    def put(self, secret: str, principal: Principal, generation: str) -> None:
        """Remember a successful check made under ``generation``."""
        if generation != self._generation:
            self._entries.clear()
            self._generation = generation
        if len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[principal.key_id] = _Verified(hash_secret(secret), principal, generation)
