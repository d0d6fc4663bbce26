"""`tool-server agents create | list | key | demo`."""

from __future__ import annotations

import argparse
import unicodedata

import phonenumbers

from integrations.common.zones import UnknownZoneError, canonical_zone_name
from tool_server.agents.models import Connection
from tool_server.agents.sandbox import sandbox_connections
from tool_server.cli.common import agent_json, print_json, require_agent
from tool_server.cli.errors import CliError
from tool_server.services import Services

__all__ = [
    "DEMO_AGENT_NAME",
    "check_name",
    "check_region",
    "check_zone",
    "create_agent",
    "demo_agent",
    "list_agents",
    "new_key",
]

DEMO_AGENT_NAME = "Demo Dental"
MAX_NAME_LENGTH = 200
DEFAULT_CONNECTIONS = (
    Connection(capability="calendar", provider="local_calendar"),
    Connection(capability="crm", provider="contact_book"),
)


def check_name(name: str) -> str:
    """The agent's name without surrounding blanks; refused when blank or holding control characters."""
    cleaned = name.strip()
    if not cleaned:
        raise CliError("--name: an agent needs a name")
    # Category C: control, format (zero-width, bidi overrides), surrogate, private and unassigned.
    if any(unicodedata.category(character).startswith("C") for character in cleaned):
        raise CliError("--name: a name may not hold control or invisible characters")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise CliError(f"--name: at most {MAX_NAME_LENGTH} characters")
    return cleaned


def check_hold_minutes(minutes: int) -> int:
    if not 1 <= minutes <= 60:
        raise CliError(f"--hold-minutes must be between 1 and 60, got {minutes}")
    return minutes


def check_zone(name: str, option: str = "--timezone") -> str:
    """The zone's canonical spelling; any name the one zone validator refuses is a user error."""
    try:
        return canonical_zone_name(name)
    except UnknownZoneError as error:
        raise CliError(f"{option}: {error}") from None


def check_region(region: str) -> str:
    if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise CliError(f"--region: unknown phone region {region!r}; use an ISO 3166 alpha-2 code such as US or GB")
    return region.upper()


def _initial_connections(
    services: Services, *, sandbox: bool, outbox: bool
) -> tuple[list[Connection], dict[str, dict[str, str]]]:
    """Built-in calendar and contact book (plus the outbox), or, with `sandbox`, every emulator."""
    connections = {c.capability: services.providers.validate(c) for c in DEFAULT_CONNECTIONS}
    secrets: dict[str, dict[str, str]] = {}
    if outbox:
        connections["messaging"] = Connection(capability="messaging", provider="outbox")
    if sandbox:
        if not services.settings.sandbox:
            raise CliError("--sandbox needs the emulators mounted; TOOL_SERVER_SANDBOX is false")
        for connection, connection_secrets in sandbox_connections(services.providers, services.settings.public_url):
            connections[connection.capability] = connection
            secrets[connection.capability] = connection_secrets
    return list(connections.values()), secrets


async def create_agent(services: Services, args: argparse.Namespace) -> int:
    name, zone, region = check_name(args.name), check_zone(args.timezone), check_region(args.region)
    connections, secrets = _initial_connections(services, sandbox=args.sandbox, outbox=args.outbox)
    created = await services.agents.create(
        name,
        timezone=zone,
        phone_region=region,
        connections=connections,
        secrets=secrets,
        hold_minutes=check_hold_minutes(args.hold_minutes),
    )
    print_json(agent_json(created.agent, created.api_key))
    return 0


async def list_agents(services: Services, args: argparse.Namespace) -> int:
    agents = await services.agents.list()
    if args.json:
        print_json([agent_json(agent) for agent in agents])
        return 0
    if not agents:
        print("No agents yet. Create one with: tool-server agents create --name NAME")
    for agent in agents:
        wired = ", ".join(f"{cap}={con.provider}" for cap, con in agent.connections.items()) or "none"
        print(f"{agent.id}  {agent.name}  ({agent.timezone}, {agent.phone_region})  connections: {wired}")
    return 0


async def new_key(services: Services, args: argparse.Namespace) -> int:
    agent = await require_agent(services, args.agent_id)
    key = await services.agents.issue_key(agent.id, revoke_existing=args.revoke_existing)
    print_json({"id": agent.id, "api_key": key})
    return 0


async def demo_agent(services: Services, _args: argparse.Namespace) -> int:
    """Make sure the demo agent exists, connected to every sandbox emulator at the current public URL
    (the port may have changed since the last run), and print it with a fresh key."""
    connections, secrets = _initial_connections(services, sandbox=services.settings.sandbox, outbox=True)
    agent = await services.agents.find_by_name(DEMO_AGENT_NAME)
    if agent is None:
        created = await services.agents.create(
            DEMO_AGENT_NAME,
            timezone="America/New_York",
            phone_region="US",
            connections=connections,
            secrets=secrets,
        )
        agent = created.agent
    else:
        for connection in connections:
            agent = await services.agents.set_connection(agent.id, connection, secrets.get(connection.capability))
    key = await services.agents.issue_key(agent.id, revoke_existing=True)
    print_json(agent_json(agent, key))
    return 0
