"""The daemon's SQLite metadata store (``<data-root>/berth.db``); schema in ``schema.py``."""

from berth.metadata.store import ContainerRow, MetadataStore

__all__ = ["ContainerRow", "MetadataStore"]
