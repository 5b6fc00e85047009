"""Exit codes and the one-line error every expected failure becomes."""

from __future__ import annotations

import errno

from lucidlink.exceptions import LucidLinkError

EXIT_OK = 0
"""The command did what was asked."""
EXIT_FAILURE = 1
"""The command ran and failed (a missing path, a refused token, an unreachable hub...)."""
EXIT_USAGE = 2
"""The command line was wrong (an unknown option, a missing argument, a bad URL)."""
EXIT_INTERRUPTED = 130
"""Ctrl-C (128 + SIGINT, as shells report it)."""


class CommandError(LucidLinkError):
    """An expected failure of a command: printed as one line, exit code :data:`EXIT_FAILURE`."""

    code = "command_failed"


class UsageProblem(CommandError):
    """A command line that cannot be run as given: exit code :data:`EXIT_USAGE`."""

    code = "usage"


class Interrupted(CommandError):
    """The user pressed Ctrl-C; what was in flight was cleaned up."""

    code = "interrupted"


def describe(exc: BaseException) -> str:
    """The one-line message for an expected error (never a traceback, never a token)."""
    if isinstance(exc, LucidLinkError):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        hint = _OS_HINTS.get(exc.errno or 0, "")
        text = f"{where}{exc.strerror}{hint}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


_OS_HINTS = {
    errno.ENOENT: " (check the path)",
    errno.EACCES: " (check its permissions)",
    errno.ENOSPC: " (free some disk space and retry)",
    errno.EISDIR: " (pass -r to copy a directory)",
}
