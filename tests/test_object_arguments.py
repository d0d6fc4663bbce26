"""Tools that take name/value pairs (workflow data, template variables) refuse anything but a small flat object,
by counting and measuring before validation reads it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import AgentFactory, CallerFactory
from tool_server.agents import Connection, CreatedAgent


@pytest.fixture
async def outboxed(make_agent: AgentFactory) -> CreatedAgent:
    return await make_agent(connections=[Connection(capability="automation", provider="outbox")])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({f"k{i}": "v" for i in range(51)}, "at most 50"),
        ({"name": {"first": "Jane"}}, "not nested data"),
        ({"name": ["Jane"]}, "not nested data"),
        ({"x" * 65: "v"}, "at most 64"),
        ({"name": "J" * 2001}, "at most 2000"),
        ({"name": "Jane\x00"}, "NUL character"),
        ({"na\nme": "Jane"}, "control character"),
    ],
    ids=["too-many", "nested-object", "nested-list", "long-key", "long-value", "nul-in-value", "newline-in-key"],
)
async def test_workflow_data_that_is_not_a_small_flat_object_is_refused_by_name(
    data: dict[str, Any], reason: str, outboxed: CreatedAgent, make_caller: CallerFactory
) -> None:
    caller = await make_caller("http", outboxed)

    outcome = await caller.call("trigger_workflow", {"event": "lead.captured", "data": data})

    assert outcome.code == "VALIDATION_ERROR"
    assert outcome.field == "data"
    assert reason in str(outcome.error)


async def test_a_flat_object_with_multiline_text_numbers_and_flags_is_accepted(
    outboxed: CreatedAgent, make_caller: CallerFactory
) -> None:
    caller = await make_caller("http", outboxed)
    data = {"name": "Jane Doe", "notes": "Line one\nLine two", "party": 4, "urgent": True, "budget": 99.5}

    outcome = await caller.call("trigger_workflow", {"event": "lead.captured", "data": data})

    assert outcome.ok, outcome.error
    assert outcome.unwrap()["run"]["status"] == "recorded"
