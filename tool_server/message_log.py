"""Messages sent through any provider, their delivery history, WhatsApp windows, and who opted out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from integrations.capabilities import Message
from tool_server.clock import Clock
from tool_server.store.database import Database
from tool_server.store.tables import MessageEventRow, OptOutRow, SentMessageRow, WhatsAppSessionRow, new_id

__all__ = ["WHATSAPP_WINDOW", "MessageLog", "MessageOrigin", "MessageRecord", "StatusChange", "StatusStep"]

# WhatsApp's customer-service window: free text only this long after the person's last message.
WHATSAPP_WINDOW = timedelta(hours=24)

# How far along a message is. A late or repeated callback ("sent" after "delivered") joins the
# history but never moves the current status back; a failure is final.
_PROGRESS = {
    "recorded": 0,
    "accepted": 0,
    "scheduled": 0,
    "queued": 0,
    "sending": 1,
    "deferred": 1,
    "sent": 2,
    "delivered": 3,
    "read": 4,
    "undelivered": 5,
    "failed": 5,
    "canceled": 5,
}
FAILED_STATUSES = frozenset({"failed", "undelivered"})


class StatusStep(BaseModel):
    """One delivery update, as the provider reported it."""

    status: str
    error_code: int | None = None
    error_detail: str | None = None
    occurred_at: datetime | None = Field(default=None, description="When the provider says it happened.")
    received_at: datetime = Field(description="When this server heard of it.")


class MessageRecord(BaseModel):
    """A message as `GET /v1/messages/{id}` shows it."""

    id: str
    channel: str
    provider: str
    provider_message_id: str
    to: str
    body: str
    status: str
    error_code: int | None = None
    error_detail: str | None = None
    tool: str | None = Field(default=None, description="The tool that sent it (send_sms, send_email…).")
    call_id: str | None = Field(default=None, description="The voice platform's call id it was sent for.")
    call_record_id: str | None = Field(default=None, description="The call record whose post-call sync sent it.")
    created_at: datetime
    updated_at: datetime
    history: list[StatusStep]


@dataclass(frozen=True)
class MessageOrigin:
    """What caused a message: the tool and the call it served."""

    tool: str | None = None
    call_id: str | None = None
    record_id: str | None = None


@dataclass(frozen=True)
class StatusChange:
    """A delivery update applied to a known message: what the webhook route may act on."""

    message_id: str
    agent_id: str
    channel: str
    to: str
    status: str
    error_code: int | None
    record_id: str | None
    newly_failed: bool


def _record(row: SentMessageRow, events: list[MessageEventRow]) -> MessageRecord:
    return MessageRecord(
        id=row.id,
        channel=row.channel,
        provider=row.provider,
        provider_message_id=row.provider_message_id,
        to=row.to_number,
        body=row.body,
        status=row.status,
        error_code=row.error_code,
        error_detail=row.error_detail,
        tool=row.tool,
        call_id=row.call_id,
        call_record_id=row.record_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        history=[
            StatusStep(
                status=event.status,
                error_code=event.error_code,
                error_detail=event.error_detail,
                occurred_at=event.occurred_at,
                received_at=event.received_at,
            )
            for event in events
        ],
    )


class MessageLog:
    """The server's record of outbound messages, their delivery history, and opt-outs, whatever provider sent them.

    Opt-outs are the business's compliance record: a number that texted STOP to any of the
    agent's senders, by SMS or WhatsApp, is not texted again on either channel by any provider
    until it texts START.
    """

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def record_sent(
        self, agent_id: str, connection_id: str | None, message: Message, origin: MessageOrigin | None = None
    ) -> str:
        """Keep a message a provider accepted (once per provider message id); answers its record id."""
        origin = origin or MessageOrigin()

        def work(session: Session) -> str:
            exists = session.execute(
                select(SentMessageRow.id).where(
                    SentMessageRow.provider == message.provider, SentMessageRow.provider_message_id == message.id
                )
            ).scalar()
            if exists is not None:
                return exists
            now = self._clock()
            row = SentMessageRow(
                id=new_id("msg"),
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
                tool=origin.tool,
                call_id=origin.call_id,
                record_id=origin.record_id,
            )
            session.add(row)
            session.flush()
            session.add(MessageEventRow(message_id=row.id, status=message.status, received_at=now))
            return row.id

        return await self._db.run(work)

    async def update_status(
        self,
        provider: str,
        provider_message_id: str,
        status: str,
        error_code: int | None,
        error_detail: str | None = None,
        occurred_at: datetime | None = None,
    ) -> StatusChange | None:
        """Add a delivery update to the message's history; None when the message is unknown.

        A repeated update (providers retry callbacks) is not added twice.
        """

        def work(session: Session) -> StatusChange | None:
            row = session.execute(
                select(SentMessageRow)
                .where(SentMessageRow.provider == provider, SentMessageRow.provider_message_id == provider_message_id)
                .with_for_update()
            ).scalar_one_or_none()
            if row is None:
                return None
            seen = session.execute(
                select(MessageEventRow.id).where(
                    MessageEventRow.message_id == row.id,
                    MessageEventRow.status == status,
                    MessageEventRow.error_code.is_(None)
                    if error_code is None
                    else MessageEventRow.error_code == error_code,
                )
            ).first()
            was_failed = row.status in FAILED_STATUSES
            if seen is None:
                now = self._clock()
                session.add(
                    MessageEventRow(
                        message_id=row.id,
                        status=status,
                        error_code=error_code,
                        error_detail=error_detail,
                        occurred_at=occurred_at,
                        received_at=now,
                    )
                )
                if _PROGRESS.get(status, 1) >= _PROGRESS.get(row.status, 0):
                    row.status, row.error_code, row.updated_at = status, error_code, now
                    row.error_detail = error_detail[:255] if error_detail else None
            return StatusChange(
                message_id=row.id,
                agent_id=row.agent_id,
                channel=row.channel,
                to=row.to_number,
                status=row.status,
                error_code=row.error_code,
                record_id=row.record_id,
                newly_failed=seen is None and not was_failed and row.status in FAILED_STATUSES,
            )

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

    async def get(self, agent_id: str, message_id: str) -> MessageRecord | None:
        """One of the agent's messages by this server's id or the provider's, with its history."""

        def work(session: Session) -> MessageRecord | None:
            row = session.execute(
                select(SentMessageRow)
                .where(
                    SentMessageRow.agent_id == agent_id,
                    or_(SentMessageRow.id == message_id, SentMessageRow.provider_message_id == message_id),
                )
                .limit(1)
            ).scalar_one_or_none()
            return None if row is None else _record(row, self._events(session, [row.id])[row.id])

        return await self._db.run(work)

    async def by_id(self, message_id: str) -> MessageRecord | None:
        """A message by this server's id, whatever its agent (for the server's own jobs, never a caller)."""

        def work(session: Session) -> MessageRecord | None:
            row = session.get(SentMessageRow, message_id)
            return None if row is None else _record(row, self._events(session, [row.id])[row.id])

        return await self._db.run(work)

    async def recent(self, agent_id: str, *, to: str | None = None, limit: int = 50) -> list[MessageRecord]:
        """The agent's messages, newest first, optionally to one phone number or address."""

        def work(session: Session) -> list[MessageRecord]:
            query = select(SentMessageRow).where(SentMessageRow.agent_id == agent_id)
            if to is not None:
                query = query.where(SentMessageRow.to_number == to)
            rows = session.execute(
                query.order_by(SentMessageRow.created_at.desc(), SentMessageRow.id).limit(limit)
            ).scalars()
            listed = list(rows)
            events = self._events(session, [row.id for row in listed])
            return [_record(row, events[row.id]) for row in listed]

        return await self._db.run(work)

    @staticmethod
    def _events(session: Session, message_ids: list[str]) -> dict[str, list[MessageEventRow]]:
        found: dict[str, list[MessageEventRow]] = {message_id: [] for message_id in message_ids}
        if message_ids:
            query = (
                select(MessageEventRow)
                .where(MessageEventRow.message_id.in_(message_ids))
                .order_by(MessageEventRow.received_at, MessageEventRow.id)
            )
            for event in session.execute(query).scalars():
                found[event.message_id].append(event)
        return found

    async def record_inbound(self, agent_id: str, phone: str, channel: str, at: datetime | None = None) -> None:
        """Someone messaged the agent's number; a WhatsApp message (re)opens the 24-hour window."""
        if channel != "whatsapp":
            return
        when = at or self._clock()

        def work(session: Session) -> None:
            row = session.get(WhatsAppSessionRow, (agent_id, phone), with_for_update=True)
            if row is None:
                session.add(WhatsAppSessionRow(agent_id=agent_id, phone=phone, last_inbound_at=when))
            elif row.last_inbound_at < when:
                row.last_inbound_at = when

        await self._db.run(work)

    async def whatsapp_window_open(self, agent_id: str, phone: str, now: datetime) -> bool:
        """Whether free text may go to `phone` on WhatsApp now (their last message is under 24 hours old)."""

        def work(session: Session) -> datetime | None:
            row = session.get(WhatsAppSessionRow, (agent_id, phone))
            return None if row is None else row.last_inbound_at

        last = await self._db.run(work)
        return last is not None and now - last < WHATSAPP_WINDOW

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
