"""An emulator of Twilio's Messages API (2010-04-01) over in-memory state.

It serves the vendor's real paths under its mount, with HTTP Basic auth (account SID and auth
token), form-encoded create requests, Twilio's validation and opt-out errors, and its page-token
pagination. Tests drive the far side of a conversation through the state: `receive_inbound`
(a texted STOP puts the number on the opt-out list, as Twilio does) and `advance` (a delivery
status change); both return the webhook request Twilio would send, for route tests to sign.
Docs: https://www.twilio.com/docs/messaging/api/message-resource
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.common.sandbox import Sandbox
from integrations.twilio.webhooks import opt_change

__all__ = [
    "SANDBOX_ACCOUNT_SID",
    "SANDBOX_AUTH_TOKEN",
    "SANDBOX_FROM_NUMBER",
    "TwilioApiError",
    "TwilioState",
    "WebhookDelivery",
    "build_sandbox",
]

SANDBOX_ACCOUNT_SID = "AC5a4db0c5a4db0c5a4db0c5a4db0c5a4d"
SANDBOX_AUTH_TOKEN = "0c0ffee0c0ffee0c0ffee0c0ffee0c0f"
# Twilio's magic "valid" test number; the only number the sandbox account owns.
SANDBOX_FROM_NUMBER = "+15005550006"

API_VERSION = "2010-04-01"
MAX_BODY = 1600
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# E.164 as Twilio enforces it for SMS: a country code and a full subscriber number (NANP: exactly 10 digits).
_E164 = re.compile(r"^\+(1[2-9][0-9]{9}|[2-9][0-9]{7,14})$")
# The GSM 03.38 basic character set; a body using anything else is sent as UCS-2.
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


class TwilioApiError(Exception):
    """An error answer in Twilio's format: {"code", "message", "more_info", "status"}."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self, headers: dict[str, str] | None = None) -> Response:
        body = {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }
        return JSONResponse(body, status_code=self.status, headers=headers)


@dataclass(frozen=True)
class WebhookDelivery:
    """A form POST Twilio would make to this server: where, and with which parameters."""

    url: str
    params: dict[str, str]


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0))


def _segments(body: str) -> int:
    """SMS segments: 160 GSM-7 characters (153 per part when split), or 70 UCS-2 ones (67)."""
    single, part = (160, 153) if set(body) <= _GSM7 else (70, 67)
    return 1 if len(body) <= single else math.ceil(len(body) / part)


