"""The built-in outbox: records messages instead of sending them (a test and dry-run backend).

It serves every outbound capability, so an agent can be tried end to end before anything real
is connected: texts (SMS and WhatsApp), email, team messages and automation events.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from integrations.capabilities import (
    EmailRequest,
    Message,
    TeamMessage,
    TeamPost,
    WhatsAppTemplate,
    WorkflowRun,
)
from tool_server.clock import Clock
from tool_server.store.database import Database
from tool_server.store.tables import OutboxMessageRow, new_id

__all__ = ["Outbox"]

PROVIDER = "outbox"
TEAM_CHANNEL = "team"


def _to_message(row: OutboxMessageRow) -> Message:
    channel = row.channel if row.channel in ("sms", "whatsapp", "email") else "sms"
    return Message(
        id=row.id,
        to=row.to_number,
        body=row.body,
        channel=channel,
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
        return _to_message(await self._record("sms", to, body, idempotency_key))

    def whatsapp_templates(self) -> list[str]:
        """The outbox records any template name it is given: it has no list of its own."""
        return []

    async def send_whatsapp(
        self,
        to: str,
        *,
        body: str | None = None,
        template: WhatsAppTemplate | None = None,
        idempotency_key: str | None = None,
        earlier_attempt_at: datetime | None = None,
    ) -> Message:
        """Record a WhatsApp message: the text, or `template <name> <variables>`."""
        if (body is None) == (template is None):
            raise ValueError("give exactly one of body or template")
        text = body if body is not None else f"template {template.name} {json.dumps(template.variables)}"  # type: ignore[union-attr]
        return _to_message(await self._record("whatsapp", to, text, idempotency_key))

    async def send_email(self, request: EmailRequest) -> Message:
        """Record an email: subject and text, or the template id and its data."""
        if request.template_id:
            text = f"template {request.template_id} {json.dumps(request.template_data, sort_keys=True)}"
        else:
            text = f"{request.subject or ''}\n\n{request.text or ''}"
        return _to_message(await self._record("email", request.to, text, request.idempotency_key))

    async def post_team_message(self, message: TeamMessage) -> TeamPost:
        """Record a team message as its plain text."""
        row = await self._record("team", TEAM_CHANNEL, message.text, message.idempotency_key)
        return TeamPost(id=row.id, channel=TEAM_CHANNEL, text=row.body, provider=PROVIDER, raw={"id": row.id})

    async def trigger_workflow(
        self, event: str, data: dict[str, Any], *, idempotency_key: str | None = None
    ) -> WorkflowRun:
        """Record the event and its data (as JSON)."""
        row = await self._record("automation", event, json.dumps(data, sort_keys=True, default=str), idempotency_key)
        return WorkflowRun(id=row.id, event=event, status="recorded", provider=PROVIDER, raw={"id": row.id})

    async def _record(self, channel: str, to: str, body: str, idempotency_key: str | None) -> OutboxMessageRow:
        def record(session: Session) -> OutboxMessageRow:
            row = OutboxMessageRow(
                id=new_id("msg"),
                agent_id=self._agent_id,
                channel=channel,
                to_number=to,
                body=body,
                status="recorded",
                idempotency_key=idempotency_key,
                created_at=self._clock(),
            )
            session.add(row)
            session.flush()
            session.expunge(row)
            return row

        def existing(session: Session) -> OutboxMessageRow:
            row = session.execute(
                select(OutboxMessageRow).where(
                    OutboxMessageRow.agent_id == self._agent_id, OutboxMessageRow.idempotency_key == idempotency_key
                )
            ).scalar_one()
            session.expunge(row)
            return row

        try:
            return await self._db.run(record)
        except IntegrityError:
            # The same idempotency key was recorded before: answer with that message.
            return await self._db.run(existing)

    async def messages(self) -> list[Message]:
        """Every text and email recorded for this agent, oldest first."""
        query = (
            select(OutboxMessageRow)
            .where(OutboxMessageRow.agent_id == self._agent_id)
            .where(OutboxMessageRow.channel.in_(("sms", "whatsapp", "email")))
            .order_by(OutboxMessageRow.created_at, OutboxMessageRow.id)
        )
        return await self._db.run(lambda session: [_to_message(row) for row in session.execute(query).scalars()])
