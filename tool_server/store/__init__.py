"""Persistence: SQLAlchemy 2 tables, async engine set-up and Alembic migrations."""

from tool_server.store.database import Database, async_database_url, sync_database_url

__all__ = ["Database", "async_database_url", "sync_database_url"]
