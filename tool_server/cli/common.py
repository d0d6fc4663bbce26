"""What the command handlers share: JSON output and looking an agent up."""

from __future__ import annotations

import json
from typing import Any

from tool_server.agents.models import Agent
from tool_server.cli.errors import CliError
from tool_server.services import Services

__all__ = ["agent_json", "print_json", "require_agent"]


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def agent_json(agent: Agent, api_key: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = agent.model_dump(mode="json")
    if api_key is not None:
        data["api_key"] = api_key
    return data


async def require_agent(services: Services, agent_id: str) -> Agent:
    """The agent, or a one-line user error."""
    agent = await services.agents.get(agent_id)
    if agent is None:
        raise CliError(f"no agent {agent_id!r}; see: tool-server agents list")
    return agent
