"""`tool-server mcp` (MCP over stdio for one agent) and `tool-server mcp-config` (the client config)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tool_server.cli.common import require_agent
from tool_server.cli.errors import CliError
from tool_server.mcp_config import find_executable, mcp_client_config, server_name
from tool_server.services import Services

__all__ = ["print_mcp_config", "serve_mcp_stdio", "tool_server_executable"]


async def serve_mcp_stdio(services: Services, args: argparse.Namespace) -> int:
    from tool_server.transports.mcp_stdio import serve_stdio

    agent = await require_agent(services, args.agent)
    await serve_stdio(services, agent)
    return 0


def tool_server_executable() -> Path:
    """The absolute path of the `tool-server` executable running now (or of the one beside Python)."""
    found = find_executable()
    if found is None:
        raise CliError("cannot find the tool-server executable; install the project (pip install -e .) first")
    return found


async def print_mcp_config(services: Services, args: argparse.Namespace) -> int:
    agent = await require_agent(services, args.agent)
    built = mcp_client_config(
        services.settings,
        agent.id,
        name=args.name or server_name(agent.name),
        executable=tool_server_executable(),
    )
    print(json.dumps(built.config, indent=2))
    for note in built.notes:
        print(f"tool-server: note: {note}", file=sys.stderr)
    return 0
