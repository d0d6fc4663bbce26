"""Engine and session set-up for any SQLAlchemy URL.

SQLite is the embedded default. It runs in WAL mode with `synchronous=NORMAL` so readers never
wait for a writer and a commit costs no fsync, and a generous busy timeout so concurrent writers
queue instead of failing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

__all__ = ["Database", "async_database_url", "sync_database_url"]

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def _with_driver(url: str, drivers: dict[str, str]) -> URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in drivers and parsed.drivername != drivers[backend]:
        # Keep an explicit async driver the user chose (asyncpg) when building async URLs.
        if drivers is _ASYNC_DRIVERS and parsed.drivername in ("postgresql+asyncpg", "postgresql+psycopg"):
            return parsed
        parsed = parsed.set(drivername=drivers[backend])
    return parsed


def async_database_url(url: str) -> URL:
    """The URL with an async driver: sqlite -> aiosqlite, postgresql -> psycopg (v3)."""
    return _with_driver(url, _ASYNC_DRIVERS)


def sync_database_url(url: str) -> URL:
    """The URL with a sync driver, for Alembic."""
    return _with_driver(url, _SYNC_DRIVERS)


def ensure_sqlite_directory(url: URL) -> None:
    """Create the folder of a SQLite file so a fresh checkout needs no manual step."""
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """An async engine plus its session factory. Create one per process (per event loop)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = async_database_url(url)
        ensure_sqlite_directory(self.url)
        options: dict[str, Any] = {"echo": echo}
        if self.url.get_backend_name() == "sqlite":
            options["connect_args"] = {"timeout": 30}
            options["pool_size"] = 8
            options["max_overflow"] = 24
        else:
            options["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        if self.url.get_backend_name() == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    async def dispose(self) -> None:
        await self.engine.dispose()
