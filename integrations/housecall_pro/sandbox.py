"""The Housecall Pro emulator: customers (and their addresses), jobs, estimates, the company and its
booking windows, offline.

Served under the mount point (`/sandbox/housecall_pro`) at Housecall Pro's real paths, so a
connector whose `base_url` is the mount works unchanged:

- `GET|POST /customers`, `GET|PUT /customers/{id}`, `GET|POST /customers/{id}/addresses`,
  `GET /customers/{id}/addresses/{address_id}`
- `GET|POST /jobs`, `GET /jobs/{id}`, `PUT|DELETE /jobs/{job_id}/schedule`, `POST /jobs/{job_id}/notes`
- `GET|POST /estimates`, `GET /estimates/{id}`, `PUT /estimates/{id}/options/{option_id}/schedule`,
  `POST /estimates/options/decline`
- `GET /company`, `GET /company/schedule_availability/booking_windows`

Auth is `Authorization: Token <api key>`; anything else answers 401 `{"error": {"message": …}}`
(the spec's ErrorResponse; UNCONFIRMED: Housecall Pro's exact 401 wording). Lists page with
`page` (1-based) and `page_size` (default 10) and answer `page, page_size, total_pages,
total_items`. Faults: 429 with `Retry-After` (UNCONFIRMED header: Housecall Pro documents no rate
limit headers) and 5xx, both as ErrorResponse.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.common.sandbox import Sandbox
from integrations.common.zones import zone_info
from integrations.housecall_pro.sandbox_state import (
    COMPANY,
    COMPANY_ZONE,
    SANDBOX_API_KEY,
    ApiError,
    HousecallState,
    page_of,
)

__all__ = ["SANDBOX_API_KEY", "HousecallState", "build_sandbox", "fault_error"]

Handler = Callable[[Request], Awaitable[Response]]
_MAX_PAGE_SIZE = 100  # UNCONFIRMED: Housecall Pro documents no maximum.
_MAX_DAYS = 60


def error_body(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status, headers=headers)


def fault_error(status: int, retry_after: float | None) -> Response:
    """An injected fault as Housecall Pro's ErrorResponse; 429 carries Retry-After."""
    if status == 429:
        seconds = retry_after if retry_after is not None else 60.0
        text = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
        return error_body(429, "Too many requests", {"Retry-After": text})
    return error_body(status, "Internal server error")


