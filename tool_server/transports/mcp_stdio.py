"""MCP over stdio for one agent: `tool-server mcp --agent ID`."""

from __future__ import annotations

from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.stdio import stdio_server

from tool_server.agents.models import Agent
from tool_server.services import Services
from tool_server.transports.mcp_server import build_mcp_server

__all__ = ["serve_stdio"]


async def serve_stdio(services: Services, agent: Agent) -> None:
    """Serve MCP on stdin/stdout until the client closes stdin. Logs go to stderr."""

    def fixed_agent(_ctx: ServerRequestContext[Any, Any]) -> Agent:
        return agent

    server = build_mcp_server(services, fixed_agent, transport="mcp-stdio")
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
