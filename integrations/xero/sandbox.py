"""The Xero emulator: Accounting API contacts and invoices, the identity token endpoint, and Xero's limits.

Mounted under `/sandbox/xero`: `{base_url}/api.xro/2.0/Contacts` and `{identity_url}/connect/token`
are served where the SDK and the token manager send them once both URLs point at the sandbox.
Every API answer carries Xero's `X-DayLimit-Remaining`, `X-MinLimit-Remaining` and
`X-AppMinLimit-Remaining` headers; injected 429s add `Retry-After` and `X-Rate-Limit-Problem`.

Control routes (beside the kit's): `POST /_invoices/{invoice_id}/pay` records a full payment (and
queues its INVOICE UPDATE delivery); `POST /_webhook_endpoint` `{"url"}` sets the app's delivery
URL and queues intent to receive (one empty payload signed with `SANDBOX_WEBHOOK_KEY`, one signed
wrongly); `POST /_callbacks/deliver` posts the queued deliveries, loopback only.
"""

from __future__ import annotations

import base64
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from integrations.common.callbacks import deliver, is_loopback
from integrations.common.sandbox import Sandbox
from integrations.xero.sandbox_state import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    SANDBOX_TENANT_ID,
    SANDBOX_WEBHOOK_KEY,
    TokenError,
    XeroError,
    XeroState,
)

__all__ = [
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_REFRESH_TOKEN",
    "SANDBOX_TENANT_ID",
    "SANDBOX_WEBHOOK_KEY",
    "build_sandbox",
    "xero_error",
]

API = "/api.xro/2.0"
Handler = Callable[[Request], Awaitable[Response]]
# GET /Contacts and /Invoices: 100 per page unless pageSize says otherwise (at most 1000).
_PAGE_DEFAULT, _PAGE_MAX = 100, 1000


def xero_error(status: int, retry_after: float | None) -> Response:
    """An injected fault as Xero answers it: a rate-limit 429 or a server error."""
    if status == 429:
        wait = retry_after if retry_after is not None else 1.0
        # https://developer.xero.com/documentation/guides/oauth2/limits (429, Retry-After, X-Rate-Limit-Problem)
        # unconfirmed: the 429 body text; Xero documents the headers, not the body.
        return PlainTextResponse(
            "You have exceeded the rate limit",
            status_code=429,
            headers={
                "Retry-After": str(math.ceil(wait)),
                "X-Rate-Limit-Problem": "minute",
                "X-MinLimit-Remaining": "0",
                "X-DayLimit-Remaining": "4000",
                "X-AppMinLimit-Remaining": "9000",
            },
        )
    # unconfirmed: Xero's 5xx bodies; an ApiException-like body is used.
    return JSONResponse(
        {"ErrorNumber": 500, "Type": "ApiException", "Message": "An error occurred in Xero."}, status_code=status
    )


def _envelope(**collections: Any) -> dict[str, Any]:
    # https://developer.xero.com/documentation/api/accounting/responsecodes (the response envelope)
    return {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": "tool-server sandbox",
        "DateTimeUTC": f"/Date({int(time.time() * 1000)})/",
        **collections,
    }


def _error_response(error: XeroError) -> Response:
    if isinstance(error.body, str):
        return PlainTextResponse(error.body, status_code=error.status)
    return JSONResponse(error.body, status_code=error.status)


def _basic(header: str | None) -> tuple[str, str] | None:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return None
    return user, password


def _page(request: Request) -> tuple[int | None, int]:
    try:
        page = int(request.query_params["page"]) if "page" in request.query_params else None
        size = int(request.query_params.get("pageSize", _PAGE_DEFAULT))
    except ValueError:
        raise XeroError.validation("page and pageSize must be integers") from None
    return page, min(max(size, 1), _PAGE_MAX)


