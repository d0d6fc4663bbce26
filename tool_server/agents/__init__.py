"""Agents: who is calling, in which business zone and region, with which connections."""

from tool_server.agents.models import Agent, Capability, Connection
from tool_server.agents.repository import AgentRepository, CreatedAgent

__all__ = ["Agent", "AgentRepository", "Capability", "Connection", "CreatedAgent"]
