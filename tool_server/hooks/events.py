"""The events a subscriber can ask for, their envelope, and a sample of each (what Zapier shows during setup)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, get_args

__all__ = ["EVENTS", "HookEvent", "envelope", "sample"]

HookEvent = Literal[
    "call.completed", "appointment.booked", "appointment.cancelled", "contact.created", "payment.completed"
]
EVENTS: tuple[HookEvent, ...] = get_args(HookEvent)

_SAMPLE_TIME = datetime(2026, 3, 9, 15, 0, tzinfo=UTC).isoformat()

# Shaped like the real payloads (same keys, obviously fake values), so a Zap can be mapped before any call.
_SAMPLES: dict[HookEvent, dict[str, Any]] = {
    "call.completed": {
        "call_id": "call_sample_123",
        "platform": "vapi",
        "agent_id": "agt_sample",
        "customer_name": "Jane Doe",
        "customer_phone": "+12125550142",
        "customer_email": "jane@example.com",
        "call_outcome": "booked",
        "call_summary": "Jane booked a cleaning for Monday at 10 AM.",
        "call_sentiment": "positive",
        "transcript": "agent: Thanks for calling!\nuser: I'd like to book a cleaning.",
        "recording_url": None,
        "started_at": _SAMPLE_TIME,
        "ended_at": _SAMPLE_TIME,
        "duration_seconds": 184,
        "appointment_booked": {"start": "2026-03-09T10:00:00-04:00", "status": "booked"},
    },
    "appointment.booked": {
        "appointment_id": "apt_sample_123",
        "start": "2026-03-09T10:00:00-04:00",
        "end": "2026-03-09T10:30:00-04:00",
        "timezone": "America/New_York",
        "title": "Cleaning",
        "attendee_name": "Jane Doe",
        "attendee_phone": "+12125550142",
        "attendee_email": "jane@example.com",
        "provider": "local_calendar",
        "call_id": "call_sample_123",
    },
    "appointment.cancelled": {
        "appointment_id": "apt_sample_123",
        "start": "2026-03-09T10:00:00-04:00",
        "provider": "local_calendar",
        "call_id": "call_sample_123",
    },
    "contact.created": {
        "contact_id": "con_sample_123",
        "name": "Jane Doe",
        "phone": "+12125550142",
        "email": "jane@example.com",
        "provider": "contact_book",
        "call_id": "call_sample_123",
    },
    "payment.completed": {
        "payment_id": "pl_sample_123",
        "amount_minor": 4900,
        "currency": "USD",
        "description": "Consultation deposit",
        "provider": "stripe",
        "call_id": "call_sample_123",
    },
}


def envelope(event: HookEvent, event_id: str, agent_id: str, data: dict[str, Any], at: datetime) -> dict[str, Any]:
    """What a subscriber receives: the event's name and id (dedupe on it), when, and its data."""
    return {"id": event_id, "event": event, "agent_id": agent_id, "occurred_at": at.isoformat(), "data": data}


def sample(event: HookEvent, agent_id: str) -> dict[str, Any]:
    """A sample delivery of `event`, as `GET /v1/hooks/samples/{event}` lists it."""
    return envelope(
        event,
        f"evt_sample_{event.replace('.', '_')}",
        agent_id,
        dict(_SAMPLES[event]),
        datetime.fromisoformat(_SAMPLE_TIME),
    )
