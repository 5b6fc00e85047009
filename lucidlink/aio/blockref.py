"""One slot of a file's committed version, as a handle holds it."""

from __future__ import annotations

import attrs


@attrs.frozen
class BlockRef:
    """One slot of the file's committed version."""

    hash: str
    length: int
    used: int
