"""Block stores: where the hub keeps immutable, content-addressed blocks."""

from lucidlink.hub.blockstore.base import BlockStore

__all__ = ["BlockStore"]
