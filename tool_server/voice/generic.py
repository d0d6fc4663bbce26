"""The flat call shape integration platforms (Zapier, Make, n8n) already use, for POST /v1/calls.

Unlike a voice platform's webhook, this shape is ours, so it is validated: a wrong type or an
unparseable value is a VALIDATION_ERROR naming the field (a call id that is a number, a duration
of "long", a start of "yesterday", a phone of "abc"). A field that is missing or null is simply
unknown. Fields this shape does not name are kept in the stored payload and otherwise ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from tool_server.calls.models import AppointmentMention, CallRecord, Turn
from tool_server.dispatch.translate import from_validation_error
from tool_server.errors import ToolError
from tool_server.text_checks import control_character_problem
from tool_server.tools.fields import Email, Phone, TimeZoneName
from tool_server.voice.parsing import parse_time, speaker, turns_from_text

__all__ = ["FlatCall", "parse"]


def _one_line(value: str) -> str:
    problem = control_character_problem(value, free_text=False)
    if problem is not None:
        raise PydanticCustomError("control_character", problem)
    return value


def _free_text(value: str) -> str:
    problem = control_character_problem(value, free_text=True)
    if problem is not None:
        raise PydanticCustomError("control_character", problem)
    return value


def _instant(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PydanticCustomError("datetime_type", "must be an ISO 8601 date-time or epoch seconds")
    if isinstance(value, str) and len(value) > 64:
        raise PydanticCustomError("datetime_parsing", "is too long for a date-time")
    parsed = parse_time(value)
    if parsed is None:
        raise PydanticCustomError(
            "datetime_parsing", f"{str(value)[:40]!r} is not an ISO 8601 date-time such as 2026-03-09T10:00:00Z"
        )
    return parsed


def _not_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("number_type", "must be a number, not true or false")
    return value


def _http_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise PydanticCustomError("url_scheme", "must be an http(s) URL")
    return value


Line = Annotated[StrictStr, Field(max_length=255), AfterValidator(_one_line)]
Text = Annotated[StrictStr, Field(max_length=20_000), AfterValidator(_free_text)]
Instant = Annotated[datetime | None, BeforeValidator(_instant)]


class FlatTurn(BaseModel):
    """One transcript turn: `{speaker|role, text|message, at_seconds}`."""

    model_config = ConfigDict(extra="ignore")

    speaker: Line | None = Field(default=None, validation_alias=AliasChoices("speaker", "role"))
    text: Text | None = Field(default=None, validation_alias=AliasChoices("text", "message"))
    at_seconds: Annotated[float | None, BeforeValidator(_not_boolean)] = Field(default=None, ge=0)


class FlatAppointment(BaseModel):
    """`appointment_booked` (booked during the call) or `appointment_requested` (to book after it)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    title: Line | None = None
    start: Annotated[StrictStr, Field(max_length=64)] | None = None
    date: Annotated[StrictStr, Field(max_length=32)] | None = None
    time: Annotated[StrictStr, Field(max_length=32)] | None = None
    timezone: TimeZoneName | None = None
    duration_minutes: Annotated[int | None, BeforeValidator(_not_boolean)] = Field(
        default=None, ge=1, le=24 * 60, validation_alias=AliasChoices("durationMinutes", "duration_minutes")
    )
    appointment_id: Line | None = Field(default=None, validation_alias=AliasChoices("appointment_id", "id"))


class FlatCall(BaseModel):
    """A finished call in the flat shape of a Zapier catch hook."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    call_id: Annotated[StrictStr, Field(min_length=1, max_length=255), AfterValidator(_one_line)]
    event: Line | None = None
    platform: Annotated[StrictStr, Field(max_length=32), AfterValidator(_one_line)] | None = None
    agent_id: Line | None = None
    customer_name: Annotated[StrictStr, Field(max_length=200), AfterValidator(_one_line)] | None = None
    customer_phone: Phone | None = None
    customer_email: Email | None = None
    direction: Literal["inbound", "outbound"] | None = None
    started_at: Instant = None
    ended_at: Instant = None
    duration_seconds: Annotated[float | None, BeforeValidator(_not_boolean)] = Field(default=None, ge=0)
    call_outcome: Line | None = None
    call_summary: Text | None = None
    call_sentiment: Line | None = None
    transcript: Annotated[StrictStr, Field(max_length=500_000), AfterValidator(_free_text)] | list[FlatTurn] | None = (
        None
    )
    recording_url: Annotated[StrictStr, Field(max_length=2048), AfterValidator(_http_url)] | None = None
    appointment_booked: FlatAppointment | None = None
    appointment_requested: FlatAppointment | None = None


def _appointment(call: FlatCall) -> AppointmentMention | None:
    """`appointment_booked` wins over `appointment_requested`."""
    for found, status in ((call.appointment_booked, "booked"), (call.appointment_requested, "requested")):
        if found is not None:
            return AppointmentMention(
                status="booked" if status == "booked" else "requested",
                title=found.title,
                start=found.start,
                date=found.date,
                time=found.time,
                timezone=found.timezone,
                duration_minutes=found.duration_minutes,
                appointment_id=found.appointment_id,
            )
    return None


def _transcript(value: str | list[FlatTurn] | None) -> list[Turn]:
    if isinstance(value, list):
        return [
            Turn.model_validate(
                {"speaker": speaker(turn.speaker), "text": turn.text or "", "at_seconds": turn.at_seconds}
            )
            for turn in value
        ]
    return turns_from_text(value)


def parse(body: Any, *, phone_region: str) -> CallRecord:
    """The call record of a `/v1/calls` body, or a VALIDATION_ERROR naming the first field at fault."""
    if not isinstance(body, dict):
        raise ToolError.invalid("body", "the body must be a JSON object")
    try:
        call = FlatCall.model_validate(body, context={"phone_region": phone_region})
    except ValidationError as error:
        raise from_validation_error(error) from None
    return CallRecord(
        call_id=call.call_id,
        platform=call.platform or "generic",
        platform_agent_id=call.agent_id,
        caller_name=call.customer_name,
        caller_phone=call.customer_phone,
        caller_email=call.customer_email,
        direction=call.direction,
        started_at=call.started_at,
        ended_at=call.ended_at,
        duration_seconds=call.duration_seconds,
        outcome=call.call_outcome,
        summary=call.call_summary,
        sentiment=call.call_sentiment,
        transcript=_transcript(call.transcript),
        recording_url=call.recording_url,
        appointment=_appointment(call),
    )
