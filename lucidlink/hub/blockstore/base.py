"""The block store interface.

Blocks are immutable and addressed by ``<filespace-id>/<sha256>``. Clients move bytes
to and from the store directly, on short-lived URLs the store signs: the hub only
hands the URLs out, so its load grows with metadata operations, not with bytes.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

import attrs


@attrs.frozen
class PresignedRequest:
    """A signed block URL and the headers the client must send with it."""

    url: str
    headers: Mapping[str, str] = attrs.field(factory=dict)


class BlockStore(abc.ABC):
    """Holds block bytes and signs URLs to them."""

    #: Name of the engine, for logs and ``/healthz``.
    engine: str = "abstract"

    #: Whether this hub serves ``/v1/blocks/...`` itself (the local directory store). When
    #: it does not, clients upload straight to the store and the hub learns of an upload
    #: only when a commit names the block (it then checks it with :meth:`verify`).
    serves_blocks: bool = False

    async def open(self) -> None:
        """Prepare the store (create directories, check the bucket)."""

    async def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    def signed_url(self, base_url: str, filespace_id: str, digest: str, op: str, ttl: float) -> str:
        """A URL on which a client may ``GET`` (op ``get``) or ``PUT`` (op ``put``) one block."""

    async def sign_urls(self, base_url: str, filespace_id: str, digests: Sequence[str], op: str,
                        ttl: float) -> dict[str, PresignedRequest]:
        """Signed requests for a batch of blocks of one filespace, by digest."""
        return {d: PresignedRequest(self.signed_url(base_url, filespace_id, d, op, ttl))
                for d in digests}

    @abc.abstractmethod
    async def delete(self, filespace_id: str, digests: list[str]) -> None:
        """Delete blocks (missing ones are ignored)."""

    @abc.abstractmethod
    async def exists(self, filespace_id: str, digest: str) -> bool:
        """Whether the store holds the block."""

    async def stored_length(self, filespace_id: str, digest: str) -> int | None:
        """The length of the stored block, ``None`` if it is missing (or not known)."""
        return None

    async def verify(self, filespace_id: str, digest: str, length: int) -> bool:
        """Whether the stored block is ``length`` bytes that hash to ``digest``.

        A store the hub writes itself checked the bytes before storing them, so by
        default this only asks whether the block is there.
        """
        return await self.exists(filespace_id, digest)
