"""The flat call shape integration platforms (Zapier, Make, n8n) already use, for POST /v1/calls."""

from __future__ import annotations

from typing import Any

from tool_server.calls.models import AppointmentMention, CallRecord, Turn
from tool_server.voice.parsing import as_dict, as_str, parse_time, speaker, turns_from_text

__all__ = ["normalize"]


def _transcript(value: Any) -> list[Turn]:
    if isinstance(value, list):
        return [
            Turn.model_validate(
                {
                    "speaker": speaker(as_dict(item).get("speaker") or as_dict(item).get("role")),
                    "text": str(as_dict(item).get("text") or as_dict(item).get("message") or ""),
                    "at_seconds": as_dict(item).get("at_seconds"),
                }
            )
            for item in value
        ]
    return turns_from_text(as_str(value))


def _appointment(body: dict[str, Any]) -> AppointmentMention | None:
    """`appointment_booked` (booked during the call) wins over `appointment_requested` (to book after it)."""
    for key, status in (("appointment_booked", "booked"), ("appointment_requested", "requested")):
        found = as_dict(body.get(key))
        if not found:
            continue
        minutes = found.get("durationMinutes", found.get("duration_minutes"))
        return AppointmentMention(
            status="booked" if status == "booked" else "requested",
            title=as_str(found.get("title")),
            start=as_str(found.get("start")),
            date=as_str(found.get("date")),
            time=as_str(found.get("time")),
            timezone=as_str(found.get("timezone")),
            duration_minutes=minutes if isinstance(minutes, int) else None,
            appointment_id=as_str(found.get("appointment_id") or found.get("id")),
        )
    return None


def normalize(body: dict[str, Any]) -> CallRecord:
    duration = body.get("duration_seconds")
    return CallRecord(
        call_id=str(body.get("call_id", "")),
        platform=str(body.get("platform") or "generic"),
        platform_agent_id=as_str(body.get("agent_id")),
        caller_name=as_str(body.get("customer_name")),
        caller_phone=as_str(body.get("customer_phone")),
        caller_email=as_str(body.get("customer_email")),
        direction=body.get("direction") if body.get("direction") in ("inbound", "outbound") else None,
        started_at=parse_time(body.get("started_at")),
        ended_at=parse_time(body.get("ended_at")),
        duration_seconds=float(duration) if isinstance(duration, int | float) else None,
        outcome=as_str(body.get("call_outcome")),
        summary=as_str(body.get("call_summary")),
        sentiment=as_str(body.get("call_sentiment")),
        transcript=_transcript(body.get("transcript")),
        recording_url=as_str(body.get("recording_url")),
        appointment=_appointment(body),
    )
