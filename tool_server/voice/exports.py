"""Paste-ready tool definitions for each platform, generated from the catalogue.

Field names follow each platform's documented tool definition (shared/reference/voice-platforms.md):
Vapi `CreateFunctionToolDTO` (`type`, `function`, `server{url, timeoutSeconds, headers}`,
`messages[]` of `request-start`), Retell `CustomTool` (`type:"custom"`, `url`, `method`, `headers`,
`parameters`, `args_at_root`, `speak_during_execution`, `execution_message_*`, `timeout_ms`),
ElevenLabs webhook tools (`api_schema{url, method, request_headers, request_body_schema}`,
`response_timeout_secs`, `force_pre_tool_speech`) and Bland tools (`url`, `method`, `headers`,
`body` with `{{input.x}}`, `input_schema`, `speech`, `response`, `timeout`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tool_server.dispatch import Deadlines
from tool_server.tools.base import ToolSpec
from tool_server.tools.catalogue import Catalogue
from tool_server.transports.schemas import anthropic_tool, openai_tool

__all__ = ["EXPORTS", "export"]

# Platforms give up on a tool after their own timeout; ours answers first, with a sentence.
_MARGIN_SECONDS = 2


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _timeout(spec: ToolSpec[Any, Any], deadlines: Deadlines) -> float:
    return deadlines.for_tool(spec) + _MARGIN_SECONDS


def _vapi(spec: ToolSpec[Any, Any], base: str, key: str, deadlines: Deadlines) -> dict[str, Any]:
    tool: dict[str, Any] = {
        "type": "function",
        "async": False,
        "function": {"name": spec.name, "description": spec.full_description, "parameters": spec.input_schema},
        "server": {
            "url": f"{base}/voice/vapi",
            "timeoutSeconds": int(_timeout(spec, deadlines)),
            "headers": _bearer(key),
        },
    }
    if spec.wait_message:
        tool["messages"] = [{"type": "request-start", "content": spec.wait_message, "blocking": False}]
    return tool


def _retell(spec: ToolSpec[Any, Any], base: str, key: str, deadlines: Deadlines) -> dict[str, Any]:
    tool: dict[str, Any] = {
        "type": "custom",
        "name": spec.name,
        "description": spec.full_description,
        "url": f"{base}/voice/retell/functions/{spec.name}",
        "method": "POST",
        "headers": _bearer(key),
        "parameters": spec.input_schema,
        "args_at_root": False,
        "speak_during_execution": spec.wait_message is not None,
        "speak_after_execution": True,
        "timeout_ms": int(_timeout(spec, deadlines) * 1000),
    }
    if spec.wait_message:
        tool["execution_message_type"] = "static_text"
        tool["execution_message_description"] = spec.wait_message
    return tool


def _elevenlabs_property(schema: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {key: schema[key] for key in ("type", "description", "enum") if key in schema}
    kept.setdefault("description", "")
    return kept


def _elevenlabs(spec: ToolSpec[Any, Any], base: str, key: str, deadlines: Deadlines) -> dict[str, Any]:
    schema = spec.input_schema
    properties = {name: _elevenlabs_property(prop) for name, prop in schema["properties"].items()}
    # Filled by ElevenLabs from its system variables, not by the LLM: they carry the call context.
    properties["_call_id"] = {
        "type": "string",
        "description": "The conversation id.",
        "dynamic_variable": "system__conversation_id",
    }
    properties["_caller_number"] = {
        "type": "string",
        "description": "The caller's number.",
        "dynamic_variable": "system__caller_id",
    }
    return {
        "type": "webhook",
        "name": spec.name,
        "description": spec.full_description,
        "response_timeout_secs": max(5, min(120, int(_timeout(spec, deadlines)))),
        "force_pre_tool_speech": spec.wait_message is not None,
        "api_schema": {
            "url": f"{base}/voice/elevenlabs/tools/{spec.name}",
            "method": "POST",
            "request_headers": _bearer(key),
            "request_body_schema": {
                "type": "object",
                "description": spec.title,
                "properties": properties,
                "required": schema.get("required", []),
            },
        },
    }


def _bland(spec: ToolSpec[Any, Any], base: str, key: str, deadlines: Deadlines) -> dict[str, Any]:
    schema = spec.input_schema
    body: dict[str, Any] = {name: f"{{{{input.{name}}}}}" for name in schema["properties"]}
    body["_call_id"] = "{{call_id}}"
    tool: dict[str, Any] = {
        "name": spec.name,
        "description": spec.full_description,
        "url": f"{base}/voice/bland/tools/{spec.name}",
        "method": "POST",
        "headers": _bearer(key),
        "body": body,
        "input_schema": {**schema, "example": spec.examples[0] if spec.examples else {}},
        "response": {"speech": "$.speech"},
        "timeout": int(_timeout(spec, deadlines) * 1000),
    }
    if spec.wait_message:
        tool["speech"] = spec.wait_message
    return tool


Builder = Callable[[ToolSpec[Any, Any], str, str, Deadlines], dict[str, Any]]

_BUILDERS: dict[str, Builder] = {"vapi": _vapi, "retell": _retell, "elevenlabs": _elevenlabs, "bland": _bland}

_WEBHOOKS = {
    "vapi": "{base}/voice/vapi",
    "retell": "{base}/voice/retell/webhook/{agent_id}",
    "elevenlabs": "{base}/voice/elevenlabs/webhook/{agent_id}",
    "bland": "{base}/voice/bland/webhook/{agent_id}",
}

_HOW = {
    "vapi": "Create each entry with POST https://api.vapi.ai/tool (or paste into the assistant's model.tools). "
    "Set the assistant's server URL to webhook_url for end-of-call reports.",
    "retell": "Paste each entry into the Retell LLM's general_tools. Set the agent's webhook_url, and store your "
    "Retell API key with `tool-server platforms set AGENT retell --secret KEY` so signatures are checked.",
    "elevenlabs": "Create each entry as a server (webhook) tool of the agent. Set the post-call webhook to "
    "webhook_url and store its secret with `tool-server platforms set AGENT elevenlabs --secret …`.",
    "bland": "Create each entry with POST https://api.bland.ai/v1/tools and attach the tool ids to your pathway or "
    "call. Set the call's webhook to webhook_url and store Bland's signing secret with `tool-server platforms set`.",
    "openai": "Pass `tools` to the Chat Completions API; POST each call's arguments to endpoint.",
    "anthropic": "Pass `tools` to the Messages API; POST each tool_use input to endpoint.",
}

EXPORTS = ("vapi", "retell", "elevenlabs", "bland", "openai", "anthropic")


def export(
    target: str, catalogue: Catalogue, *, base: str, key: str, agent_id: str, deadlines: Deadlines
) -> dict[str, Any]:
    """The definitions for `target`, pointing at `base` and authenticating with `key`."""
    base = base.rstrip("/")
    answer: dict[str, Any] = {"platform": target, "how_to_use": _HOW[target]}
    if target in _BUILDERS:
        answer["tools"] = [_BUILDERS[target](spec, base, key, deadlines) for spec in catalogue]
        answer["webhook_url"] = _WEBHOOKS[target].format(base=base, agent_id=agent_id)
    else:
        render = openai_tool if target == "openai" else anthropic_tool
        answer["tools"] = [render(spec) for spec in catalogue]
        answer["endpoint"] = f"{base}/v1/tools/{{name}}"
        answer["headers"] = _bearer(key)
    return answer
