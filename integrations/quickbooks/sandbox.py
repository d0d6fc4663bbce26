"""The QuickBooks Online emulator: Accounting API v3 customers, invoices, queries, and Intuit's token endpoint.

Mounted under `/sandbox/quickbooks`, so `{base_url}/v3/company/{realmId}/customer` is served where
the connector sends it. Auth is a Bearer token the emulator issued; errors, 401s and injected
faults come in QuickBooks' `Fault` format. Writes honour `requestid`: a repeated one is answered
with the first answer (success or Fault) and changes nothing.

Control routes beside the kit's: `POST /_invoices/{invoice_id}/pay` plays the customer paying
online; `POST /_webhook_endpoint` `{"url", "format"?}` subscribes the app's webhook endpoint
(`format` "cloudevents", the default, or "legacy"), signed with `SANDBOX_VERIFIER_TOKEN`;
`POST /_callbacks/deliver` posts the queued notifications, to loopback addresses only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.common.callbacks import deliver, is_loopback
from integrations.common.sandbox import Sandbox
from integrations.quickbooks import sandbox_query
from integrations.quickbooks.sandbox_state import (
    REALM_ID,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    SANDBOX_VERIFIER_TOKEN,
    WEBHOOK_FORMATS,
    QuickBooksFaultError,
    QuickBooksState,
    TokenError,
    WebhookFormat,
    stamp,
)

__all__ = [
    "REALM_ID",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_REFRESH_TOKEN",
    "SANDBOX_VERIFIER_TOKEN",
    "TOKEN_PATH",
    "build_sandbox",
    "quickbooks_error",
]

Handler = Callable[[Request], Awaitable[Response]]
TOKEN_PATH = "/oauth2/v1/tokens/bearer"
_COMPANY = "/v3/company/{realm}"
# Filterable fields per entity, each mapped to where its value sits in the record.
# unconfirmed: the exact filterable list (Intuit's entity reference marks fields "filterable").
QUERY_FIELDS: dict[str, dict[str, str]] = {
    "Customer": {
        "Id": "Id",
        "DisplayName": "DisplayName",
        "GivenName": "GivenName",
        "FamilyName": "FamilyName",
        "CompanyName": "CompanyName",
        "PrimaryEmailAddr": "PrimaryEmailAddr.Address",
        "Active": "Active",
        "Balance": "Balance",
        "MetaData.CreateTime": "MetaData.CreateTime",
        "MetaData.LastUpdatedTime": "MetaData.LastUpdatedTime",
    },
    "Invoice": {
        "Id": "Id",
        "DocNumber": "DocNumber",
        "CustomerRef": "CustomerRef.value",
        "Balance": "Balance",
        "TotalAmt": "TotalAmt",
        "DueDate": "DueDate",
        "TxnDate": "TxnDate",
        "MetaData.CreateTime": "MetaData.CreateTime",
        "MetaData.LastUpdatedTime": "MetaData.LastUpdatedTime",
    },
}


def quickbooks_error(status: int, retry_after: float | None) -> Response:
    """An injected fault as QuickBooks answers it: its throttle Fault with Retry-After, or a SystemFault."""
    if status == 429:
        wait = retry_after if retry_after is not None else 60.0
        # unconfirmed: QuickBooks' throttle body and whether it sends Retry-After (it documents a 60 s wait).
        fault = QuickBooksFaultError(
            429,
            "003001",
            "message=ThrottleExceeded; errorCode=003001; statusCode=429",
            "The request limit was reached.",
            kind="SERVICE",
        )
        return JSONResponse(fault.body, status_code=429, headers={"Retry-After": str(math.ceil(wait))})
    fault = QuickBooksFaultError(
        status,
        "10000",
        "An application error has occurred while processing your request",
        "System Failure Error: An unexpected error occurred while accessing or saving your data.",
        kind="SystemFault",
    )
    return JSONResponse(fault.body, status_code=status)


def _unauthorized() -> Response:
    # QuickBooks' 401 uses lower-case keys.
    body = {
        "fault": {
            "error": [
                {
                    "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "detail": "Token expired or invalid",
                    "code": "3200",
                }
            ],
            "type": "AUTHENTICATION",
        },
        "time": stamp(),
    }
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": 'Bearer realm="Intuit"'})


def _forbidden() -> Response:
    fault = QuickBooksFaultError(
        403,
        "003100",
        "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
        "",
        kind="AuthorizationFault",
    )
    return JSONResponse(fault.body, status_code=403)


def _envelope(name: str, record: dict[str, Any]) -> dict[str, Any]:
    return {name: record, "time": stamp()}


class _Routes:
    def __init__(self, state: QuickBooksState) -> None:
        self.state = state

    def api(self, handler: Handler, *, write: bool = False) -> Handler:
        """Auth, realm, injected Faults in 200s, requestid replay, and Faults as answers."""

        async def endpoint(request: Request) -> Response:
            if not self.state.authenticated(request.headers.get("authorization")):
                return _unauthorized()
            if request.path_params.get("realm") != REALM_ID:
                return _forbidden()
            in_200 = self.state.take_fault_in_200()
            if in_200 is not None:
                return JSONResponse(in_200)
            rid = request.query_params.get("requestid") if write else None
            if rid is not None and len(rid) > 50:
                fault = QuickBooksFaultError(400, "2050", "Invalid String", "requestid is longer than 50 characters")
                return JSONResponse(fault.body, status_code=400)
            earlier = self.state.remembered(rid)
            if earlier is not None:
                return JSONResponse(earlier[1], status_code=earlier[0])
            try:
                response = await handler(request)
            except QuickBooksFaultError as fault:
                self.state.remember(rid, fault.status, fault.body)
                return JSONResponse(fault.body, status_code=fault.status)
            if isinstance(response, JSONResponse):
                self.state.remember(rid, response.status_code, json.loads(bytes(response.body)))
            return response

        return endpoint

    async def token(self, request: Request) -> Response:
        form = {key: str(value) for key, value in (await request.form()).items()}
        try:
            return JSONResponse(self.state.refresh(request.headers.get("authorization"), form))
        except TokenError as error:
            return JSONResponse(error.body, status_code=error.status)

    async def query(self, request: Request) -> Response:
        # https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries
        if request.method == "POST":
            sql = (await request.body()).decode("utf-8", "replace")
        else:
            sql = request.query_params.get("query", "")
        try:
            parsed = sandbox_query.parse(sql, QUERY_FIELDS)
        except sandbox_query.QueryError as error:
            raise QuickBooksFaultError(400, error.code, "Error parsing query", error.detail) from None
        rows = [row for row in self.state.rows(parsed.entity) if sandbox_query.matches(row, parsed, QUERY_FIELDS)]
        if parsed.order_by:
            path = QUERY_FIELDS[parsed.entity].get(parsed.order_by, parsed.order_by)
            rows.sort(key=lambda row: str(_lookup(row, path) or ""), reverse=parsed.descending)
        else:
            rows.sort(key=lambda row: int(row["Id"]))
        page = rows[parsed.start - 1 : parsed.start - 1 + parsed.max_results]
        answer: dict[str, Any] = {}
        if page:
            answer = {parsed.entity: page, "startPosition": parsed.start, "maxResults": len(page)}
        return JSONResponse({"QueryResponse": answer, "time": stamp()})

    async def post_customer(self, request: Request) -> Response:
        body = await _json(request)
        if isinstance(body, dict) and body.get("Id") is not None:
            return JSONResponse(_envelope("Customer", self.state.update_customer(body)))
        return JSONResponse(_envelope("Customer", self.state.create_customer(body)))

    async def get_customer(self, request: Request) -> Response:
        return JSONResponse(_envelope("Customer", self.state.customer(request.path_params["record_id"])))

    async def post_invoice(self, request: Request) -> Response:
        return JSONResponse(_envelope("Invoice", self.state.create_invoice(await _json(request))))

    async def get_invoice(self, request: Request) -> Response:
        includes = {part.strip() for part in request.query_params.get("include", "").split(",")}
        record = self.state.invoice(request.path_params["record_id"], with_link="invoiceLink" in includes)
        return JSONResponse(_envelope("Invoice", record))

    async def send_invoice(self, request: Request) -> Response:
        record = self.state.send_invoice(request.path_params["record_id"], request.query_params.get("sendTo"))
        return JSONResponse(_envelope("Invoice", record))

    async def company_info(self, request: Request) -> Response:
        if request.path_params["record_id"] != REALM_ID:
            raise QuickBooksFaultError(400, "610", "Object Not Found", "Object Not Found : CompanyInfo")
        info = {
            "Id": REALM_ID,
            "SyncToken": "1",
            "CompanyName": "Sandbox Plumbing Co",
            "Country": "US",
            "domain": "QBO",
        }
        return JSONResponse(_envelope("CompanyInfo", info))

    # -- control routes: the payer, the webhook subscription, delivery ---------------------------------

    async def pay_invoice(self, request: Request) -> Response:
        try:
            payment = self.state.pay_invoice(request.path_params["invoice_id"])
        except KeyError:
            return JSONResponse({"error": "no such invoice"}, status_code=404)
        return JSONResponse({"Payment": payment})

    async def webhook_endpoint(self, request: Request) -> Response:
        try:
            asked = await request.json()
        except ValueError:
            asked = None
        url = asked.get("url") if isinstance(asked, dict) else None
        chosen = asked.get("format") if isinstance(asked, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return JSONResponse({"error": 'give {"url": "http(s)://…", "format"?: "cloudevents"|"legacy"}'}, 400)
        webhook_format: WebhookFormat | None = None
        if chosen == "legacy" or chosen == "cloudevents":
            webhook_format = chosen
        elif chosen is not None:
            return JSONResponse({"error": f"format is one of {list(WEBHOOK_FORMATS)}"}, status_code=400)
        self.state.subscribe(url, webhook_format)
        return JSONResponse({"url": url, "format": self.state.webhook_format, "loopback": is_loopback(url)})

    async def deliver(self, _request: Request) -> Response:
        delivered, skipped, retry = await deliver("quickbooks", self.state.take_callbacks())
        self.state.requeue(retry)
        return JSONResponse({"delivered": delivered, "skipped": skipped})


def _lookup(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        detail = "Request has invalid or unsupported property"
        raise QuickBooksFaultError(400, "2500", "Invalid Request", detail) from None


def build_sandbox() -> Sandbox:
    """A fresh QuickBooks emulator: one empty company (`REALM_ID`) and the sandbox OAuth app."""
    state = QuickBooksState()
    routes = _Routes(state)
    api = routes.api
    return Sandbox(
        name="quickbooks",
        state=state,
        routes=[
            Route(TOKEN_PATH, routes.token, methods=["POST"]),
            Route(f"{_COMPANY}/query", api(routes.query), methods=["GET", "POST"]),
            Route(f"{_COMPANY}/customer", api(routes.post_customer, write=True), methods=["POST"]),
            Route(f"{_COMPANY}/customer/{{record_id}}", api(routes.get_customer), methods=["GET"]),
            Route(f"{_COMPANY}/invoice", api(routes.post_invoice, write=True), methods=["POST"]),
            Route(f"{_COMPANY}/invoice/{{record_id}}", api(routes.get_invoice), methods=["GET"]),
            Route(f"{_COMPANY}/invoice/{{record_id}}/send", api(routes.send_invoice, write=True), methods=["POST"]),
            Route(f"{_COMPANY}/companyinfo/{{record_id}}", api(routes.company_info), methods=["GET"]),
            Route("/_invoices/{invoice_id}/pay", routes.pay_invoice, methods=["POST"]),
            Route("/_webhook_endpoint", routes.webhook_endpoint, methods=["POST"]),
            Route("/_callbacks/deliver", routes.deliver, methods=["POST"]),
        ],
        error=quickbooks_error,
        exempt_paths=(TOKEN_PATH,),
    )
