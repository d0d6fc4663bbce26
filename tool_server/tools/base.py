"""The shape of a tool: typed input, typed output with `speech`, and its catalogue entry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar, Generic, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from tool_server.agents.models import Agent, Capability
from tool_server.message_log import MessageLog
from tool_server.payment_log import PaymentLog
from tool_server.providers import AgentProviders
from tool_server.slots.store import SlotHolds

__all__ = ["ToolContext", "ToolInput", "ToolResult", "ToolSpec"]


class ToolInput(BaseModel):
    """Base of every tool's arguments. Unknown arguments are refused so a typo never passes silently.

    Every string field declares a `max_length`; dispatch refuses longer values before reading them.
    `free_text_fields` names the fields that may hold line breaks and tabs (notes, message bodies);
    every other string is one line.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    free_text_fields: ClassVar[frozenset[str]] = frozenset()


class ToolResult(BaseModel):
    """Base of every tool's result: structured data plus one sentence to say aloud."""

    speech: str = Field(description="One short sentence the agent can say to the caller.")


@dataclass(frozen=True)
class ToolContext:
    """What a tool knows about the call it serves. Built by dispatch for every call."""

    agent: Agent
    now: datetime
    providers: AgentProviders
    call_id: str | None = None
    # The call record, when a post-call job runs the tool.
    record_id: str | None = None
    idempotency_key: str | None = None
    # Set when an earlier attempt under the same key died mid-call: it may have reached the provider.
    earlier_attempt_at: datetime | None = None
    messages: MessageLog | None = None
    holds: SlotHolds | None = None
    payments: PaymentLog | None = None

    @property
    def zone(self) -> ZoneInfo:
        return self.agent.zone


InT = TypeVar("InT", bound=ToolInput)
OutT = TypeVar("OutT", bound=ToolResult)


@dataclass(frozen=True)
class ToolSpec(Generic[InT, OutT]):
    """A tool as declared once in the catalogue; every transport renders it from here.

    `read_only`, `destructive` and `idempotent` become the MCP annotations; writes (not
    read-only) get idempotency in dispatch. `caller_phone_field` names the argument a voice
    platform may fill from the caller's number.
    """

    name: str
    title: str
    description: str
    input_model: type[InT]
    output_model: type[OutT]
    run: Callable[[ToolContext, InT], Awaitable[OutT]]
    capability: Capability | None
    read_only: bool
    destructive: bool = False
    idempotent: bool = False
    open_world: bool = True
    caller_phone_field: str | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)
    # What a voice agent says while a slow tool runs (exports turn it into each platform's filler).
    wait_message: str | None = None

    @cached_property
    def input_schema(self) -> dict[str, Any]:
        """A flat JSON Schema object an LLM can fill: no $refs, no nullable unions, no titles."""
        from tool_server.tools.schema import llm_input_schema

        return llm_input_schema(self.input_model)

    @cached_property
    def output_schema(self) -> dict[str, Any]:
        from tool_server.tools.schema import output_schema

        return output_schema(self.output_model)

    @cached_property
    def full_description(self) -> str:
        """The description plus its examples, as the LLM reads it."""
        if not self.examples:
            return self.description
        import json

        lines = [self.description.strip(), "", "Examples:"]
        lines.extend(json.dumps(example, separators=(", ", ": ")) for example in self.examples)
        return "\n".join(lines)
