"""The `tool-server` argument parser. It imports nothing heavy: `--help` stays fast.

Each command names its handler as `"module:function"`; the module is imported only when the
command runs. `needs` says what the handler takes: `"services"` (an async function given the
wired `Services`, on a database whose schema is made current first) or `"settings"` (a plain
function given the settings; it opens the database itself, if at all).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, Literal

__all__ = ["CAPABILITY_CHOICES", "PLATFORM_CHOICES", "HelpFormatter", "Parser", "build_parser", "command"]

Needs = Literal["services", "settings"]

# The same sets as integrations.common.spec.CAPABILITIES and tool_server.voice.platform_secrets.PLATFORMS,
# spelled out so building the parser imports neither (a test keeps them equal).
CAPABILITY_CHOICES = ("calendar", "crm", "payments", "messaging", "email", "team", "automation", "accounting")
PLATFORM_CHOICES = ("vapi", "retell", "elevenlabs", "bland", "synthflow")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default; descriptions and epilogs are printed as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        # No "(default: None)" on options that simply have no default.
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose epilog may be computed only when help is shown (`epilog_factory`)."""

    def __init__(self, *args: Any, epilog_factory: Callable[[], str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.epilog_factory = epilog_factory

    def format_help(self) -> str:
        if self.epilog_factory is not None:
            self.epilog = self.epilog_factory()
        return super().format_help()


def command(parser: argparse.ArgumentParser, handler: str, needs: Needs) -> None:
    """Name the function that runs this command (`"module:function"`, imported when it runs)."""
    parser.set_defaults(handler=handler, needs=needs)


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _connect_epilog() -> str:
    from tool_server.cli.provider_help import providers_help

    return providers_help()


def _add_serving(commands: Any) -> None:
    serve = commands.add_parser("serve", help="migrate the database and serve HTTP + MCP")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument(
        "--no-migrate", action="store_true", help="do not migrate; refuse to start if the schema is behind"
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="processes serving the one port. With more than one, the parent migrates and runs the "
        "post-call engine (postcall=inline) and the workers only serve requests; the sandbox emulators keep "
        "their world in one process's memory, so more than one worker needs TOOL_SERVER_SANDBOX=false",
    )
    command(serve, "tool_server.cli.server:serve", "settings")

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    command(migrate, "tool_server.cli.server:migrate", "settings")

    mcp = commands.add_parser("mcp", help="serve MCP over stdio for one agent")
    mcp.add_argument("--agent", required=True, help="agent id")
    command(mcp, "tool_server.cli.mcp:serve_mcp_stdio", "services")

    mcp_config = commands.add_parser(
        "mcp-config",
        help="print an MCP client config (Claude Desktop, Cursor…) that starts `tool-server mcp` for an agent",
        description='Prints {"mcpServers": {NAME: {command, args, env}}} with absolute paths, for a client that\n'
        "starts the server from its own directory. Secrets are never printed.",
    )
    mcp_config.add_argument("--agent", required=True, help="agent id")
    mcp_config.add_argument("--name", help="server name in the config (default: from the agent's name)")
    command(mcp_config, "tool_server.cli.mcp:print_mcp_config", "services")

    providers = commands.add_parser("providers", help="list providers and their settings schemas (JSON)")
    command(providers, "tool_server.cli.server:print_providers", "settings")

    tools = commands.add_parser("tools", help="print the tool catalogue in a schema format")
    tools.add_argument("--format", choices=["openai", "anthropic", "mcp"], default="openai", help="schema shape")
    command(tools, "tool_server.cli.server:print_tools", "settings")


def _add_agents(commands: Any) -> None:
    agents = commands.add_parser("agents", help="create and list agents").add_subparsers(
        dest="agents", required=True, metavar="ACTION"
    )
    create = agents.add_parser("create", help="create an agent and print it with its API key (shown once)")
    create.add_argument("--name", required=True, help="the business's name")
    create.add_argument("--timezone", default="America/New_York", help="IANA business time zone (Area/Location)")
    create.add_argument("--region", default="US", help="default phone region (ISO 3166 alpha-2)")
    create.add_argument("--outbox", action="store_true", help="connect the built-in outbox for messaging")
    create.add_argument(
        "--hold-minutes", type=int, default=5, help="how long hold_slot keeps a slot for a caller (1-60 minutes)"
    )
    create.add_argument(
        "--sandbox", action="store_true", help="connect every provider's sandbox emulator (at TOOL_SERVER_PUBLIC_URL)"
    )
    command(create, "tool_server.cli.agents:create_agent", "services")
    listing = agents.add_parser("list", help="list agents")
    listing.add_argument("--json", action="store_true", help="print JSON")
    command(listing, "tool_server.cli.agents:list_agents", "services")
    key = agents.add_parser("key", help="issue a new API key for an agent")
    key.add_argument("agent_id", help="agent id")
    key.add_argument("--revoke-existing", action="store_true", help="revoke the agent's earlier keys")
    command(key, "tool_server.cli.agents:new_key", "services")
    demo = agents.add_parser("demo", help="ensure the demo agent exists; print it with a fresh key")
    command(demo, "tool_server.cli.agents:demo_agent", "services")


def _add_connections(commands: Any) -> None:
    connect = commands.add_parser(
        "connect",
        help="attach a provider to one of an agent's capabilities",
        description="Provider options go as --name value (e.g. --api-key sk_test_… --from-number +1…); secret\n"
        "ones are sealed, the rest become settings. A value of - reads it from stdin (prompted without\n"
        "echo on a terminal); --env-file reads NAME=value lines. Either keeps secrets out of shell history.",
        epilog_factory=_connect_epilog,
    )
    connect.add_argument("agent_id", help="agent id")
    connect.add_argument("provider", help="provider name (see below)")
    connect.add_argument(
        "--capability",
        choices=CAPABILITY_CHOICES,
        help="the one capability to serve (by default, every capability the provider serves)",
    )
    connect.add_argument(
        "--secondary",
        action="store_true",
        help="add this CRM beside the primary one: the post-call sync writes each call to it too",
    )
    connect.add_argument(
        "--sandbox",
        action="store_true",
        help="connect to the provider's own emulator at TOOL_SERVER_PUBLIC_URL (other options still apply)",
    )
    connect.add_argument("--settings", help="provider settings as a JSON object")
    connect.add_argument("--set", action="append", metavar="KEY=VALUE", help="one setting (JSON value or text)")
    connect.add_argument(
        "--env-file",
        metavar="PATH",
        help="read provider options from NAME=value lines (API_KEY=… or api-key=…; # comments)",
    )
    command(connect, "tool_server.cli.connections:connect", "services")
    connect.set_defaults(accepts_extra=True)

    disconnect = commands.add_parser("disconnect", help="detach the provider serving a capability")
    disconnect.add_argument("agent_id", help="agent id")
    disconnect.add_argument("capability", choices=CAPABILITY_CHOICES, help="the capability to detach")
    disconnect.add_argument("--provider", help="detach this provider's connection (a secondary CRM, say)")
    command(disconnect, "tool_server.cli.connections:disconnect", "services")

    connections = commands.add_parser("connections", help="inspect an agent's connections").add_subparsers(
        dest="connections", required=True, metavar="ACTION"
    )
    test = connections.add_parser("test", help="check that each connection works (exit 1 if one fails)")
    test.add_argument("agent_id", help="agent id")
    test.add_argument("--json", action="store_true", help="print JSON")
    command(test, "tool_server.cli.connections:test_connections", "services")

    platforms = commands.add_parser("platforms", help="voice platform settings").add_subparsers(
        dest="platforms", required=True, metavar="ACTION"
    )
    platform_secret = platforms.add_parser(
        "set", help="store the secret a voice platform signs with (Retell API key, webhook secrets…)"
    )
    platform_secret.add_argument("agent_id", help="agent id")
    platform_secret.add_argument("platform", choices=PLATFORM_CHOICES, help="voice platform")
    platform_secret.add_argument(
        "--secret", required=True, help="the secret, or - to read it from stdin (prompted without echo on a terminal)"
    )
    command(platform_secret, "tool_server.cli.connections:set_platform_secret", "services")

    keys = commands.add_parser("keys", help="manage the key that seals credentials").add_subparsers(
        dest="keys", required=True, metavar="ACTION"
    )
    rotate = keys.add_parser("rotate", help="re-seal every credential under the first TOOL_SERVER_SECRET_KEY key")
    command(rotate, "tool_server.cli.connections:rotate_keys", "services")


def build_parser() -> Parser:
    """Every `tool-server` command, with help text and defaults; no handler module is imported."""
    from tool_server.postcall.commands import add_commands as add_postcall_commands

    parser = Parser(
        prog="tool-server",
        description="Voice and chat agent tool server. Data lives in TOOL_SERVER_HOME (default: "
        "$XDG_DATA_HOME/voice-tool-server,\nelse ~/.local/share/voice-tool-server); "
        "TOOL_SERVER_LOG_LEVEL=debug shows details of any failure.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serving(commands)
    _add_agents(commands)
    _add_connections(commands)
    add_postcall_commands(commands)
    return parser
