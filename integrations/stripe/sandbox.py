"""The Stripe emulator: the customer, Checkout Session and invoice endpoints the connector uses, at Stripe's paths.

It answers like api.stripe.com: Bearer (or Basic) secret-key auth with Stripe's 401 bodies,
form-encoded bracket parameters, unknown parameters refused as `parameter_unknown` (the known
ones are stripe-python's typed params, i.e. the current API), Idempotency-Key replay on every POST,
cursor pagination (`limit`, `starting_after`, `ending_before`, `has_more`), search pages
(`page`, `next_page`), `expand`, and errors as {"error": {type, code, message, param, doc_url}}
with a Request-Id header. `POST /_pay/{session}` plays the payer completing the hosted Checkout page,
`POST /_invoices/{invoice}/pay` the customer paying a hosted invoice (and queues `invoice.paid`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from stripe import RequestOptions
from stripe.params import (
    CustomerCreateParams,
    CustomerListParams,
    CustomerRetrieveParams,
    CustomerSearchParams,
    InvoiceCreateParams,
    InvoiceFinalizeInvoiceParams,
    InvoiceItemCreateParams,
    InvoiceListParams,
    InvoicePayParams,
    InvoiceRetrieveParams,
    InvoiceSendInvoiceParams,
    InvoiceVoidInvoiceParams,
)
from stripe.params.checkout import SessionCreateParams, SessionExpireParams, SessionListParams, SessionRetrieveParams

from integrations.common.callbacks import deliver
from integrations.common.sandbox import Sandbox
from integrations.stripe.sandbox_invoices import InvoiceBook
from integrations.stripe.sandbox_state import Remembered, StripeState
from integrations.stripe.sandbox_wire import ApiError, decode_form, error_response, integer, invalid, parse_search
from integrations.stripe.sandbox_wire import request_id as new_request_id

__all__ = ["SANDBOX_API_KEY", "build_sandbox"]

# The one secret key the emulator accepts (test mode, like every key that starts with sk_test_).
SANDBOX_API_KEY = "sk_test_sandbox_51ToolServerStripeEmulatorKey00"
API_VERSION = "2026-10-28.endive"

Params = dict[str, Any]
PathParams = dict[str, str]
Handler = Callable[[PathParams, Params], dict[str, Any]]
# Options the SDK takes next to params but never sends as parameters (api_key, idempotency_key, …).
_REQUEST_OPTIONS = frozenset(RequestOptions.__annotations__)


def _accepted(params_type: type) -> frozenset[str]:
    """The parameter names the current API accepts, from stripe-python's TypedDict for the call."""
    return frozenset(params_type.__annotations__) - _REQUEST_OPTIONS


