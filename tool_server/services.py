"""The server's parts, wired once per process (per event loop) from settings and a clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from tool_server.agents.repository import AgentRepository
from tool_server.calls import CallStore, CallSync
from tool_server.clock import Clock, system_clock
from tool_server.dispatch import Deadlines, Dispatcher
from tool_server.dispatch.audit import AuditLog
from tool_server.dispatch.idempotency import IdempotencyStore
from tool_server.hooks.emitter import HookEmitter
from tool_server.hooks.subscriptions import HookSubscriptions
from tool_server.message_log import MessageLog
from tool_server.payment_log import PaymentLog
from tool_server.postcall.followups import FollowUpsStore
from tool_server.postcall.ledger import SyncLedger
from tool_server.providers import PROVIDERS, ProviderEnv, ProviderRegistry, ProviderSpec
from tool_server.secret_box import SecretBox
from tool_server.settings import ServerSettings
from tool_server.slots.store import SlotHolds
from tool_server.store.database import Database
from tool_server.tools.catalogue import CATALOGUE, Catalogue
from tool_server.vault import DatabaseVault
from tool_server.voice.platform_secrets import PlatformSecrets

__all__ = ["Services"]


@dataclass
class Services:
    """Everything a transport needs: agents to authenticate against and a dispatcher to call."""

    settings: ServerSettings
    clock: Clock
    db: Database
    agents: AgentRepository
    providers: ProviderRegistry
    messages: MessageLog
    payments: PaymentLog
    calls: CallStore
    platform_secrets: PlatformSecrets
    audit: AuditLog
    dispatcher: Dispatcher
    ledger: SyncLedger
    followups: FollowUpsStore
    hooks: HookSubscriptions
    sync: CallSync | None = None
    """Set by the post-call engine when this process runs one; without it calls stay queued."""
    hook_events: HookEmitter | None = None

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
        box = SecretBox.from_settings(settings)
        agents = AgentRepository(db, clock, box, auth_cache_seconds=settings.auth_cache_seconds)
        env = ProviderEnv(
            db=db,
            clock=clock,
            public_url=settings.public_url.rstrip("/"),
            vault=lambda connection_id: DatabaseVault(agents, connection_id),
        )
        providers = ProviderRegistry(env, provider_specs)
        messages = MessageLog(db, clock)
        payments = PaymentLog(db, clock)
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
            messages,
            SlotHolds(db, clock),
            payments,
        )
        hooks = HookSubscriptions(
            db,
            box,
            clock,
            allow_private_targets=settings.hooks_allow_private_targets,
            cache_seconds=settings.auth_cache_seconds,
        )
        services = cls(
            settings=settings,
            clock=clock,
            db=db,
            agents=agents,
            providers=providers,
            messages=messages,
            payments=payments,
            calls=CallStore(db, clock),
            platform_secrets=PlatformSecrets(db, box, clock),
            audit=audit,
            dispatcher=dispatcher,
            ledger=SyncLedger(db, clock),
            followups=FollowUpsStore(db, clock),
            hooks=hooks,
        )
        # Deliveries start through whichever engine the process runs at the time (looked up per event).
        services.hook_events = HookEmitter(hooks, lambda: services.sync, clock)
        dispatcher.observers.append(services.hook_events.observe)
        return services

    async def aclose(self) -> None:
        await self.audit.aclose()
        await self.db.dispose()
