"""Creating, finding and authenticating agents."""

from __future__ import annotations

import builtins
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from integrations.common.zones import canonical_zone_name
from tool_server.agents.keys import generate_key, hash_key
from tool_server.agents.models import Agent, Capability, Connection
from tool_server.clock import Clock
from tool_server.secret_box import SecretBox
from tool_server.store.database import Database
from tool_server.store.tables import AgentRow, ApiKeyRow, ConnectionRow, new_id

__all__ = ["AgentRepository", "CreatedAgent", "StoredConnection"]


@dataclass(frozen=True)
class CreatedAgent:
    """A new agent and its API key. The key is shown here once and never stored in clear."""

    agent: Agent
    api_key: str


def _connection(row: ConnectionRow) -> Connection:
    return Connection(
        id=row.id,
        capability=row.capability,
        provider=row.provider,
        settings=row.settings,
        status="expired" if row.status == "expired" else "active",
        status_detail=row.status_detail,
        role="secondary" if row.role == "secondary" else "primary",
    )


@dataclass(frozen=True)
class StoredConnection:
    """A connection with the agent it belongs to, for webhooks that arrive by connection id."""

    agent_id: str
    connection: Connection


def _load(session: Session, row: AgentRow) -> Agent:
    rows = session.execute(
        select(ConnectionRow).where(ConnectionRow.agent_id == row.id).order_by(ConnectionRow.created_at)
    ).scalars()
    connections = [_connection(c) for c in rows]
    return Agent(
        id=row.id,
        name=row.name,
        timezone=row.timezone,
        phone_region=row.phone_region,
        hold_minutes=row.hold_minutes,
        connections={c.capability: c for c in connections if c.role == "primary"},
        secondary_connections=[c for c in connections if c.role == "secondary"],
    )


