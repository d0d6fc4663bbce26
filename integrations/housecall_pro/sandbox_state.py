"""The Housecall Pro emulator's in-memory state: one company on weekday hours, its customers (with
addresses), jobs and estimates, and the API keys it accepts.

Semantics follow the public API spec (tests/specs/housecall_pro/housecall.v1.json):

- `GET /customers?q=` matches text as stored, case-insensitively, as a substring of the name,
  email, mobile number or an address street (the spec: "search for a customer by name, email,
  mobile number and address"). UNCONFIRMED: whether Housecall Pro compares phone digits
  (ignoring punctuation) or home/work numbers; the emulator assumes it does not, so a connector
  that works here also works against the stricter reading.
- booking windows are the company's hours (Mon-Fri 09:00-17:00, America/New_York) cut into
  windows of `service_duration` minutes (default 30) from opening; a window is unavailable while
  a live job or estimate overlaps it (one crew; per-employee availability is not emulated).
  UNCONFIRMED: the step between windows for durations other than 30 minutes.
- erasing a job's schedule leaves it unscheduled (`needs scheduling`); declining an estimate's
  options frees its time.

Not emulated: "in the past" refusals (the test and demo worlds run on fixed 2026 dates while this
machine's clock moves on), employees, line items, invoices, webhooks.
"""

from __future__ import annotations

import copy
import math
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from integrations.common.zones import zone_info

__all__ = ["COMPANY", "SANDBOX_API_KEY", "SNAPSHOT_VERSION", "ApiError", "HousecallState", "stamp"]

SANDBOX_API_KEY = "hcp_sandbox_key_0000000000000000"
SNAPSHOT_VERSION = 1
COMPANY_ZONE = "America/New_York"
HOURS = {day: ((time(9), time(17)),) for day in range(1, 6)}
COMPANY: dict[str, Any] = {
    "id": "cmp_sandbox0000000000000000000001",
    "name": "Sandbox Plumbing & Heating",
    "support_email": "office@sandbox-plumbing.example.com",
    "phone_number": "2125550100",
    "logo_url": "",
    "address": {"street": "1 Pipe Street", "city": "New York", "state": "NY", "zip": "10001", "country": "US"},
    "website": "https://sandbox-plumbing.example.com",
    "default_arrival_window": "0",
    "time_zone": COMPANY_ZONE,
}
CUSTOMER_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "company",
    "notifications_enabled",
    "mobile_number",
    "home_number",
    "work_number",
    "tags",
    "lead_source",
    "notes",
)
ADDRESS_FIELDS = ("street", "street_line_2", "city", "state", "zip", "country")
_DECLINED = ("declined", "pro declined")


