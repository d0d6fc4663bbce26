"""What the model is asked for, what extraction answers, and where the model is.

`ExtractionAnswer` is both the strict JSON schema sent to the model and the validator of its reply,
so the two cannot drift apart. `Extraction` adds where an answer came from and what stayed unknown.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from integrations.common.linear_regex import compile_linear
from integrations.common.zones import canonical_zone_name
from tool_server.settings import ServerSettings

__all__ = [
    "EMAIL",
    "OUTCOMES",
    "SENTIMENTS",
    "Extraction",
    "ExtractionAnswer",
    "ExtractionSettings",
    "Outcome",
    "RequestedAppointment",
    "Sentiment",
    "unknown_fields",
]

Outcome = Literal[
    "booked",
    "rescheduled",
    "cancelled",
    "information_only",
    "callback_requested",
    "not_interested",
    "voicemail",
    "unknown",
]
Sentiment = Literal["positive", "neutral", "negative", "unknown"]
OUTCOMES: frozenset[str] = frozenset(get_args(Outcome))
SENTIMENTS: frozenset[str] = frozenset(get_args(Sentiment))

EMAIL = compile_linear(r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}", ignore_case=True)
_ISO_DATE = compile_linear(r"\d{4}-\d{2}-\d{2}")
_CLOCK = compile_linear(r"(?:[01]\d|2[0-3]):[0-5]\d")


def _blank_is_none(value: object) -> object:
    # Models (and compatible servers) often send "" where they mean null.
    if isinstance(value, str):
        return value.strip() or None
    return value


def _iso_date(value: str | None) -> str | None:
    if value is not None:
        if not _ISO_DATE.fullmatch(value):
            raise ValueError("not a YYYY-MM-DD date")
        date.fromisoformat(value)  # rejects 2026-02-30
    return value


def _clock(value: str | None) -> str | None:
    if value is not None and not _CLOCK.fullmatch(value):
        raise ValueError("not an HH:MM 24-hour time")
    return value


def _iana_zone(value: str | None) -> str | None:
    # UnknownZoneError is a ValueError: pydantic reports it as a validation error of this field.
    return None if value is None else canonical_zone_name(value)


def _minutes(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= 24 * 60:
        raise ValueError("not a duration between 1 minute and a day")
    return value


def _email(value: str | None) -> str | None:
    if value is not None:
        value = value.lower()
        if not EMAIL.fullmatch(value):
            raise ValueError("not an email address")
    return value


_Text = Annotated[str | None, BeforeValidator(_blank_is_none)]


class RequestedAppointment(BaseModel):
    """The appointment a caller asked for, in the business's wall-clock time; any part not said is None."""

    # The schema's description is what the model reads; the docstring is for developers.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"description": "The appointment the caller asked for; any part not said is null."},
    )

    date: Annotated[_Text, AfterValidator(_iso_date), Field(description="YYYY-MM-DD, or null when not said.")]
    time: Annotated[_Text, AfterValidator(_clock), Field(description="HH:MM on a 24-hour clock, or null.")]
    timezone: Annotated[_Text, AfterValidator(_iana_zone), Field(description="IANA timezone name, or null.")]
    duration_minutes: Annotated[int | None, AfterValidator(_minutes), Field(description="Minutes, or null.")]
    reason: Annotated[_Text, Field(description="What the appointment is for, in a few words, or null.")]


class ExtractionAnswer(BaseModel):
    """What the model is asked for. The SDK turns this class into the strict JSON schema it sends, and
    parses the answer back into it, so the schema and its validation cannot drift apart."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"description": "What a finished phone call said, for the business's records."},
    )

    summary: Annotated[_Text, Field(description="One or two sentences on what the call was about, or null.")]
    outcome: Outcome
    sentiment: Sentiment
    requested_appointment: RequestedAppointment | None
    caller_name: Annotated[_Text, Field(description="The caller's name as they gave it, or null.")]
    caller_email: Annotated[_Text, AfterValidator(_email), Field(description="The caller's email address, or null.")]


class Extraction(ExtractionAnswer):
    """What was extracted from a call, where it came from, and which fields could not be determined.

    `unknown` names the fields left undetermined: a None summary, name, email or requested
    appointment, an "unknown" outcome or sentiment. (From the model, a null requested appointment
    means the caller asked for none, so it is not listed.)
    """

    source: Literal["model", "fallback"]
    unknown: list[str] = Field(default_factory=list)


def unknown_fields(answer: ExtractionAnswer, *, null_appointment_is_unknown: bool) -> list[str]:
    """The names of `answer`'s fields that say nothing, in schema order."""
    missing = {
        "summary": answer.summary is None,
        "outcome": answer.outcome == "unknown",
        "sentiment": answer.sentiment == "unknown",
        "requested_appointment": answer.requested_appointment is None and null_appointment_is_unknown,
        "caller_name": answer.caller_name is None,
        "caller_email": answer.caller_email is None,
    }
    return [name for name, is_missing in missing.items() if is_missing]


class ExtractionSettings(BaseModel):
    """Where the extraction model is. Without a model name and an API key, `extract` runs the fallback.

    `base_url` None means the OpenAI SDK's default (OPENAI_BASE_URL, else api.openai.com).
    """

    base_url: str | None = None
    api_key: SecretStr | None = None
    model: str | None = None
    timeout_seconds: float = Field(default=20, gt=0)

    @property
    def configured(self) -> bool:
        """Whether a model can be asked: a model name and a non-empty API key are both set."""
        return bool(self.model) and self.api_key is not None and bool(self.api_key.get_secret_value())

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> ExtractionSettings:
        """The `TOOL_SERVER_EXTRACTION_*` part of the server settings."""
        return cls(
            base_url=settings.extraction_base_url or None,
            api_key=settings.extraction_api_key,
            model=settings.extraction_model or None,
            timeout_seconds=settings.extraction_timeout_seconds,
        )
