"""Post-call with a CRM and books: one CRM contact and one customer in the books, linked, however often and
however concurrently the platform delivers the call."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from integrations.registry import INTEGRATIONS
from tests.conftest import AgentFactory
from tests.support.provider_kit import agent_on_emulators
from tests.support.sandbox_server import ServedSandboxes
from tests.test_postcall_sync import call, headers, settled
from tool_server.agents import Connection, CreatedAgent
from tool_server.services import Services
from tool_server.settings import ServerSettings

pytestmark = pytest.mark.usefixtures("fresh_sandboxes")
BOOKS = ["ledger", *sorted(name for name, spec in INTEGRATIONS.items() if "accounting" in spec.capabilities)]


@pytest.fixture
def settings(database_url: str) -> ServerSettings:
    return ServerSettings(
        database_url=database_url,
        postcall="inline",
        postcall_retry_base_seconds=0.05,
        postcall_poll_seconds=0.05,
        postcall_max_attempts=3,
    )


@pytest.fixture(params=BOOKS)
async def created(
    request: pytest.FixtureRequest, make_agent: AgentFactory, services: Services, sandboxes: ServedSandboxes
) -> CreatedAgent:
    books = str(request.param)
    local = [Connection(capability="calendar", provider="local_calendar")]
    if books == "ledger":
        local.append(Connection(capability="accounting", provider="ledger"))
        return await agent_on_emulators(["hubspot"], make_agent, services, sandboxes, also=local)
    return await agent_on_emulators(["hubspot", books], make_agent, services, sandboxes, also=local)


async def test_five_concurrent_deliveries_leave_one_crm_contact_and_one_linked_customer(
    http: httpx.AsyncClient, created: CreatedAgent, services: Services, sandboxes: ServedSandboxes
) -> None:
    answers = await asyncio.gather(
        *(http.post("/v1/calls", json=call("call-acct"), headers=headers(created)) for _ in range(5))
    )
    record = await settled(http, created, "call-acct")

    assert {answer.status_code for answer in answers} == {200}
    steps = {step["job"]: step for step in record["sync_steps"]}
    assert steps["crm"]["status"] == "done", steps
    assert steps["accounting"]["status"] == "done", steps
    assert steps["accounting"]["result"]["crm_contact_id"] == steps["crm"]["result"]["contact_id"]
    assert len(sandboxes.sandboxes["hubspot"].state.dump()["contacts"]) == 1
    books = services.providers.build(created.agent, "accounting")
    customers = await books.find_customers(phone="+12125550142")  # type: ignore[attr-defined]
    assert [customer.id for customer in customers] == [steps["accounting"]["result"]["customer_id"]]
