"""MCP over streamable HTTP at /mcp, the agent taken from the bearer token."""

from __future__ import annotations

from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from tool_server.agents.models import Agent
from tool_server.errors import ToolError
from tool_server.services import Services
from tool_server.transports.auth import authenticate_headers
from tool_server.transports.http_errors import error_response
from tool_server.transports.mcp_server import build_mcp_server

__all__ = ["McpHttpEndpoint"]

_AGENT_KEY = "tool_server_agent"


def _agent_from_request(ctx: ServerRequestContext[Any, Any]) -> Agent:
    request = ctx.request
    agent = None if request is None else request.scope.get("state", {}).get(_AGENT_KEY)
    if not isinstance(agent, Agent):
        # Unreachable through McpHttpEndpoint, which authenticates every request first.
        raise RuntimeError("MCP request reached a handler without an authenticated agent")
    return agent


class McpHttpEndpoint:
    """ASGI endpoint: authenticates the key, then hands the request to the MCP session manager.

    JSON responses and stateless legacy sessions: any replica can answer any request, and a
    server restart never strands a client holding a session id.
    """

    def __init__(self, services: Services) -> None:
        self._services = services
        server = build_mcp_server(services, _agent_from_request, transport="mcp")
        self.session_manager = StreamableHTTPSessionManager(
            app=server,
            json_response=True,
            stateless=True,
            security_settings=TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=services.settings.allowed_hosts,
                allowed_origins=services.settings.allowed_origins,
            ),
            max_request_body_size=services.settings.max_body_bytes,
        )
        self._app = StreamableHTTPASGIApp(self.session_manager)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        try:
            agent = await authenticate_headers(self._services.agents, headers)
        except ToolError as error:
            await error_response(error.info())(scope, receive, send)
            return
        scope.setdefault("state", {})[_AGENT_KEY] = agent
        await self._app(scope, receive, send)
