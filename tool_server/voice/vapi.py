"""Vapi: the `tool-calls` server message in and its `results` out, and the `end-of-call-report`.

Vapi posts every server message to one URL as `{"message": {"type": …}}`. Its docs disagree on
where a tool call's arguments live (`function.arguments` per the OpenAPI schema, `arguments` or
`parameters` in examples) and whether they are an object or a JSON string, so all of those are
accepted. Results must be single-line strings, in the order of the calls, always with HTTP 200
(shared/reference/voice-platforms.md §1.1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tool_server.calls.models import CallRecord, Turn
from tool_server.dispatch import ToolOutcome
from tool_server.voice.parsing import (
    appointment_from_tool_results,
    as_dict,
    as_str,
    parse_time,
    speaker,
    turns_from_text,
)

__all__ = ["ToolCall", "as_message", "call_context", "normalize", "result_entry", "tool_calls"]


@dataclass(frozen=True)
class ToolCall:
    """One call from `toolCallList`. `arguments` is None when they could not be parsed."""

    id: str
    name: str
    arguments: dict[str, Any] | None


def _arguments(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None


def as_message(body: Any) -> dict[str, Any]:
    """The `message` of a server request (some proxies send it unwrapped)."""
    body = as_dict(body)
    return as_dict(body.get("message")) or body


def tool_calls(message: dict[str, Any]) -> list[ToolCall]:
    items = message.get("toolCallList")
    if not isinstance(items, list):
        items = [as_dict(tool).get("toolCall") for tool in message.get("toolWithToolCallList") or []]
    calls = []
    for item in items:
        item = as_dict(item)
        function = as_dict(item.get("function"))
        raw = next(
            (
                source[key]
                for source, key in (
                    (function, "arguments"),
                    (item, "arguments"),
                    (item, "parameters"),
                    (function, "parameters"),
                )
                if key in source
            ),
            None,
        )
        calls.append(
            ToolCall(
                id=str(item.get("id", "")),
                name=str(function.get("name") or item.get("name") or ""),
                arguments=_arguments(raw),
            )
        )
    return calls


def call_context(message: dict[str, Any]) -> tuple[str | None, str | None]:
    """(Vapi's call id, the caller's number)."""
    call = as_dict(message.get("call"))
    customer = as_dict(message.get("customer")) or as_dict(call.get("customer"))
    return as_str(call.get("id")), as_str(customer.get("number"))


def _line(data: Any) -> str:
    # json.dumps escapes newlines inside strings, so the result is always one line.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def result_entry(call: ToolCall, outcome: ToolOutcome) -> dict[str, str]:
    entry = {"toolCallId": call.id, "name": call.name}
    if outcome.error is not None:
        entry["error"] = _line(
            {"code": outcome.error.code.value, "message": outcome.error.message, "speech": outcome.error.speech}
        )
    else:
        entry["result"] = _line(outcome.result)
    return entry


def normalize(message: dict[str, Any]) -> CallRecord:
    """An `end-of-call-report` as a call record."""
    call = as_dict(message.get("call"))
    customer = as_dict(message.get("customer")) or as_dict(call.get("customer"))
    artifact = as_dict(message.get("artifact"))
    analysis = as_dict(message.get("analysis"))
    started = parse_time(message.get("startedAt") or call.get("startedAt"))
    ended = parse_time(message.get("endedAt") or call.get("endedAt"))
    turns: list[Turn] = []
    tool_results: list[tuple[str | None, Any]] = []
    for item in artifact.get("messages") or []:
        item = as_dict(item)
        role = str(item.get("role", ""))
        if role in ("tool_call_result", "tool"):
            tool_results.append((as_str(item.get("name")), item.get("result")))
            turns.append(
                Turn(speaker="tool", text=str(item.get("result", "")), at_seconds=item.get("secondsFromStart"))
            )
        elif item.get("message"):
            turns.append(
                Turn.model_validate(
                    {"speaker": speaker(role), "text": str(item["message"]), "at_seconds": item.get("secondsFromStart")}
                )
            )
    if not turns:
        turns = turns_from_text(as_str(artifact.get("transcript")))
    kind = str(call.get("type", ""))
    recording = as_dict(artifact.get("recording"))
    recording_url = artifact.get("recordingUrl") or recording.get("mono") or artifact.get("stereoRecordingUrl")
    return CallRecord(
        call_id=str(call.get("id", "")),
        platform="vapi",
        platform_agent_id=as_str(call.get("assistantId")),
        caller_name=as_str(customer.get("name")),
        caller_phone=as_str(customer.get("number")),
        caller_email=as_str(customer.get("email")),
        direction="inbound" if kind == "inboundPhoneCall" else "outbound" if kind == "outboundPhoneCall" else None,
        started_at=started,
        ended_at=ended,
        duration_seconds=(ended - started).total_seconds() if started and ended else None,
        outcome=as_str(message.get("endedReason") or call.get("endedReason")),
        summary=as_str(analysis.get("summary")),
        transcript=turns,
        recording_url=as_str(recording_url),
        appointment=appointment_from_tool_results(tool_results),
        analysis={k: v for k, v in analysis.items() if k != "summary"} | {"cost": message.get("cost")},
    )