class TwilioState:
    """The sandbox account: its messages (oldest first), their StatusCallbacks, and the opt-out list."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []
        self.status_callbacks: dict[str, str] = {}
        self.opted_out: set[str] = set()

    # -- SandboxState ----------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {
                "account_sid": SANDBOX_ACCOUNT_SID,
                "messages": [dict(message) for message in self.messages],
                "status_callbacks": dict(self.status_callbacks),
                "opt_outs": sorted(self.opted_out),
            }

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.status_callbacks.clear()
            self.opted_out.clear()

    def expire_access_tokens(self) -> None:
        """Twilio has no OAuth: nothing expires."""

    def revoke_refresh_tokens(self) -> None:
        """Twilio has no OAuth: nothing to revoke."""

    # -- what the API routes do -------------------------------------------------------------------

    def create(self, form: dict[str, str]) -> dict[str, Any]:
        """A new outbound message, or the `TwilioApiError` Twilio answers instead."""
        to = form.get("To", "").strip()
        sender = form.get("From", "").strip()
        service = form.get("MessagingServiceSid", "").strip()
        body = form.get("Body", "")
        if not to:
            raise TwilioApiError(400, 21604, "A 'To' phone number is required.")
        if not _E164.match(to):
            raise TwilioApiError(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not sender and not service:
            raise TwilioApiError(400, 21603, "A 'From' phone number is required.")
        if sender and sender != SANDBOX_FROM_NUMBER:
            raise TwilioApiError(
                400,
                21606,
                f"The From phone number {sender} is not a valid, SMS-capable inbound phone number "
                "or short code for your account.",
            )
        if not body and not form.get("MediaUrl") and not form.get("ContentSid"):
            raise TwilioApiError(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY:
            raise TwilioApiError(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        now = datetime.now(UTC)
        sid = "SM" + uuid.uuid4().hex
        message = self._resource(
            sid,
            to=to,
            sender=sender or None,
            service=service or None,
            body=body,
            direction="outbound-api",
            # A Messaging Service accepts first and picks a sender later; a number queues at once.
            status="accepted" if service else "queued",
            num_segments=0 if service else _segments(body),
            now=now,
        )
        with self._lock:
            if to in self.opted_out:
                raise TwilioApiError(400, 21610, "Attempt to send to unsubscribed recipient")
            self.messages.append(message)
            if form.get("StatusCallback"):
                self.status_callbacks[sid] = form["StatusCallback"]
        return dict(message)

    def get(self, sid: str) -> dict[str, Any] | None:
        with self._lock:
            found = next((m for m in self.messages if m["sid"] == sid), None)
            return dict(found) if found is not None else None

    def newest_first(self, to: str | None, sender: str | None, sent: dict[str, date]) -> list[dict[str, Any]]:
        """Messages as Twilio lists them: most recent first, filtered like To/From/DateSent[<>]."""
        with self._lock:
            listed = [dict(m) for m in reversed(self.messages)]
        listed = [m for m in listed if (to is None or m["to"] == to) and (sender is None or m["from"] == sender)]
        if sent:
            listed = [m for m in listed if m["date_sent"] is not None and _sent_matches(m["date_sent"], sent)]
        return listed

    # -- what tests drive -------------------------------------------------------------------------

    def receive_inbound(self, from_: str, body: str) -> dict[str, str]:
        """A text from `from_` to the sandbox number; STOP/START words change the opt-out list.

        Returns the form parameters Twilio would POST to the number's incoming-message webhook.
        """
        now = datetime.now(UTC)
        sid = "SM" + uuid.uuid4().hex
        message = self._resource(
            sid,
            to=SANDBOX_FROM_NUMBER,
            sender=from_,
            service=None,
            body=body,
            direction="inbound",
            status="received",
            num_segments=_segments(body),
            now=now,
        )
        message["date_sent"] = _rfc2822(now)
        change = opt_change(body)
        with self._lock:
            self.messages.append(message)
            if change == "opt_out":
                self.opted_out.add(from_)
            elif change == "opt_in":
                self.opted_out.discard(from_)
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsMessageSid": sid,
            "AccountSid": SANDBOX_ACCOUNT_SID,
            "From": from_,
            "To": SANDBOX_FROM_NUMBER,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": message["num_segments"],
            "SmsStatus": "received",
            "ApiVersion": API_VERSION,
        }
        if change is not None:
            # Twilio's Advanced Opt-Out adds the keyword type to the inbound webhook.
            params["OptOutType"] = "STOP" if change == "opt_out" else "START"
        return params

    def advance(self, sid: str, status: str, error_code: int | None = None) -> WebhookDelivery | None:
        """Move a message to `status`; returns the StatusCallback Twilio would send, if one was asked for."""
        now = datetime.now(UTC)
        with self._lock:
            message = next((m for m in self.messages if m["sid"] == sid), None)
            if message is None:
                raise KeyError(f"no message {sid}")
            message["status"] = status
            message["date_updated"] = _rfc2822(now)
            if message["from"] is None:
                # A Messaging Service picks its sender once the message leaves the "accepted" state.
                message["from"] = SANDBOX_FROM_NUMBER
                message["num_segments"] = str(_segments(message["body"] or ""))
            if status in ("sent", "delivered", "undelivered") and message["date_sent"] is None:
                message["date_sent"] = _rfc2822(now)
            message["error_code"] = error_code
            message["error_message"] = None if error_code is None else f"Error {error_code}"
            url = self.status_callbacks.get(sid)
            snapshot = dict(message)
        if url is None:
            return None
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "AccountSid": SANDBOX_ACCOUNT_SID,
            "From": snapshot["from"],
            "To": snapshot["to"],
            "ApiVersion": API_VERSION,
        }
        if snapshot["messaging_service_sid"]:
            params["MessagingServiceSid"] = snapshot["messaging_service_sid"]
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return WebhookDelivery(url=url, params=params)

    @staticmethod
    def _resource(
        sid: str,
        *,
        to: str,
        sender: str | None,
        service: str | None,
        body: str,
        direction: str,
        status: str,
        num_segments: int,
        now: datetime,
    ) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{SANDBOX_ACCOUNT_SID}/Messages/{sid}"
        return {
            "account_sid": SANDBOX_ACCOUNT_SID,
            "api_version": API_VERSION,
            "body": body,
            "date_created": _rfc2822(now),
            "date_sent": None,
            "date_updated": _rfc2822(now),
            "direction": direction,
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": str(num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": status,
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
            "to": to,
            "uri": f"{uri}.json",
        }


def _sent_matches(date_sent: str, filters: dict[str, date]) -> bool:
    day = datetime.strptime(date_sent, "%a, %d %b %Y %H:%M:%S %z").date()
    exact, before, after = filters.get("DateSent"), filters.get("DateSent<"), filters.get("DateSent>")
    return (exact is None or day == exact) and (before is None or day <= before) and (after is None or day >= after)


# -- HTTP ------------------------------------------------------------------------------------------


def _unauthorized() -> Response:
    return TwilioApiError(401, 20003, "Authenticate").response({"WWW-Authenticate": 'Basic realm="Twilio API"'})


def _authenticate(request: Request) -> Response | None:
    """None when the Basic credentials are the sandbox account's and the path names that account."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return _unauthorized()
    if scheme.lower() != "basic" or (user, password) != (SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN):
        return _unauthorized()
    # Credentials only open their own account's resources.
    if request.path_params.get("account_sid") != SANDBOX_ACCOUNT_SID:
        return _unauthorized()
    return None


def _not_found(path: str) -> Response:
    return TwilioApiError(404, 20404, f"The requested resource {path} was not found").response()


