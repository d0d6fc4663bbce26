"""Retell: custom-function requests (`{name, call, args}` or the args at the root) and the
`call_ended` / `call_analyzed` webhooks (shared/reference/voice-platforms.md §2)."""

from __future__ import annotations

from typing import Any

from tool_server.calls.models import CallRecord, Turn
from tool_server.voice.parsing import appointment_from_tool_results, as_dict, as_str, parse_time, speaker

__all__ = ["function_call", "normalize"]


def function_call(body: Any) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """(arguments, Retell's call id, the caller's number) from either body shape."""
    if not isinstance(body, dict):
        return None, None, None
    if isinstance(body.get("args"), dict) and ("call" in body or "name" in body):
        call = as_dict(body.get("call"))
        return body["args"], as_str(call.get("call_id")), _caller(call)
    return body, None, None


def _caller(call: dict[str, Any]) -> str | None:
    outbound = call.get("direction") == "outbound"
    return as_str(call.get("to_number") if outbound else call.get("from_number"))


def normalize(call: dict[str, Any]) -> CallRecord:
    analysis = as_dict(call.get("call_analysis"))
    turns = [
        Turn.model_validate(
            {
                "speaker": speaker(item.get("role")),
                "text": str(item.get("content", "")),
                "at_seconds": (as_dict((item.get("words") or [{}])[0]).get("start") if item.get("words") else None),
            }
        )
        for item in (as_dict(entry) for entry in call.get("transcript_object") or [])
    ]
    tool_results = [
        (None, as_dict(entry).get("content"))
        for entry in call.get("transcript_with_tool_calls") or []
        if as_dict(entry).get("role") == "tool_call_result"
    ]
    duration_ms = call.get("duration_ms")
    variables = as_dict(call.get("retell_llm_dynamic_variables"))
    return CallRecord(
        call_id=str(call.get("call_id", "")),
        platform="retell",
        platform_agent_id=as_str(call.get("agent_id")),
        caller_name=as_str(variables.get("customer_name") or variables.get("caller_name")),
        caller_phone=_caller(call),
        direction="outbound" if call.get("direction") == "outbound" else "inbound" if call.get("direction") else None,
        started_at=parse_time(call.get("start_timestamp")),
        ended_at=parse_time(call.get("end_timestamp")),
        duration_seconds=duration_ms / 1000 if isinstance(duration_ms, int | float) else None,
        outcome=as_str(call.get("disconnection_reason")),
        summary=as_str(analysis.get("call_summary")),
        sentiment=as_str(analysis.get("user_sentiment")),
        transcript=turns,
        recording_url=as_str(call.get("recording_url")),
        appointment=appointment_from_tool_results(tool_results),
        analysis={k: v for k, v in analysis.items() if k not in ("call_summary", "user_sentiment")},
    )
