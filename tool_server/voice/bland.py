"""Bland: the post-call webhook, which carries the whole call object (voice-platforms.md §4.2)."""

from __future__ import annotations

from typing import Any

from tool_server.calls.models import CallRecord, Turn
from tool_server.voice.parsing import as_dict, as_str, parse_time, speaker

__all__ = ["normalize"]


def normalize(call: dict[str, Any]) -> CallRecord:
    inbound = bool(call.get("inbound"))
    minutes = call.get("call_length")
    variables = as_dict(call.get("variables"))
    turns = [
        Turn.model_validate(
            {
                "speaker": "tool" if entry.get("user") == "agent-action" else speaker(entry.get("user")),
                "text": str(entry.get("text", "")),
            }
        )
        for entry in (as_dict(item) for item in call.get("transcripts") or [])
    ]
    return CallRecord(
        call_id=str(call.get("call_id", "")),
        platform="bland",
        caller_name=as_str(variables.get("customer_name") or variables.get("name")),
        caller_phone=as_str(call.get("from") if inbound else call.get("to")),
        direction="inbound" if inbound else "outbound",
        started_at=parse_time(call.get("started_at") or call.get("created_at")),
        ended_at=parse_time(call.get("end_at")),
        duration_seconds=float(minutes) * 60 if isinstance(minutes, int | float) else None,
        outcome=as_str(call.get("status") or call.get("call_ended_by") or call.get("error_message")),
        summary=as_str(call.get("summary")),
        transcript=turns or [],
        recording_url=as_str(call.get("recording_url")),
        analysis={"variables": variables} if variables else {},
    )