def _paged(request: Request, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int] | None]:
    page, size = _page(request)
    if page is None:
        return records, None
    start = (max(page, 1) - 1) * size
    count = len(records)
    return records[start : start + size], {
        "page": max(page, 1),
        "pageSize": size,
        "pageCount": max(math.ceil(count / size), 1),
        "itemCount": count,
    }


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise XeroError.validation("The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise XeroError.validation("The request body must be an object")
    return body


class _Routes:
    def __init__(self, state: XeroState) -> None:
        self.state = state

    def api(self, handler: Handler) -> Handler:
        """Bearer token and xero-tenant-id checked, limits counted and reported on every answer."""

        async def endpoint(request: Request) -> Response:
            now = time.time()
            try:
                self.state.authenticate(
                    request.headers.get("authorization"), request.headers.get("xero-tenant-id"), now
                )
                limits = self.state.count_call(now)
                response = await handler(request)
            except XeroError as error:
                return _error_response(error)
            response.headers.update(limits)
            return response

        return endpoint

    async def token(self, request: Request) -> Response:
        # https://developer.xero.com/documentation/guides/oauth2/auth-flow (refreshing access tokens)
        form = {key: str(value) for key, value in (await request.form()).items()}
        try:
            answer = self.state.refresh(form, _basic(request.headers.get("authorization")), time.time())
        except TokenError as error:
            return JSONResponse(error.body, status_code=400)
        return JSONResponse(answer)

    async def list_contacts(self, request: Request) -> Response:
        # https://developer.xero.com/documentation/api/accounting/contacts#get-contacts
        if request.query_params.get("where"):
            # The sandbox does not interpret `where` filters; the connector never sends caller text in one.
            raise XeroError.validation("where filters are not supported by the sandbox")
        records = self.state.search_contacts(request.query_params.get("searchTerm"))
        page, pagination = _paged(request, records)
        body = _envelope(Contacts=page)
        if pagination is not None:
            body["pagination"] = pagination
        return JSONResponse(body)

    async def create_contacts(self, request: Request) -> Response:
        # https://developer.xero.com/documentation/api/accounting/contacts#put-contacts
        key = request.headers.get("idempotency-key")
        remembered = self.state.remembered(key, f"{request.method} /Contacts")
        if remembered is not None:
            return JSONResponse(remembered)
        body = await _json(request)
        created = [self.state.create_contact(item) for item in body.get("Contacts") or []]
        answer = _envelope(Contacts=created)
        self.state.remember(key, f"{request.method} /Contacts", answer)
        return JSONResponse(answer)

    async def get_contact(self, request: Request) -> Response:
        return JSONResponse(_envelope(Contacts=[self.state.contact(request.path_params["contact_id"])]))

    async def update_contact(self, request: Request) -> Response:
        # https://developer.xero.com/documentation/api/accounting/contacts#post-contacts
        contact_id = request.path_params["contact_id"]
        key = request.headers.get("idempotency-key")
        remembered = self.state.remembered(key, f"POST /Contacts/{contact_id}")
        if remembered is not None:
            return JSONResponse(remembered)
        items = (await _json(request)).get("Contacts") or [{}]
        answer = _envelope(Contacts=[self.state.update_contact(contact_id, items[0])])
        self.state.remember(key, f"POST /Contacts/{contact_id}", answer)
        return JSONResponse(answer)

    async def list_invoices(self, request: Request) -> Response:
        # https://developer.xero.com/documentation/api/accounting/invoices#get-invoices
        if request.query_params.get("where"):
            raise XeroError.validation("where filters are not supported by the sandbox")
        contact_ids = {v for raw in request.query_params.getlist("ContactIDs") for v in raw.split(",") if v}
        statuses = {v for raw in request.query_params.getlist("Statuses") for v in raw.split(",") if v}
        page, pagination = _paged(request, self.state.list_invoices(contact_ids, statuses))
        body = _envelope(Invoices=page)
        if pagination is not None:
            body["pagination"] = pagination
        return JSONResponse(body)

    async def create_invoices(self, request: Request) -> Response:
        # https://developer.xero.com/documentation/api/accounting/invoices#put-invoices
        key = request.headers.get("idempotency-key")
        remembered = self.state.remembered(key, f"{request.method} /Invoices")
        if remembered is not None:
            return JSONResponse(remembered)
        body = await _json(request)
        today = datetime.now(UTC).date()
        created = [self.state.create_invoice(item, today) for item in body.get("Invoices") or []]
        answer = _envelope(Invoices=created)
        self.state.remember(key, f"{request.method} /Invoices", answer)
        return JSONResponse(answer)

    async def get_invoice(self, request: Request) -> Response:
        return JSONResponse(_envelope(Invoices=[self.state.invoice(request.path_params["invoice_id"])]))

    async def email_invoice(self, request: Request) -> Response:
        # https://developer.xero.com/documentation/api/accounting/invoices#emailing-an-invoice
        invoice_id = request.path_params["invoice_id"]
        key = request.headers.get("idempotency-key")
        if self.state.remembered(key, f"POST /Invoices/{invoice_id}/Email") is None:
            self.state.email_invoice(invoice_id)
            self.state.remember(key, f"POST /Invoices/{invoice_id}/Email", {})
        return Response(status_code=204)

    async def online_invoice(self, request: Request) -> Response:
        # https://developer.xero.com/documentation/api/accounting/invoices#retrieving-the-online-invoice-url
        url = self.state.online_invoice_url(request.path_params["invoice_id"])
        return JSONResponse(_envelope(OnlineInvoices=[{"OnlineInvoiceUrl": url}]))

    async def pay_invoice(self, request: Request) -> Response:
        try:
            return JSONResponse(_envelope(Invoices=[self.state.pay_invoice(request.path_params["invoice_id"])]))
        except KeyError:
            return JSONResponse({"error": "no such invoice"}, status_code=404)

    async def webhook_endpoint(self, request: Request) -> Response:
        try:
            url = (await request.json()).get("url")
        except (ValueError, AttributeError):
            url = None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return JSONResponse({"error": 'give {"url": "http(s)://…"}'}, status_code=400)
        self.state.subscribe(url)
        return JSONResponse({"url": url, "loopback": is_loopback(url)})

    async def deliver_callbacks(self, _request: Request) -> Response:
        delivered, skipped, retry = await deliver("xero", self.state.take_callbacks())
        self.state.requeue(retry)
        return JSONResponse({"delivered": delivered, "skipped": skipped})


def build_sandbox() -> Sandbox:
    """A fresh Xero emulator: one empty organisation with the sandbox OAuth app connected."""
    state = XeroState()
    routes = _Routes(state)
    api = routes.api
    return Sandbox(
        name="xero",
        state=state,
        routes=[
            Route("/connect/token", routes.token, methods=["POST"]),
            Route(f"{API}/Contacts", api(routes.list_contacts), methods=["GET"]),
            Route(f"{API}/Contacts", api(routes.create_contacts), methods=["PUT", "POST"]),
            Route(f"{API}/Contacts/{{contact_id}}", api(routes.get_contact), methods=["GET"]),
            Route(f"{API}/Contacts/{{contact_id}}", api(routes.update_contact), methods=["POST"]),
            Route(f"{API}/Invoices", api(routes.list_invoices), methods=["GET"]),
            Route(f"{API}/Invoices", api(routes.create_invoices), methods=["PUT", "POST"]),
            Route(f"{API}/Invoices/{{invoice_id}}", api(routes.get_invoice), methods=["GET"]),
            Route(f"{API}/Invoices/{{invoice_id}}/Email", api(routes.email_invoice), methods=["POST"]),
            Route(f"{API}/Invoices/{{invoice_id}}/OnlineInvoice", api(routes.online_invoice), methods=["GET"]),
            Route("/_invoices/{invoice_id}/pay", routes.pay_invoice, methods=["POST"]),
            Route("/_webhook_endpoint", routes.webhook_endpoint, methods=["POST"]),
            Route("/_callbacks/deliver", routes.deliver_callbacks, methods=["POST"]),
        ],
        error=xero_error,
        exempt_paths=("/connect/token",),
    )
