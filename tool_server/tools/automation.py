"""trigger_workflow: hand an event to the business's own automations (a Zapier catch hook, say)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tool_server.tools.base import ToolContext, ToolInput, ToolResult, ToolSpec
from tool_server.tools.fields import FlatData

__all__ = ["TRIGGER_WORKFLOW"]


class TriggerWorkflowInput(ToolInput):
    event: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z][A-Za-z0-9_.:-]*$",
        description="What happened, as a short name the business's automation listens for, e.g. 'lead.captured'.",
    )
    data: FlatData = Field(
        default_factory=dict, description="The details, as flat name/value pairs (no nested objects)."
    )


class WorkflowRunView(BaseModel):
    run_id: str
    status: str


class TriggerWorkflowResult(ToolResult):
    run: WorkflowRunView


async def trigger_workflow(ctx: ToolContext, args: TriggerWorkflowInput) -> TriggerWorkflowResult:
    data: dict[str, Any] = dict(args.data)
    if ctx.call_id and "call_id" not in data:
        data["call_id"] = ctx.call_id
    run = await ctx.providers.automation().trigger_workflow(args.event, data, idempotency_key=ctx.idempotency_key)
    return TriggerWorkflowResult(
        run=WorkflowRunView(run_id=run.id, status=run.status), speech="Done, I've passed that on."
    )


TRIGGER_WORKFLOW = ToolSpec(
    name="trigger_workflow",
    title="Trigger a workflow",
    description=(
        "Send an event with its details to the business's automation (a Zapier, Make or n8n workflow), e.g. "
        "'lead.captured' with the caller's name and need, or 'quote.requested'. Use the event names the business "
        "set up. Retrying never triggers twice. Answers NOT_CONNECTED when no automation is connected or its "
        "hook was deleted."
    ),
    input_model=TriggerWorkflowInput,
    output_model=TriggerWorkflowResult,
    run=trigger_workflow,
    capability="automation",
    read_only=False,
    destructive=False,
    idempotent=True,
    examples=[{"event": "lead.captured", "data": {"name": "Jane Doe", "need": "boiler service", "postcode": "SW1A"}}],
    wait_message="Passing that on.",
)
