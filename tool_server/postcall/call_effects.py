"""What a call did through this server's own tools: the first source of truth for its post-call sync.

During a call, the agent books, creates contacts, makes payment links and sends texts through our
tools, under the platform's call id. The audit log keeps each write's result (redacted: phones and
emails masked, names and ids kept). A platform's end-of-call report may say less, or say it in a
shape we read less well, so before anything else the sync reads those results and prefers them:
the appointment the call booked (or cancelled) and the name the caller gave.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from tool_server.calls.models import AppointmentMention, CallRecord
from tool_server.store.database import Database
from tool_server.store.tables import ToolCallRow

__all__ = ["CallEffects", "read_call_effects"]

_NAME_ARGUMENTS = {
    "book_appointment": "caller_name",
    "create_contact": "contact_name",
    "create_payment_link": "customer_name",
}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


@dataclass(frozen=True)
class CallEffects:
    """What the call's own tool calls did, in the order they did it."""

    appointment: AppointmentMention | None = None
    caller_name: str | None = None
    contact_id: str | None = None
    payment_link_id: str | None = None
    payment_link_url: str | None = None
    # A text went out during the call after its payment link was made (so the link reached the caller).
    payment_link_texted: bool = False

    def applied_to(self, record: CallRecord) -> CallRecord:
        """`record` with what the tools did put first: their appointment and the caller's own name."""
        updates: dict[str, Any] = {}
        if self.appointment is not None:
            updates["appointment"] = self.appointment
        if self.caller_name:
            updates["caller_name"] = self.caller_name
        if self.contact_id or self.payment_link_id:
            updates["analysis"] = {
                **record.analysis,
                "during_call": {
                    key: value
                    for key, value in (("contact_id", self.contact_id), ("payment_link_id", self.payment_link_id))
                    if value
                },
            }
        return record.model_copy(update=updates) if updates else record


def _appointment(tool: str, result: dict[str, Any], current: AppointmentMention | None) -> AppointmentMention | None:
    found = _dict(result.get("appointment"))
    appointment_id, status = _text(found.get("appointment_id")), found.get("status")
    if appointment_id is None:
        return current
    if status == "cancelled" or tool == "cancel_appointment":
        if current is None or current.appointment_id in (None, appointment_id):
            return AppointmentMention(
                status="cancelled", appointment_id=appointment_id, start=_text(found.get("start"))
            )
        return current
    return AppointmentMention(
        status="booked",
        appointment_id=appointment_id,
        start=_text(found.get("start")),
        timezone=_text(found.get("timezone")),
        title=_text(found.get("notes")),
    )


def effects_of(rows: Sequence[tuple[str, dict[str, Any], dict[str, Any] | None]]) -> CallEffects:
    """The effects of a call's successful writes, given (tool, arguments, result) in call order."""
    appointment: AppointmentMention | None = None
    name = contact_id = link_id = link_url = None
    texted_after_link = False
    for tool, arguments, result in rows:
        result = _dict(result)
        if tool in ("book_appointment", "reschedule_appointment", "cancel_appointment"):
            appointment = _appointment(tool, result, appointment)
        if tool in _NAME_ARGUMENTS:
            name = _text(_dict(arguments).get(_NAME_ARGUMENTS[tool])) or name
        if tool == "create_contact":
            contact_id = _text(_dict(result.get("contact")).get("contact_id")) or contact_id
        elif tool == "create_payment_link":
            link = _dict(result.get("payment_link"))
            if _text(link.get("payment_link_id")):
                link_id, link_url, texted_after_link = link["payment_link_id"], _text(link.get("url")), False
        elif tool == "send_sms" and link_id is not None:
            texted_after_link = True
    return CallEffects(
        appointment=appointment,
        caller_name=name,
        contact_id=contact_id,
        payment_link_id=link_id,
        payment_link_url=link_url,
        payment_link_texted=texted_after_link,
    )


async def read_call_effects(db: Database, agent_id: str, call_id: str) -> CallEffects:
    """The effects of the writes the agent made during `call_id` (not those of the post-call sync)."""
    query = (
        select(ToolCallRow.tool, ToolCallRow.arguments, ToolCallRow.result)
        .where(
            ToolCallRow.agent_id == agent_id,
            # The audit column keeps the first 128 characters of a call id.
            ToolCallRow.call_id == call_id[:128],
            ToolCallRow.transport != "postcall",
            ToolCallRow.outcome == "OK",
        )
        .order_by(ToolCallRow.id)
    )
    rows = await db.run(lambda session: [(str(t), _dict(a), _dict(r)) for t, a, r in session.execute(query).all()])
    return effects_of(rows)
