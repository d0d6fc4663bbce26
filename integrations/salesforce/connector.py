"""Salesforce as a CRM provider: Contacts (or Leads), notes and logged calls as Tasks, over REST."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from integrations.capabilities.errors import NotFoundError, UpstreamError
from integrations.capabilities.models import CallActivity, Contact, ContactDraft, LoggedCall, Note
from integrations.common import phones
from integrations.common.keylocks import KeyLocks
from integrations.common.linear_regex import compile_linear
from integrations.common.resilience import Resilience
from integrations.common.spec import ConnectorEnv
from integrations.common.vault import CredentialVault
from integrations.salesforce import mappers
from integrations.salesforce.client import SalesforceClient, SalesforceTokens
from integrations.salesforce.errors import PROVIDER, ApiUsage, MayHaveLandedError, SalesforceError
from integrations.salesforce.queries import soql_datetime, soql_select, soql_string, sosl_search
from integrations.salesforce.settings import SalesforceSettings

__all__ = ["CLOCK_SKEW", "SalesforceConnector"]

T = TypeVar("T")
# A Task's CreatedDate is Salesforce's clock and `earlier_attempt_at` the tool server's: a note
# created this long before that attempt began still counts as its own.
CLOCK_SKEW = timedelta(minutes=5)
# Record ids: 15 case-sensitive characters, or 18 with the case-checksum suffix.
_RECORD_ID = compile_linear(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
# How many records a lookup reads: no caller has more people or tasks than this under one key.
_SEARCH_LIMIT = 200
# SOSL refuses a search term shorter than this (INVALID_SEARCH); no phone or email is that short.
_MIN_TERM = 2
# `nextRecordsUrl` pages followed at most, so a broken cursor cannot loop forever.
_MAX_PAGES = 10


class SalesforceConnector:
    """People (Contacts and Leads) and their activities (Tasks) in one Salesforce org.

    Finding a caller searches Contacts and Leads both, whichever `create_as` says new callers
    become: a caller already known as a Lead is not made a Contact too. The kind `create_as`
    names is listed first. Phones go through SOSL `IN PHONE FIELDS` with the number's national
    and international digits; emails through SOSL `IN EMAIL FIELDS`; then only records holding
    the same number (`phones.same_number`) or the same email are kept. Before creating, a SOQL
    lookup of the exact values this connector writes covers the seconds SOSL's index lags a create.

    Notes are completed Tasks (TaskSubtype Task) with the text in Description; calls are Tasks
    with TaskSubtype Call, identified by `CallObject` (see `mappers.call_object`). Salesforce
    has no idempotency key, so writes look before they write where an earlier attempt may have
    landed, and creates are never retried once they may have reached Salesforce.
    """

    name = PROVIDER

    def __init__(self, settings: SalesforceSettings, vault: CredentialVault, env: ConnectorEnv) -> None:
        self._settings = settings
        self._vault = vault
        self._env = env
        self._tokens = SalesforceTokens(settings.base_url, vault, env.clock)
        self._client = SalesforceClient(settings.api_version, vault, Resilience(PROVIDER))
        self._creating = KeyLocks()
        self._writing = KeyLocks()
        self._sobject = "Lead" if settings.create_as == "lead" else "Contact"

    @property
    def api_usage(self) -> ApiUsage | None:
        """(used, allowed) daily API requests, from the last `Sforce-Limit-Info` header seen."""
        return self._client.api_usage

    # -- CrmProvider --------------------------------------------------------------------------------

    async def find_contacts(self, *, phone: str | None = None, email: str | None = None) -> list[Contact]:
        """Contacts and Leads holding the phone (in any stored format) or the email; phone matches first."""
        if not phone and not email:
            return []
        found = await self._search(phone, email)
        region = phones.region_of(phone)
        return [mappers.to_contact(record, region=region) for record in found]

    async def get_contact(self, contact_id: str) -> Contact:
        """One Contact or Lead by id (its key prefix says which); raises `NotFoundError`."""
        return mappers.to_contact(await self._get_person(contact_id))

    async def create_contact(self, draft: ContactDraft) -> Contact:
        """The person with this phone or email, blanks filled in, or else a new Contact (or Lead)."""
        region = phones.region_of(draft.phone)
        email_key = f"email:{draft.email.lower()}" if draft.email else None
        async with self._creating.hold_all([f"phone:{draft.phone}" if draft.phone else None, email_key]):
            if draft.phone or draft.email:
                found = await self._search(draft.phone, draft.email) or await self._exact(draft)
                if found:
                    filled = await self._fill_blanks(found[0], draft, found)
                    return mappers.to_contact(filled, region=region)
            body = mappers.create_request(draft, sobject=self._sobject, lead_company=self._settings.lead_company)
            # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_sobject_create.htm
            saved = await self._create(f"/sobjects/{self._sobject}/", body)
            return mappers.to_contact(await self._get_person(str(saved["id"])), region=region)

    async def update_contact(self, contact_id: str, draft: ContactDraft) -> Contact:
        """Change the given fields; fields left as None are kept. Raises `NotFoundError`."""
        sobject = self._person_type(contact_id)
        body = mappers.update_request(draft)
        if body:
            # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_update_fields.htm
            await self._api("PATCH", f"/sobjects/{sobject}/{contact_id}", body=body, record=("contact", contact_id))
        record = await self._get_person(contact_id)
        return mappers.to_contact(record, region=phones.region_of(draft.phone))

    async def add_note(
        self,
        contact_id: str,
        body: str,
        *,
        idempotency_key: str | None = None,
        earlier_attempt_at: datetime | None = None,
    ) -> Note:
        """A completed Task on the person, the note in its Description; raises `NotFoundError` first.

        Salesforce has no idempotency key. When an earlier attempt died without an answer
        (`earlier_attempt_at`), the person's notes created since then (less `CLOCK_SKEW`) are
        read first, and one with this exact Description is returned instead of writing another.
        """
        await self._get_person(contact_id)
        when = self._env.clock()
        async with self._writing.hold(idempotency_key):
            if earlier_attempt_at is not None:
                since = soql_datetime(earlier_attempt_at - CLOCK_SKEW)
                where = f"WhoId = {soql_string(contact_id)} AND TaskSubtype = 'Task' AND CreatedDate >= {since}"
                for task in await self._tasks(where):
                    # Description is a long text area: SOQL cannot filter on it, so it is compared here.
                    if task.get("Description") == body:
                        return mappers.to_note(task, contact_id, fallback_time=when)
            saved = await self._create("/sobjects/Task/", mappers.note_request(contact_id, body, when))
        return mappers.to_note(
            {**mappers.note_request(contact_id, body, when), "Id": saved["id"]}, contact_id, fallback_time=when
        )

    async def log_call(self, contact_id: str, call: CallActivity) -> LoggedCall:
        """A Task with TaskSubtype Call on the person, once: an existing one for this call is returned."""
        await self._get_person(contact_id)
        request = mappers.call_request(contact_id, call)
        identity = mappers.call_object(call)
        async with self._writing.hold(f"call|{contact_id}|{identity}|{call.title}"):
            where = (
                f"WhoId = {soql_string(contact_id)} AND TaskSubtype = 'Call'"
                f" AND CallObject = {soql_string(identity)} AND Subject = {soql_string(request['Subject'])}"
            )
            logged = await self._tasks(where)
            if logged:
                return mappers.to_logged_call(logged[0], contact_id, created=False)
            saved = await self._create("/sobjects/Task/", request)
        return mappers.to_logged_call({**request, "Id": saved["id"]}, contact_id, created=True)

    async def check_connection(self) -> str:
        """One cheap authenticated read: the Contact object's basic information."""
        # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_basic_info.htm
        await self._api("GET", f"/sobjects/{self._sobject}/")
        usage = self.api_usage
        suffix = f", {usage[0]} of {usage[1]} daily API requests used" if usage else ""
        return f"salesforce org reachable{suffix}"

    # -- lookups --------------------------------------------------------------------------------------

    def _returning(self) -> list[tuple[str, list[str]]]:
        others = [name for name in ("Contact", "Lead") if name != self._sobject]
        return [(name, mappers.CONTACT_FIELDS) for name in (self._sobject, *others)]

    async def _search(self, phone: str | None, email: str | None) -> list[dict[str, Any]]:
        """People SOSL finds for the phone or the email, kept only when they truly hold it."""
        records: dict[str, dict[str, Any]] = {}
        if phone:
            candidates = [phones.national_digits(phone), phones.digits(phone)]
            words = [word for word in dict.fromkeys(candidates) if word and len(word) >= _MIN_TERM]
            if words:
                # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_search.htm
                for record in await self._sosl(sosl_search(words, "PHONE", self._returning())):
                    records.setdefault(str(record["Id"]), record)
        if email and len(email.strip()) >= _MIN_TERM:
            for record in await self._sosl(sosl_search([email], "EMAIL", self._returning())):
                records.setdefault(str(record["Id"]), record)
        matching = [r for r in records.values() if _holds_phone(r, phone) or _holds_email(r, email)]
        return sorted(matching, key=lambda record: 0 if _holds_phone(record, phone) else 1)

    async def _exact(self, draft: ContactDraft) -> list[dict[str, Any]]:
        """Records holding exactly the phone or email this connector would write (SOQL: no index lag)."""
        conditions = []
        if draft.phone:
            conditions.append(f"Phone = {soql_string(draft.phone)}")
        if draft.email:
            conditions.append(f"Email = {soql_string(draft.email)}")
        found: list[dict[str, Any]] = []
        for sobject, fields in self._returning():
            query = soql_select(fields, sobject, " OR ".join(conditions), limit=_SEARCH_LIMIT)
            found.extend(await self._query(query))
        return [r for r in found if _holds_phone(r, draft.phone) or _holds_email(r, draft.email)]

    async def _sosl(self, search: str) -> list[dict[str, Any]]:
        answer = await self._api("GET", "/search/", params={"q": search})
        records = answer.get("searchRecords") if isinstance(answer, dict) else answer
        return [r for r in records or [] if isinstance(r, dict)]

    async def _query(self, soql: str) -> list[dict[str, Any]]:
        """Every record of a SOQL query, following `nextRecordsUrl` until `done`."""
        # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_query.htm
        answer = await self._api("GET", "/query/", params={"q": soql})
        records: list[dict[str, Any]] = list(answer.get("records") or [])
        for _page in range(_MAX_PAGES):
            next_url = answer.get("nextRecordsUrl")
            if answer.get("done", True) or not isinstance(next_url, str) or not next_url.startswith("/services/"):
                return records
            answer = await self._api("GET", next_url)
            records.extend(answer.get("records") or [])
        raise UpstreamError(PROVIDER, "query results ran past the page limit; cannot rule out an earlier copy")

    async def _tasks(self, where: str) -> list[dict[str, Any]]:
        query = soql_select(mappers.TASK_FIELDS, "Task", where, order_by="CreatedDate DESC", limit=_SEARCH_LIMIT)
        return await self._query(query)

    def _person_type(self, contact_id: str) -> str:
        """Contact or Lead, by the id's key prefix; `NotFoundError` for anything else."""
        if not _RECORD_ID.match(contact_id) or contact_id[:3] not in mappers.PERSON_TYPES:
            raise NotFoundError("contact", contact_id)
        return mappers.PERSON_TYPES[contact_id[:3]]

    async def _get_person(self, contact_id: str) -> dict[str, Any]:
        sobject = self._person_type(contact_id)
        # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_get_field_values.htm
        record = await self._api(
            "GET",
            f"/sobjects/{sobject}/{contact_id}",
            params={"fields": ",".join(mappers.CONTACT_FIELDS)},
            record=("contact", contact_id),
        )
        if not isinstance(record, dict):
            raise UpstreamError(PROVIDER, "unexpected answer shape from Salesforce")
        return record

    async def _fill_blanks(
        self, existing: dict[str, Any], draft: ContactDraft, found: list[dict[str, Any]]
    ) -> dict[str, Any]:
        others = [record for record in found if record.get("Id") != existing.get("Id")]
        fill = mappers.blank_fields(
            existing,
            draft,
            phone_taken=any(_holds_phone(record, draft.phone) for record in others),
            email_taken=any(_holds_email(record, draft.email) for record in others),
        )
        if not fill:
            return existing
        record_id = str(existing["Id"])
        sobject = self._person_type(record_id)
        await self._api("PATCH", f"/sobjects/{sobject}/{record_id}", body=fill, record=("contact", record_id))
        return await self._get_person(record_id)

    # -- requests -------------------------------------------------------------------------------------

    async def _create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a record once: a failure after it may have reached Salesforce is not retried."""
        saved = await self._api("POST", path, body=body, once=True)
        if not isinstance(saved, dict) or not saved.get("id"):
            raise UpstreamError(PROVIDER, "create answered without an id")
        return saved

    async def _api(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        record: tuple[str, str] | None = None,
        once: bool = False,
    ) -> Any:
        """One REST call with a valid token, under `Resilience`, refreshed once on INVALID_SESSION_ID."""

        def attempt(token: str) -> Callable[[], Awaitable[Any]]:
            async def run() -> Any:
                try:
                    return await self._client.send(token, method, path, params=params, body=body, record=record)
                except MayHaveLandedError as error:
                    if not once:
                        raise
                    detail = f"{error}; not retried, Salesforce may have applied it"
                    raise UpstreamError(PROVIDER, detail, status=error.status) from None

            return run

        token = await self._tokens.token()
        if not (await self._vault.load()).get("instance_url"):
            # An access token stored without its org's host (set by hand): a refresh names the host.
            token = await self._tokens.refresh(stale=token)
        try:
            return await self._client.call(attempt(token))
        except SalesforceError as error:
            if error.status != 401:
                raise
        fresh = await self._tokens.refresh(stale=token)
        try:
            return await self._client.call(attempt(fresh))
        except SalesforceError as error:
            if error.status != 401:
                raise
            raise UpstreamError(PROVIDER, "Salesforce refused a freshly issued access token", status=401) from None


def _holds_phone(record: dict[str, Any], phone: str | None) -> bool:
    return phone is not None and any(phones.same_number(record.get(f), phone) for f in ("Phone", "MobilePhone"))


def _holds_email(record: dict[str, Any], email: str | None) -> bool:
    stored = record.get("Email")
    return email is not None and isinstance(stored, str) and stored.lower() == email.lower()
