"""What was sent under each idempotency key, so a retried send does not text twice.

Twilio has no idempotency key. Dispatch already stops two calls with the same key from running
at once and replays a completed call, but it frees the key after a provider error so the call
can be retried. After an *ambiguous* failure (5xx, timeout) Twilio may nevertheless have created
the message, so the ledger keeps the attempt without a message; the next send with that key first
looks for a matching message at Twilio (`is_same_send`) and answers with it instead of sending.
The ledger lives in the connection's send records (the server's database), so the retry may run
in any process; see the connector for the guarantee this gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from integrations.capabilities.models import Message
from integrations.common.send_records import SendRecords
from integrations.twilio.mappers import parse_rfc2822

__all__ = ["CLOCK_SKEW", "Attempt", "SentLedger", "TemplateSend", "is_same_send"]

# Twilio stamps date_created with its own clock, to the second; allow for skew against ours.
CLOCK_SKEW = timedelta(minutes=2)


@dataclass(frozen=True)
class TemplateSend:
    """An approved WhatsApp template as sent: its name here, its Content SID, its variables."""

    name: str
    content_sid: str
    # The variables as the ContentVariables JSON string Twilio is sent, e.g. '{"1":"Ann"}'.
    variables_json: str
    variables: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attempt:
    """One send under a key: what was asked, and the message once Twilio confirmed it."""

    # The To address as Twilio lists it: "+1…" for SMS, "whatsapp:+1…" for WhatsApp.
    to: str
    # The free text ("" for a template).
    body: str
    # The From address or Messaging Service SID, as Twilio lists it ("whatsapp:+1…" for WhatsApp).
    sender: str
    # Wall-clock time just before the first request (not the connector's clock, which tests may pin).
    started_at: datetime
    channel: Literal["sms", "whatsapp"] = "sms"
    template: TemplateSend | None = None
    # None while the outcome is unknown (in flight, or ended without an answer).
    message: Message | None = None

    def same_request(self, other: Attempt) -> bool:
        """Whether `other` asks for the same message: same channel, recipient, sender and content."""
        return (self.channel, self.to, self.body, self.sender, self.template) == (
            other.channel,
            other.to,
            other.body,
            other.sender,
            other.template,
        )


class SentLedger:
    """Idempotency key → the attempt made under it, with its message once Twilio confirmed one.

    Kept in the connection's `SendRecords` (the server's database), so a retry in another
    process or worker sees the first attempt; a message is claimed by its key there, so a lookup
    for another key's lost text never adopts it.
    """

    def __init__(self, records: SendRecords) -> None:
        self._records = records

    async def get(self, key: str) -> Attempt | None:
        record = await self._records.get(key)
        return None if record is None else _attempt(record)

    async def begin(self, key: str, attempt: Attempt) -> None:
        """Record an attempt before its request goes out, so a cancelled call still leaves a trace."""
        await self._records.put(key, _record(attempt))

    async def adopt(self, key: str, attempt: Attempt) -> None:
        """Take over another process's unanswered attempt, unless this key already has a record.

        `_send_once` then treats it like an ambiguous attempt of its own: it looks for the message
        that attempt may have sent before sending.
        """
        if await self._records.get(key) is None:
            await self._records.put(key, _record(attempt))

    async def complete(self, key: str, attempt: Attempt, message: Message) -> Message:
        await self._records.claim(message.id, key)
        await self._records.put(key, _record(replace(attempt, message=message)))
        return message

    async def claim(self, key: str, message_id: str) -> bool:
        """Attribute a message a lookup found to `key`; False if another key's send made it."""
        return await self._records.claim(message_id, key)

    async def forget(self, key: str) -> None:
        """The attempt certainly sent nothing (Twilio refused it): a retry may send afresh."""
        await self._records.forget(key)


def _record(attempt: Attempt) -> dict[str, Any]:
    template = attempt.template
    return {
        "to": attempt.to,
        "body": attempt.body,
        "sender": attempt.sender,
        "started_at": attempt.started_at.isoformat(),
        "channel": attempt.channel,
        "template": None
        if template is None
        else {
            "name": template.name,
            "content_sid": template.content_sid,
            "variables_json": template.variables_json,
            "variables": list(template.variables),
        },
        "message": None if attempt.message is None else attempt.message.model_dump(mode="json"),
    }


def _attempt(record: Mapping[str, Any]) -> Attempt:
    template = record.get("template")
    message = record.get("message")
    return Attempt(
        to=record["to"],
        body=record["body"],
        sender=record["sender"],
        started_at=datetime.fromisoformat(record["started_at"]),
        channel=record["channel"],
        template=None
        if template is None
        else TemplateSend(
            name=template["name"],
            content_sid=template["content_sid"],
            variables_json=template["variables_json"],
            variables=tuple(template["variables"]),
        ),
        message=None if message is None else Message.model_validate(message),
    )


def is_same_send(payload: Mapping[str, Any], attempt: Attempt) -> bool:
    """Whether a Message resource Twilio lists is the one `attempt` may have created (or another
    key's identical text: the caller claims it before adopting it)."""
    created = parse_rfc2822(payload.get("date_created"))
    return (
        str(payload.get("direction", "")).startswith("outbound")
        and payload.get("to") == attempt.to
        and _same_content(str(payload.get("body") or ""), attempt)
        and attempt.sender in (payload.get("from"), payload.get("messaging_service_sid"))
        and created is not None
        and created >= attempt.started_at - CLOCK_SKEW
    )


def _same_content(listed_body: str, attempt: Attempt) -> bool:
    """Whether a listed message's body fits what the attempt sent.

    Free text must be equal. A template message's resource carries no ContentSid, and its body
    is the text Twilio rendered from the template, which this connector never sees; so it fits
    when every variable value appears in it. The recipient, sender, time and the claimed SIDs
    already narrow the candidates to this connection's recent unclaimed messages to that person.
    """
    # unconfirmed: that Twilio lists a template message with the rendered template text as `body`.
    if attempt.template is None:
        return listed_body == attempt.body
    return all(value in listed_body for value in attempt.template.variables)
