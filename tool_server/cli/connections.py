"""`tool-server connect | disconnect | connections test | platforms set | keys rotate`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from integrations.capabilities import IntegrationError
from integrations.common.deadline import deadline_scope
from integrations.common.spec import Checkable, SandboxConnection
from tool_server.agents.models import Capability, Connection, ConnectionRole
from tool_server.cli.agents import check_zone
from tool_server.cli.common import agent_json, print_json, require_agent
from tool_server.cli.errors import CliError
from tool_server.cli.secret_input import STDIN, option_name, read_env_file, read_stdin_value
from tool_server.providers import ProviderSpec
from tool_server.services import Services

__all__ = ["connect", "disconnect", "provider_options", "rotate_keys", "set_platform_secret", "test_connections"]


def _option_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _setting_value(spec: ProviderSpec, name: str, raw: str) -> Any:
    """A text setting keeps its text (a QuickBooks realm id is all digits); others may be JSON."""
    field = spec.settings_model.model_fields.get(name)
    if field is not None and field.annotation in (str, str | None):
        return raw
    return _option_value(raw)


def _parse_settings(spec: ProviderSpec, args: argparse.Namespace) -> dict[str, Any]:
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
            raise CliError("--set takes key=value")
        settings[key] = _setting_value(spec, key, raw)
    return settings


def _extra_options(extra: Sequence[str]) -> dict[str, str]:
    """`--api-key sk_test_x --from-number +1…` → {"api_key": "sk_test_x", "from_number": "+1…"}."""
    options: dict[str, str] = {}
    items = list(extra)
    position = 0
    while items:
        flag = items.pop(0)
        position += 1
        if not flag.startswith("--") or len(flag) < 3:
            # Not repeated: a value given without its option name may be a secret.
            raise CliError(f"argument {position} is not an option; provider options look like --name value")
        name, sep, value = flag[2:].partition("=")
        if not sep:
            if not items:
                raise CliError(f"--{name} needs a value")
            value = items.pop(0)
            position += 1
        options[option_name(name)] = value
    return options


def provider_options(spec: ProviderSpec, args: argparse.Namespace, extra: Sequence[str]) -> dict[str, str]:
    """The provider options from --env-file, then the command line (which wins); `-` reads stdin."""
    options = read_env_file(args.env_file) if args.env_file else {}
    options.update(_extra_options(extra))
    known = set(spec.settings_model.model_fields) | set(spec.secret_names)
    unknown = sorted(set(options) - known)
    if unknown:
        accepted = ", ".join(f"--{name.replace('_', '-')}" for name in sorted(known)) or "none"
        raise CliError(f"{spec.name} takes no option {unknown[0]!r}; it takes: {accepted}")
    reading = [name for name, value in options.items() if value == STDIN]
    if len(reading) > 1:
        raise CliError("only one option can read stdin (-); put several in an --env-file")
    for name in reading:
        options[name] = read_stdin_value(f"--{name.replace('_', '-')}")
    return options


def _capabilities(spec: ProviderSpec, asked: Capability | None, *, secondary: bool) -> list[Capability]:
    """The capabilities to connect: the one asked for, else every one the provider serves."""
    if secondary:
        if "crm" not in spec.capabilities or asked not in (None, "crm"):
            raise CliError("--secondary connects a further CRM (for the post-call sync); only crm can be secondary")
        return ["crm"]
    if asked:
        return [asked]
    return sorted(spec.capabilities)


def _sandbox(services: Services, spec: ProviderSpec) -> SandboxConnection:
    """The settings and secrets that reach the provider's emulator on this server."""
    if spec.integration is None:
        raise CliError(f"{spec.name} is built in and has no emulator; connect it without --sandbox")
    if not services.settings.sandbox:
        raise CliError("--sandbox needs the emulators mounted; TOOL_SERVER_SANDBOX is false")
    base = services.settings.public_url.rstrip("/")
    return spec.integration.sandbox_connection(f"{base}/sandbox/{spec.name}")


async def connect(services: Services, args: argparse.Namespace) -> int:
    agent = await require_agent(services, args.agent_id)
    spec = services.providers.specs.get(args.provider)
    if spec is None:
        raise CliError(f"unknown provider {args.provider!r}; see: tool-server providers")
    capabilities = _capabilities(spec, args.capability, secondary=args.secondary)
    settings = _parse_settings(spec, args)
    sealed_in_settings = sorted(set(settings) & set(spec.secret_names))
    if sealed_in_settings:
        name = sealed_in_settings[0]
        raise CliError(f"{name} is a secret: pass it as --{name.replace('_', '-')} (or - for stdin), not as a setting")
    secrets: dict[str, str] = {}
    if args.sandbox:
        sandbox = _sandbox(services, spec)
        settings = {**sandbox.settings, **settings}
        secrets = dict(sandbox.secrets)
    for name, value in provider_options(spec, args, args.extra).items():
        if name in spec.secret_names:
            secrets[name] = value
        else:
            settings[name] = _setting_value(spec, name, value)
    # The CLI is an entry point that takes a zone: it checks it with the one validator too.
    if isinstance(settings.get("timezone"), str):
        settings["timezone"] = check_zone(settings["timezone"], "settings.timezone")
    # A ConfigurationError names the setting; it is printed as one line (tool_server.cli.errors).
    role: ConnectionRole = "secondary" if args.secondary else "primary"
    # A provider serving several capabilities (a CRM with a calendar) gets one connection for each.
    connections = [
        services.providers.validate(
            Connection(capability=capability, provider=spec.name, settings=settings, role=role), secrets
        )
        for capability in capabilities
    ]
    updated = agent
    for connection in connections:
        try:
            updated = await services.agents.set_connection(agent.id, connection, secrets or None)
        except ValueError as error:
            raise CliError(str(error)) from None
    print_json(agent_json(updated))
    return 0


async def test_connections(services: Services, args: argparse.Namespace) -> int:
    """Check each connection of an agent and say whether it works."""
    agent = await require_agent(services, args.agent_id)
    results = []
    wired = [(agent, connection) for connection in agent.connections.values()]
    wired += [(agent.with_primary(connection), connection) for connection in agent.secondary_connections]
    for as_agent, connection in wired:
        capability = connection.capability
        entry: dict[str, Any] = {"capability": capability, "provider": connection.provider, "role": connection.role}
        try:
            provider = services.providers.build(as_agent, capability)
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
        print_json(results)
    else:
        for entry in results:
            print(f"{entry['capability']:<10} {entry['provider']:<16} {entry['status']:<7} {entry['detail']}")
    return 0 if all(entry["status"] == "ok" for entry in results) else 1


async def set_platform_secret(services: Services, args: argparse.Namespace) -> int:
    agent = await require_agent(services, args.agent_id)
    secret = read_stdin_value("--secret") if args.secret == STDIN else args.secret
    if not secret.strip():
        raise CliError("--secret: the secret is empty")
    await services.platform_secrets.set(agent.id, args.platform, secret)
    print(f"stored the {args.platform} secret for {agent.id} (sealed); its signatures are now checked")
    return 0


async def rotate_keys(services: Services, _args: argparse.Namespace) -> int:
    count = await services.agents.rotate_secrets()
    print(f"re-sealed the credentials of {count} connection(s) under the first key in TOOL_SERVER_SECRET_KEY")
    return 0


async def disconnect(services: Services, args: argparse.Namespace) -> int:
    await require_agent(services, args.agent_id)
    await services.agents.remove_connection(args.agent_id, args.capability, args.provider)
    print_json(agent_json(await require_agent(services, args.agent_id)))
    return 0
