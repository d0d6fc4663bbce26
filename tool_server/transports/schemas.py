"""Tool definitions in each function-calling format, rendered from the catalogue."""

from __future__ import annotations

from typing import Any, Literal

from tool_server.tools.base import ToolSpec
from tool_server.tools.catalogue import Catalogue

__all__ = ["SchemaFormat", "anthropic_tool", "mcp_tool", "openai_tool", "render_tools"]

SchemaFormat = Literal["openai", "anthropic", "mcp"]


def openai_tool(spec: ToolSpec[Any, Any]) -> dict[str, Any]:
    """OpenAI Chat Completions `tools[]` entry (also what Vapi and most voice platforms accept)."""
    return {
        "type": "function",
        "function": {"name": spec.name, "description": spec.full_description, "parameters": spec.input_schema},
    }


def anthropic_tool(spec: ToolSpec[Any, Any]) -> dict[str, Any]:
    """Anthropic Messages API `tools[]` entry."""
    return {"name": spec.name, "description": spec.full_description, "input_schema": spec.input_schema}


def mcp_tool(spec: ToolSpec[Any, Any]) -> dict[str, Any]:
    """MCP `Tool` as it appears in `tools/list`."""
    return {
        "name": spec.name,
        "title": spec.title,
        "description": spec.full_description,
        "inputSchema": spec.input_schema,
        "outputSchema": spec.output_schema,
        "annotations": {
            "title": spec.title,
            "readOnlyHint": spec.read_only,
            "destructiveHint": spec.destructive,
            "idempotentHint": spec.idempotent,
            "openWorldHint": spec.open_world,
        },
    }


_RENDERERS = {"openai": openai_tool, "anthropic": anthropic_tool, "mcp": mcp_tool}


def render_tools(catalogue: Catalogue, schema_format: SchemaFormat) -> list[dict[str, Any]]:
    render = _RENDERERS[schema_format]
    return [render(spec) for spec in catalogue]