class StripeEmulator:
    """Stripe's HTTP surface over one `StripeState`."""

    def __init__(self, state: StripeState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        endpoint = self._endpoint
        return [
            Route("/_pay/{session}", self._pay, methods=["POST"]),
            Route("/_invoices/{invoice}/pay", self._pay_invoice, methods=["POST"]),
            Route("/_webhook_endpoint", self._webhook_endpoint, methods=["POST"]),
            Route("/_callbacks/deliver", self._deliver, methods=["POST"]),
            Route("/v1/customers", endpoint(self.create_customer, CustomerCreateParams), methods=["POST"]),
            Route("/v1/customers", endpoint(self.list_customers, CustomerListParams), methods=["GET"]),
            Route("/v1/customers/search", endpoint(self.search_customers, CustomerSearchParams), methods=["GET"]),
            Route(
                "/v1/customers/{customer}", endpoint(self.retrieve_customer, CustomerRetrieveParams), methods=["GET"]
            ),
            Route("/v1/checkout/sessions", endpoint(self.create_session, SessionCreateParams), methods=["POST"]),
            Route("/v1/checkout/sessions", endpoint(self.list_sessions, SessionListParams), methods=["GET"]),
            Route(
                "/v1/checkout/sessions/{session}",
                endpoint(self.retrieve_session, SessionRetrieveParams),
                methods=["GET"],
            ),
            Route(
                "/v1/checkout/sessions/{session}/expire",
                endpoint(self.expire_session, SessionExpireParams),
                methods=["POST"],
            ),
            *self._invoice_routes(),
            Route("/{path:path}", self._unrecognized, methods=["GET", "POST", "DELETE", "PUT", "PATCH"]),
        ]

    # -- customers: https://docs.stripe.com/api/customers -------------------------------------------

    def create_customer(self, _path: PathParams, params: Params) -> dict[str, Any]:
        return self.state.create_customer(params)

    def retrieve_customer(self, path: PathParams, _params: Params) -> dict[str, Any]:
        return self.state.customer(path["customer"])

    def list_customers(self, _path: PathParams, params: Params) -> dict[str, Any]:
        customers = self.state.newest_customers()
        if params.get("email") is not None:
            # Stripe documents this filter as case-sensitive.
            customers = [customer for customer in customers if customer["email"] == params["email"]]
        return _page(customers, params, "customer", "/v1/customers")

    def search_customers(self, _path: PathParams, params: Params) -> dict[str, Any]:
        query = params.get("query")
        if not query:
            raise ApiError(400, "Missing required param: query.", code="parameter_missing", param="query")
        predicate = parse_search(str(query))
        found = [customer for customer in self.state.newest_customers() if predicate(customer)]
        limit = integer(params, "limit", default=10, low=1, high=100)
        offset = _page_offset(params.get("page"))
        data = found[offset : offset + limit]
        more = offset + limit < len(found)
        result: dict[str, Any] = {
            "object": "search_result",
            "data": data,
            "has_more": more,
            "next_page": _page_token(offset + limit) if more else None,
            "url": "/v1/customers/search",
        }
        if "total_count" in _expansions(params):
            result["total_count"] = len(found)
        return result

    # -- invoices: https://docs.stripe.com/api/invoices and https://docs.stripe.com/api/invoiceitems ----

    def _invoice_routes(self) -> list[BaseRoute]:
        endpoint, one = self._endpoint, "/v1/invoices/{invoice}"

        def act(action: Callable[[InvoiceBook, str, Params], dict[str, Any]]) -> Handler:
            # The book is looked up per request: `reset()` and `restore()` give the state a new one.
            return lambda path, params: self._invoice_expanded(
                action(self.state.books, path["invoice"], params), params
            )

        return [
            Route("/v1/invoices", endpoint(self.create_invoice, InvoiceCreateParams), methods=["POST"]),
            Route("/v1/invoices", endpoint(self.list_invoices, InvoiceListParams), methods=["GET"]),
            Route(one, endpoint(act(lambda b, i, _: b.invoice(i)), InvoiceRetrieveParams), methods=["GET"]),
            Route(
                f"{one}/finalize", endpoint(act(InvoiceBook.finalize), InvoiceFinalizeInvoiceParams), methods=["POST"]
            ),
            Route(f"{one}/send", endpoint(act(lambda b, i, _: b.send(i)), InvoiceSendInvoiceParams), methods=["POST"]),
            Route(f"{one}/pay", endpoint(act(InvoiceBook.pay), InvoicePayParams), methods=["POST"]),
            Route(f"{one}/void", endpoint(act(lambda b, i, _: b.void(i)), InvoiceVoidInvoiceParams), methods=["POST"]),
            Route("/v1/invoiceitems", endpoint(self.create_invoice_item, InvoiceItemCreateParams), methods=["POST"]),
        ]

    def create_invoice(self, _path: PathParams, params: Params) -> dict[str, Any]:
        return self._invoice_expanded(self.state.books.create(params), params)

    def list_invoices(self, _path: PathParams, params: Params) -> dict[str, Any]:
        invoices = self.state.books.newest(params)
        page = _page(invoices, params, "invoice", "/v1/invoices")
        page["data"] = [self._invoice_expanded(invoice, params, prefix="data.") for invoice in page["data"]]
        return page

    def create_invoice_item(self, _path: PathParams, params: Params) -> dict[str, Any]:
        if _expansions(params):
            raise ApiError(400, f"This property cannot be expanded ({_expansions(params)[0]}).", param="expand")
        return self.state.books.add_item(params)

    def _invoice_expanded(self, invoice: dict[str, Any], params: Params, prefix: str = "") -> dict[str, Any]:
        for field in _expansions(params):
            if field == f"{prefix}customer":
                invoice["customer"] = self.state.customer(invoice["customer"])
            else:
                raise ApiError(400, f"This property cannot be expanded ({field}).", param="expand")
        return invoice

    # -- checkout sessions: https://docs.stripe.com/api/checkout/sessions -----------------------------

    def create_session(self, _path: PathParams, params: Params) -> dict[str, Any]:
        return self._expanded(self.state.create_session(params), params)

    def retrieve_session(self, path: PathParams, params: Params) -> dict[str, Any]:
        return self._expanded(self.state.session(path["session"]), params)

    def expire_session(self, path: PathParams, params: Params) -> dict[str, Any]:
        return self._expanded(self.state.expire_session(path["session"]), params)

    def list_sessions(self, _path: PathParams, params: Params) -> dict[str, Any]:
        sessions = self.state.newest_sessions()
        for name in ("customer", "payment_intent", "payment_link", "status"):
            if params.get(name) is not None:
                sessions = [session for session in sessions if session[name] == params[name]]
        return _page(sessions, params, "checkout.session", "/v1/checkout/sessions")

    def _expanded(self, session: dict[str, Any], params: Params) -> dict[str, Any]:
        for field in _expansions(params):
            if field == "line_items":
                items = self.state.session_line_items(session["id"])
                url = f"/v1/checkout/sessions/{session['id']}/line_items"
                session["line_items"] = {"object": "list", "data": items, "has_more": False, "url": url}
            elif field == "customer" and session["customer"]:
                session["customer"] = self.state.customer(session["customer"])
            elif field != "customer":
                raise ApiError(400, f"This property cannot be expanded ({field}).", param="expand")
        return session

    # -- plumbing ------------------------------------------------------------------------------------

    def _endpoint(self, handler: Handler, params_type: type) -> Callable[[Request], Awaitable[Response]]:
        accepted = _accepted(params_type)

        async def endpoint(request: Request) -> Response:
            try:
                _authenticate(request)
                raw = (await request.body()).decode() if request.method == "POST" else request.url.query
                params = decode_form(raw)
                unknown = sorted(set(params) - accepted)
                if unknown:
                    message = f"Received unknown parameter: {unknown[0]}"
                    raise ApiError(400, message, code="parameter_unknown", param=unknown[0])
                key = request.headers.get("idempotency-key") if request.method == "POST" else None
                if key is None:
                    return _ok(request, handler(dict(request.path_params), params))
                return self._idempotent(request, key, params, handler)
            except ApiError as error:
                return error.response()

        return endpoint

    def _idempotent(self, request: Request, key: str, params: Params, handler: Handler) -> Response:
        """https://docs.stripe.com/api/idempotent_requests: same key and parameters → the first answer."""
        # Stripe's own path (`/v1/…`), not where the emulator is mounted: the remembered answers are
        # saved with the state, and must still replay if the mount point changes.
        vendor_path = request.url.path.removeprefix(request.scope.get("root_path", ""))
        fingerprint = json.dumps([request.method, vendor_path, params], sort_keys=True)
        remembered = self.state.idempotency.get(key)
        if remembered is not None:
            if remembered.fingerprint != fingerprint:
                raise ApiError(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters they were first "
                    f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                    type="idempotency_error",
                )
            headers = {"Idempotent-Replayed": "true", "Original-Request": remembered.request_id}
            return _ok(request, remembered.body, status=remembered.status, extra=headers | {"Idempotency-Key": key})
        # Only answers that executed are kept; a request refused by validation raises before this.
        body = handler(dict(request.path_params), params)
        response = _ok(request, body, extra={"Idempotency-Key": key})
        self.state.idempotency[key] = Remembered(fingerprint, 200, body, response.headers["request-id"])
        return response

    async def _webhook_endpoint(self, request: Request) -> Response:
        """Where the account's events go (a Dashboard webhook endpoint), signed with the sandbox secret."""
        url = await _json_url(request)
        if url is None:
            return JSONResponse({"error": 'give {"url": "http(s)://…"}'}, status_code=400)
        self.state.webhook_url = url
        return JSONResponse({"url": url})

    async def _deliver(self, _request: Request) -> Response:
        delivered, skipped, retry = await deliver("stripe", self.state.take_callbacks())
        self.state.requeue(retry)
        return JSONResponse({"delivered": delivered, "skipped": skipped})

    async def _pay(self, request: Request) -> Response:
        try:
            return JSONResponse(self.state.pay(request.path_params["session"]))
        except ApiError as error:
            return error.response()

    async def _pay_invoice(self, request: Request) -> Response:
        try:
            return JSONResponse(self.state.pay_invoice(request.path_params["invoice"]))
        except ApiError as error:
            return error.response()

    async def _unrecognized(self, request: Request) -> Response:
        message = (
            f"Unrecognized request URL ({request.method}: /{request.path_params['path']}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/."
        )
        return error_response(404, message)


def fault_response(status: int, retry_after: float | None) -> Response:
    """Stripe's answers to an injected fault: its rate-limit error, or an api_error for a 5xx.

    Stripe's own 429s usually carry no Retry-After; the injected one does, so clients can honour it.
    """
    if status == 429:
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        message = "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits."
        return error_response(429, message, code="rate_limit", headers=headers)
    return error_response(status, "An unknown error occurred", type_="api_error")


async def _json_url(request: Request) -> str | None:
    try:
        payload = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    url = payload.get("url") if isinstance(payload, dict) else None
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None


def build_sandbox() -> Sandbox:
    """A fresh Stripe emulator with an empty test-mode account."""
    state = StripeState()
    return Sandbox(name="stripe", state=state, routes=StripeEmulator(state).routes(), error=fault_response)


def _authenticate(request: Request) -> None:
    """https://docs.stripe.com/api/authentication: the secret key as Bearer token or Basic user name."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    key = ""
    if scheme.lower() == "bearer":
        key = credential.strip()
    elif scheme.lower() == "basic":
        try:
            key = base64.b64decode(credential.strip()).decode().split(":", 1)[0]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    if not key:
        raise ApiError(
            401,
            "You did not provide an API key. You need to provide your API key in the Authorization header, "
            "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). "
            "See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        )
    if key != SANDBOX_API_KEY:
        raise ApiError(401, f"Invalid API Key provided: {_masked(key)}")


def _masked(key: str) -> str:
    """Stripe's echo of a rejected key: the mode prefix and last four characters only."""
    prefix = next(
        (p for p in ("sk_test_", "sk_live_", "rk_test_", "rk_live_", "pk_test_", "pk_live_") if key.startswith(p)), ""
    )
    rest = key[len(prefix) :]
    if len(rest) <= 4:
        return prefix + "*" * len(rest)
    return prefix + "*" * (len(rest) - 4) + rest[-4:]


def _ok(
    request: Request, body: dict[str, Any], *, status: int = 200, extra: dict[str, str] | None = None
) -> JSONResponse:
    headers = {
        "Request-Id": new_request_id(),
        "Stripe-Version": request.headers.get("stripe-version", API_VERSION),
        **(extra or {}),
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _expansions(params: Params) -> list[str]:
    expand = params.get("expand") or []
    return [str(field) for field in (expand if isinstance(expand, list) else [expand])]


def _page(items: list[dict[str, Any]], params: Params, kind: str, url: str) -> dict[str, Any]:
    """https://docs.stripe.com/api/pagination: newest first, cursors are object ids."""
    limit = integer(params, "limit", default=10, low=1, high=100)
    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        raise invalid("starting_after", "You may only specify one of these parameters: ending_before, starting_after.")
    ids = [item["id"] for item in items]
    if after:
        start = _cursor(ids, str(after), kind, "starting_after") + 1
        data, more = items[start : start + limit], start + limit < len(items)
    elif before:
        end = _cursor(ids, str(before), kind, "ending_before")
        data, more = items[max(0, end - limit) : end], end - limit > 0
    else:
        data, more = items[:limit], len(items) > limit
    return {"object": "list", "data": data, "has_more": more, "url": url}


def _cursor(ids: list[str], cursor: str, kind: str, param: str) -> int:
    if cursor not in ids:
        raise ApiError(404, f"No such {kind}: '{cursor}'", code="resource_missing", param=param)
    return ids.index(cursor)


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _page_offset(token: Any) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(str(token).encode()))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise invalid("page", "Invalid page token.") from None
    if not isinstance(offset, int) or offset < 0:
        raise invalid("page", "Invalid page token.")
    return offset
