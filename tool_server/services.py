"""The server's parts, wired once per process (per event loop) from settings and a clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from tool_server.agents.repository import AgentRepository
from tool_server.clock import Clock, system_clock
from tool_server.dispatch import Deadlines, Dispatcher
from tool_server.dispatch.audit import AuditLog
from tool_server.dispatch.idempotency import IdempotencyStore
from tool_server.providers import PROVIDERS, ProviderEnv, ProviderRegistry, ProviderSpec
from tool_server.settings import ServerSettings
from tool_server.store.database import Database
from tool_server.tools.catalogue import CATALOGUE, Catalogue

__all__ = ["Services"]


@dataclass
class Services:
    """Everything a transport needs: agents to authenticate against and a dispatcher to call."""

    settings: ServerSettings
    clock: Clock
    db: Database
    agents: AgentRepository
    providers: ProviderRegistry
    audit: AuditLog
    dispatcher: Dispatcher

    @property
    def catalogue(self) -> Catalogue:
        return self.dispatcher.catalogue

    @classmethod
    def build(
        cls,
        settings: ServerSettings | None = None,
        *,
        clock: Clock = system_clock,
        provider_specs: Mapping[str, ProviderSpec] = PROVIDERS,
    ) -> Services:
        """Wire the server. `provider_specs` lets embedders (and tests) add their own providers."""
        settings = settings or ServerSettings()
        db = Database(settings.database_url)
        providers = ProviderRegistry(ProviderEnv(db=db, clock=clock), provider_specs)
        audit = AuditLog(db)
        dispatcher = Dispatcher(
            CATALOGUE,
            providers,
            IdempotencyStore(
                db,
                clock,
                ttl=timedelta(hours=settings.idempotency_ttl_hours),
                ttl_without_call=timedelta(seconds=settings.idempotency_ttl_without_call_seconds),
            ),
            audit,
            clock,
            Deadlines(
                read_seconds=settings.read_deadline_seconds,
                write_seconds=settings.write_deadline_seconds,
                per_tool=settings.tool_deadlines,
            ),
        )
        return cls(
            settings=settings,
            clock=clock,
            db=db,
            agents=AgentRepository(db, clock, auth_cache_seconds=settings.auth_cache_seconds),
            providers=providers,
            audit=audit,
            dispatcher=dispatcher,
        )

    async def aclose(self) -> None:
        await self.audit.aclose()
        await self.db.dispose()
