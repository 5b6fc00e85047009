"""The SDK's exception hierarchy.

``LucidLinkError`` is the root; ``DaemonError``, ``AuthenticationError``,
``FilespaceError`` and ``ConfigurationError`` are the documented branches. The specific
subclasses also inherit the builtin exception a Python user catches, so code written
against the local file system (``except FileNotFoundError``), fsspec and pandas behave
unchanged.

The hub reports errors as a JSON envelope ``{"error": {"code", "message", ...}}``; the
stable ``code`` picks the class here through :data:`ERROR_CODES`, in one table.
"""

from __future__ import annotations

import errno as _errno
from typing import Any


class LucidLinkError(Exception):
    """Base class of every error raised by the SDK and reported by the hub."""

    code: str = "internal"
    http_status: int = 500

    def __init__(self, message: str, *, path: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.details = details

    def __str__(self) -> str:
        return self.message


class _OSErrorMixin(LucidLinkError):
    """Gives a ``LucidLinkError`` the ``errno``/``strerror``/``filename`` of an ``OSError``."""

    os_errno: int = _errno.EIO

    def __init__(self, message: str, *, path: str | None = None, **details: Any) -> None:
        # OSError.__init__ with (errno, strerror, filename) sets the attributes that
        # fsspec and pandas look at; __str__ stays our message that names the fix.
        OSError.__init__(self, self.os_errno, message, path)
        self.message = message
        self.path = path
        self.details = details
        self.args = (message,)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.message, self.path, self.details))


def _rebuild(cls: type[LucidLinkError], message: str, path: str | None, details: dict[str, Any]) -> LucidLinkError:
    return cls(message, path=path, **details)


# The documented branches -------------------------------------------------------------


class DaemonError(LucidLinkError):
    """The daemon is in the wrong state or failed (not started, stopped, hub unreachable)."""

    code = "daemon_error"
    http_status = 500


class AuthenticationError(LucidLinkError):
    """The token is malformed, unknown, revoked or belongs to another workspace."""

    code = "unauthenticated"
    http_status = 401


class FilespaceError(LucidLinkError):
    """An operation on a filespace or one of its paths failed."""

    code = "filespace_error"
    http_status = 400


class ConfigurationError(LucidLinkError, ValueError):
    """A setting or argument is invalid; nothing was changed."""

    code = "invalid_configuration"
    http_status = 400


# Specific errors ----------------------------------------------------------------------


class HubUnavailableError(_OSErrorMixin, DaemonError, ConnectionError):
    """The hub could not be reached, or kept failing after retries."""

    code = "hub_unavailable"
    http_status = 503
    os_errno = _errno.ECONNREFUSED


class SessionExpiredError(DaemonError):
    """The daemon's session on a filespace expired on the hub; relink the filespace."""

    code = "session_expired"
    http_status = 410


class FilespaceNotFoundError(FilespaceError):
    """No filespace of that name or id in the token's workspace."""

    code = "filespace_not_found"
    http_status = 404


class InvalidPathError(FilespaceError, ValueError):
    """A path is malformed: ``..``, empty or over-long names, NUL bytes, bad UTF-8."""

    code = "invalid_path"
    http_status = 400


class LinkOutsideFilespaceError(InvalidPathError):
    """A symbolic link's target would climb above the filespace's root from the link's directory."""

    code = "link_outside_filespace"
    http_status = 409


class BadRequestError(FilespaceError, ValueError):
    """A request was malformed (bad JSON, missing or ill-typed fields)."""

    code = "bad_request"
    http_status = 400


class PayloadTooLargeError(FilespaceError, ValueError):
    """A request body is larger than the hub accepts."""

    code = "payload_too_large"
    http_status = 413


class PathNotFoundError(_OSErrorMixin, FilespaceError, FileNotFoundError):
    """The path (or one of its parents) does not exist."""

    code = "not_found"
    http_status = 404
    os_errno = _errno.ENOENT


class PathExistsError(_OSErrorMixin, FilespaceError, FileExistsError):
    """The path already exists."""

    code = "exists"
    http_status = 409
    os_errno = _errno.EEXIST


class IsADirectoryFilespaceError(_OSErrorMixin, FilespaceError, IsADirectoryError):
    """A file operation was given a directory."""

    code = "is_a_directory"
    http_status = 409
    os_errno = _errno.EISDIR


class NotADirectoryFilespaceError(_OSErrorMixin, FilespaceError, NotADirectoryError):
    """A directory operation was given a file (or a file stands where a parent should be)."""

    code = "not_a_directory"
    http_status = 409
    os_errno = _errno.ENOTDIR


class DirectoryNotEmptyError(_OSErrorMixin, FilespaceError, OSError):
    """A non-recursive delete (or a rename over) a directory that has entries."""

    code = "directory_not_empty"
    http_status = 409
    os_errno = _errno.ENOTEMPTY


class TooManyLinksError(_OSErrorMixin, FilespaceError, OSError):
    """Following symbolic links met a loop, or a chain longer than 40 links (``ELOOP``)."""

    code = "too_many_links"
    http_status = 409
    os_errno = _errno.ELOOP


class NotASymlinkError(_OSErrorMixin, FilespaceError, OSError):
    """``read_symlink`` of a path that is not a symbolic link (``EINVAL``, as ``os.readlink``)."""

    code = "not_a_link"
    http_status = 409
    os_errno = _errno.EINVAL


class InvalidMoveError(_OSErrorMixin, FilespaceError, OSError):
    """A move that cannot be done, such as a directory into itself."""

    code = "invalid_move"
    http_status = 400
    os_errno = _errno.EINVAL


