"""Workspaces, filespaces and tokens: transactional functions over a :class:`Tx`."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from lucidlink.exceptions import (
    AuthenticationError,
    ConfigurationError,
    FilespaceNotFoundError,
    NotFoundError,
    PathExistsError,
)
from lucidlink.hub.core.principal import Principal, bump_auth_generation
from lucidlink.hub.store.base import Row, Tx
from lucidlink.tokens import new_token, secret_matches

DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024
MIN_BLOCK_SIZE = 64 * 1024
MAX_BLOCK_SIZE = 64 * 1024 * 1024
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def validate_object_name(kind: str, name: object) -> str:
    """Workspace and filespace names: 1-63 of letters, digits, ``_ . -``."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ConfigurationError(
            f"{kind} name {name!r} is invalid: use 1-63 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def validate_block_size(block_size: object) -> int:
    """A power of two between 64 KiB and 64 MiB."""
    if (
        not isinstance(block_size, int)
        or block_size < MIN_BLOCK_SIZE
        or block_size > MAX_BLOCK_SIZE
        or block_size & (block_size - 1)
    ):
        raise ConfigurationError(
            f"block size {block_size!r} is invalid: use a power of two between "
            f"{MIN_BLOCK_SIZE} and {MAX_BLOCK_SIZE} bytes"
        )
    return block_size


def _now() -> int:
    return time.time_ns()


def ensure_workspace(tx: Tx, name: str) -> tuple[Row, bool]:
    """Return the workspace ``name``, creating it when missing; and whether it was created."""
    validate_object_name("workspace", name)
    row = tx.one("SELECT * FROM workspaces WHERE name = ?", (name,))
    if row is not None:
        return row, False
    tx.execute(
        "INSERT INTO workspaces (id, name, created) VALUES (?, ?, ?)",
        (uuid.uuid4().hex, name, _now()),
    )
    row = tx.one("SELECT * FROM workspaces WHERE name = ?", (name,))
    assert row is not None
    return row, True


def create_workspace(tx: Tx, name: str) -> Row:
    """Create a workspace; ``PathExistsError`` if the name is taken."""
    row, created = ensure_workspace(tx, name)
    if not created:
        raise PathExistsError(f"workspace {name!r} already exists")
    return row


def get_workspace(tx: Tx, name: str) -> Row:
    """The workspace named ``name``."""
    row = tx.one("SELECT * FROM workspaces WHERE name = ?", (name,))
    if row is None:
        names = [r["name"] for r in tx.all("SELECT name FROM workspaces ORDER BY name")]
        raise NotFoundError(
            f"workspace {name!r} does not exist; existing workspaces: {names or 'none'}; "
            "create it with 'lucidlink hub workspace create'"
        )
    return row


def list_workspaces(tx: Tx) -> list[Row]:
    """Every workspace, by name."""
    return tx.all("SELECT * FROM workspaces ORDER BY name")


def ensure_filespace(
    tx: Tx, workspace_id: str, name: str, block_size: int = DEFAULT_BLOCK_SIZE
) -> tuple[Row, bool]:
    """Return the filespace, creating it (with its root directory) when missing."""
    validate_object_name("filespace", name)
    validate_block_size(block_size)
    row = tx.one(
        "SELECT * FROM filespaces WHERE workspace_id = ? AND name = ?", (workspace_id, name)
    )
    if row is not None:
        return row, False
    fs_id = uuid.uuid4().hex
    now = _now()
    tx.execute(
        "INSERT INTO filespaces (id, workspace_id, name, block_size, created, seq) "
        "VALUES (?, ?, ?, ?, ?, 0)",
        (fs_id, workspace_id, name, block_size, now),
    )
    root = tx.one(
        "INSERT INTO nodes (filespace_id, parent_id, name, type, size, mtime, ctime, version) "
        "VALUES (?, NULL, ?, 'dir', 0, ?, ?, 1) RETURNING id",
        (fs_id, "/" + fs_id, now, now),
    )
    assert root is not None
    tx.execute("UPDATE filespaces SET root_id = ? WHERE id = ?", (root["id"], fs_id))
    row = tx.one("SELECT * FROM filespaces WHERE id = ?", (fs_id,))
    assert row is not None
    return row, True