async def _form(request: Request) -> dict[str, str]:
    # Parsed by hand: Starlette's form parser needs python-multipart, which the server does not.
    pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def _messages_path() -> str:
    return f"/{API_VERSION}/Accounts/{SANDBOX_ACCOUNT_SID}/Messages.json"


class _Api:
    """The Twilio routes over one `TwilioState`."""

    def __init__(self, state: TwilioState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        base = f"/{API_VERSION}/Accounts/{{account_sid}}"
        return [
            Route(f"{base}.json", self.fetch_account, methods=["GET"]),
            Route(f"{base}/Messages.json", self.create_message, methods=["POST"]),
            Route(f"{base}/Messages.json", self.list_messages, methods=["GET"]),
            Route(f"{base}/Messages/{{sid}}.json", self.fetch_message, methods=["GET"]),
        ]

    async def fetch_account(self, request: Request) -> Response:
        refused = _authenticate(request)
        if refused is not None:
            return refused
        created = _rfc2822(datetime(2024, 1, 2, 15, 0, tzinfo=UTC))
        uri = f"/{API_VERSION}/Accounts/{SANDBOX_ACCOUNT_SID}"
        return JSONResponse(
            {
                "sid": SANDBOX_ACCOUNT_SID,
                "owner_account_sid": SANDBOX_ACCOUNT_SID,
                "friendly_name": "Tool server sandbox",
                "status": "active",
                "type": "Full",
                "date_created": created,
                "date_updated": created,
                "uri": f"{uri}.json",
                "subresource_uris": {"messages": f"{uri}/Messages.json"},
            }
        )

    async def create_message(self, request: Request) -> Response:
        refused = _authenticate(request)
        if refused is not None:
            return refused
        try:
            message = self.state.create(await _form(request))
        except TwilioApiError as error:
            return error.response()
        return JSONResponse(message, status_code=201)

    async def fetch_message(self, request: Request) -> Response:
        refused = _authenticate(request)
        if refused is not None:
            return refused
        message = self.state.get(request.path_params["sid"])
        if message is None:
            return _not_found(request.url.path)
        return JSONResponse(message)

    async def list_messages(self, request: Request) -> Response:
        refused = _authenticate(request)
        if refused is not None:
            return refused
        query = request.query_params
        filters = {name: query[name] for name in ("To", "From") if name in query}
        sent: dict[str, date] = {}
        for name in ("DateSent", "DateSent<", "DateSent>"):
            if name in query:
                try:
                    sent[name] = date.fromisoformat(query[name])
                except ValueError:
                    return TwilioApiError(400, 20001, f"Invalid {name}: {query[name]}").response()
                filters[name] = query[name]
        try:
            size = min(MAX_PAGE_SIZE, max(1, int(query.get("PageSize", DEFAULT_PAGE_SIZE))))
            page = max(0, int(query.get("Page", 0)))
        except ValueError:
            return TwilioApiError(400, 20001, "Invalid PageSize or Page").response()
        listed = self.state.newest_first(filters.get("To"), filters.get("From"), sent)
        start = _page_start(listed, query.get("PageToken"), page, size)
        items = listed[start : start + size]

        def page_uri(number: int, token: str | None) -> str:
            params = {**filters, "PageSize": str(size), "Page": str(number)}
            if token is not None:
                params["PageToken"] = token
            return f"{_messages_path()}?{urlencode(params)}"

        more = start + size < len(listed)
        return JSONResponse(
            {
                "messages": items,
                "page": page,
                "page_size": size,
                "start": page * size,
                "end": page * size + max(0, len(items) - 1),
                "uri": page_uri(page, query.get("PageToken")),
                "first_page_uri": page_uri(0, None),
                # Twilio's tokens point past the last row seen ("PA…") or before the first ("PB…").
                "next_page_uri": page_uri(page + 1, "PA" + items[-1]["sid"]) if more and items else None,
                "previous_page_uri": page_uri(page - 1, "PB" + items[0]["sid"]) if page > 0 and items else None,
            }
        )


def _page_start(listed: list[dict[str, Any]], token: str | None, page: int, size: int) -> int:
    sids = [m["sid"] for m in listed]
    if token and token[2:] in sids:
        position = sids.index(token[2:])
        return position + 1 if token.startswith("PA") else max(0, position - size)
    return page * size


def _error(status: int, retry_after: float | None) -> Response:
    """Twilio's answer to an injected fault: 20429 with Retry-After, or a 5xx in its error format."""
    if status == 429:
        seconds = retry_after or 1.0
        header = str(int(seconds)) if seconds == int(seconds) else str(seconds)
        return TwilioApiError(429, 20429, "Too Many Requests").response({"Retry-After": header})
    if status == 503:
        return TwilioApiError(503, 20503, "Service Unavailable").response()
    return TwilioApiError(status, 20500, "Internal Server Error").response()


def build_sandbox() -> Sandbox:
    """A fresh Twilio emulator with an empty sandbox account."""
    state = TwilioState()
    return Sandbox(name="twilio", state=state, routes=_Api(state).routes(), error=_error)
