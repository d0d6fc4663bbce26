"""The call record every platform's webhook is normalized into."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

__all__ = ["RESYNC_FIELDS", "AppointmentMention", "CallRecord", "Turn"]

# What a late event (a recording, an analysis) may add after a call was synced, in a fixed order:
# the CRM gets an update note with these when they change. The rest was acted on already.
RESYNC_FIELDS = ("summary", "outcome", "sentiment", "recording_url")

Speaker = Literal["agent", "caller", "tool", "other"]


class Turn(BaseModel):
    """One utterance (or tool exchange) in a transcript."""

    speaker: Speaker
    text: str
    at_seconds: float | None = Field(default=None, description="Seconds from the start of the call.")


class AppointmentMention(BaseModel):
    """An appointment the call booked (or booked and then cancelled), or one the caller asked for."""

    status: Literal["booked", "requested", "cancelled"]
    title: str | None = None
    start: str | None = Field(default=None, description="ISO 8601, with offset when known.")
    date: str | None = None
    time: str | None = None
    timezone: str | None = None
    duration_minutes: int | None = None
    appointment_id: str | None = None


class CallRecord(BaseModel):
    """A finished call. Fields a platform does not report are None; `payloads` keeps what it sent."""

    call_id: str
    platform: str
    agent_id: str | None = None
    platform_agent_id: str | None = None
    caller_name: str | None = None
    caller_phone: str | None = None
    caller_email: str | None = None
    direction: Literal["inbound", "outbound"] | None = None
    started_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    duration_seconds: float | None = None
    outcome: str | None = None
    summary: str | None = None
    sentiment: str | None = None
    transcript: list[Turn] = Field(default_factory=list)
    recording_url: str | None = None
    appointment: AppointmentMention | None = None
    analysis: dict[str, Any] = Field(default_factory=dict)
    events: list[str] = Field(default_factory=list, description="Event types received for this call.")
    sync_status: str = Field(
        default="queued",
        description="Post-call sync: waiting (for the final event), queued, syncing, synced or failed.",
    )
    record_id: str | None = Field(default=None, description="This server's id for the record.")
    payloads: dict[str, Any] = Field(default_factory=dict, description="The platform's own payload per event.")
    received_at: datetime | None = None

    def merged(self, newer: CallRecord) -> CallRecord:
        """This record updated with what a later event added (a field it reports wins over None)."""
        data = self.model_dump()
        for name, value in newer.model_dump().items():
            if name in ("events", "payloads", "analysis"):
                continue
            if value not in (None, [], {}):
                data[name] = value
        data["analysis"] = {**self.analysis, **newer.analysis}
        data["events"] = sorted(set(self.events) | set(newer.events))
        data["payloads"] = {**self.payloads, **newer.payloads}
        return CallRecord.model_validate(data)

    def resync_fields(self, before: CallRecord) -> tuple[str, ...]:
        """The `RESYNC_FIELDS` this record has, new or different, compared with `before`."""
        return tuple(
            name
            for name in RESYNC_FIELDS
            if getattr(self, name) not in (None, "") and getattr(self, name) != getattr(before, name)
        )
