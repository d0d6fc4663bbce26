"""Graph's conventions for the Outlook emulator, as pure functions: error bodies, dateTimeTimeZone
values, the Prefer header, the OData query options the emulator understands, and paging.

- Errors: https://learn.microsoft.com/graph/errors
- Time zones: https://learn.microsoft.com/graph/api/resources/datetimetimezone
- Prefer outlook.timezone: https://learn.microsoft.com/graph/api/user-list-calendarview
- Extended property filters: https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get
- Paging: https://learn.microsoft.com/graph/paging
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.responses import JSONResponse

from integrations.common.linear_regex import compile_linear
from integrations.common.zones import UnknownZoneError, zone_info
from integrations.outlook_calendar.windows_zones import iana_zone

__all__ = [
    "EVENT_PROPERTIES",
    "GraphError",
    "PropertyFilter",
    "answer_zone",
    "expanded_ids",
    "graph_error",
    "graph_stamp",
    "parse_event_time",
    "parse_property_filter",
    "parse_query_instant",
    "render_time",
]

# Writable and read-only properties of microsoft.graph.event (and its outlookItem/entity bases), from
# the CSDL; a body naming anything else is refused as Graph does.
EVENT_PROPERTIES = frozenset(
    {
        "allowNewTimeProposals", "attendees", "body", "bodyPreview", "cancelledOccurrences", "end",
        "hasAttachments", "hideAttendees", "iCalUId", "importance", "isAllDay", "isCancelled", "isDraft",
        "isOnlineMeeting", "isOrganizer", "isReminderOn", "location", "locations", "onlineMeeting",
        "onlineMeetingProvider", "onlineMeetingUrl", "organizer", "originalEndTimeZone", "originalStart",
        "originalStartTimeZone", "recurrence", "reminderMinutesBeforeStart", "responseRequested",
        "responseStatus", "sensitivity", "seriesMasterId", "showAs", "start", "subject", "transactionId",
        "type", "webLink", "categories", "changeKey", "createdDateTime", "lastModifiedDateTime", "id",
        "singleValueExtendedProperties", "multiValueExtendedProperties", "extensions", "attachments",
    }
)  # fmt: skip
SHOW_AS = frozenset({"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"})

_PREFER_ZONE = compile_linear(r'(?i)outlook\.timezone\s*=\s*(?:"([^"]*)"|([^,;\s"]+))')
_PROPERTY_FILTER = compile_linear(
    r"^singleValueExtendedProperties/Any\(\s*(\w+)\s*:\s*(\w+)/id eq '((?:[^']|'')*)'"
    r"\s+and\s+(\w+)/value eq '((?:[^']|'')*)'\s*\)$"
)
_EXPAND = compile_linear(r"^singleValueExtendedProperties\(\$filter=(.*)\)$")
_ID_EQ = compile_linear(r"^\s*id eq '((?:[^']|'')*)'\s*$")


class GraphError(Exception):
    """A Graph error answer: HTTP status, `error.code` and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def graph_error(status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> JSONResponse:
    """Graph's error body: {"error": {"code", "message", "innerError": {date, request-id, client-request-id}}}."""
    request_id = str(uuid.uuid4())
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": request_id,
            },
        }
    }
    return JSONResponse(
        body, status_code=status, headers={"request-id": request_id, "client-request-id": request_id, **(headers or {})}
    )


def graph_stamp(moment: datetime) -> str:
    """Graph's DateTimeOffset: UTC with seven fractional digits and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def render_time(moment: datetime, zone_name: str, zone: ZoneInfo | None = None) -> dict[str, str]:
    """A dateTimeTimeZone in `zone_name` as Graph writes it: `2026-03-09T10:00:00.0000000`, no offset."""
    local = moment.astimezone(zone or zone_info(iana_zone(zone_name)))
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0", "timeZone": zone_name}


def answer_zone(prefer: str | None) -> tuple[str, ZoneInfo]:
    """The zone times are answered in: the Prefer header's outlook.timezone, else UTC (Graph's default).

    A name Graph does not know is ignored, and the answer says which zone it used.
    """
    match = _PREFER_ZONE.search(prefer or "")
    if match:
        name = match.group(1) or match.group(2) or ""
        try:
            return name, zone_info(iana_zone(name))
        except UnknownZoneError:
            pass
    return "UTC", ZoneInfo("UTC")


def parse_event_time(value: Any, what: str) -> datetime:
    """An event's or getSchedule's dateTimeTimeZone as an aware instant (Windows or IANA zone names)."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise GraphError(400, "ErrorInvalidRequest", f"The {what} time is missing or invalid.")
    name = value.get("timeZone")
    if not isinstance(name, str) or not name:
        raise GraphError(
            400,
            "TimeZoneNotSupportedException",
            "A valid TimeZone value must be specified. The following TimeZone value is not supported: ''.",
        )
    try:
        zone = zone_info(iana_zone(name))
    except UnknownZoneError:
        raise GraphError(
            400,
            "TimeZoneNotSupportedException",
            f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{name[:64]}'.",
        ) from None
    text = value["dateTime"]
    head, dot, fraction = text.partition(".")
    if dot:
        text = f"{head}.{fraction[:6]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise GraphError(400, "ErrorInvalidRequest", f"Cannot convert the literal '{value['dateTime']}'.") from None
    # An offset in dateTime wins; otherwise the wall-clock time is in the named zone.
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def parse_query_instant(text: str | None, name: str) -> datetime:
    """calendarView's startDateTime/endDateTime: ISO 8601, UTC when no offset is given."""
    if not text:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and "
            "EndDateTime.",
        )
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise GraphError(400, "ErrorInvalidParameter", f"The parameter '{name}' has an invalid value.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class PropertyFilter:
    """`singleValueExtendedProperties/Any(ep: ep/id eq '<id>' and ep/value eq '<value>')`."""

    property_id: str
    value: str

    def matches(self, properties: dict[str, str]) -> bool:
        # The property's name is matched exactly, its value without regard to case.
        found = properties.get(self.property_id)
        return found is not None and found.lower() == self.value.lower()


def parse_property_filter(text: str) -> PropertyFilter:
    """The one $filter shape on events the emulator understands; anything else is Graph's 400."""
    match = _PROPERTY_FILTER.fullmatch(text.strip())
    if not match or not (match.group(1) == match.group(2) == match.group(4)):
        raise GraphError(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
    return PropertyFilter(match.group(3).replace("''", "'"), match.group(5).replace("''", "'"))


def expanded_ids(expand: str | None) -> frozenset[str]:
    """The extended property ids `$expand=singleValueExtendedProperties($filter=id eq '…' or …)` asks for."""
    if not expand:
        return frozenset()
    match = _EXPAND.fullmatch(expand.strip())
    if not match:
        raise GraphError(400, "BadRequest", f"Parsing OData Select and Expand failed: could not find '{expand[:40]}'.")
    ids = []
    for clause in match.group(1).split(" or "):
        found = _ID_EQ.fullmatch(clause)
        if not found:
            raise GraphError(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
        ids.append(found.group(1).replace("''", "'"))
    return frozenset(ids)
