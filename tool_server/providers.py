"""Which provider serves which capability for an agent.

Two kinds of provider share one registry: the built-ins (`tool_server/builtin/`, data in our
database) and the integrations (`integrations/registry.py`, each with its own vendor, secrets
and sandbox emulator). Adding an integration touches its folder and one line there, not this file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from integrations.capabilities import (
    AccountingProvider,
    AutomationProvider,
    CalendarProvider,
    ConfigurationError,
    CrmProvider,
    EmailProvider,
    MessagingProvider,
    PaymentsProvider,
    ProviderNotConnectedError,
    TeamNotifier,
    WhatsAppSender,
)
from integrations.common.spec import ConnectorEnv, IntegrationSpec
from integrations.common.vault import CredentialVault
from integrations.registry import INTEGRATIONS
from tool_server.agents.models import Agent, Capability, Connection
from tool_server.builtin import ContactBook, Ledger, LocalCalendar, LocalCalendarSettings, Outbox
from tool_server.clock import Clock
from tool_server.contacts import ContactClaims, GuardedCrm
from tool_server.send_records import DatabaseSendRecords
from tool_server.store.database import Database

__all__ = ["PROVIDERS", "AgentProviders", "ProviderEnv", "ProviderRegistry", "ProviderSpec"]


@dataclass(frozen=True)
class ProviderEnv:
    """What a provider may need from the server process."""

    db: Database
    clock: Clock
    public_url: str = "http://127.0.0.1:8000"
    vault: Callable[[str], CredentialVault] | None = None


class _NoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ProviderSpec:
    """One provider: what it serves, what settings and secrets it takes, how to build it."""

    name: str
    capabilities: frozenset[Capability]
    settings_model: type[BaseModel]
    build: Callable[[ProviderEnv, Agent, Connection, BaseModel], object]
    description: str
    required_secrets: tuple[str, ...] = ()
    optional_secrets: tuple[str, ...] = ()
    integration: IntegrationSpec | None = None

    @property
    def secret_names(self) -> tuple[str, ...]:
        return self.required_secrets + self.optional_secrets


def _local_calendar(env: ProviderEnv, agent: Agent, _connection: Connection, settings: BaseModel) -> object:
    assert isinstance(settings, LocalCalendarSettings)
    return LocalCalendar(env.db, agent.id, settings.rules(agent.timezone), env.clock)


def _from_integration(integration: IntegrationSpec) -> ProviderSpec:
    def build(env: ProviderEnv, agent: Agent, connection: Connection, settings: BaseModel) -> object:
        if env.vault is None or connection.id is None:
            raise ConfigurationError("vault", f"{integration.name} needs a stored connection with secrets")
        connector_env = ConnectorEnv(
            clock=env.clock,
            connection_id=connection.id,
            public_url=env.public_url,
            timezone=agent.timezone,
            capability=connection.capability,
            send_records=DatabaseSendRecords(env.db, connection.id),
        )
        return integration.build(settings, env.vault(connection.id), connector_env)

    return ProviderSpec(
        name=integration.name,
        capabilities=integration.capabilities,
        settings_model=integration.settings_model,
        build=build,
        description=integration.description,
        required_secrets=integration.required_secrets,
        optional_secrets=integration.optional_secrets,
        integration=integration,
    )


BUILTIN_PROVIDERS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        name="local_calendar",
        capabilities=frozenset({"calendar"}),
        settings_model=LocalCalendarSettings,
        build=_local_calendar,
        description="Built-in calendar: business hours, slot length, buffers, notice, horizon, closed dates.",
    ),
    ProviderSpec(
        name="contact_book",
        capabilities=frozenset({"crm"}),
        settings_model=_NoSettings,
        build=lambda env, agent, _connection, _settings: ContactBook(env.db, agent.id, env.clock),
        description="Built-in contact book with notes.",
    ),
    ProviderSpec(
        name="outbox",
        capabilities=frozenset({"messaging", "email", "team", "automation"}),
        settings_model=_NoSettings,
        build=lambda env, agent, _connection, _settings: Outbox(env.db, agent.id, env.clock),
        description="Built-in outbox: records texts, emails, team messages and automation events; sends nothing.",
    ),
    ProviderSpec(
        name="ledger",
        capabilities=frozenset({"accounting"}),
        settings_model=_NoSettings,
        build=lambda env, agent, _connection, _settings: Ledger(env.db, agent.id, env.clock),
        description="Built-in ledger: customers, invoices and balances in this server's database; sends nothing.",
    ),
)

PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (*BUILTIN_PROVIDERS, *(_from_integration(integration) for integration in INTEGRATIONS.values()))
}

T = TypeVar("T")


class ProviderRegistry:
    """Validates connections and builds the providers an agent's tool calls use."""

    def __init__(self, env: ProviderEnv, specs: Mapping[str, ProviderSpec] = PROVIDERS) -> None:
        self._env = env
        self._specs = dict(specs)
        self._built: dict[str, object] = {}
        self.contact_claims = ContactClaims(env.db)

    @property
    def specs(self) -> Mapping[str, ProviderSpec]:
        return self._specs

    def validate(self, connection: Connection, secrets: Mapping[str, str] | None = None) -> Connection:
        """The connection with its settings checked and filled with defaults; secrets checked too."""
        spec = self._specs.get(connection.provider)
        if spec is None:
            known = ", ".join(sorted(self._specs))
            raise ConfigurationError("provider", f"unknown provider {connection.provider!r}; known: {known}")
        if connection.capability not in spec.capabilities:
            served = ", ".join(sorted(spec.capabilities))
            raise ConfigurationError("capability", f"{spec.name} serves {served}, not {connection.capability}")
        try:
            settings = spec.settings_model.model_validate(connection.settings)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ConfigurationError(f"settings.{where}" if where else "settings", first["msg"]) from None
        given = secrets or {}
        missing = [name for name in spec.required_secrets if not given.get(name)]
        # An OAuth provider may also take a long-lived token alone (e.g. a HubSpot private-app token).
        token_only = (
            spec.integration is not None and spec.integration.auth == "oauth" and bool(given.get("access_token"))
        )
        if missing and not token_only:
            raise ConfigurationError(missing[0], f"{spec.name} needs the secret(s) {', '.join(missing)}")
        unknown = [name for name in (secrets or {}) if name not in spec.secret_names]
        if unknown:
            raise ConfigurationError(unknown[0], f"{spec.name} takes no secret named {unknown[0]!r}")
        return connection.model_copy(update={"settings": settings.model_dump(mode="json", exclude_none=True)})

    def for_agent(self, agent: Agent) -> AgentProviders:
        return AgentProviders(self, agent)

    def build(self, agent: Agent, capability: Capability) -> object:
        connection = agent.connections.get(capability)
        if connection is None:
            raise ProviderNotConnectedError(capability)
        if connection.status == "expired":
            reason = connection.status_detail or "credentials refused"
            raise ProviderNotConnectedError(
                capability,
                f"the {connection.provider} connection has expired ({reason}); reconnect it with `tool-server connect`",
            )
        cache_key = json.dumps(
            [agent.id, agent.timezone, capability, connection.id, connection.provider, connection.settings],
            sort_keys=True,
            default=str,
        )
        provider = self._built.get(cache_key)
        if provider is None:
            spec = self._specs.get(connection.provider)
            if spec is None:
                raise ProviderNotConnectedError(capability, f"unknown provider {connection.provider!r}")
            settings = spec.settings_model.model_validate(connection.settings)
            provider = spec.build(self._env, agent, connection, settings)
            if len(self._built) > 4096:
                self._built.clear()
            self._built[cache_key] = provider
        return provider


