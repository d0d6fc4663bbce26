"""The `tool-server` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from integrations.capabilities import ConfigurationError, IntegrationError
from integrations.common.deadline import deadline_scope
from integrations.common.spec import Checkable
from tool_server.agents.models import CAPABILITIES, Agent, Capability, Connection
from tool_server.agents.sandbox import sandbox_connections
from tool_server.postcall.commands import add_commands as add_postcall_commands
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.store.migrate import upgrade_database
from tool_server.voice.platform_secrets import PLATFORMS

__all__ = ["main"]

DEMO_AGENT_NAME = "Demo Dental"
DEFAULT_CONNECTIONS = (
    Connection(capability="calendar", provider="local_calendar"),
    Connection(capability="crm", provider="contact_book"),
)


class CliError(Exception):
    """A user error: printed without a traceback, exit status 2."""


def _agent_json(agent: Agent, api_key: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = agent.model_dump(mode="json")
    if api_key is not None:
        data["api_key"] = api_key
    return data


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CliError(f"unknown IANA timezone {name!r}") from None
    return name


def _check_region(region: str) -> str:
    if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise CliError(f"unknown phone region {region!r}; use an ISO 3166 alpha-2 code such as US or GB")
    return region.upper()


async def _with_services(settings: ServerSettings, work: Callable[[Services], Awaitable[int]]) -> int:
    services = Services.build(settings)
    try:
        return await work(services)
    finally:
        await services.aclose()


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2))


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


async def _create_agent(services: Services, args: argparse.Namespace) -> int:
    connections, secrets = _initial_connections(services, sandbox=args.sandbox, outbox=args.outbox)
    created = await services.agents.create(
        args.name,
        timezone=_check_zone(args.timezone),
        phone_region=_check_region(args.region),
        connections=connections,
        secrets=secrets,
    )
    _print(_agent_json(created.agent, created.api_key))
    return 0


async def _list_agents(services: Services, args: argparse.Namespace) -> int:
    agents = await services.agents.list()
    if args.json:
        _print([_agent_json(agent) for agent in agents])
        return 0
    if not agents:
        print("No agents yet. Create one with: tool-server agents create --name NAME")
    for agent in agents:
        wired = ", ".join(f"{cap}={con.provider}" for cap, con in agent.connections.items()) or "none"
        print(f"{agent.id}  {agent.name}  ({agent.timezone}, {agent.phone_region})  connections: {wired}")
    return 0


async def _new_key(services: Services, args: argparse.Namespace) -> int:
    agent = await services.agents.get(args.agent_id)
    if agent is None:
        raise CliError(f"no agent {args.agent_id}")
    key = await services.agents.issue_key(agent.id, revoke_existing=args.revoke_existing)
    _print({"id": agent.id, "api_key": key})
    return 0


async def _demo_agent(services: Services, _args: argparse.Namespace) -> int:
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
    _print(_agent_json(agent, key))
    return 0


def _option_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _parse_settings(args: argparse.Namespace) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if args.settings:
        try:
            loaded = json.loads(args.settings)
        except json.JSONDecodeError as error:
            raise CliError(f"--settings is not valid JSON: {error}") from None
        if not isinstance(loaded, dict):
            raise CliError("--settings must be a JSON object")
        settings.update(loaded)
    for item in args.set or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise CliError(f"--set takes key=value, got {item!r}")
        settings[key] = _option_value(raw)
    return settings


def _extra_options(extra: Sequence[str]) -> dict[str, str]:
    """`--api-key sk_test_x --from-number +1…` → {"api_key": "sk_test_x", "from_number": "+1…"}."""
    options: dict[str, str] = {}
    items = list(extra)
    while items:
        flag = items.pop(0)
        if not flag.startswith("--") or len(flag) < 3:
            raise CliError(f"unexpected argument {flag!r}; provider options look like --name value")
        name, sep, value = flag[2:].partition("=")
        if not sep:
            if not items:
                raise CliError(f"{flag} needs a value")
            value = items.pop(0)
        options[name.replace("-", "_")] = value
    return options


async def _connect(services: Services, args: argparse.Namespace) -> int:
    agent = await services.agents.get(args.agent_id)
    if agent is None:
        raise CliError(f"no agent {args.agent_id}")
    spec = services.providers.specs.get(args.provider)
    if spec is None:
        raise CliError(f"unknown provider {args.provider!r}; see: tool-server providers")
    capability: Capability
    if args.capability:
        capability = args.capability
    elif len(spec.capabilities) == 1:
        (capability,) = spec.capabilities
    else:
        raise CliError(f"{spec.name} serves several capabilities; pass --capability")
    settings = _parse_settings(args)
    secrets: dict[str, str] = {}
    for name, value in _extra_options(args.extra).items():
        if name in spec.secret_names:
            secrets[name] = value
        else:
            settings[name] = _option_value(value)
    try:
        connection = services.providers.validate(
            Connection(capability=capability, provider=spec.name, settings=settings), secrets
        )
    except ConfigurationError as error:
        raise CliError(str(error)) from None
    updated = await services.agents.set_connection(agent.id, connection, secrets or None)
    _print(_agent_json(updated))
    return 0


async def _test_connections(services: Services, args: argparse.Namespace) -> int:
    """Check each connection of an agent and say whether it works."""
    agent = await services.agents.get(args.agent_id)
    if agent is None:
        raise CliError(f"no agent {args.agent_id}")
    results = []
    for capability, connection in agent.connections.items():
        entry: dict[str, Any] = {"capability": capability, "provider": connection.provider}
        try:
            provider = services.providers.build(agent, capability)
            with deadline_scope(10):
                if isinstance(provider, Checkable):
                    entry["detail"] = await provider.check_connection()
                else:
                    entry["detail"] = "built-in"
            entry["status"] = "ok"
        except IntegrationError as error:
            entry["status"], entry["detail"] = "failed", str(error)
        results.append(entry)
    if args.json:
        _print(results)
    else:
        for entry in results:
            print(f"{entry['capability']:<10} {entry['provider']:<16} {entry['status']:<7} {entry['detail']}")
    return 0 if all(entry["status"] == "ok" for entry in results) else 1


async def _set_platform_secret(services: Services, args: argparse.Namespace) -> int:
    agent = await services.agents.get(args.agent_id)
    if agent is None:
        raise CliError(f"no agent {args.agent_id}")
    await services.platform_secrets.set(agent.id, args.platform, args.secret)
    print(f"stored the {args.platform} secret for {agent.id} (sealed); its signatures are now checked")
    return 0


async def _rotate_keys(services: Services, _args: argparse.Namespace) -> int:
    count = await services.agents.rotate_secrets()
    print(f"re-sealed the credentials of {count} connection(s) under the first key in TOOL_SERVER_SECRET_KEY")
    return 0


async def _disconnect(services: Services, args: argparse.Namespace) -> int:
    await services.agents.remove_connection(args.agent_id, args.capability)
    agent = await services.agents.get(args.agent_id)
    if agent is None:
        raise CliError(f"no agent {args.agent_id}")
    _print(_agent_json(agent))
    return 0


async def _stdio(services: Services, args: argparse.Namespace) -> int:
    from tool_server.transports.mcp_stdio import serve_stdio

    agent = await services.agents.get(args.agent)
    if agent is None:
        raise CliError(f"no agent {args.agent}")
    await serve_stdio(services, agent)
    return 0


def _serve(settings: ServerSettings, args: argparse.Namespace) -> int:
    import uvicorn

    from tool_server.app import create_app

    if not args.no_migrate:
        upgrade_database(settings.database_url)
    if "public_url" not in settings.model_fields_set:
        settings = settings.model_copy(update={"public_url": f"http://{args.host}:{args.port}"})
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
    )
    return 0


def _migrate(settings: ServerSettings, _args: argparse.Namespace) -> int:
    upgrade_database(settings.database_url)
    print(f"database is up to date: {settings.database_url}")
    return 0


def _providers(_settings: ServerSettings, _args: argparse.Namespace) -> int:
    from tool_server.providers import PROVIDERS

    _print(
        [
            {
                "provider": spec.name,
                "capabilities": sorted(spec.capabilities),
                "description": spec.description,
                "settings_schema": spec.settings_model.model_json_schema(),
            }
            for spec in PROVIDERS.values()
        ]
    )
    return 0


def _tools(_settings: ServerSettings, args: argparse.Namespace) -> int:
    from tool_server.tools.catalogue import CATALOGUE
    from tool_server.transports.schemas import render_tools

    _print(render_tools(CATALOGUE, args.format))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tool-server", description="Voice and chat agent tool server.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate the database and serve HTTP + MCP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--no-migrate", action="store_true", help="do not run migrations first")
    serve.set_defaults(sync=_serve)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(sync=_migrate)

    agents = commands.add_parser("agents", help="create and list agents").add_subparsers(dest="agents", required=True)
    create = agents.add_parser("create", help="create an agent and print it with its API key (shown once)")
    create.add_argument("--name", required=True)
    create.add_argument("--timezone", default="America/New_York", help="IANA business timezone")
    create.add_argument("--region", default="US", help="default phone region (ISO 3166 alpha-2)")
    create.add_argument("--outbox", action="store_true", help="connect the built-in outbox for messaging")
    create.add_argument(
        "--sandbox", action="store_true", help="connect every provider's sandbox emulator (at TOOL_SERVER_PUBLIC_URL)"
    )
    create.set_defaults(run=_create_agent)
    listing = agents.add_parser("list", help="list agents")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_list_agents)
    key = agents.add_parser("key", help="issue a new API key for an agent")
    key.add_argument("agent_id")
    key.add_argument("--revoke-existing", action="store_true")
    key.set_defaults(run=_new_key)
    demo = agents.add_parser("demo", help="ensure the demo agent exists; print it with a fresh key")
    demo.set_defaults(run=_demo_agent)

    connect = commands.add_parser(
        "connect",
        help="attach a provider to one of an agent's capabilities",
        description="Provider options go as --name value (e.g. --api-key sk_test_… --from-number +1…); "
        "secret ones are sealed, the rest become settings.",
    )
    connect.add_argument("agent_id")
    connect.add_argument("provider")
    connect.add_argument("--capability", choices=CAPABILITIES)
    connect.add_argument("--settings", help="provider settings as a JSON object")
    connect.add_argument("--set", action="append", metavar="KEY=VALUE", help="one setting (JSON value or text)")
    connect.set_defaults(run=_connect, accepts_extra=True)

    connections = commands.add_parser("connections", help="inspect an agent's connections").add_subparsers(
        dest="connections", required=True
    )
    test = connections.add_parser("test", help="check that each connection works")
    test.add_argument("agent_id")
    test.add_argument("--json", action="store_true")
    test.set_defaults(run=_test_connections)

    platforms = commands.add_parser("platforms", help="voice platform settings").add_subparsers(
        dest="platforms", required=True
    )
    platform_secret = platforms.add_parser(
        "set", help="store the secret a voice platform signs with (Retell API key, webhook secrets…)"
    )
    platform_secret.add_argument("agent_id")
    platform_secret.add_argument("platform", choices=PLATFORMS)
    platform_secret.add_argument("--secret", required=True)
    platform_secret.set_defaults(run=_set_platform_secret)

    keys = commands.add_parser("keys", help="manage the key that seals credentials").add_subparsers(
        dest="keys", required=True
    )
    rotate = keys.add_parser("rotate", help="re-seal every credential under the first TOOL_SERVER_SECRET_KEY key")
    rotate.set_defaults(run=_rotate_keys)

    disconnect = commands.add_parser("disconnect", help="detach the provider serving a capability")
    disconnect.add_argument("agent_id")
    disconnect.add_argument("capability", choices=CAPABILITIES)
    disconnect.set_defaults(run=_disconnect)

    providers = commands.add_parser("providers", help="list providers and their settings")
    providers.set_defaults(sync=_providers)

    tools = commands.add_parser("tools", help="print the tool catalogue in a schema format")
    tools.add_argument("--format", choices=["openai", "anthropic", "mcp"], default="openai")
    tools.set_defaults(sync=_tools)

    mcp = commands.add_parser("mcp", help="serve MCP over stdio for one agent")
    mcp.add_argument("--agent", required=True, help="agent id")
    mcp.set_defaults(run=_stdio)
    add_postcall_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    settings = ServerSettings()
    # Logs go to stderr: stdout belongs to command output and to MCP over stdio.
    logging.basicConfig(
        level=settings.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        if hasattr(args, "sync"):
            return int(args.sync(settings, args))
        run: Callable[[Services, argparse.Namespace], Awaitable[int]] = args.run
        return asyncio.run(_with_services(settings, lambda services: run(services, args)))
    except CliError as error:
        print(f"tool-server: {error}", file=sys.stderr)
        return 2