class AccessDeniedError(_OSErrorMixin, FilespaceError, PermissionError):
    """The token's rights do not allow the operation."""

    code = "permission_denied"
    http_status = 403
    os_errno = _errno.EACCES


class ReadOnlyError(_OSErrorMixin, FilespaceError, PermissionError):
    """A write to something read-only (a read-only token, a Connect file)."""

    code = "read_only"
    http_status = 403
    os_errno = _errno.EROFS


class IntegrityError(FilespaceError):
    """Bytes did not match their content hash (upload refused, or a corrupt download)."""

    code = "hash_mismatch"
    http_status = 422


class BlockMissingError(FilespaceError):
    """A commit named blocks the hub does not have; upload them and commit again."""

    code = "block_missing"
    http_status = 409


class VersionConflictError(FilespaceError):
    """The file changed since the version the caller based its change on."""

    code = "version_conflict"
    http_status = 409


class SyncTimeoutError(_OSErrorMixin, FilespaceError, TimeoutError):
    """Closed files were still not committed when ``fs.sync.timeout`` ran out.

    Nothing is lost: the changes stay queued (and journalled with ``persist_files``)
    and the daemon keeps retrying; a later ``sync_all()`` lands them once the hub
    answers. ``details["pending"]`` lists the paths.
    """

    code = "sync_timeout"
    http_status = 504
    os_errno = _errno.ETIMEDOUT


class SignedUrlError(AccessDeniedError):
    """A block URL was forged, altered or has expired; ask the hub for a fresh one."""

    code = "bad_signature"
    http_status = 403


class LockError(FilespaceError):
    """A lock could not be taken or was lost."""

    code = "lock_error"
    http_status = 409


class LockTimeoutError(_OSErrorMixin, LockError, TimeoutError):
    """Waiting for a lock ran out of time."""

    code = "lock_timeout"
    http_status = 409
    os_errno = _errno.ETIMEDOUT


class LockConflictError(_OSErrorMixin, LockError, PermissionError):
    """Another session holds the file exclusively, so this change was refused."""

    code = "lock_conflict"
    http_status = 409
    os_errno = _errno.EACCES


class LeaseExpiredError(LockError):
    """The lock's lease expired before the change was committed; the change was refused."""

    code = "lease_expired"
    http_status = 409


class DataStoreInUseError(FilespaceError):
    """A Connect data store still has linked files; unlink them, or remove it with ``force``."""

    code = "store_in_use"
    http_status = 409


class NotLinkedError(BadRequestError):
    """A Connect operation on a path that is not a linked file (a directory or a regular file)."""

    code = "not_linked"
    http_status = 409


class NotFoundError(FilespaceError, LookupError):
    """A named object other than a path (workspace, token, session) does not exist."""

    code = "object_not_found"
    http_status = 404


class ClientError(LucidLinkError):
    """A ``Client`` call was used wrongly (not logged in, an unknown workspace, ...)."""

    code = "client_error"
    http_status = 400


class WorkspaceNotFoundError(ClientError, ValueError):
    """``Client.get_workspace`` was given the id of no workspace the client is logged in to."""

    code = "workspace_not_found"
    http_status = 404


class FilespaceAlreadyLinkedError(ClientError, FilespaceError):
    """The filespace is already linked by this workspace in another way (another sync mode).

    A ``FilespaceError`` as in LucidLink's SDK (and a ``ClientError``, as before);
    ``filespace_id`` is the id of the filespace linked.
    """

    code = "filespace_already_linked"
    http_status = 409

    def __init__(self, message: str, *, path: str | None = None, filespace_id: str = "",
                 **details: Any) -> None:
        super().__init__(message, path=path, filespace_id=filespace_id, **details)
        self.filespace_id = filespace_id


ERROR_CODES: dict[str, type[LucidLinkError]] = {
    cls.code: cls
    for cls in (
        LucidLinkError,
        DaemonError,
        AuthenticationError,
        FilespaceError,
        ConfigurationError,
        HubUnavailableError,
        SessionExpiredError,
        FilespaceNotFoundError,
        InvalidPathError,
        LinkOutsideFilespaceError,
        BadRequestError,
        PayloadTooLargeError,
        PathNotFoundError,
        PathExistsError,
        IsADirectoryFilespaceError,
        NotADirectoryFilespaceError,
        DirectoryNotEmptyError,
        TooManyLinksError,
        NotASymlinkError,
        InvalidMoveError,
        AccessDeniedError,
        ReadOnlyError,
        IntegrityError,
        BlockMissingError,
        VersionConflictError,
        SyncTimeoutError,
        SignedUrlError,
        LockError,
        LockTimeoutError,
        LockConflictError,
        LeaseExpiredError,
        DataStoreInUseError,
        NotLinkedError,
        NotFoundError,
        ClientError,
        WorkspaceNotFoundError,
        FilespaceAlreadyLinkedError,
    )
}
"""Stable hub error code -> exception class. The hub and the SDK share this one table."""


def error_from_envelope(status: int, envelope: Any) -> LucidLinkError:
    """Build the exception for a hub error response (``{"error": {...}}``)."""
    body = envelope.get("error") if isinstance(envelope, dict) else None
    if not isinstance(body, dict):
        return LucidLinkError(f"the hub answered HTTP {status} without an error envelope")
    code = str(body.get("code", "internal"))
    message = str(body.get("message", f"HTTP {status}"))
    path = body.get("path")
    details = body.get("details") or {}
    cls = ERROR_CODES.get(code)
    if cls is None:
        cls = FilespaceError if 400 <= status < 500 else LucidLinkError
    err = cls(message, path=path if isinstance(path, str) else None, **details)
    err.code = code
    return err
