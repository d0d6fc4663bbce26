"""An emulator of the Square API slice this connector uses, over `sandbox_state.SquareState`.

Served paths, as on connect.squareup.com (Bearer access token; 401 in Square's error format):

- `POST /v2/customers`, `GET /v2/customers/{customer_id}`, `POST /v2/customers/search`
- `POST /v2/orders`, `GET /v2/orders/{order_id}`
- `POST /v2/invoices`, `GET /v2/invoices/{invoice_id}`, `POST /v2/invoices/search`,
  `POST /v2/invoices/{invoice_id}/publish`
- `POST /v2/online-checkout/payment-links`, `GET /v2/online-checkout/payment-links/{id}`
- `GET /v2/locations/{location_id}`

Errors are `{"errors": [{"category", "code", "detail", "field"}]}`; an injected 429 is
`RATE_LIMIT_ERROR`/`RATE_LIMITED` with Retry-After. Control routes (beside the kit's):
`POST /_invoices/{invoice_id}/pay` and `POST /_payment-links/{id}/pay` play the payer;
`POST /_webhook_endpoint` `{"url"}` subscribes a notification URL (signed with
`SANDBOX_SIGNATURE_KEY`); `POST /_callbacks/deliver` posts the queued notifications, loopback only.
Docs: https://developer.squareup.com/reference/square
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.common.callbacks import deliver, is_loopback
from integrations.common.sandbox import Sandbox
from integrations.square.sandbox_state import (
    SANDBOX_ACCESS_TOKEN,
    SANDBOX_LOCATION_ID,
    SANDBOX_SIGNATURE_KEY,
    SquareError,
    SquareState,
)

__all__ = ["SANDBOX_ACCESS_TOKEN", "SANDBOX_LOCATION_ID", "SANDBOX_SIGNATURE_KEY", "SquareState", "build_sandbox"]

Handler = Callable[[Request], Awaitable[Response]]


def _errors(status: int, error: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"errors": [error]}, status_code=status, headers=headers)


def _fault(status: int, retry_after: float | None) -> Response:
    """An injected 429 or 5xx in Square's error format."""
    if status == 429:
        # unconfirmed: whether Square sends Retry-After on 429 (the connector backs off without it).
        seconds = retry_after or 1.0
        header = str(int(seconds)) if seconds == int(seconds) else str(seconds)
        return _errors(
            429,
            {"category": "RATE_LIMIT_ERROR", "code": "RATE_LIMITED", "detail": "Rate limit exceeded."},
            {"Retry-After": header},
        )
    code = "SERVICE_UNAVAILABLE" if status == 503 else "INTERNAL_SERVER_ERROR"
    return _errors(status, {"category": "API_ERROR", "code": code, "detail": "Something went wrong."})


