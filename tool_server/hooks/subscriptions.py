"""Who subscribed to which event: hook URLs and signing secrets, sealed at rest like connection credentials."""

from __future__ import annotations

import ipaddress
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tool_server.clock import Clock
from tool_server.errors import ToolError
from tool_server.hooks.events import EVENTS, HookEvent
from tool_server.secret_box import SecretBox
from tool_server.store.database import Database
from tool_server.store.tables import HookSubscriptionRow, new_id

__all__ = ["MAX_SUBSCRIPTIONS", "HookSubscription", "HookSubscriptions", "NewSubscription", "check_target"]

MAX_SUBSCRIPTIONS = 50
MAX_URL = 2048


@dataclass(frozen=True)
class HookSubscription:
    """One subscription, with its URL and secret opened (never shown back after creation)."""

    id: str
    agent_id: str
    event: HookEvent
    target_url: str
    secret: str
    created_at: datetime


@dataclass(frozen=True)
class NewSubscription:
    """What subscribing answers: the id (to unsubscribe) and the signing secret, shown this once."""

    id: str
    event: HookEvent
    secret: str
    created_at: datetime


def check_target(url: str, *, allow_private: bool) -> str:
    """The target URL if a subscriber may use it: http(s), a host, no credentials, and (unless allowed)
    not a loopback, private or link-local address, so an API key cannot aim the server at its own network.

    Only literal addresses and `localhost` are checked; a DNS name that resolves inward is not.
    """
    if len(url) > MAX_URL:
        raise ToolError.invalid("target_url", f"is longer than {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ToolError.invalid("target_url", "must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise ToolError.invalid("target_url", "must not carry a user name or password")
    if not allow_private:
        host = parts.hostname
        inward = host == "localhost" or host.endswith(".localhost")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and not address.is_global:
            inward = True
        if inward:
            raise ToolError.invalid("target_url", "must be a public address, not this server's own network")
    return url


class HookSubscriptions:
    """The agent's REST-hook subscriptions."""

    def __init__(
        self, db: Database, box: SecretBox, clock: Clock, *, allow_private_targets: bool, cache_seconds: float = 0.0
    ) -> None:
        self._db = db
        self._box = box
        self._clock = clock
        self._allow_private = allow_private_targets
        self._cache_seconds = cache_seconds
        # agent id -> (monotonic expiry, the events it subscribes to): read on every tool write.
        self._events: dict[str, tuple[float, frozenset[str]]] = {}

    async def events_of(self, agent_id: str) -> frozenset[str]:
        """The events the agent has subscribers for, cached like the agent itself (`auth_cache_seconds`).

        Tool writes ask this before any delivery, so an agent without subscriptions costs no query.
        A change made in this process applies at once; one made in another process within the cache
        time, as a changed connection does.
        """
        now = time.monotonic()
        cached = self._events.get(agent_id)
        if cached is not None and cached[0] > now:
            return cached[1]

        def work(session: Session) -> frozenset[str]:
            query = select(HookSubscriptionRow.event).where(HookSubscriptionRow.agent_id == agent_id).distinct()
            return frozenset(session.execute(query).scalars())

        events = await self._db.run(work)
        if self._cache_seconds > 0:
            if len(self._events) > 10_000:
                self._events.clear()
            self._events[agent_id] = (now + self._cache_seconds, events)
        return events

    async def subscribe(self, agent_id: str, event: str, target_url: str) -> NewSubscription:
        if event not in EVENTS:
            raise ToolError.invalid("event", f"unknown event {event[:64]!r}; events: {', '.join(EVENTS)}")
        url = check_target(target_url, allow_private=self._allow_private)
        secret = "whsec_" + secrets.token_urlsafe(32)
        now = self._clock()

        def work(session: Session) -> str:
            count = session.execute(
                select(func.count()).select_from(HookSubscriptionRow).where(HookSubscriptionRow.agent_id == agent_id)
            ).scalar_one()
            if count >= MAX_SUBSCRIPTIONS:
                raise ToolError.invalid("event", f"this agent already has {MAX_SUBSCRIPTIONS} subscriptions")
            row = HookSubscriptionRow(
                id=new_id("hook"),
                agent_id=agent_id,
                event=event,
                target_url=self._box.seal({"url": url}),
                secret=self._box.seal({"secret": secret}),
                created_at=now,
            )
            session.add(row)
            return row.id

        subscription_id = await self._db.run(work)
        self._events.pop(agent_id, None)
        return NewSubscription(id=subscription_id, event=event, secret=secret, created_at=now)

    async def unsubscribe(self, agent_id: str | None, subscription_id: str) -> bool:
        """Remove one subscription (of `agent_id`, when given); False when there was none."""

        def work(session: Session) -> bool:
            query = delete(HookSubscriptionRow).where(HookSubscriptionRow.id == subscription_id)
            if agent_id is not None:
                query = query.where(HookSubscriptionRow.agent_id == agent_id)
            return bool(session.execute(query).rowcount)  # type: ignore[attr-defined]

        removed = await self._db.run(work)
        if agent_id is None:
            self._events.clear()
        else:
            self._events.pop(agent_id, None)
        return removed

    async def get(self, subscription_id: str) -> HookSubscription | None:
        def work(session: Session) -> HookSubscription | None:
            row = session.get(HookSubscriptionRow, subscription_id)
            return None if row is None else self._open(row)

        return await self._db.run(work)

    async def of_agent(self, agent_id: str, event: str | None = None) -> list[HookSubscription]:
        """The agent's subscriptions (to `event`, when given), oldest first."""

        def work(session: Session) -> list[HookSubscriptionRow]:
            query = select(HookSubscriptionRow).where(HookSubscriptionRow.agent_id == agent_id)
            if event is not None:
                query = query.where(HookSubscriptionRow.event == event)
            rows = list(
                session.execute(query.order_by(HookSubscriptionRow.created_at, HookSubscriptionRow.id)).scalars()
            )
            for row in rows:
                session.expunge(row)
            return rows

        return [self._open(row) for row in await self._db.run(work)]

    def _open(self, row: HookSubscriptionRow) -> HookSubscription:
        return HookSubscription(
            id=row.id,
            agent_id=row.agent_id,
            event=row.event,  # type: ignore[arg-type]
            target_url=self._box.open(row.target_url)["url"],
            secret=self._box.open(row.secret)["secret"],
            created_at=row.created_at,
        )
