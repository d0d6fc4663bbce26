"""The built-in outbox: records messages instead of sending them (a test and dry-run backend)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from integrations.capabilities import Message
from tool_server.clock import Clock
from tool_server.store.database import Database
from tool_server.store.tables import OutboxMessageRow, new_id

__all__ = ["Outbox"]

PROVIDER = "outbox"


def _to_message(row: OutboxMessageRow) -> Message:
    return Message(
        id=row.id,
        to=row.to_number,
        body=row.body,
        channel="whatsapp" if row.channel == "whatsapp" else "sms",
        status=row.status,
        created_at=row.created_at,
        provider=PROVIDER,
        raw={"id": row.id},
    )


class Outbox:
    """Records each message with status `recorded`; nothing leaves the machine."""

    name = PROVIDER

    def __init__(self, db: Database, agent_id: str, clock: Clock) -> None:
        self._db = db
        self._agent_id = agent_id
        self._clock = clock

    async def send_sms(
        self,
        to: str,
        body: str,
        *,
        idempotency_key: str | None = None,
        earlier_attempt_at: datetime | None = None,
    ) -> Message:
        """Record the message; under an `idempotency_key` already used, the message recorded then is returned."""

        def record(session: Session) -> Message:
            row = OutboxMessageRow(
                id=new_id("msg"),
                agent_id=self._agent_id,
                channel="sms",
                to_number=to,
                body=body,
                status="recorded",
                idempotency_key=idempotency_key,
                created_at=self._clock(),
            )
            session.add(row)
            session.flush()
            return _to_message(row)

        def existing(session: Session) -> Message:
            row = session.execute(
                select(OutboxMessageRow).where(
                    OutboxMessageRow.agent_id == self._agent_id, OutboxMessageRow.idempotency_key == idempotency_key
                )
            ).scalar_one()
            return _to_message(row)

        try:
            return await self._db.run(record)
        except IntegrityError:
            # The same idempotency key was recorded before: answer with that message.
            return await self._db.run(existing)

    async def messages(self) -> list[Message]:
        """Everything recorded for this agent, oldest first."""
        query = (
            select(OutboxMessageRow)
            .where(OutboxMessageRow.agent_id == self._agent_id)
            .order_by(OutboxMessageRow.created_at, OutboxMessageRow.id)
        )
        return await self._db.run(lambda session: [_to_message(row) for row in session.execute(query).scalars()])
