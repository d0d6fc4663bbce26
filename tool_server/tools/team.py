"""notify_team: a short message from the agent to the business's own team channel."""

from __future__ import annotations

from pydantic import BaseModel, Field

from integrations.capabilities import TeamMessage
from tool_server.tools.base import ToolContext, ToolInput, ToolResult, ToolSpec
from tool_server.tools.fields import FlatData, Phone

__all__ = ["NOTIFY_TEAM"]


class NotifyTeamInput(ToolInput):
    free_text_fields = frozenset({"text"})

    text: str = Field(min_length=1, max_length=2000, description="What the team needs to know, in a sentence or two.")
    caller_name: str | None = Field(default=None, max_length=200, description="Who it is about, if known.")
    caller_phone: Phone | None = Field(default=None, description="Their number, so the team can call back.")
    urgent: bool = Field(default=False, description="True when someone should act now (an emergency, an angry caller).")
    details: FlatData | None = Field(
        default=None, description="More facts as label/value pairs, e.g. {'Address': '12 High St'}."
    )


class TeamPostView(BaseModel):
    post_id: str = Field(description="The provider's id of the post (Slack's ts).")
    channel: str


class NotifyTeamResult(ToolResult):
    post: TeamPostView


async def notify_team(ctx: ToolContext, args: NotifyTeamInput) -> NotifyTeamResult:
    fields = {
        label: value
        for label, value in (("Caller", args.caller_name), ("Phone", args.caller_phone), ("Call", ctx.call_id))
        if value
    }
    fields |= {label: str(value) for label, value in (args.details or {}).items()}
    title = f"{'Urgent: ' if args.urgent else ''}{ctx.agent.name}"
    message = TeamMessage(text=f"{title}: {args.text}", title=title, fields=fields, idempotency_key=ctx.idempotency_key)
    post = await ctx.providers.team().post_team_message(message)
    return NotifyTeamResult(post=TeamPostView(post_id=post.id, channel=post.channel), speech="I've let the team know.")


NOTIFY_TEAM = ToolSpec(
    name="notify_team",
    title="Tell the team",
    description=(
        "Post a short message to the business's team channel (Slack), e.g. a caller who needs a call back, an "
        "emergency, a complaint. Mark urgent only when someone should act now. Retrying never posts twice. "
        "Answers NOT_CONNECTED when no team channel is connected or the app was removed from it."
    ),
    input_model=NotifyTeamInput,
    output_model=NotifyTeamResult,
    run=notify_team,
    capability="team",
    read_only=False,
    destructive=False,
    idempotent=True,
    caller_phone_field="caller_phone",
    examples=[{"text": "Caller has water coming through the ceiling; wants someone today.", "urgent": True}],
    wait_message="Letting the team know.",
)
