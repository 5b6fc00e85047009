"""Metadata stores: where the hub keeps its namespace, versions, tokens and journal."""

from lucidlink.hub.store.base import MetadataStore, Row, Tx

__all__ = ["MetadataStore", "Row", "Tx"]