def list_filespaces(tx: Tx, workspace_id: str) -> list[Row]:
    """The filespaces of a workspace, by name."""
    return tx.all("SELECT * FROM filespaces WHERE workspace_id = ? ORDER BY name", (workspace_id,))


def get_filespace(tx: Tx, filespace_id: str) -> Row | None:
    """A filespace by id, or ``None``."""
    return tx.one("SELECT * FROM filespaces WHERE id = ?", (filespace_id,))


def filespace_by_name(tx: Tx, workspace_id: str, name: str) -> Row:
    """A filespace by name within a workspace."""
    row = tx.one(
        "SELECT * FROM filespaces WHERE workspace_id = ? AND name = ?", (workspace_id, name)
    )
    if row is None:
        names = [r["name"] for r in list_filespaces(tx, workspace_id)]
        raise FilespaceNotFoundError(
            f"filespace {name!r} does not exist in this workspace; existing: {names or 'none'}"
        )
    return row


def create_token(
    tx: Tx,
    workspace_id: str,
    *,
    filespace_ids: list[str] | None = None,
    read_only: bool = False,
    admin: bool = False,
    description: str = "",
) -> tuple[str, str]:
    """Create a token; return ``(token, key_id)``. The secret is returned once, never stored."""
    token, key_id, secret_hash = new_token()
    tx.execute(
        "INSERT INTO tokens (key_id, workspace_id, secret_hash, filespaces, read_only, admin, "
        "created, revoked, description) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
        (
            key_id,
            workspace_id,
            secret_hash,
            None if filespace_ids is None else json.dumps(sorted(filespace_ids)),
            int(read_only),
            int(admin),
            _now(),
            description,
        ),
    )
    return token, key_id


def revoke_token(tx: Tx, key_id: str) -> None:
    """Revoke a token at once; it fails on its next request, on every hub (the auth generation)."""
    bump_auth_generation(tx)
    if tx.execute("UPDATE tokens SET revoked = ? WHERE key_id = ? AND revoked IS NULL", (_now(), key_id)) == 0:
        if tx.one("SELECT 1 AS x FROM tokens WHERE key_id = ?", (key_id,)) is None:
            raise NotFoundError(f"no token with key id {key_id!r}; see 'lucidlink hub token list'")


def list_tokens(tx: Tx, workspace_id: str | None = None) -> list[dict[str, Any]]:
    """Tokens without their secrets (only the key id and the rights)."""
    sql = (
        "SELECT t.key_id, w.name AS workspace, t.filespaces, t.read_only, t.admin, t.created, "
        "t.revoked, t.description FROM tokens t JOIN workspaces w ON w.id = t.workspace_id"
    )
    params: tuple[Any, ...] = ()
    if workspace_id is not None:
        sql += " WHERE t.workspace_id = ?"
        params = (workspace_id,)
    out = []
    for row in tx.all(sql + " ORDER BY t.created", params):
        item = dict(row)
        item["filespaces"] = None if row["filespaces"] is None else json.loads(row["filespaces"])
        item["read_only"] = bool(row["read_only"])
        item["admin"] = bool(row["admin"])
        out.append(item)
    return out


def authenticate(tx: Tx, key_id: str, secret: str) -> Principal:
    """Check a token on a request; the same error for every kind of failure."""
    row = tx.one(
        "SELECT t.*, w.name AS workspace_name FROM tokens t "
        "JOIN workspaces w ON w.id = t.workspace_id WHERE t.key_id = ?",
        (key_id,),
    )
    if row is None or row["revoked"] is not None or not secret_matches(secret, row["secret_hash"]):
        raise AuthenticationError(
            "the token is unknown, revoked or wrong; create a new one with "
            "'lucidlink hub token create'"
        )
    filespaces = None if row["filespaces"] is None else frozenset(json.loads(row["filespaces"]))
    return Principal(
        key_id=key_id,
        workspace_id=row["workspace_id"],
        workspace_name=row["workspace_name"],
        filespaces=filespaces,
        read_only=bool(row["read_only"]),
        admin=bool(row["admin"]),
    )
