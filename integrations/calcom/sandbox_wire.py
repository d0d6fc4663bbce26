"""Cal.com's conventions for the emulator, as pure functions: error answers, timestamps, and the
availability arithmetic of one event type over a weekly schedule.

- Error bodies: apps/api/v2/src/filters/http-exception.filter.ts and sentry-exception.filter.ts
  in calcom/cal.com: {"status": "error", "timestamp", "path", "error": {"code", "message"}}.
- Rate limits: apps/api/v2/src/lib/throttler/throttler-guard.ts (ThrottlerException,
  X-RateLimit-{Limit,Remaining,Reset}-Default headers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from integrations.common.zones import zone_info

__all__ = [
    "ApiError",
    "Schedule",
    "cal_error",
    "fault_error",
    "local_stamp",
    "parse_query_instant",
    "parse_utc",
    "request_path",
    "utc_stamp",
]

_NAMES = {
    400: "BadRequestException",
    401: "UnauthorizedException",
    403: "ForbiddenException",
    404: "NotFoundException",
    409: "ConflictException",
    422: "UnprocessableEntityException",
}
RATE_LIMIT = 120  # Cal.com's default per API key per 60 s.


class ApiError(Exception):
    """A Cal.com error answer: status, exception name (`code`) and message."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _NAMES.get(status, "HttpException")


def now_stamp(moment: datetime | None = None) -> str:
    return utc_stamp(moment or datetime.now(UTC))


def utc_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def local_stamp(moment: datetime, zone: str) -> str:
    """A slot time as Cal.com shows it: in the asked zone, with milliseconds and the offset."""
    return moment.astimezone(zone_info(zone)).isoformat(timespec="milliseconds")


def parse_utc(text: str, what: str) -> datetime:
    """A body timestamp; Cal.com reads one without an offset as UTC (luxon, zone utc)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"Invalid {what}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_query_instant(text: str, what: str, *, end_of_day: bool) -> datetime:
    """`start`/`end` of GET /v2/slots: a UTC datestring, or a bare date (start or end of that day)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            at = time(23, 59, 59) if end_of_day else time(0)
            return datetime.combine(day, at, tzinfo=UTC)
        return parse_utc(text, what)
    except (ValueError, ApiError):
        raise ApiError(400, f"Invalid '{what}' query parameter - must be an ISO 8601 date string") from None


def request_path(scope: Scope) -> str:
    """What Cal.com puts in `path`: the request URL below the host (path and query)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def _body(status: int, code: str, message: str, path: str) -> dict[str, Any]:
    return {"status": "error", "timestamp": now_stamp(), "path": path, "error": {"code": code, "message": message}}


def cal_error(error: ApiError, path: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(_body(error.status, error.code, error.message, path), status_code=error.status, headers=headers)


class _FaultResponse(Response):
    """An injected fault in Cal.com's own words; the body's `path` is filled in from the request."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str]) -> None:
        super().__init__(status_code=status, headers=headers, media_type="application/json")
        self._code = code
        self._message = message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.body = self.render(json.dumps(_body(self.status_code, self._code, self._message, request_path(scope))))
        self.init_headers({k.decode(): v.decode() for k, v in self.raw_headers if k != b"content-length"})
        await super().__call__(scope, receive, send)


def fault_error(status: int, retry_after: float | None) -> Response:
    """429 as Cal.com's throttler answers it (plus Retry-After), 5xx as its catch-all filter does."""
    if status == 429:
        seconds = retry_after if retry_after is not None else 60.0
        text = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
        headers = {
            "Retry-After": text,
            "X-RateLimit-Limit-Default": str(RATE_LIMIT),
            "X-RateLimit-Remaining-Default": "0",
            "X-RateLimit-Reset-Default": text,
        }
        return _FaultResponse(429, "ThrottlerException", "Too many requests. Please try again later.", headers)
    return _FaultResponse(status, "INTERNAL_SERVER_ERROR", "Internal server error.", {})


@dataclass(frozen=True)
class Schedule:
    """A weekly schedule: opening ranges per ISO weekday (1 = Monday) in one zone."""

    time_zone: str
    hours: dict[int, tuple[tuple[time, time], ...]]

    def slot_starts(self, start: datetime, end: datetime, length: timedelta, interval: timedelta) -> list[datetime]:
        """Starts in [start, end] of slots of `length`, every `interval` from opening, inside the hours."""
        zone = zone_info(self.time_zone)
        found: list[datetime] = []
        day = start.astimezone(zone).date() - timedelta(days=1)
        last = end.astimezone(zone).date()
        while day <= last:
            for opens, closes in self.hours.get(day.isoweekday(), ()):
                moment = datetime.combine(day, opens, tzinfo=zone)
                closing = datetime.combine(day, closes, tzinfo=zone)
                while moment.astimezone(UTC) + length <= closing.astimezone(UTC):
                    if start <= moment <= end:
                        found.append(moment.astimezone(UTC))
                    moment = (moment.astimezone(UTC) + interval).astimezone(zone)
            day += timedelta(days=1)
        return found