class ApiError(Exception):
    """A Housecall Pro error answer: `{"error": {"message": …}}` with this status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Snapshot(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: int
    customers: dict[str, dict[str, Any]]
    jobs: dict[str, dict[str, Any]]
    estimates: dict[str, dict[str, Any]]
    api_keys: list[str]
    next_number: int


def _now() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    """Housecall Pro's timestamps: ISO 8601 UTC with `Z`."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_instant(text: Any, what: str) -> datetime:
    if not isinstance(text, str) or not text:
        raise ApiError(400, f"{what} is invalid")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{what} is invalid") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class HousecallState:
    """Everything the emulator remembers; `reset()` returns it to an empty company."""

    def __init__(self, clock: Callable[[], datetime] = _now) -> None:
        self.clock = clock
        self.customers: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.estimates: dict[str, dict[str, Any]] = {}
        self.api_keys: set[str] = set()
        self.next_number = 1
        self.reset()

    # -- SandboxState --------------------------------------------------------------------------------

    def reset(self) -> None:
        self.customers = {}
        self.jobs = {}
        self.estimates = {}
        self.api_keys = {SANDBOX_API_KEY}
        self.next_number = 1

    def dump(self) -> dict[str, Any]:
        return {
            "company": {**COMPANY, "hours": "Mon-Fri 09:00-17:00 America/New_York"},
            "customers": sorted(self.customers.values(), key=lambda c: (c["created_at"], c["id"])),
            "jobs": [self.render_job(j) for j in sorted(self.jobs.values(), key=lambda j: (j["created_at"], j["id"]))],
            "estimates": [
                self.render_estimate(e)
                for e in sorted(self.estimates.values(), key=lambda e: (e["created_at"], e["id"]))
            ],
            "api_key_valid": SANDBOX_API_KEY in self.api_keys,
        }

    def expire_access_tokens(self) -> None:
        """Nothing to expire: Housecall Pro API keys are not short-lived tokens."""

    def revoke_refresh_tokens(self) -> None:
        """The nearest Housecall Pro has: the API key is deleted, so every call answers 401."""
        self.api_keys.clear()

    def snapshot(self) -> dict[str, Any]:
        saved = _Snapshot(
            version=SNAPSHOT_VERSION,
            customers=self.customers,
            jobs=self.jobs,
            estimates=self.estimates,
            api_keys=sorted(self.api_keys),
            next_number=self.next_number,
        )
        return copy.deepcopy(saved.model_dump(mode="json"))

    def restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(
                f"not a housecall_pro sandbox snapshot of format {SNAPSHOT_VERSION}: {snapshot.get('version')!r}"
            )
        saved = _Snapshot.model_validate(copy.deepcopy(snapshot))
        for kind, records in (("customer", saved.customers), ("job", saved.jobs), ("estimate", saved.estimates)):
            for record_id, record in records.items():
                if record.get("id") != record_id or "created_at" not in record:
                    raise KeyError(f"saved {kind} {record_id!r} is not one this emulator wrote")
                parse_instant(record["created_at"], "created_at")
        for job in saved.jobs.values():
            if "customer_id" not in job or "schedule" not in job:
                raise KeyError(f"saved job {job['id']!r} lacks customer_id or schedule")
        self.customers = saved.customers
        self.jobs = saved.jobs
        self.estimates = saved.estimates
        self.api_keys = set(saved.api_keys)
        self.next_number = saved.next_number

    # -- ContactSeeding ------------------------------------------------------------------------------

    def seed_contact(self, *, name: str, phone: str | None = None, email: str | None = None) -> str:
        """A customer typed in by the company's staff: fields kept verbatim (phone as the mobile number)."""
        first, _, last = name.partition(" ")
        customer = self._blank_customer()
        customer.update(first_name=first or None, last_name=last or None, mobile_number=phone, email=email)
        self.customers[customer["id"]] = customer
        return str(customer["id"])

    # -- customers -----------------------------------------------------------------------------------

    def _blank_customer(self) -> dict[str, Any]:
        now = stamp(self.clock())
        return {
            "id": _new_id("cus"),
            "first_name": None,
            "last_name": None,
            "email": None,
            "mobile_number": None,
            "home_number": None,
            "work_number": None,
            "company": None,
            "notifications_enabled": True,
            "lead_source": None,
            "notes": None,
            "created_at": now,
            "updated_at": now,
            "company_name": COMPANY["name"],
            "company_id": COMPANY["id"],
            "tags": [],
            "addresses": [],
        }

    def customer(self, customer_id: str) -> dict[str, Any]:
        found = self.customers.get(customer_id)
        if found is None:
            raise ApiError(404, "Customer not found")
        return found

    def create_customer(self, body: dict[str, Any]) -> dict[str, Any]:
        names = ("first_name", "last_name", "email", "mobile_number", "home_number", "work_number")
        if not any(isinstance(body.get(n), str) and body[n].strip() for n in names):
            raise ApiError(
                400, "One of first_name, last_name, email, mobile_number, home_number, work_number is required"
            )
        customer = self._blank_customer()
        self._apply(customer, body)
        for address in body.get("addresses") or []:
            customer["addresses"].append(self._address(address, strict=False))
        self.customers[customer["id"]] = customer
        return customer

    def update_customer(self, customer_id: str, body: dict[str, Any]) -> dict[str, Any]:
        customer = self.customer(customer_id)
        self._apply(customer, body)
        customer["updated_at"] = stamp(self.clock())
        return customer

    def _apply(self, customer: dict[str, Any], body: dict[str, Any]) -> None:
        for field in CUSTOMER_FIELDS:
            if field not in body:
                continue
            value = body[field]
            if field == "tags":
                if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                    raise ApiError(400, "tags must be an array of strings")
            elif field == "notifications_enabled":
                if not isinstance(value, bool):
                    raise ApiError(400, "notifications_enabled must be a boolean")
            elif value is not None and not isinstance(value, str):
                raise ApiError(400, f"{field} must be a string")
            customer[field] = value

    def _address(self, body: Any, *, strict: bool) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "address must be an object")
        if strict:
            missing = [f for f in ("street", "city", "state", "zip", "country") if f not in body]
            if missing:
                raise ApiError(400, f"{', '.join(missing)} can't be blank")
        address: dict[str, Any] = {"id": _new_id("adr"), "type": "service"}
        for field in ADDRESS_FIELDS:
            value = body.get(field)
            if value is not None and not isinstance(value, str):
                raise ApiError(400, f"{field} must be a string")
            address[field] = value
        return address

    def add_address(self, customer_id: str, body: dict[str, Any]) -> dict[str, Any]:
        customer = self.customer(customer_id)
        address = self._address(body, strict=True)
        customer["addresses"].append(address)
        customer["updated_at"] = stamp(self.clock())
        return address

    def address(self, customer_id: str, address_id: str) -> dict[str, Any]:
        for address in self.customer(customer_id)["addresses"]:
            if address["id"] == address_id:
                return dict(address)
        raise ApiError(404, "Address not found")

    def search_customers(self, query: str | None) -> list[dict[str, Any]]:
        if not query:
            return list(self.customers.values())
        wanted = query.strip().lower()
        found = []
        for customer in self.customers.values():
            texts = [
                " ".join(str(customer.get(k) or "") for k in ("first_name", "last_name")).strip(),
                str(customer.get("email") or ""),
                str(customer.get("mobile_number") or ""),
                *(str(a.get("street") or "") for a in customer["addresses"]),
            ]
            if any(wanted in text.lower() for text in texts):
                found.append(customer)
        return found

    # -- jobs ------------------------------------------------------------------------------------------

    def _embedded_customer(self, customer_id: str) -> dict[str, Any]:
        customer = self.customers.get(customer_id) or {"id": customer_id}
        shown = {k: v for k, v in customer.items() if k not in ("addresses", "notes")}
        # On a job, a customer's notes are an array of Note (spec: Job.customer.notes).
        shown["notes"] = []
        return shown

    def _number(self) -> str:
        number = self.next_number
        self.next_number += 1
        return str(number)

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        customer_id, address_id = body.get("customer_id"), body.get("address_id")
        if not isinstance(customer_id, str) or not customer_id:
            raise ApiError(400, "customer_id is required")
        if not isinstance(address_id, str) or not address_id:
            raise ApiError(400, "address_id is required")
        self.customer(customer_id)
        self.address(customer_id, address_id)
        schedule = self._schedule(body.get("schedule"))
        now = stamp(self.clock())
        notes = body.get("notes")
        if notes is not None and not isinstance(notes, str):
            raise ApiError(400, "notes must be a string")
        tags = body.get("tags") or []
        job = {
            "id": _new_id("job"),
            "invoice_number": self._number(),
            "description": "",
            "customer_id": customer_id,
            "address_id": address_id,
            "notes": [{"id": _new_id("nte"), "content": notes}] if notes else [],
            "work_status": "scheduled" if schedule["scheduled_start"] else "needs scheduling",
            "work_timestamps": {"on_my_way_at": None, "started_at": None, "completed_at": None},
            "schedule": schedule,
            "total_amount": 0,
            "outstanding_balance": 0,
            "subtotal": 0,
            "assigned_employees": [],
            "tags": list(tags),
            "original_estimate_id": None,
            "original_estimate_uuids": [],
            "lead_source": body.get("lead_source"),
            "job_fields": {},
            "created_at": now,
            "updated_at": now,
            "canceled_at": None,
            "deleted_at": None,
            "company_name": COMPANY["name"],
            "company_id": COMPANY["id"],
        }
        self.jobs[job["id"]] = job
        return self.render_job(job)

    def _schedule(self, raw: Any) -> dict[str, Any]:
        if raw is None:
            return {"scheduled_start": None, "scheduled_end": None, "arrival_window": 0}
        if not isinstance(raw, dict):
            raise ApiError(400, "schedule must be an object")
        start = raw.get("scheduled_start")
        end = raw.get("scheduled_end")
        if start is None:
            return {"scheduled_start": None, "scheduled_end": None, "arrival_window": 0}
        begins = parse_instant(start, "scheduled_start")
        ends = parse_instant(end, "scheduled_end") if end is not None else begins + timedelta(hours=1)
        if ends <= begins:
            raise ApiError(400, "scheduled_end must be after scheduled_start")
        window = raw.get("arrival_window", 0)
        if not isinstance(window, int):
            raise ApiError(400, "arrival_window must be an integer")
        return {"scheduled_start": stamp(begins), "scheduled_end": stamp(ends), "arrival_window": window}

    def job(self, job_id: str) -> dict[str, Any]:
        found = self.jobs.get(job_id)
        if found is None:
            raise ApiError(404, "Job not found")
        return found

    def render_job(self, job: dict[str, Any]) -> dict[str, Any]:
        shown = {k: copy.deepcopy(v) for k, v in job.items() if k not in ("customer_id", "address_id")}
        shown["schedule"] = _shown_schedule(job["schedule"])
        shown["customer"] = self._embedded_customer(job["customer_id"])
        try:
            shown["address"] = self.address(job["customer_id"], job["address_id"])
        except ApiError:
            shown["address"] = None
        return shown

    def schedule_job(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        job = self.job(job_id)
        if "start_time" not in body:
            raise ApiError(400, "start_time is required")
        start = parse_instant(body["start_time"], "start_time")
        end = parse_instant(body["end_time"], "end_time") if body.get("end_time") else start + timedelta(hours=1)
        if end <= start:
            raise ApiError(400, "end_time must be after start_time")
        window = body.get("arrival_window_in_minutes", 0)
        if not isinstance(window, int | float):
            raise ApiError(400, "arrival_window_in_minutes must be a number")
        job["schedule"] = {"scheduled_start": stamp(start), "scheduled_end": stamp(end), "arrival_window": int(window)}
        job["work_status"] = "scheduled"
        job["updated_at"] = stamp(self.clock())
        return {
            "start_time": stamp(start),
            "end_time": stamp(end),
            "arrival_window_minutes": int(window),
            "assigned_employees": [],
            "appointments": [],
        }

    def erase_schedule(self, job_id: str) -> dict[str, Any]:
        job = self.job(job_id)
        job["schedule"] = {"scheduled_start": None, "scheduled_end": None, "arrival_window": 0}
        job["work_status"] = "needs scheduling"
        job["updated_at"] = stamp(self.clock())
        return {"object": "schedule", "deleted": True}

    def add_job_note(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        job = self.job(job_id)
        content = body.get("content")
        if not isinstance(content, str) or not content:
            raise ApiError(400, "content is required")
        note = {"id": _new_id("nte"), "content": content}
        job["notes"].append(note)
        job["updated_at"] = stamp(self.clock())
        return dict(note)

    def list_jobs(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        chosen = [j for j in self.jobs.values() if _matches(j, filters, j["customer_id"])]
        statuses = filters.get("work_status") or []
        if statuses:
            chosen = [j for j in chosen if _status_filter(j["work_status"]) in statuses]
        return [self.render_job(j) for j in chosen]

    # -- estimates ---------------------------------------------------------------------------------------

    def create_estimate(self, body: dict[str, Any]) -> dict[str, Any]:
        customer_id = body.get("customer_id")
        if not isinstance(customer_id, str) or not customer_id:
            raise ApiError(400, "customer_id is required")
        self.customer(customer_id)
        address_id = body.get("address_id")
        if isinstance(address_id, str) and address_id:
            self.address(customer_id, address_id)
        elif isinstance(body.get("address"), dict):
            address_id = self.add_address(customer_id, {**body["address"], "country": "US"})["id"]
        else:
            raise ApiError(400, "address_id or address is required")
        raw = body.get("schedule")
        schedule: dict[str, Any] = {"scheduled_start": None, "scheduled_end": None, "arrival_window": 0}
        if isinstance(raw, dict) and raw.get("start_time"):
            start = parse_instant(raw["start_time"], "start_time")
            end = parse_instant(raw["end_time"], "end_time") if raw.get("end_time") else start + timedelta(hours=1)
            schedule = {
                "scheduled_start": stamp(start),
                "scheduled_end": stamp(end),
                "arrival_window": int(raw.get("arrival_window_in_minutes") or 0),
            }
        now = stamp(self.clock())
        note = body.get("note")
        options = []
        for index, option in enumerate(body.get("options") or [{"name": "Option #1"}], start=1):
            options.append(
                {
                    "id": _new_id("opt"),
                    "name": str((option or {}).get("name") or f"Option #{index}"),
                    "option_number": str(index),
                    "total_amount": 0,
                    "approval_status": "awaiting response",
                    "message_from_pro": str(body.get("message") or ""),
                    "tags": list((option or {}).get("tags") or []),
                    "status": "scheduled" if schedule["scheduled_start"] else "needs scheduling",
                    "notes": [{"id": _new_id("nte"), "content": note}] if note and index == 1 else [],
                    "created_at": now,
                    "updated_at": now,
                }
            )
        estimate = {
            "id": _new_id("est"),
            "estimate_number": self._number(),
            "work_status": "scheduled" if schedule["scheduled_start"] else "needs scheduling",
            "lead_source": body.get("lead_source"),
            "customer_id": customer_id,
            "address_id": address_id,
            "created_at": now,
            "updated_at": now,
            "company_name": COMPANY["name"],
            "company_id": COMPANY["id"],
            "work_timestamps": {"on_my_way_at": None, "started_at": None, "completed_at": None},
            "schedule": schedule,
            "assigned_employees": [],
            "estimate_fields": {},
            "options": options,
        }
        self.estimates[estimate["id"]] = estimate
        return self.render_estimate(estimate)

    def estimate(self, estimate_id: str) -> dict[str, Any]:
        found = self.estimates.get(estimate_id)
        if found is None:
            raise ApiError(404, "Estimate not found")
        return found

    def render_estimate(self, estimate: dict[str, Any]) -> dict[str, Any]:
        shown = {k: copy.deepcopy(v) for k, v in estimate.items() if k not in ("customer_id", "address_id")}
        shown["schedule"] = _shown_schedule(estimate["schedule"])
        customer = self._embedded_customer(estimate["customer_id"])
        # On an estimate the customer's notes are a string (spec: Estimate.customer.notes).
        customer["notes"] = str((self.customers.get(estimate["customer_id"]) or {}).get("notes") or "")
        shown["customer"] = customer
        try:
            shown["address"] = self.address(estimate["customer_id"], estimate["address_id"])
        except ApiError:
            shown["address"] = None
        return shown

    def schedule_estimate(self, estimate_id: str, option_id: str, body: dict[str, Any]) -> dict[str, Any]:
        estimate = self.estimate(estimate_id)
        if not any(o["id"] == option_id for o in estimate["options"]):
            raise ApiError(404, "Option not found")
        if "start_time" not in body:
            raise ApiError(400, "start_time is required")
        start = parse_instant(body["start_time"], "start_time")
        end = parse_instant(body["end_time"], "end_time") if body.get("end_time") else start + timedelta(hours=1)
        if end <= start:
            raise ApiError(400, "end_time must be after start_time")
        window = int(body.get("arrival_window_in_minutes") or 0)
        estimate["schedule"] = {"scheduled_start": stamp(start), "scheduled_end": stamp(end), "arrival_window": window}
        estimate["work_status"] = "scheduled"
        estimate["updated_at"] = stamp(self.clock())
        return {
            "start_time": stamp(start),
            "end_time": stamp(end),
            "arrival_window_minutes": window,
            "assigned_employees": [],
        }

    def decline_options(self, body: dict[str, Any]) -> dict[str, Any]:
        ids = body.get("option_ids")
        if not isinstance(ids, list) or not ids:
            raise ApiError(400, "option_ids is required")
        now = stamp(self.clock())
        touched = False
        for estimate in self.estimates.values():
            for option in estimate["options"]:
                if option["id"] in ids:
                    option.update(approval_status="pro declined", updated_at=now)
                    estimate["updated_at"] = now
                    touched = True
        if not touched:
            raise ApiError(404, "Options not found")
        return {"status": "pro declined", "last_updated_at": now}

    def list_estimates(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        chosen = [e for e in self.estimates.values() if _matches(e, filters, e["customer_id"])]
        return [self.render_estimate(e) for e in chosen]

    # -- availability -------------------------------------------------------------------------------------

    def _busy(self) -> list[tuple[datetime, datetime]]:
        busy = []
        for record in [*self.jobs.values(), *self.estimates.values()]:
            schedule = record["schedule"]
            if not schedule.get("scheduled_start") or "cancel" in str(record.get("work_status")):
                continue
            options = record.get("options")
            if options and all(o.get("approval_status") in _DECLINED for o in options):
                continue
            busy.append(
                (parse_instant(schedule["scheduled_start"], "start"), parse_instant(schedule["scheduled_end"], "end"))
            )
        return busy

    def booking_windows(self, first_day: date, days: int, minutes: int) -> list[dict[str, Any]]:
        zone = zone_info(COMPANY_ZONE)
        length = timedelta(minutes=minutes)
        busy = self._busy()
        windows = []
        for offset in range(days):
            day = first_day + timedelta(days=offset)
            for opens, closes in HOURS.get(day.isoweekday(), ()):
                moment = datetime.combine(day, opens, tzinfo=zone).astimezone(UTC)
                closing = datetime.combine(day, closes, tzinfo=zone).astimezone(UTC)
                while moment + length <= closing:
                    taken = any(s < moment + length and moment < e for s, e in busy)
                    windows.append(
                        {"start_time": stamp(moment), "end_time": stamp(moment + length), "available": not taken}
                    )
                    moment += length
        return windows


def _shown_schedule(schedule: dict[str, Any]) -> dict[str, Any]:
    """A schedule as answered: an unscheduled record's times are left out (the spec's Schedule times
    are not nullable; UNCONFIRMED whether Housecall Pro sends null or omits them)."""
    return {k: v for k, v in schedule.items() if v is not None}


def _created(record: dict[str, Any]) -> tuple[str, str]:
    return str(record["created_at"]), str(record["id"])


def _status_filter(work_status: str) -> str:
    """A job's `work_status` as the list filter names it (unscheduled, scheduled, in_progress, completed, canceled)."""
    if work_status == "needs scheduling":
        return "unscheduled"
    if "cancel" in work_status:
        return "canceled"
    if work_status.startswith("complete"):
        return "completed"
    return work_status.replace(" ", "_")


def _matches(record: dict[str, Any], filters: dict[str, Any], customer_id: str) -> bool:
    if filters.get("customer_id") and filters["customer_id"] != customer_id:
        return False
    schedule = record["schedule"]
    for name, field, compare in (
        ("scheduled_start_min", "scheduled_start", 1),
        ("scheduled_start_max", "scheduled_start", -1),
        ("scheduled_end_min", "scheduled_end", 1),
        ("scheduled_end_max", "scheduled_end", -1),
    ):
        bound = filters.get(name)
        if not bound:
            continue
        if not schedule.get(field):
            return False
        value = parse_instant(schedule[field], field)
        limit = parse_instant(bound, name)
        if (compare == 1 and value < limit) or (compare == -1 and value > limit):
            return False
    return True


def page_of(items: list[dict[str, Any]], page: int, page_size: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One page (1-based) and the PaginatedList fields."""
    total = len(items)
    pages = math.ceil(total / page_size) if total else 0
    chosen = items[(page - 1) * page_size : page * page_size]
    return chosen, {"page": page, "page_size": page_size, "total_pages": pages, "total_items": total}
