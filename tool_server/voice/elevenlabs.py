"""ElevenLabs Agents: the `post_call_transcription` webhook (shared/reference/voice-platforms.md §3.2)."""

from __future__ import annotations

from typing import Any

from tool_server.calls.models import CallRecord, Turn
from tool_server.voice.parsing import appointment_from_tool_results, as_dict, as_str, parse_time, speaker

__all__ = ["normalize"]


def normalize(data: dict[str, Any]) -> CallRecord:
    metadata = as_dict(data.get("metadata"))
    phone_call = as_dict(metadata.get("phone_call"))
    analysis = as_dict(data.get("analysis"))
    variables = as_dict(as_dict(data.get("conversation_initiation_client_data")).get("dynamic_variables"))
    turns: list[Turn] = []
    tool_results: list[tuple[str | None, Any]] = []
    for entry in data.get("transcript") or []:
        entry = as_dict(entry)
        for result in entry.get("tool_results") or []:
            result = as_dict(result)
            tool_results.append((as_str(result.get("tool_name")), result.get("result_value")))
        if entry.get("message"):
            turns.append(
                Turn.model_validate(
                    {
                        "speaker": speaker(entry.get("role")),
                        "text": str(entry["message"]),
                        "at_seconds": entry.get("time_in_call_secs"),
                    }
                )
            )
    started = parse_time(metadata.get("start_time_unix_secs"))
    duration = metadata.get("call_duration_secs")
    direction = phone_call.get("direction")
    return CallRecord(
        call_id=str(data.get("conversation_id", "")),
        platform="elevenlabs",
        platform_agent_id=as_str(data.get("agent_id")),
        caller_name=as_str(variables.get("customer_name") or variables.get("caller_name")),
        caller_phone=as_str(phone_call.get("external_number") or variables.get("system__caller_id")),
        direction=direction if direction in ("inbound", "outbound") else None,
        started_at=started,
        duration_seconds=float(duration) if isinstance(duration, int | float) else None,
        outcome=as_str(analysis.get("call_successful") or metadata.get("termination_reason")),
        summary=as_str(analysis.get("transcript_summary")),
        transcript=turns,
        appointment=appointment_from_tool_results(tool_results),
        analysis={k: v for k, v in analysis.items() if k not in ("transcript_summary",)}
        | {"termination_reason": metadata.get("termination_reason"), "call_sid": phone_call.get("call_sid")},
    )
