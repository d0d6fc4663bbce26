"""Finding the agent from an API key in request headers, shared by every HTTP transport."""

from __future__ import annotations

from collections.abc import Mapping

from tool_server.agents.models import Agent
from tool_server.agents.repository import AgentRepository
from tool_server.errors import ErrorCode, ToolError

__all__ = ["api_key_from_headers", "authenticate_headers"]


def api_key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The key from `Authorization: Bearer <key>` or `X-Api-Key: <key>` (header names lower-case)."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    api_key = headers.get("x-api-key", "").strip()
    return api_key or None


async def authenticate_headers(agents: AgentRepository, headers: Mapping[str, str]) -> Agent:
    """The agent owning the request's key, or UNAUTHORIZED."""
    key = api_key_from_headers(headers)
    if key is None:
        raise ToolError(
            ErrorCode.UNAUTHORIZED, "missing API key: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'"
        )
    agent = await agents.authenticate(key)
    if agent is None:
        raise ToolError(ErrorCode.UNAUTHORIZED, "invalid or revoked API key")
    return agent
