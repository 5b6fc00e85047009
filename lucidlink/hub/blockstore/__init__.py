"""Block stores: where the hub keeps immutable, content-addressed blocks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from lucidlink.exceptions import ConfigurationError
from lucidlink.hub.blockstore.base import BlockStore, PresignedRequest

if TYPE_CHECKING:
    from lucidlink.hub.config import HubSettings

__all__ = ["BlockStore", "PresignedRequest", "create_block_store"]


def create_block_store(settings: HubSettings,
                       environ: Mapping[str, str] = os.environ) -> BlockStore:
    """A directory in the data dir by default; an S3 bucket when ``block_store`` says so.

    The S3 store reads what the settings leave unset from the ``AWS_*`` variables of
    ``environ``. It needs obstore, imported only here: a hub on local blocks runs
    without it.
    """
    if not settings.block_store:
        from lucidlink.hub.blockstore.local import LocalBlockStore

        return LocalBlockStore(settings.blocks_path)
    try:
        from lucidlink.hub.blockstore.s3 import S3BlockStore
    except ImportError as exc:
        raise ConfigurationError(
            f"the block store {settings.block_store} needs obstore, which is not installed: "
            "pip install 'lucidlink[s3]'", field="block_store") from exc
    return S3BlockStore.from_url(
        settings.block_store, environ, endpoint=settings.s3_endpoint_url,
        region=settings.s3_region, access_key=settings.s3_access_key_id,
        secret_key=settings.s3_secret_access_key)