class _Api:
    """Square's routes over one state."""

    def __init__(self, state: SquareState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        s = self.state

        def body_route(path: str, act: Callable[[Request, dict[str, Any]], dict[str, Any]]) -> Route:
            return Route(path, self._wrap(act, with_body=True), methods=["POST"])

        def get_route(path: str, act: Callable[[Request, dict[str, Any]], dict[str, Any]]) -> Route:
            return Route(path, self._wrap(act, with_body=False), methods=["GET"])

        return [
            body_route("/v2/customers", lambda _r, b: s.idempotent("customers", b, lambda: s.create_customer(b))),
            body_route("/v2/customers/search", lambda _r, b: s.search_customers(b)),
            get_route("/v2/customers/{customer_id}", lambda r, _b: s.get_customer(r.path_params["customer_id"])),
            body_route(
                "/v2/orders",
                lambda _r, b: s.idempotent("orders", b, lambda: s.create_order(dict(b.get("order") or {}))),
            ),
            get_route("/v2/orders/{order_id}", lambda r, _b: s.get_order(r.path_params["order_id"])),
            body_route(
                "/v2/invoices",
                lambda _r, b: s.idempotent("invoices", b, lambda: s.create_invoice(dict(b.get("invoice") or {}))),
            ),
            body_route("/v2/invoices/search", lambda _r, b: s.search_invoices(b)),
            get_route("/v2/invoices/{invoice_id}", lambda r, _b: s.get_invoice(r.path_params["invoice_id"])),
            body_route(
                "/v2/invoices/{invoice_id}/publish",
                lambda r, b: s.idempotent(
                    f"publish {r.path_params['invoice_id']}",
                    b,
                    lambda: s.publish_invoice(r.path_params["invoice_id"], b),
                ),
            ),
            body_route(
                "/v2/online-checkout/payment-links",
                lambda _r, b: s.idempotent("payment-links", b, lambda: s.create_payment_link(b)),
            ),
            get_route(
                "/v2/online-checkout/payment-links/{link_id}",
                lambda r, _b: s.get_payment_link(r.path_params["link_id"]),
            ),
            get_route("/v2/locations/{location_id}", lambda r, _b: s.get_location(r.path_params["location_id"])),
            Route("/_invoices/{invoice_id}/pay", self._pay_invoice, methods=["POST"]),
            Route("/_payment-links/{link_id}/pay", self._pay_link, methods=["POST"]),
            Route("/_webhook_endpoint", self._webhook_endpoint, methods=["POST"]),
            Route("/_callbacks/deliver", self._deliver, methods=["POST"]),
        ]

    def _wrap(self, act: Callable[[Request, dict[str, Any]], dict[str, Any]], *, with_body: bool) -> Handler:
        async def handle(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            token = header[len("Bearer ") :] if header.startswith("Bearer ") else None
            if not self.state.authorized(token):
                return _errors(
                    401,
                    {
                        "category": "AUTHENTICATION_ERROR",
                        "code": "UNAUTHORIZED",
                        "detail": "This request could not be authorized.",
                    },
                )
            body: dict[str, Any] = {}
            if with_body:
                try:
                    decoded = json.loads(await request.body() or b"{}")
                except ValueError:
                    return _errors(
                        400, {"category": "INVALID_REQUEST_ERROR", "code": "INVALID_JSON", "detail": "Invalid JSON."}
                    )
                if not isinstance(decoded, dict):
                    return _errors(
                        400,
                        {
                            "category": "INVALID_REQUEST_ERROR",
                            "code": "EXPECTED_OBJECT",
                            "detail": "Expected an object.",
                        },
                    )
                body = decoded
            try:
                return JSONResponse(act(request, body))
            except SquareError as error:
                return _errors(error.status, error.body)

        return handle

    async def _pay_invoice(self, request: Request) -> Response:
        try:
            return JSONResponse({"invoice": self.state.pay_invoice(request.path_params["invoice_id"])})
        except SquareError as error:
            return _errors(error.status, error.body)

    async def _pay_link(self, request: Request) -> Response:
        try:
            self.state.pay_payment_link(request.path_params["link_id"])
        except SquareError as error:
            return _errors(error.status, error.body)
        return Response(status_code=204)

    async def _webhook_endpoint(self, request: Request) -> Response:
        try:
            url = (await request.json()).get("url")
        except (ValueError, AttributeError):
            url = None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return JSONResponse({"error": 'give {"url": "http(s)://…"}'}, status_code=400)
        self.state.webhook_url = url
        return JSONResponse({"url": url, "loopback": is_loopback(url)})

    async def _deliver(self, _request: Request) -> Response:
        delivered, skipped, retry = await deliver("square", self.state.take_callbacks())
        self.state.requeue(retry)
        return JSONResponse({"delivered": delivered, "skipped": skipped})


def build_sandbox() -> Sandbox:
    """A fresh Square emulator: one seller with one location, no customers yet."""
    state = SquareState()
    return Sandbox(name="square", state=state, routes=_Api(state).routes(), error=_fault)
