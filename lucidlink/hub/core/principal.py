"""Who is calling: the rights a token carries, checked on every request."""

from __future__ import annotations

import attrs

from lucidlink.exceptions import AccessDeniedError, FilespaceNotFoundError, ReadOnlyError


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
