"""Persistence: SQLAlchemy 2 tables, engine set-up and Alembic migrations."""

from tool_server.store.database import Database, sync_database_url

__all__ = ["Database", "sync_database_url"]
