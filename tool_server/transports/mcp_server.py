"""MCP over the one catalogue: tools/list renders it, tools/call goes through dispatch.

One low-level `mcp.server.Server` serves both the stateless 2026-07-28 revision and the
2025-11-25 handshake (which Pipecat, LiveKit and the MCP Inspector still use). Arguments are
the tool's own flat properties, never wrapped in a `{"req": …}` object.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext

from tool_server import __version__
from tool_server.agents.models import Agent
from tool_server.dispatch import CallInfo, ToolOutcome
from tool_server.services import Services
from tool_server.tools.catalogue import Catalogue

__all__ = ["AgentResolver", "build_mcp_server", "outcome_to_result"]

AgentResolver = Callable[[ServerRequestContext[Any, Any]], Agent]

INSTRUCTIONS = (
    "Tools to act in a business's calendar, contacts, payments and messaging during a live call. "
    "Every result carries `speech`, one short sentence you can say to the caller. On failure the result "
    "is an error with a stable `code` (e.g. SLOT_UNAVAILABLE, VALIDATION_ERROR) and its own `speech`. "
    "Call check_availability before book_appointment."
)


def _tools(catalogue: Catalogue) -> list[types.Tool]:
    return [
        types.Tool(
            name=spec.name,
            title=spec.title,
            description=spec.full_description,
            input_schema=spec.input_schema,
            output_schema=spec.output_schema,
            annotations=types.ToolAnnotations(
                title=spec.title,
                read_only_hint=spec.read_only,
                destructive_hint=spec.destructive,
                idempotent_hint=spec.idempotent,
                open_world_hint=spec.open_world,
            ),
        )
        for spec in catalogue
    ]


def outcome_to_result(outcome: ToolOutcome) -> types.CallToolResult:
    """Success: structuredContent plus the same JSON as text. Failure: isError with code and speech."""
    if outcome.error is not None:
        error = {"error": outcome.error.model_dump(mode="json")}
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(error))],
            structured_content=error,
            is_error=True,
        )
    assert outcome.result is not None
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(outcome.result))],
        structured_content=outcome.result,
    )


def _header(ctx: ServerRequestContext[Any, Any], name: str) -> str | None:
    request = ctx.request
    if request is None:
        return None
    value = request.headers.get(name)
    return value.strip()[:255] if value and value.strip() else None


def build_mcp_server(services: Services, resolve_agent: AgentResolver, *, transport: str) -> Server[Any]:
    """An MCP server whose every call runs as the agent `resolve_agent` finds for the request."""
    tools = _tools(services.catalogue)

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        resolve_agent(ctx)
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        agent = resolve_agent(ctx)
        call = CallInfo(
            transport=transport,
            call_id=_header(ctx, "x-call-id"),
            idempotency_key=_header(ctx, "idempotency-key"),
        )
        outcome = await services.dispatcher.execute(agent, params.name, params.arguments or {}, call)
        return outcome_to_result(outcome)

    def input_schema(name: str) -> dict[str, Any] | None:
        # Without this lookup the SDK runs the whole tools/list handler on every 2026-07-28
        # tools/call just to check Mcp-Param-* headers (measured: ~1 ms of CPU per call).
        spec = services.catalogue.get(name)
        return None if spec is None else spec.input_schema

    return Server(
        "voice-tool-server",
        version=__version__,
        title="Voice tool server",
        instructions=INSTRUCTIONS,
        get_tool_input_schema=input_schema,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
