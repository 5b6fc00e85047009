"""Filespace path rules, shared by the hub and the SDK.

A filespace path is absolute and ``/``-separated. Empty components (``//``, a trailing
``/``) are ignored as POSIX does; ``.`` and ``..`` are refused rather than resolved, so
a path always names what it says. A name is at most :data:`MAX_NAME_BYTES` bytes of
UTF-8 and never contains NUL; a whole path at most :data:`MAX_PATH_BYTES`.
"""

from __future__ import annotations

from lucidlink.exceptions import InvalidPathError

MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096


def split_path(path: object) -> list[str]:
    """Validate ``path`` and return its components (``[]`` for the root).

    Raises
    ------
    InvalidPathError
        With a message naming the path and what is wrong with it.
    """
    if not isinstance(path, str):
        raise InvalidPathError(f"a path must be a string, not {type(path).__name__}")
    if "\x00" in path:
        raise InvalidPathError(f"path {_shown(path)!r} contains a NUL byte; remove it",
                               path=_shown(path))
    if path.isascii():  # every path of most filespaces: a character is a byte
        size = len(path)
    else:
        try:
            size = len(path.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidPathError(
                f"path {_shown(path)!r} is not valid UTF-8 (it holds a lone surrogate); pass text",
                path=_shown(path),
            ) from None
    if size > MAX_PATH_BYTES:
        raise InvalidPathError(
            f"path {_shown(path)!r} is {size} bytes long; the limit is {MAX_PATH_BYTES}",
            path=_shown(path),
        )
    parts = [p for p in path.split("/") if p]
    for part in parts:
        if part == "." or part == "..":
            raise InvalidPathError(
                f"path {_shown(path)!r} contains {part!r}; give a normalised absolute path",
                path=_shown(path),
            )
        if len(part) > MAX_NAME_BYTES // 4 and len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise InvalidPathError(
                f"name {part[:40]!r}... in {_shown(path)!r} is longer than {MAX_NAME_BYTES} bytes",
                path=_shown(path),
            )
    return parts


def _shown(path: str) -> str:
    """``path`` as an error message shows it (at most 200 characters)."""
    return path if len(path) <= 200 else path[:200] + "..."


def _plainly_canonical(path: str) -> bool:
    """Whether ``path`` is canonical and valid at a glance: short ASCII, ``/``-led, with no
    empty, ``.``-led or NUL part (what :func:`split_path` would accept and
    :func:`normalize_path` give back unchanged). Such paths skip the full validation,
    which a program writing small files pays several times per file."""
    return (path[:1] == "/" and path[-1:] != "/" and len(path) <= MAX_NAME_BYTES
            and path.isascii() and "//" not in path and "/." not in path
            and "\x00" not in path)


def normalize_path(path: object) -> str:
    """Return the canonical form of ``path``: ``/a/b`` (``/`` for the root)."""
    if type(path) is str and _plainly_canonical(path):
        return path
    return "/" + "/".join(split_path(path))


def join_path(parent: str, name: str) -> str:
    """Join a canonical directory path and a name."""
    return ("" if parent == "/" else parent) + "/" + name


def parent_and_name(path: str) -> tuple[str, str]:
    """Split a canonical path into its parent path and last name (root has no name).

    A path that is plainly canonical and valid (short ASCII, no empty, ``.``-led or NUL
    part) is split where its last ``/`` is; any other is validated as :func:`split_path`
    does (the same answer, or its error). Called several times per file written.
    """
    if _plainly_canonical(path):
        head, _, name = path.rpartition("/")
        return head or "/", name
    parts = split_path(path)
    if not parts:
        return "/", ""
    return "/" + "/".join(parts[:-1]), parts[-1]


def validate_name(name: object) -> str:
    """Validate a single path component."""
    if not isinstance(name, str) or not name:
        raise InvalidPathError("a name must be a non-empty string")
    if "/" in name:
        raise InvalidPathError(f"name {name!r} contains '/'; give a single name")
    split_path("/" + name)
    return name
