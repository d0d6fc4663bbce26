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
from tool_server.errors import ToolError
from tool_server.json_text import loads_or_not_json
from tool_server.voice.parsing import (
    appointment_from_tool_results,
    as_dict,
    as_str,
    parse_time,
    speaker,
    turns_from_text,
)

__all__ = [
    "IGNORED_MESSAGES",
    "MAX_TOOL_CALLS",
    "ToolCall",
    "as_message",
    "call_context",
    "normalize",
    "result_entry",
    "tool_calls",
]

# Vapi server messages this endpoint acknowledges with 200 `{}` and does nothing with: call
# progress, transcripts and speech events, and requests whose empty answer means "Vapi's default"
# (OpenAPI `CreateAssistantDTO.serverMessages`; shared/reference/voice-platforms.md §1.2).
IGNORED_MESSAGES = frozenset(
    {
        "assistant-request",
        "assistant.started",
        "call.deleted",
        "call.artifact.upload",
        "conversation-update",
        "function-call",
        "handoff-destination-request",
        "hang",
        "knowledge-base-request",
        "language-change-detected",
        "model-output",
        "phone-call-control",
        "speech-update",
        "status-update",
        "transcript",
        'transcript[transcriptType="final"]',
        "transfer-destination-request",
        "transfer-update",
        "user-interrupted",
        "voice-input",
        "voice-request",
    }
)
# More calls than a model makes in one turn is not a turn: refuse the batch rather than run it.
MAX_TOOL_CALLS = 32


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
        raw = loads_or_not_json(raw) if raw.strip() else {}
    return raw if isinstance(raw, dict) else None


def as_message(body: Any) -> dict[str, Any]:
    """The `message` of a server request (some proxies send it unwrapped)."""
    body = as_dict(body)
    return as_dict(body.get("message")) or body


def _call_items(message: dict[str, Any]) -> tuple[str, list[Any]]:
    if "toolCallList" in message:
        items = message["toolCallList"]
        if not isinstance(items, list):
            raise ToolError.invalid("message.toolCallList", "must be a list of tool calls")
        return "message.toolCallList", items
    tools = message.get("toolWithToolCallList")
    if not isinstance(tools, list):
        raise ToolError.invalid("message.toolCallList", "a tool-calls message needs a toolCallList")
    return "message.toolWithToolCallList", [as_dict(tool).get("toolCall") for tool in tools]


def tool_calls(message: dict[str, Any]) -> list[ToolCall]:
    """The calls of a `tool-calls` message; a VALIDATION_ERROR when the list itself is malformed.

    An entry without an id cannot be answered (Vapi matches results by `toolCallId`), so it fails
    the request; an entry with an unknown name or bad arguments gets its own error result.
    """
    where, items = _call_items(message)
    if not items:
        raise ToolError.invalid(where, "holds no tool calls")
    if len(items) > MAX_TOOL_CALLS:
        raise ToolError.invalid(where, f"holds {len(items)} tool calls; at most {MAX_TOOL_CALLS} are taken at once")
    calls = []
    for index, raw_item in enumerate(items):
        if not isinstance(raw_item, dict):
            raise ToolError.invalid(f"{where}[{index}]", "must be an object with an id and a function")
        item = raw_item
        call_id = item.get("id")
        if not isinstance(call_id, str) or not call_id.strip() or len(call_id) > 255:
            raise ToolError.invalid(f"{where}[{index}].id", "must be the tool call's id (a string)")
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
        name = function.get("name") or item.get("name") or ""
        calls.append(ToolCall(id=call_id, name=name[:64] if isinstance(name, str) else "", arguments=_arguments(raw)))
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
        error = outcome.error
        entry["error"] = _line(
            {"code": error.code.value, "message": error.message, "speech": error.speech, "field": error.field}
        )
    else:
        entry["result"] = _line(outcome.result)
    return entry


def _messages(message: dict[str, Any], artifact: dict[str, Any]) -> list[Any]:
    for source in (artifact.get("messages"), message.get("messages"), artifact.get("messagesOpenAIFormatted")):
        if isinstance(source, list) and source:
            return source
    return []


def _turns(items: list[Any]) -> tuple[list[Turn], list[tuple[str | None, Any]]]:
    turns: list[Turn] = []
    tool_results: list[tuple[str | None, Any]] = []
    for raw in items:
        item = as_dict(raw)
        role = str(item.get("role", ""))
        at = item.get("secondsFromStart")
        at_seconds = float(at) if isinstance(at, int | float) and not isinstance(at, bool) else None
        if role in ("tool_call_result", "tool"):
            result = item.get("result", item.get("content"))
            tool_results.append((as_str(item.get("name")), result))
            turns.append(Turn(speaker="tool", text=str(result if result is not None else ""), at_seconds=at_seconds))
        elif isinstance(item.get("message"), str) and item["message"]:
            turns.append(Turn(speaker=speaker(role), text=item["message"], at_seconds=at_seconds))
    return turns, tool_results


def normalize(message: dict[str, Any]) -> CallRecord:
    """An `end-of-call-report` as a call record.

    Reads the documented shape (`artifact.messages|transcript|recordingUrl|recording`,
    `analysis.summary`) and the older one that carried `transcript`, `messages`, `summary`,
    `recordingUrl` and `stereoRecordingUrl` at the top of the message.
    """
    call = as_dict(message.get("call"))
    customer = as_dict(message.get("customer")) or as_dict(call.get("customer"))
    artifact = as_dict(message.get("artifact"))
    analysis = as_dict(message.get("analysis"))
    started = parse_time(message.get("startedAt") or call.get("startedAt"))
    ended = parse_time(message.get("endedAt") or call.get("endedAt"))
    turns, tool_results = _turns(_messages(message, artifact))
    if not any(turn.speaker != "tool" for turn in turns):
        text = as_str(artifact.get("transcript")) or as_str(message.get("transcript"))
        turns = turns_from_text(text) + [turn for turn in turns if turn.speaker == "tool"]
    kind = str(call.get("type", ""))
    recording = as_dict(artifact.get("recording"))
    recording_url = (
        artifact.get("recordingUrl")
        or recording.get("mono")
        or artifact.get("stereoRecordingUrl")
        or recording.get("stereoUrl")
        or message.get("recordingUrl")
        or message.get("stereoRecordingUrl")
    )
    summary = analysis.get("summary") or message.get("summary")
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
        summary=as_str(summary),
        transcript=turns,
        recording_url=as_str(recording_url),
        appointment=appointment_from_tool_results(tool_results),
        analysis={k: v for k, v in analysis.items() if k != "summary"} | {"cost": message.get("cost")},
    )
