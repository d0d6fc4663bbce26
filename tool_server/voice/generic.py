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


def normalize(body: dict[str, Any]) -> CallRecord:
    booked = as_dict(body.get("appointment_booked"))
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
        appointment=AppointmentMention(
            status="booked",
            title=as_str(booked.get("title")),
            date=as_str(booked.get("date")),
            time=as_str(booked.get("time")),
            timezone=as_str(booked.get("timezone")),
            duration_minutes=booked.get("durationMinutes") if isinstance(booked.get("durationMinutes"), int) else None,
        )
        if booked
        else None,
    )
