"""An emulator of Twilio's Messages API (2010-04-01): the routes over `sandbox_state.TwilioState`.

It serves the vendor's real paths under its mount, with HTTP Basic auth (account SID and auth
token), form-encoded create requests for SMS and WhatsApp ("whatsapp:" addresses, free text or
an approved template by ContentSid), Twilio's validation and opt-out errors, and its page-token
pagination; plus the read side of the Content API (`sandbox_templates`). The account's state,
and what tests drive through it (inbound messages, delivery status changes, the 24-hour WhatsApp
window, the signed webhooks it would send), live in `sandbox_state`; the control routes that
drive it over HTTP in `sandbox_control`; Twilio's error and resource shapes in `sandbox_wire`.
Docs: https://www.twilio.com/docs/messaging/api/message-resource
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.common.sandbox import Sandbox
from integrations.twilio.sandbox_control import control_routes
from integrations.twilio.sandbox_state import TwilioState
from integrations.twilio.sandbox_templates import SANDBOX_TEMPLATE_SIDS, SANDBOX_TEMPLATES, content_routes
from integrations.twilio.sandbox_wire import (
    API_VERSION,
    SANDBOX_ACCOUNT_SID,
    SANDBOX_AUTH_TOKEN,
    SANDBOX_FROM_NUMBER,
    SANDBOX_WHATSAPP_NUMBER,
    Callback,
    TwilioApiError,
    WebhookDelivery,
    credentials_refusal,
    rfc2822,
    unauthorized,
)

__all__ = [
    "SANDBOX_ACCOUNT_SID",
    "SANDBOX_AUTH_TOKEN",
    "SANDBOX_FROM_NUMBER",
    "SANDBOX_TEMPLATES",
    "SANDBOX_TEMPLATE_SIDS",
    "SANDBOX_WHATSAPP_NUMBER",
    "Callback",
    "TwilioApiError",
    "TwilioState",
    "WebhookDelivery",
    "build_sandbox",
]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


# -- HTTP ------------------------------------------------------------------------------------------


def _authenticate(request: Request) -> Response | None:
    """None when the Basic credentials are the sandbox account's and the path names that account."""
    refused = credentials_refusal(request)
    if refused is not None:
        return refused
    # Credentials only open their own account's resources.
    if request.path_params.get("account_sid") != SANDBOX_ACCOUNT_SID:
        return unauthorized()
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
        created = rfc2822(datetime(2024, 1, 2, 15, 0, tzinfo=UTC))
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
    """A fresh Twilio emulator: an empty sandbox account with an SMS number, a WhatsApp sender
    and two approved WhatsApp templates (`SANDBOX_TEMPLATE_SIDS`)."""
    state = TwilioState()
    routes = [*_Api(state).routes(), *content_routes(), *control_routes(state)]
    return Sandbox(name="twilio", state=state, routes=routes, error=_error)