class AgentRepository:
    """Agents, their keys and connections, with a short in-process cache for key lookups.

    The cache only saves a query per call; a revoked key or changed connection is seen by every
    process within `auth_cache_seconds`.
    """

    def __init__(self, db: Database, clock: Clock, box: SecretBox, *, auth_cache_seconds: float = 5.0) -> None:
        self._db = db
        self._clock = clock
        self._box = box
        self._cache_ttl = auth_cache_seconds
        self._cache: dict[str, tuple[float, Agent]] = {}

    async def create(
        self,
        name: str,
        *,
        timezone: str,
        phone_region: str,
        connections: Sequence[Connection] = (),
        secrets: Mapping[str, Mapping[str, str]] | None = None,
        hold_minutes: int = 5,
    ) -> CreatedAgent:
        """A new agent with its first key. `secrets` maps a capability to its connection's secrets
        (a secondary connection's are under "<capability>:<provider>").

        Raises `UnknownZoneError` (a ValueError) for a zone the one zone validator refuses.
        """
        timezone = canonical_zone_name(timezone)
        now = self._clock()
        agent_id = new_id("agt")
        key = generate_key()

        def work(session: Session) -> Agent:
            row = AgentRow(
                id=agent_id,
                name=name,
                timezone=timezone,
                phone_region=phone_region.upper(),
                created_at=now,
                booking_seq=0,
                hold_minutes=hold_minutes,
            )
            session.add(row)
            session.flush()
            session.add(self._key_row(agent_id, key))
            for connection in connections:
                # A secondary connection's secrets are under "<capability>:<provider>".
                secrets_key = (
                    connection.capability
                    if connection.role == "primary"
                    else f"{connection.capability}:{connection.provider}"
                )
                session.add(self._connection_row(agent_id, connection, (secrets or {}).get(secrets_key)))
            session.flush()
            return _load(session, row)

        return CreatedAgent(agent=await self._db.run(work), api_key=key)

    async def issue_key(self, agent_id: str, *, revoke_existing: bool = False) -> str:
        """A fresh key for the agent, optionally revoking every earlier one."""
        key = generate_key()

        def work(session: Session) -> None:
            if revoke_existing:
                session.execute(
                    update(ApiKeyRow)
                    .where(ApiKeyRow.agent_id == agent_id, ApiKeyRow.revoked_at.is_(None))
                    .values(revoked_at=self._clock())
                )
            session.add(self._key_row(agent_id, key))

        await self._db.run(work)
        self._cache.clear()
        return key

    async def get(self, agent_id: str) -> Agent | None:
        def work(session: Session) -> Agent | None:
            row = session.get(AgentRow, agent_id)
            return None if row is None else _load(session, row)

        return await self._db.run(work)

    async def find_by_name(self, name: str) -> Agent | None:
        def work(session: Session) -> Agent | None:
            query = select(AgentRow).where(AgentRow.name == name).order_by(AgentRow.created_at)
            row = session.execute(query).scalars().first()
            return None if row is None else _load(session, row)

        return await self._db.run(work)

    async def list(self) -> list[Agent]:
        def work(session: Session) -> list[Agent]:
            rows = session.execute(select(AgentRow).order_by(AgentRow.created_at)).scalars().all()
            return [_load(session, row) for row in rows]

        return await self._db.run(work)

    async def authenticate(self, api_key: str) -> Agent | None:
        """The agent that owns this key, or None for an unknown or revoked key."""
        digest = hash_key(api_key)
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]

        def work(session: Session) -> Agent | None:
            row = session.execute(
                select(AgentRow)
                .join(ApiKeyRow, ApiKeyRow.agent_id == AgentRow.id)
                .where(ApiKeyRow.key_hash == digest, ApiKeyRow.revoked_at.is_(None))
            ).scalar_one_or_none()
            return None if row is None else _load(session, row)

        agent = await self._db.run(work)
        if agent is not None and self._cache_ttl > 0:
            self._cache[digest] = (time.monotonic() + self._cache_ttl, agent)
        return agent

    async def set_connection(
        self, agent_id: str, connection: Connection, secrets: Mapping[str, str] | None = None
    ) -> Agent:
        """Attach (or replace) a provider for one capability; its secrets are sealed.

        A primary connection replaces the capability's primary (and a secondary of the same
        provider, which it promotes). A secondary one is added beside the primary, or replaces
        the secondary of the same provider; it cannot be the primary's own provider.
        """

        def work(session: Session) -> Agent:
            agent = session.get(AgentRow, agent_id)
            if agent is None:
                raise LookupError(f"agent {agent_id} not found")
            same_capability = session.execute(
                select(ConnectionRow).where(
                    ConnectionRow.agent_id == agent_id, ConnectionRow.capability == connection.capability
                )
            ).scalars()
            rows = list(same_capability)
            primary = next((row for row in rows if row.role == "primary"), None)
            same_provider = next((row for row in rows if row.provider == connection.provider), None)
            if connection.role == "primary":
                if same_provider is not None and same_provider is not primary:
                    session.delete(same_provider)
                    session.flush()
                existing = primary
            else:
                if primary is not None and primary.provider == connection.provider:
                    raise ValueError(f"{connection.provider} is already the primary {connection.capability} connection")
                existing = same_provider
            if existing is None:
                session.add(self._connection_row(agent_id, connection, secrets))
            else:
                existing.provider = connection.provider
                existing.settings = connection.settings
                existing.credentials = self._box.seal(dict(secrets)) if secrets else None
                existing.status, existing.status_detail = "active", None
                existing.updated_at = self._clock()
            session.flush()
            return _load(session, agent)

        updated = await self._db.run(work)
        self._cache.clear()
        return updated

    async def remove_connection(self, agent_id: str, capability: Capability, provider: str | None = None) -> None:
        """Remove the capability's primary connection, or with `provider` that provider's connection."""

        def work(session: Session) -> None:
            query = select(ConnectionRow).where(
                ConnectionRow.agent_id == agent_id, ConnectionRow.capability == capability
            )
            query = (
                query.where(ConnectionRow.provider == provider)
                if provider
                else query.where(ConnectionRow.role == "primary")
            )
            row = session.execute(query).scalar_one_or_none()
            if row is not None:
                session.delete(row)

        await self._db.run(work)
        self._cache.clear()

    async def connection(self, connection_id: str) -> StoredConnection | None:
        """A connection by id, with its agent (for provider webhooks)."""

        def work(session: Session) -> StoredConnection | None:
            row = session.get(ConnectionRow, connection_id)
            return None if row is None else StoredConnection(row.agent_id, _connection(row))

        return await self._db.run(work)

    async def connection_secrets(self, connection_id: str) -> dict[str, str]:
        """The connection's secrets, decrypted (empty when it has none)."""
        sealed = await self._db.run(lambda session: _row(session, connection_id).credentials)
        return self._box.open(sealed) if sealed else {}

    async def save_connection_secrets(self, connection_id: str, updates: Mapping[str, str]) -> None:
        """Merge `updates` into the sealed secrets (a refreshed OAuth token, say).

        Connections of the same agent and provider holding the same grant (a CRM with a
        calendar, connected for both) get the updates too, since a provider that rotates
        refresh tokens (GoHighLevel) accepts only the newest.
        """

        def work(session: Session) -> None:
            row = _row(session, connection_id)
            current = self._box.open(row.credentials) if row.credentials else {}
            for holder, held in [(row, current), *self._sharing_grant(session, row, current)]:
                holder.credentials = self._box.seal({**held, **updates})
                holder.updated_at = self._clock()

        await self._db.run(work)

    async def mark_connection_expired(self, connection_id: str, reason: str) -> None:
        """Record that the connection's credentials stopped working; its tools answer NOT_CONNECTED.

        Connections sharing its grant stop working with it, and are marked too.
        """

        def work(session: Session) -> None:
            row = _row(session, connection_id)
            current = self._box.open(row.credentials) if row.credentials else {}
            for holder, _held in [(row, current), *self._sharing_grant(session, row, current)]:
                holder.status, holder.status_detail, holder.updated_at = "expired", reason, self._clock()

        await self._db.run(work)
        self._cache.clear()

    def _sharing_grant(
        self, session: Session, row: ConnectionRow, secrets: Mapping[str, str]
    ) -> builtins.list[tuple[ConnectionRow, dict[str, str]]]:
        """The agent's other connections to the same provider holding the same grant (refresh
        token, or else access token), with their secrets."""
        grant_name = "refresh_token" if secrets.get("refresh_token") else "access_token"
        grant = secrets.get(grant_name)
        if not grant:
            return []
        siblings = session.execute(
            select(ConnectionRow).where(
                ConnectionRow.agent_id == row.agent_id,
                ConnectionRow.provider == row.provider,
                ConnectionRow.id != row.id,
                ConnectionRow.credentials.is_not(None),
            )
        ).scalars()
        found = []
        for sibling in siblings:
            theirs = self._box.open(sibling.credentials or "")
            if theirs.get(grant_name) == grant:
                found.append((sibling, theirs))
        return found

    async def rotate_secrets(self) -> int:
        """Re-seal every connection's secrets under the first configured key; the count re-sealed."""

        def work(session: Session) -> int:
            rows = session.execute(select(ConnectionRow).where(ConnectionRow.credentials.is_not(None))).scalars()
            count = 0
            for row in rows:
                assert row.credentials is not None
                row.credentials = self._box.rotate(row.credentials)
                count += 1
            return count

        return await self._db.run(work)

    def _key_row(self, agent_id: str, key: str) -> ApiKeyRow:
        return ApiKeyRow(
            id=new_id("key"), agent_id=agent_id, key_prefix=key[:8], key_hash=hash_key(key), created_at=self._clock()
        )

    def _connection_row(
        self, agent_id: str, connection: Connection, secrets: Mapping[str, str] | None
    ) -> ConnectionRow:
        now = self._clock()
        return ConnectionRow(
            id=new_id("con"),
            agent_id=agent_id,
            capability=connection.capability,
            provider=connection.provider,
            settings=connection.settings,
            credentials=self._box.seal(dict(secrets)) if secrets else None,
            status="active",
            status_detail=None,
            role=connection.role,
            created_at=now,
            updated_at=now,
        )


def _row(session: Session, connection_id: str) -> ConnectionRow:
    row = session.get(ConnectionRow, connection_id)
    if row is None:
        raise LookupError(f"connection {connection_id} not found")
    return row
