"""Messages sent through any provider, their delivery status, and who opted out of texts."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from integrations.capabilities import Message
from tool_server.clock import Clock
from tool_server.store.database import Database
from tool_server.store.tables import OptOutRow, SentMessageRow, new_id

__all__ = ["MessageLog"]


class MessageLog:
    """The server's record of outbound messages and opt-outs, whatever provider sent them.

    Opt-outs are the business's compliance record: a number that texted STOP to any of the
    agent's senders is not texted again by any provider until it texts START.
    """

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def record_sent(self, agent_id: str, connection_id: str | None, message: Message) -> None:
        def work(session: Session) -> None:
            exists = session.execute(
                select(SentMessageRow.id).where(
                    SentMessageRow.provider == message.provider, SentMessageRow.provider_message_id == message.id
                )
            ).first()
            if exists is None:
                now = self._clock()
                session.add(
                    SentMessageRow(
                        id=new_id("sms"),
                        agent_id=agent_id,
                        connection_id=connection_id,
                        provider=message.provider,
                        provider_message_id=message.id,
                        channel=message.channel,
                        to_number=message.to,
                        body=message.body,
                        status=message.status,
                        error_code=None,
                        created_at=now,
                        updated_at=now,
                    )
                )

        await self._db.run(work)

    async def update_status(self, provider: str, provider_message_id: str, status: str, error_code: int | None) -> bool:
        """Record a delivery update; False when the message is unknown."""

        def work(session: Session) -> bool:
            result = session.execute(
                update(SentMessageRow)
                .where(SentMessageRow.provider == provider, SentMessageRow.provider_message_id == provider_message_id)
                .values(status=status, error_code=error_code, updated_at=self._clock())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

        return await self._db.run(work)

    async def status(self, provider: str, provider_message_id: str) -> tuple[str, int | None] | None:
        def work(session: Session) -> tuple[str, int | None] | None:
            row = session.execute(
                select(SentMessageRow.status, SentMessageRow.error_code).where(
                    SentMessageRow.provider == provider, SentMessageRow.provider_message_id == provider_message_id
                )
            ).first()
            return None if row is None else (row[0], row[1])

        return await self._db.run(work)

    async def is_opted_out(self, agent_id: str, phone: str) -> bool:
        def work(session: Session) -> bool:
            query = select(OptOutRow.phone).where(OptOutRow.agent_id == agent_id, OptOutRow.phone == phone)
            return session.execute(query).first() is not None

        return await self._db.run(work)

    async def set_opt_out(self, agent_id: str, phone: str, opted_out: bool) -> None:
        def work(session: Session) -> None:
            if not opted_out:
                session.execute(delete(OptOutRow).where(OptOutRow.agent_id == agent_id, OptOutRow.phone == phone))
            elif session.get(OptOutRow, (agent_id, phone)) is None:
                session.add(OptOutRow(agent_id=agent_id, phone=phone, opted_out_at=self._clock()))

        await self._db.run(work)
