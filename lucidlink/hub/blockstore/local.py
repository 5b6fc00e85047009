"""The embedded block store: a directory in the hub's data dir, served by the hub."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import anyio.to_thread

from lucidlink.hub.blockstore.base import BlockStore
from lucidlink.hub.signing import UrlSigner


class LocalBlockStore(BlockStore):
    """Blocks as files ``<root>/<filespace-id>/<hash[:2]>/<hash>``.

    Writes go to a temporary file that is renamed into place, so a reader never sees a
    partial block and a retried upload is harmless.
    """

    engine = "local"
    serves_blocks = True

    def __init__(self, root: Path | str, signer: UrlSigner) -> None:
        self.root = Path(root)
        self.signer = signer

    async def open(self) -> None:
        await anyio.to_thread.run_sync(lambda: self.root.mkdir(parents=True, exist_ok=True))

    def path_of(self, filespace_id: str, digest: str) -> Path:
        """Where a block lives on disk."""
        return self.root / filespace_id / digest[:2] / digest

    def signed_url(self, base_url: str, filespace_id: str, digest: str, op: str, ttl: float) -> str:
        return self.signer.sign(base_url, filespace_id, digest, op, ttl)

    def _write(self, filespace_id: str, digest: str, data: bytes) -> None:
        final = self.path_of(filespace_id, digest)
        if final.exists():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{digest}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)

    async def write_verified(self, filespace_id: str, digest: str, data: bytes) -> None:
        """Store bytes already checked against ``digest`` (atomically, off the event loop)."""
        await anyio.to_thread.run_sync(self._write, filespace_id, digest, data)

    async def delete(self, filespace_id: str, digests: list[str]) -> None:
        def _delete() -> None:
            for digest in digests:
                try:
                    self.path_of(filespace_id, digest).unlink()
                except FileNotFoundError:
                    pass

        await anyio.to_thread.run_sync(_delete)

    async def exists(self, filespace_id: str, digest: str) -> bool:
        return await anyio.to_thread.run_sync(self.path_of(filespace_id, digest).exists)
