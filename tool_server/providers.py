"""Which provider serves which capability for an agent.

Adding a provider means one entry in `PROVIDERS`: its name, the capabilities it serves, its
settings model, and a function that builds it for one agent's connection.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from integrations.capabilities import (
    CalendarProvider,
    ConfigurationError,
    CrmProvider,
    MessagingProvider,
    PaymentsProvider,
    ProviderNotConnectedError,
)
from tool_server.agents.models import Agent, Capability, Connection
from tool_server.builtin import ContactBook, LocalCalendar, LocalCalendarSettings, Outbox
from tool_server.clock import Clock
from tool_server.store.database import Database

__all__ = ["PROVIDERS", "AgentProviders", "ProviderEnv", "ProviderRegistry", "ProviderSpec"]


@dataclass(frozen=True)
class ProviderEnv:
    """What a provider may need from the server process."""

    db: Database
    clock: Clock


class _NoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ProviderSpec:
    """One provider: what it serves, what settings it takes, how to build it."""

    name: str
    capabilities: frozenset[Capability]
    settings_model: type[BaseModel]
    build: Callable[[ProviderEnv, Agent, BaseModel], object]
    description: str


def _local_calendar(env: ProviderEnv, agent: Agent, settings: BaseModel) -> object:
    assert isinstance(settings, LocalCalendarSettings)
    return LocalCalendar(env.db, agent.id, settings.rules(agent.timezone), env.clock)


PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
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
            build=lambda env, agent, _settings: ContactBook(env.db, agent.id, env.clock),
            description="Built-in contact book with notes.",
        ),
        ProviderSpec(
            name="outbox",
            capabilities=frozenset({"messaging"}),
            settings_model=_NoSettings,
            build=lambda env, agent, _settings: Outbox(env.db, agent.id, env.clock),
            description="Built-in outbox: records messages and does not send them.",
        ),
    )
}

T = TypeVar("T")


class ProviderRegistry:
    """Validates connections and builds the providers an agent's tool calls use."""

    def __init__(self, env: ProviderEnv, specs: Mapping[str, ProviderSpec] = PROVIDERS) -> None:
        self._env = env
        self._specs = dict(specs)
        self._built: dict[str, object] = {}

    @property
    def specs(self) -> Mapping[str, ProviderSpec]:
        return self._specs

    def validate(self, connection: Connection) -> Connection:
        """The connection with its settings checked and filled with defaults."""
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
            where = ".".join(str(part) for part in first["loc"]) or "settings"
            raise ConfigurationError(f"settings.{where}", first["msg"]) from None
        return connection.model_copy(update={"settings": settings.model_dump(mode="json", exclude_none=True)})

    def for_agent(self, agent: Agent) -> AgentProviders:
        return AgentProviders(self, agent)

    def build(self, agent: Agent, capability: Capability) -> object:
        connection = agent.connections.get(capability)
        if connection is None:
            raise ProviderNotConnectedError(capability)
        cache_key = json.dumps(
            [agent.id, agent.timezone, capability, connection.provider, connection.settings],
            sort_keys=True,
            default=str,
        )
        provider = self._built.get(cache_key)
        if provider is None:
            spec = self._specs.get(connection.provider)
            if spec is None:
                raise ProviderNotConnectedError(capability, f"unknown provider {connection.provider!r}")
            provider = spec.build(self._env, agent, spec.settings_model.model_validate(connection.settings))
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
        provider = self._registry.build(self._agent, capability)
        return cast(T, provider)

    def calendar(self) -> CalendarProvider:
        return self._get("calendar", CalendarProvider)  # type: ignore[type-abstract]

    def crm(self) -> CrmProvider:
        return self._get("crm", CrmProvider)  # type: ignore[type-abstract]

    def payments(self) -> PaymentsProvider:
        return self._get("payments", PaymentsProvider)  # type: ignore[type-abstract]

    def messaging(self) -> MessagingProvider:
        return self._get("messaging", MessagingProvider)  # type: ignore[type-abstract]


def describe_settings(spec: ProviderSpec) -> dict[str, Any]:
    """The JSON schema of a provider's settings, for `tool-server providers`."""
    return spec.settings_model.model_json_schema()
