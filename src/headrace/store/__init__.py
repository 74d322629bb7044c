"""The metadata store: SQLAlchemy 2 Core on SQLite (embedded) or PostgreSQL (teams)."""

from headrace.store.engine import MetadataStore, open_store

__all__ = ["MetadataStore", "open_store"]
