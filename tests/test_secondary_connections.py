"""An agent's primary and secondary CRM connections, and the post-call jobs they plan."""

from __future__ import annotations

import pytest

from tests.conftest import AgentFactory
from tool_server.agents import Connection
from tool_server.postcall.followups import FollowUps
from tool_server.postcall.jobs import plan
from tool_server.postcall.workflows import job_queue
from tool_server.services import Services

SECRETS = {"access_token": "pat-na1-not-a-real-token"}


async def test_a_secondary_crm_sits_beside_the_primary_and_the_tools_keep_using_the_primary(
    make_agent: AgentFactory, services: Services
) -> None:
    created = await make_agent(connections=[Connection(capability="crm", provider="contact_book")])

    agent = await services.agents.set_connection(
        created.agent.id, Connection(capability="crm", provider="hubspot", role="secondary"), SECRETS
    )

    assert agent.connections["crm"].provider == "contact_book"
    assert [(c.provider, c.role) for c in agent.secondary_connections] == [("hubspot", "secondary")]
    assert services.providers.for_agent(agent).contacts().name == "contact_book"
    assert agent.with_primary(agent.secondary_connections[0]).connections["crm"].provider == "hubspot"


async def test_connecting_a_secondary_crm_as_primary_promotes_it_and_leaves_one_connection_for_it(
    make_agent: AgentFactory, services: Services
) -> None:
    created = await make_agent(connections=[Connection(capability="crm", provider="contact_book")])
    await services.agents.set_connection(
        created.agent.id, Connection(capability="crm", provider="hubspot", role="secondary"), SECRETS
    )

    agent = await services.agents.set_connection(
        created.agent.id, Connection(capability="crm", provider="hubspot"), SECRETS
    )

    assert agent.connections["crm"].provider == "hubspot"
    assert agent.secondary_connections == []


async def test_the_primary_crm_cannot_also_be_a_secondary_one(make_agent: AgentFactory, services: Services) -> None:
    created = await make_agent(connections=[Connection(capability="crm", provider="contact_book")])

    with pytest.raises(ValueError, match="already the primary crm"):
        await services.agents.set_connection(
            created.agent.id, Connection(capability="crm", provider="contact_book", role="secondary")
        )


async def test_each_secondary_crm_is_its_own_post_call_job_on_its_own_queue(
    make_agent: AgentFactory, services: Services
) -> None:
    created = await make_agent(
        connections=[
            Connection(capability="crm", provider="contact_book"),
            Connection(capability="calendar", provider="local_calendar"),
        ]
    )
    agent = await services.agents.set_connection(
        created.agent.id, Connection(capability="crm", provider="hubspot", role="secondary"), SECRETS
    )

    jobs = plan(agent, FollowUps())

    assert jobs == ["crm", "crm:hubspot", "calendar"]
    assert [job_queue(agent, job) for job in jobs] == [
        "postcall.crm.contact_book",
        "postcall.crm.hubspot",
        "postcall.calendar.local_calendar",
    ]
