"""Single-use refresh tokens (GoHighLevel rotates one at every refresh) shared by processes and connections.

A refresh token another process has just spent is not a revoked grant: the token manager looks
for the replacement that process saved before it gives up on the connection. Connections of one
agent to one provider that share a grant (a CRM with a calendar) get every rotation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest

from integrations.capabilities import ProviderNotConnectedError
from integrations.common.oauth import TokenManager
from integrations.common.vault import MemoryVault
from tests.conftest import AgentFactory
from tool_server.agents import Connection
from tool_server.services import Services
from tool_server.vault import DatabaseVault

NOW = datetime(2026, 3, 4, 15, tzinfo=UTC)


class SingleUseTokens:
    """A token endpoint that accepts only the newest refresh token and issues a new one each time."""

    def __init__(self) -> None:
        self.current = "refresh-0"
        self.issued = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        form = {key: values[0] for key, values in parse_qs(request.content.decode()).items()}
        if form.get("refresh_token") != self.current:
            return httpx.Response(400, json={"error": "invalid_grant"})
        self.issued += 1
        self.current = f"refresh-{self.issued}"
        return httpx.Response(
            200, json={"access_token": f"access-{self.issued}", "refresh_token": self.current, "expires_in": 3600}
        )


class StaleView(MemoryVault):
    """Another process's view of the same stored secrets: `load` is its cache, `reload` the store."""

    def __init__(self, store: MemoryVault, cached: dict[str, str]) -> None:
        super().__init__(cached)
        self._store = store

    async def reload(self) -> dict[str, str]:
        self.secrets = dict(self._store.secrets)
        return dict(self.secrets)

    async def save(self, updates: dict[str, str]) -> None:
        await self._store.save(updates)
        self.secrets = dict(self._store.secrets)


def manager(vault: MemoryVault, endpoint: SingleUseTokens) -> TokenManager:
    return TokenManager(
        "gohighlevel",
        "crm",
        vault,
        "https://token.invalid/oauth/token",
        clock=lambda: NOW,
        transport=httpx.MockTransport(endpoint.handle),
    )


STORED = {"client_id": "id", "client_secret": "not-a-secret", "refresh_token": "refresh-0", "access_token": "old"}


async def test_a_refresh_token_spent_by_another_process_leads_to_its_replacement_not_to_an_expired_connection() -> None:
    endpoint = SingleUseTokens()
    store = MemoryVault(dict(STORED))
    first = manager(store, endpoint)
    second_view = StaleView(store, dict(STORED))
    second = manager(second_view, endpoint)

    token_a = await first.refresh(stale="old")
    token_b = await second.refresh(stale="old")

    assert token_a == token_b == "access-1"
    assert second_view.expired_reason is None
    assert store.expired_reason is None
    assert endpoint.issued == 1


async def test_a_refresh_token_refused_with_no_replacement_anywhere_marks_the_connection_expired() -> None:
    endpoint = SingleUseTokens()
    endpoint.current = "revoked-by-the-user"
    store = MemoryVault(dict(STORED))

    with pytest.raises(ProviderNotConnectedError):
        await manager(store, endpoint).refresh(stale="old")

    assert store.expired_reason is not None
    assert "invalid_grant" in store.expired_reason


async def test_a_rotated_refresh_token_reaches_every_connection_sharing_the_grant_and_no_other(
    make_agent: AgentFactory, services: Services
) -> None:
    grant = {"client_id": "id", "client_secret": "not-a-secret", "refresh_token": "refresh-0"}
    settings = {"location_id": "loc-1", "calendar_id": "cal-1"}
    created = await make_agent(
        connections=[
            Connection(capability="crm", provider="gohighlevel", settings=settings),
            Connection(capability="calendar", provider="gohighlevel", settings=settings),
            Connection(capability="messaging", provider="outbox"),
        ],
        secrets={"crm": grant, "calendar": grant},
    )
    crm, calendar = created.agent.connections["crm"], created.agent.connections["calendar"]
    assert crm.id is not None
    assert calendar.id is not None

    await DatabaseVault(services.agents, crm.id).save({"refresh_token": "refresh-1", "access_token": "access-1"})

    assert (await services.agents.connection_secrets(calendar.id))["refresh_token"] == "refresh-1"
    assert (await services.agents.connection_secrets(calendar.id))["access_token"] == "access-1"
    other = created.agent.connections["messaging"].id
    assert other is not None
    assert await services.agents.connection_secrets(other) == {}


async def test_a_refused_grant_expires_every_connection_sharing_it(
    make_agent: AgentFactory, services: Services
) -> None:
    grant = {"client_id": "id", "client_secret": "not-a-secret", "refresh_token": "refresh-0"}
    settings = {"location_id": "loc-1", "calendar_id": "cal-1"}
    created = await make_agent(
        connections=[
            Connection(capability="crm", provider="gohighlevel", settings=settings),
            Connection(capability="calendar", provider="gohighlevel", settings=settings),
        ],
        secrets={"crm": grant, "calendar": {**grant, "refresh_token": "another-install"}},
    )
    crm = created.agent.connections["crm"]
    assert crm.id is not None

    await DatabaseVault(services.agents, crm.id).mark_expired("gohighlevel refused the refresh token")
    after = await services.agents.get(created.agent.id)

    assert after is not None
    assert after.connections["crm"].status == "expired"
    # Another install's grant is not this one: its connection keeps working.
    assert after.connections["calendar"].status == "active"

    await services.agents.save_connection_secrets(
        after.connections["calendar"].id or "", {"refresh_token": "refresh-0"}
    )
    await DatabaseVault(services.agents, crm.id).mark_expired("refused again")
    both = await services.agents.get(created.agent.id)
    assert both is not None
    assert both.connections["calendar"].status == "expired"
