"""An emulator of SendGrid's v3 Mail Send API and Event Webhook: the routes over `sandbox_state.SendGridState`.

It serves the vendor's real paths under its mount, with Bearer API-key auth, Mail Send's
validation and error bodies (`{"errors": [{"message", "field", "help"}]}`), 202 with
`X-Message-Id`, the X-RateLimit-* headers, the API key's scopes and the signed Event Webhook's
public key. Control routes next to the kit's: `POST /_event_webhook {"url": …}` sets the
account's Event Webhook (null turns it off), `GET /_callbacks` counts the signed event POSTs
waiting, and `POST /_callbacks/deliver` sends them (to 127.0.0.1 or localhost only), answering
`{"delivered": n, "skipped": m}`.
Docs: https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.common.callbacks import deliver
from integrations.common.sandbox import Sandbox
from integrations.sendgrid.sandbox_state import SendGridState
from integrations.sendgrid.sandbox_wire import (
    MAX_BODY_BYTES,
    SANDBOX_API_KEY,
    SANDBOX_EVENT_WEBHOOK_PUBLIC_KEY,
    SANDBOX_FROM_EMAIL,
    Callback,
    SendGridApiError,
    rate_limit_headers,
    unverified_sender,
    validate_mail,
)

__all__ = [
    "SANDBOX_API_KEY",
    "SANDBOX_EVENT_WEBHOOK_PUBLIC_KEY",
    "SANDBOX_FROM_EMAIL",
    "Callback",
    "SendGridState",
    "build_sandbox",
]

logger = logging.getLogger(__name__)


def _authenticate(request: Request) -> Response | None:
    """None when the Bearer token is the sandbox API key; SendGrid's 401 otherwise."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not token:
        return SendGridApiError(401, [("authorization required", None, None)]).response()
    if scheme.lower() != "bearer" or token.strip() != SANDBOX_API_KEY:
        return SendGridApiError(
            401, [("The provided authorization grant is invalid, expired, or revoked", None, None)]
        ).response()
    return None


def _forbidden(state: SendGridState, scope: str) -> Response | None:
    """SendGrid's 403 for an API key without the permission a route needs."""
    if state.may(scope):
        return None
    return SendGridApiError(403, [("access forbidden", None, None)]).response()


class _Api:
    """The SendGrid routes over one `SendGridState`."""

    def __init__(self, state: SendGridState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        return [
            Route("/v3/mail/send", self.send_mail, methods=["POST"]),
            Route("/v3/scopes", self.scopes, methods=["GET"]),
            Route("/v3/user/webhooks/event/settings/signed", self.signed_key, methods=["GET"]),
            Route("/_event_webhook", self.set_event_webhook, methods=["POST"]),
            Route("/_callbacks", self.pending_callbacks, methods=["GET"]),
            Route("/_callbacks/deliver", self.deliver_callbacks, methods=["POST"]),
        ]

    async def send_mail(self, request: Request) -> Response:
        refused = _authenticate(request) or _forbidden(self.state, "mail.send")
        if refused is not None:
            return refused
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            # unconfirmed: the wording of SendGrid's 413.
            return SendGridApiError(413, [("Payload Too Large", None, None)]).response()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            return SendGridApiError(400, [("Bad Request", None, None)]).response()
        errors = validate_mail(body)
        if errors:
            return SendGridApiError(400, errors).response()
        if not self.state.is_verified(str(body["from"]["email"])):
            return unverified_sender().response()
        message_id = self.state.accept(body)
        return Response(status_code=202, headers={"X-Message-Id": message_id, **rate_limit_headers()})

    async def scopes(self, request: Request) -> Response:
        refused = _authenticate(request)
        if refused is not None:
            return refused
        return JSONResponse({"scopes": self.state.dump()["scopes"]}, headers=rate_limit_headers())

    async def signed_key(self, request: Request) -> Response:
        """The legacy single-webhook form of "Get Signed Event Webhook's Public Key"."""
        refused = _authenticate(request) or _forbidden(self.state, "user.webhooks.event.settings.read")
        if refused is not None:
            return refused
        return JSONResponse({"public_key": SANDBOX_EVENT_WEBHOOK_PUBLIC_KEY}, headers=rate_limit_headers())

    async def set_event_webhook(self, request: Request) -> Response:
        try:
            payload = await request.json()
        except ValueError:
            return JSONResponse({"error": 'send {"url": "http://…"}'}, status_code=400)
        url = payload.get("url") if isinstance(payload, dict) else None
        if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
            return JSONResponse({"error": "url must be an http(s) URL or null"}, status_code=400)
        self.state.event_webhook_url = url
        return JSONResponse({"url": url})

    async def pending_callbacks(self, _request: Request) -> Response:
        return JSONResponse({"callbacks": self.state.dump()["pending_callbacks"]})

    async def deliver_callbacks(self, _request: Request) -> Response:
        """POST the pending callbacks, only to http(s) URLs on 127.0.0.1 or localhost.

        One for another host is dropped and counted as skipped: the emulator never sends traffic
        off this machine. One whose receiver did not answer is put back and counted as skipped.
        """
        delivered, skipped, retry = await deliver("sendgrid", self.state.take_callbacks())
        self.state.requeue(retry)
        return JSONResponse({"delivered": delivered, "skipped": skipped})


def _error(status: int, retry_after: float | None) -> Response:
    """SendGrid's answer to an injected fault: 429 with X-RateLimit-Reset, or a 5xx in its error format."""
    if status == 429:
        reset = time.time() + (retry_after if retry_after is not None else 1.0)
        headers = rate_limit_headers(remaining=0, reset=reset + 0.999)  # rounded up to a whole second
        return SendGridApiError(429, [("too many requests", None, None)], headers).response()
    message = "service unavailable" if status == 503 else "internal server error"  # unconfirmed: 503 wording
    return SendGridApiError(status, [(message, None, None)]).response()


def build_sandbox() -> Sandbox:
    """A fresh SendGrid emulator: an account with one verified sender and no Event Webhook yet."""
    state = SendGridState()
    return Sandbox(name="sendgrid", state=state, routes=_Api(state).routes(), error=_error)
