"""Synthflow: the post-call webhook (voice-platforms.md §5)."""

from __future__ import annotations

from typing import Any

from tool_server.calls.models import CallRecord
from tool_server.voice.parsing import appointment_from_tool_results, as_dict, as_str, parse_time, turns_from_text

__all__ = ["call_id_of", "normalize"]


def call_id_of(payload: dict[str, Any]) -> str:
    return str(as_dict(payload.get("call")).get("call_id") or payload.get("call_id") or "")


def normalize(payload: dict[str, Any]) -> CallRecord:
    call = as_dict(payload.get("call"))
    lead = as_dict(payload.get("lead"))
    duration = call.get("duration")
    actions = as_dict(payload.get("executed_actions"))
    return CallRecord(
        call_id=call_id_of(payload),
        platform="synthflow",
        caller_name=as_str(lead.get("name")),
        caller_phone=as_str(lead.get("phone_number")),
        started_at=parse_time(call.get("start_time")),
        duration_seconds=float(duration) if isinstance(duration, int | float) else None,
        outcome=as_str(call.get("end_call_reason") or call.get("status") or payload.get("status")),
        transcript=turns_from_text(as_str(call.get("transcript"))),
        appointment=appointment_from_tool_results(
            (as_str(as_dict(action).get("name")), as_dict(action).get("return_value")) for action in actions.values()
        ),
        analysis={
            key: payload[key] for key in ("analysis", "collected_variables", "custom_end_call_reason") if key in payload
        },
    )