class AgentProviders:
    """The providers of one agent, by capability. Each accessor raises when none is connected."""

    def __init__(self, registry: ProviderRegistry, agent: Agent) -> None:
        self._registry = registry
        self._agent = agent

    def _get(self, capability: Capability, kind: type[T]) -> T:
        return cast(T, self._registry.build(self._agent, capability))

    def calendar(self) -> CalendarProvider:
        return self._get("calendar", CalendarProvider)  # type: ignore[type-abstract]

    def crm(self) -> CrmProvider:
        return self._get("crm", CrmProvider)  # type: ignore[type-abstract]

    def contacts(self) -> GuardedCrm:
        """The CRM with contact creation claimed in the database (see `GuardedCrm`)."""
        connection = self._agent.connections.get("crm")
        provider = connection.provider if connection else ""
        key = (connection.id if connection else None) or f"{self._agent.id}:{provider}"
        spec = self._registry.specs.get(provider)
        # The built-in contact book is in this database, where unique indexes already keep one
        # contact per phone and email; only a vendor's CRM needs the claims.
        claims = self._registry.contact_claims if spec is not None and spec.integration is not None else None
        return GuardedCrm(self.crm(), claims, key)

    def payments(self) -> PaymentsProvider:
        return self._get("payments", PaymentsProvider)  # type: ignore[type-abstract]

    def messaging(self) -> MessagingProvider:
        return self._get("messaging", MessagingProvider)  # type: ignore[type-abstract]

    def whatsapp(self) -> WhatsAppSender:
        """The messaging provider, when it sends WhatsApp too."""
        provider = self._registry.build(self._agent, "messaging")
        if not isinstance(provider, WhatsAppSender):
            name = getattr(provider, "name", "the messaging provider")
            raise ConfigurationError("provider", f"{name} does not send WhatsApp messages")
        return provider

    def email(self) -> EmailProvider:
        return self._get("email", EmailProvider)  # type: ignore[type-abstract]

    def team(self) -> TeamNotifier:
        return self._get("team", TeamNotifier)  # type: ignore[type-abstract]

    def automation(self) -> AutomationProvider:
        return self._get("automation", AutomationProvider)  # type: ignore[type-abstract]

    def accounting(self) -> AccountingProvider:
        return self._get("accounting", AccountingProvider)  # type: ignore[type-abstract]

    def connection(self, capability: Capability) -> Connection | None:
        return self._agent.connections.get(capability)


def describe_settings(spec: ProviderSpec) -> dict[str, Any]:
    """The JSON schema of a provider's settings, for `tool-server providers`."""
    return spec.settings_model.model_json_schema()