class _HousecallApi:
    """The HTTP face of `HousecallState`: parameters in, Housecall Pro's JSON out."""

    def __init__(self, state: HousecallState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        def route(path: str, handler: Handler, method: str) -> Route:
            return Route(path, self._guarded(handler), methods=[method])

        return [
            route("/company", self.company, "GET"),
            route("/company/schedule_availability/booking_windows", self.booking_windows, "GET"),
            route("/customers", self.list_customers, "GET"),
            route("/customers", self.create_customer, "POST"),
            route("/customers/{customer_id}", self.get_customer, "GET"),
            route("/customers/{customer_id}", self.update_customer, "PUT"),
            route("/customers/{customer_id}/addresses", self.list_addresses, "GET"),
            route("/customers/{customer_id}/addresses", self.add_address, "POST"),
            route("/customers/{customer_id}/addresses/{address_id}", self.get_address, "GET"),
            route("/jobs", self.list_jobs, "GET"),
            route("/jobs", self.create_job, "POST"),
            route("/jobs/{job_id}", self.get_job, "GET"),
            route("/jobs/{job_id}/schedule", self.schedule_job, "PUT"),
            route("/jobs/{job_id}/schedule", self.erase_schedule, "DELETE"),
            route("/jobs/{job_id}/notes", self.add_job_note, "POST"),
            route("/estimates", self.list_estimates, "GET"),
            route("/estimates", self.create_estimate, "POST"),
            route("/estimates/options/decline", self.decline_options, "POST"),
            route("/estimates/{estimate_id}", self.get_estimate, "GET"),
            route("/estimates/{estimate_id}/options/{option_id}/schedule", self.schedule_estimate, "PUT"),
        ]

    # -- company -------------------------------------------------------------------------------------

    async def company(self, _request: Request) -> Response:
        return JSONResponse(COMPANY)

    async def booking_windows(self, request: Request) -> Response:
        params = request.query_params
        days = _integer(params.get("show_for_days", "7"), "show_for_days")
        if days < 1 or days > _MAX_DAYS:
            raise ApiError(400, f"show_for_days must be between 1 and {_MAX_DAYS}")
        minutes = _integer(params.get("service_duration", "30"), "service_duration")
        if minutes < 1:
            raise ApiError(400, "service_duration must be a positive integer")
        raw = params.get("start_date")
        if raw:
            try:
                # 'YYYY-MM-DDTHH:MM:SS', read as a day of the company's calendar (UNCONFIRMED: zone).
                first = datetime.fromisoformat(raw).date() if "T" in raw else date.fromisoformat(raw)
            except ValueError:
                raise ApiError(400, "start_date must be formatted like 'YYYY-MM-DDTHH:MM:SS'") from None
        else:
            first = self.state.clock().astimezone(zone_info(COMPANY_ZONE)).date()
        windows = self.state.booking_windows(first, days, minutes)
        return JSONResponse(
            {"booking_windows": windows, "show_for_days": days, "start_date": f"{first.isoformat()}T00:00:00"}
        )

    # -- customers -----------------------------------------------------------------------------------

    async def list_customers(self, request: Request) -> Response:
        found = self.state.search_customers(request.query_params.get("q"))
        return self._page(request, found, "customers", sort_fields=("created_at", "updated_at", "first_name"))

    async def create_customer(self, request: Request) -> Response:
        return JSONResponse(self.state.create_customer(await _json_body(request)), status_code=201)

    async def get_customer(self, request: Request) -> Response:
        return JSONResponse(self.state.customer(request.path_params["customer_id"]))

    async def update_customer(self, request: Request) -> Response:
        customer_id = request.path_params["customer_id"]
        return JSONResponse(self.state.update_customer(customer_id, await _json_body(request)))

    async def list_addresses(self, request: Request) -> Response:
        addresses = list(self.state.customer(request.path_params["customer_id"])["addresses"])
        return self._page(request, addresses, "addresses", sort_fields=())

    async def add_address(self, request: Request) -> Response:
        customer_id = request.path_params["customer_id"]
        return JSONResponse(self.state.add_address(customer_id, await _json_body(request)))

    async def get_address(self, request: Request) -> Response:
        params = request.path_params
        return JSONResponse(self.state.address(params["customer_id"], params["address_id"]))

    # -- jobs ----------------------------------------------------------------------------------------

    async def list_jobs(self, request: Request) -> Response:
        filters = _filters(request)
        filters["work_status"] = _array(request, "work_status")
        return self._page(request, self.state.list_jobs(filters), "jobs", sort_fields=("created_at", "updated_at"))

    async def create_job(self, request: Request) -> Response:
        return JSONResponse(self.state.create_job(await _json_body(request)), status_code=201)

    async def get_job(self, request: Request) -> Response:
        return JSONResponse(self.state.render_job(self.state.job(request.path_params["job_id"])))

    async def schedule_job(self, request: Request) -> Response:
        return JSONResponse(self.state.schedule_job(request.path_params["job_id"], await _json_body(request)))

    async def erase_schedule(self, request: Request) -> Response:
        return JSONResponse(self.state.erase_schedule(request.path_params["job_id"]))

    async def add_job_note(self, request: Request) -> Response:
        note = self.state.add_job_note(request.path_params["job_id"], await _json_body(request))
        return JSONResponse(note, status_code=201)

    # -- estimates -----------------------------------------------------------------------------------

    async def list_estimates(self, request: Request) -> Response:
        found = self.state.list_estimates(_filters(request))
        return self._page(request, found, "estimates", sort_fields=("created_at", "updated_at"))

    async def create_estimate(self, request: Request) -> Response:
        # The spec answers 200 (not 201) for Create Estimate.
        return JSONResponse(self.state.create_estimate(await _json_body(request)))

    async def get_estimate(self, request: Request) -> Response:
        return JSONResponse(self.state.render_estimate(self.state.estimate(request.path_params["estimate_id"])))

    async def schedule_estimate(self, request: Request) -> Response:
        params = request.path_params
        answer = self.state.schedule_estimate(params["estimate_id"], params["option_id"], await _json_body(request))
        return JSONResponse(answer)

    async def decline_options(self, request: Request) -> Response:
        return JSONResponse(self.state.decline_options(await _json_body(request)))

    # -- plumbing --------------------------------------------------------------------------------------

    def _page(
        self, request: Request, items: list[dict[str, Any]], key: str, *, sort_fields: tuple[str, ...]
    ) -> Response:
        params = request.query_params
        page = _integer(params.get("page", "1"), "page")
        size = _integer(params.get("page_size", "10"), "page_size")
        if page < 1 or size < 1:
            raise ApiError(400, "page and page_size must be positive")
        size = min(size, _MAX_PAGE_SIZE)
        sort_by = params.get("sort_by", "created_at")
        if sort_fields and sort_by not in sort_fields:
            raise ApiError(400, f"sort_by must be one of {', '.join(sort_fields)}")
        descending = params.get("sort_direction", "desc") == "desc"
        ordered = sorted(items, key=lambda r: (str(r.get(sort_by) or ""), str(r["id"])), reverse=descending)
        chosen, paging = page_of(ordered, page, size)
        return JSONResponse({**paging, key: chosen})

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            try:
                header = request.headers.get("authorization", "")
                scheme, _, key = header.partition(" ")
                if scheme != "Token" or key.strip() not in self.state.api_keys:
                    raise ApiError(401, "Unauthorized")
                return await handler(request)
            except ApiError as error:
                return error_body(error.status, error.message)

        return guarded


def _integer(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"{what} must be an integer") from None


def _array(request: Request, name: str) -> list[str]:
    params = request.query_params
    return [v for v in [*params.getlist(f"{name}[]"), *params.getlist(name)] if v]


def _filters(request: Request) -> dict[str, Any]:
    names = ("customer_id", "scheduled_start_min", "scheduled_start_max", "scheduled_end_min", "scheduled_end_max")
    return {name: request.query_params.get(name) for name in names}


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        raise ApiError(400, "Malformed JSON body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return body


def build_sandbox(state: HousecallState | None = None) -> Sandbox:
    """The emulator as a `Sandbox`: one company, Mon-Fri 09:00-17:00 New York, no customers yet."""
    state = state or HousecallState()
    return Sandbox(name="housecall_pro", state=state, routes=_HousecallApi(state).routes(), error=fault_error)
