"""Connectors' send records in the database: a retried send finds its first attempt in any process.

The server hands every connector a `DatabaseSendRecords` for its connection (see
`integrations.common.send_records`). Each method is one short transaction on a database thread;
a send already costs a provider round trip, so one more local write per send is small. Records
older than `RETENTION` (longer than any idempotency key is kept) are pruned now and then.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from tool_server.store.database import Database
from tool_server.store.tables import SendRecordRow

__all__ = ["RETENTION", "DatabaseSendRecords"]

# Idempotency keys live 24 hours (48 with a call id); a record outliving them guards nothing.
RETENTION = timedelta(days=3)
_PRUNE_EVERY_SECONDS = 3600.0
_TABLE: Any = SendRecordRow.__table__
_NAME_LIMIT = 300
# Last prune per database, by monotonic time: one process prunes once an hour, not once a send.
_last_pruned: dict[str, float] = {}


def _name(kind: str, value: str) -> str:
    name = f"{kind}:{value}"
    if len(name) <= _NAME_LIMIT:
        return name
    return f"{kind}#{hashlib.sha256(value.encode('utf-8')).hexdigest()}"


def _now() -> datetime:
    # Wall clock, not the business clock: retention measures real age, which a test's frozen clock must not stop.
    return datetime.now(UTC)


class DatabaseSendRecords:
    """One connection's send records, in the `send_records` table every process shares."""

    def __init__(self, db: Database, connection_id: str) -> None:
        self._db = db
        self._connection_id = connection_id

    async def get(self, key: str) -> dict[str, Any] | None:
        return await self._db.execute(partial(self._get, name=_name("key", key)))

    async def put(self, key: str, record: dict[str, Any]) -> None:
        await self._db.execute(partial(self._put, name=_name("key", key), record=record))
        await self._maybe_prune()

    async def forget(self, key: str) -> None:
        await self._db.execute(partial(self._forget, name=_name("key", key)))

    async def claim(self, object_id: str, key: str) -> bool:
        return await self._db.execute(partial(self._claim, name=_name("object", object_id), key=key))

    def _get(self, connection: Connection, name: str) -> dict[str, Any] | None:
        row = connection.execute(
            select(_TABLE.c.record).where(_TABLE.c.connection_id == self._connection_id, _TABLE.c.name == name)
        ).first()
        return None if row is None else dict(row.record)

    def _put(self, connection: Connection, name: str, record: dict[str, Any]) -> None:
        now = _now()
        changed = connection.execute(
            update(_TABLE)
            .where(_TABLE.c.connection_id == self._connection_id, _TABLE.c.name == name)
            .values(record=record, updated_at=now)
        ).rowcount
        if not changed:
            self._insert_absent(connection, name, record, now)
            # Inserted by another process between the two: the later write wins, as with one process.
            connection.execute(
                update(_TABLE)
                .where(_TABLE.c.connection_id == self._connection_id, _TABLE.c.name == name)
                .values(record=record, updated_at=now)
            )

    def _forget(self, connection: Connection, name: str) -> None:
        connection.execute(delete(_TABLE).where(_TABLE.c.connection_id == self._connection_id, _TABLE.c.name == name))

    def _claim(self, connection: Connection, name: str, key: str) -> bool:
        self._insert_absent(connection, name, {"key": key}, _now())
        owner = self._get(connection, name)
        return owner is not None and owner.get("key") == key

    def _insert_absent(self, connection: Connection, name: str, record: dict[str, Any], now: datetime) -> None:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        connection.execute(
            dialect.insert(_TABLE)
            .values(connection_id=self._connection_id, name=name, record=record, updated_at=now)
            .on_conflict_do_nothing(index_elements=["connection_id", "name"])
        )

    async def _maybe_prune(self) -> None:
        url = str(self._db.url)
        moment = time.monotonic()
        last = _last_pruned.get(url)
        if last is not None and moment - last < _PRUNE_EVERY_SECONDS:
            return
        _last_pruned[url] = moment
        await self._db.execute(partial(_prune, before=_now() - RETENTION))


def _prune(connection: Connection, before: datetime) -> None:
    connection.execute(delete(_TABLE).where(_TABLE.c.updated_at < before))
