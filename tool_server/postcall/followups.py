"""Which post-call follow-ups an agent turned on (all off until set)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from sqlalchemy import select
from sqlalchemy.orm import Session

from tool_server.clock import Clock
from tool_server.postcall.quiet_hours import QuietHours
from tool_server.store.database import Database
from tool_server.store.tables import PostCallSettingsRow

__all__ = ["FollowUps", "FollowUpsStore", "PaymentFollowUp"]


class PaymentFollowUp(BaseModel):
    """Text the caller a payment link for this amount after the call."""

    model_config = ConfigDict(extra="forbid")

    amount_minor: int = Field(gt=0, description="4900 means $49.00.")
    currency: str = Field(default="USD", pattern="^[A-Za-z]{3}$")
    description: str = Field(min_length=1, max_length=250)


class FollowUps(BaseModel):
    """Per-agent follow-ups. Each runs as its own integration in the post-call sync."""

    model_config = ConfigDict(extra="forbid")

    confirmation_sms: bool = Field(default=False, description="Text the caller a confirmation after the call.")
    confirmation_whatsapp: bool = Field(
        default=False,
        description="Send the confirmation on WhatsApp instead: free text within 24 hours of the caller's last "
        "WhatsApp message, else `whatsapp_template`; a WhatsApp message that fails is sent again by SMS, once.",
    )
    whatsapp_template: str | None = Field(
        default=None,
        max_length=64,
        description="The approved template for confirmations outside the window; it gets {{1}} the business "
        "name and {{2}} the appointment time (or the thank-you). Without one, such a confirmation goes by SMS.",
    )
    confirmation_email: bool = Field(
        default=False, description="Email the caller the confirmation too, when their address is known."
    )
    payment_link: PaymentFollowUp | None = Field(default=None, description="Text the caller a payment link.")
    forward_url: HttpUrl | None = Field(
        default=None, description="POST the call record here, in a Zapier catch hook's flat shape."
    )
    team_channel_url: HttpUrl | None = Field(
        default=None, description="A Slack-style incoming webhook that gets a one-line summary of each call."
    )
    team_summary: bool = Field(
        default=False, description="Post each call's summary to the connected team channel (Slack, as Block Kit)."
    )
    workflow_event: bool = Field(
        default=False,
        description="Trigger the connected automation (Zapier) with `call.completed` and the call's flat record.",
    )
    payment_receipt: bool = Field(
        default=False,
        description="Text a receipt when a payment link or invoice made through this server is paid (a verified "
        "provider webhook says so), to the number it was made or texted for.",
    )
    quiet_hours: QuietHours = Field(
        default_factory=QuietHours,
        description="Follow-up texts due outside these hours, in the recipient's zone, wait for the next allowed "
        "minute. Texts the caller asks for during the call are sent at once.",
    )


class FollowUpsStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def get(self, agent_id: str) -> FollowUps:
        # Core, not the ORM: every post-call step reads these.
        query = select(PostCallSettingsRow.settings).where(PostCallSettingsRow.agent_id == agent_id)
        settings = await self._db.execute(lambda connection: connection.execute(query).scalar())
        return FollowUps() if settings is None else FollowUps.model_validate(settings)

    async def set(self, agent_id: str, followups: FollowUps) -> None:
        data = followups.model_dump(mode="json")

        def work(session: Session) -> None:
            row = session.get(PostCallSettingsRow, agent_id)
            if row is None:
                session.add(PostCallSettingsRow(agent_id=agent_id, settings=data, updated_at=self._clock()))
            else:
                row.settings, row.updated_at = data, self._clock()

        await self._db.run(work)
