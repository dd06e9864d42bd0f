"""Content-addressed blob storage (``<data-root>/content``)."""

from berth.content.store import ContentStore, Info, LocalStore

__all__ = ["ContentStore", "Info", "LocalStore"]
