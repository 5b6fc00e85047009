"""The block store interface.

Blocks are immutable and addressed by ``<filespace-id>/<sha256>``. Clients move bytes
to and from the store directly, on short-lived URLs the store signs: the hub only
hands the URLs out, so its load grows with metadata operations, not with bytes.
"""

from __future__ import annotations

import abc


class BlockStore(abc.ABC):
    """Holds block bytes and signs URLs to them."""

    #: Name of the engine, for logs and ``/healthz``.
    engine: str = "abstract"

    #: Whether this hub serves ``/v1/blocks/...`` itself (the local directory store).
    serves_blocks: bool = False

    async def open(self) -> None:
        """Prepare the store (create directories, check the bucket)."""

    async def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    def signed_url(self, base_url: str, filespace_id: str, digest: str, op: str, ttl: float) -> str:
        """A URL on which a client may ``GET`` (op ``get``) or ``PUT`` (op ``put``) one block."""

    @abc.abstractmethod
    async def delete(self, filespace_id: str, digests: list[str]) -> None:
        """Delete blocks (missing ones are ignored)."""

    @abc.abstractmethod
    async def exists(self, filespace_id: str, digest: str) -> bool:
        """Whether the store holds the block."""
