"""HubSpot as a CRM provider, through hubspot-api-client pointed at `settings.base_url`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from integrations.capabilities.errors import ProviderNotConnectedError, UpstreamError
from integrations.capabilities.models import CallActivity, Contact, ContactDraft, LoggedCall, Note
from integrations.common import phones
from integrations.common.keylocks import KeyLocks
from integrations.common.resilience import Resilience
from integrations.common.spec import ConnectorEnv
from integrations.common.vault import CredentialVault
from integrations.hubspot import mappers
from integrations.hubspot.client import Engagement, HubSpotClient
from integrations.hubspot.errors import PROVIDER, ContactExistsError, MayHaveLandedError
from integrations.hubspot.settings import HubSpotSettings
from integrations.hubspot.tokens import token_manager

__all__ = ["CLOCK_SKEW", "HubSpotConnector"]

T = TypeVar("T")
# Search page size (HubSpot allows 200) and how many pages to read: no caller has 1,000 records.
_PAGE_SIZE = 100
_MAX_PAGES = 10
# A note's hs_timestamp comes from the clock of the process that wrote it, and `earlier_attempt_at`
# from the tool server's: a note written this long before that attempt began still counts as its own.
CLOCK_SKEW = timedelta(minutes=5)
# HubSpot's maxima: associations per v4 page, ids per batch read. Pages are bounded so that a
# broken cursor cannot loop forever; 20 pages is 10,000 notes (or calls) on one contact.
_ASSOCIATIONS_PAGE = 500
_MAX_ASSOCIATION_PAGES = 20
_BATCH_READ = 100


class HubSpotConnector:
    """Contacts, notes and calls in a HubSpot portal (CRM v3 objects, v4 association types).

    Credentials come from the vault: an OAuth install (`client_id`, `client_secret`,
    `refresh_token`; access tokens are refreshed a minute before expiry and once on a 401), or a
    private-app token stored alone as `access_token`, used as is. A 401 that a refresh cannot
    cure (revoked grant, deleted private app) marks the connection expired and raises
    `ProviderNotConnectedError`.

    Lookups by phone go through HubSpot's search API, which matches stored strings, not numbers:
    see `mappers.search_request` for how every format is found, and `find_contacts` for the
    check that drops near-misses. HubSpot itself refuses a second contact with the same email
    (409); the connector searches before creating so that the same phone is not added twice.
    """

    name = PROVIDER

    def __init__(self, settings: HubSpotSettings, vault: CredentialVault, env: ConnectorEnv) -> None:
        self._vault = vault
        self._env = env
        self._client = HubSpotClient(settings.base_url)
        self._tokens = token_manager(settings.base_url, vault, env.clock)
        self._resilience = Resilience(PROVIDER)
        # Search-then-create is not atomic: creates for the same phone or email take turns in this
        # process (others run at once), and so do look-then-log for the same call.
        self._creating = KeyLocks()
        self._logging = KeyLocks()

    async def find_contacts(self, *, phone: str | None = None, email: str | None = None) -> list[Contact]:
        """Contacts holding the phone (in any stored format) or the email; phone matches first."""
        if not phone and not email:
            return []
        found = await self._search(phone, email)
        region = phones.region_of(phone)
        return [mappers.to_contact(obj, region=region) for obj in found]

    async def get_contact(self, contact_id: str) -> Contact:
        """One contact by its HubSpot record id; raises `NotFoundError`."""
        obj = await self._get(contact_id)
        return mappers.to_contact(obj)

    async def create_contact(self, draft: ContactDraft) -> Contact:
        """The contact with this phone or email, its blanks filled in, or else a new one.

        Never overwrites what HubSpot holds, and never creates a second contact for the same phone
        or email: the search comes first, and HubSpot's 409 for a known email (which search can miss
        for a few seconds after a create, its index lagging) leads to the existing contact.
        """
        region = phones.region_of(draft.phone)
        async with self._creating.hold_all([f"phone:{draft.phone}" if draft.phone else None, _email_key(draft.email)]):
            if draft.phone or draft.email:
                found = await self._search(draft.phone, draft.email)
                if found:
                    return mappers.to_contact(await self._fill_blanks(found[0], draft, found), region=region)
            body = mappers.create_request(draft)
            try:
                created = await self._send(
                    # HubSpot has no idempotency key for creates; only its email check makes a retry safe.
                    lambda token: self._client.create_contact(token, self._timeout(), body),
                    retry_if_sent=draft.email is not None,
                )
            except ContactExistsError as conflict:
                existing = await self._get(conflict.existing_id)
                return mappers.to_contact(await self._fill_blanks(existing, draft, [existing]), region=region)
        return mappers.to_contact(created, region=region)

    async def update_contact(self, contact_id: str, draft: ContactDraft) -> Contact:
        """Change the given fields; fields left as None are kept. Raises `NotFoundError`."""
        properties = mappers.update_request(draft)
        if not properties:
            return await self.get_contact(contact_id)
        obj = await self._patch(contact_id, properties)
        return mappers.to_contact(obj, region=phones.region_of(draft.phone))

    async def add_note(
        self,
        contact_id: str,
        body: str,
        *,
        idempotency_key: str | None = None,
        earlier_attempt_at: datetime | None = None,
    ) -> Note:
        """Attach a note to the contact (association type 202); raises `NotFoundError` first if unknown.

        HubSpot has no idempotency key for creates, so `idempotency_key` is not sent; dispatch's own
        key store is what keeps a retried call from writing twice. When an earlier attempt under
        the key died without an answer (`earlier_attempt_at`), the contact's notes are read first:
        a note with this body written since that attempt began (less `CLOCK_SKEW`) is returned
        instead of writing a second one. Two identical notes meant to be separate, written within
        that window, would be taken for one: HubSpot notes carry nothing to tell them apart.
        """
        await self._get(contact_id)
        when = self._env.clock()
        request = mappers.note_request(contact_id, body, when)
        if earlier_attempt_at is not None:
            not_before = earlier_attempt_at - CLOCK_SKEW
            earlier = await self._find_on_contact(
                contact_id, "notes", mappers.NOTE_PROPERTIES, lambda obj: _is_note_since(obj, body, not_before)
            )
            if earlier is not None:
                return mappers.to_note(earlier, contact_id, fallback_time=when)
        obj = await self._send(
            lambda token: self._client.create_engagement(token, self._timeout(), "notes", request), retry_if_sent=False
        )
        return mappers.to_note(obj, contact_id, fallback_time=when)

    async def log_call(self, contact_id: str, call: CallActivity) -> LoggedCall:
        """Log the call on the contact's timeline (association type 194), once; raises `NotFoundError` first.

        HubSpot has no idempotency key for creates, so the contact's calls are read first, every
        time: one with this title whose `hs_timestamp` is the call's start, to the millisecond, is
        returned with `created` False. That covers a sync resumed after its process died mid-create,
        however much later. The create itself is not retried once it may have reached HubSpot.
        """
        await self._get(contact_id)
        request = mappers.call_request(contact_id, call)
        async with self._logging.hold(f"{contact_id}|{call.started_at.timestamp():.3f}|{call.title}"):
            logged = await self._find_on_contact(
                contact_id, "calls", mappers.CALL_PROPERTIES, lambda obj: mappers.is_call(obj, call)
            )
            if logged is not None:
                return mappers.to_logged_call(logged, contact_id, created=False)
            obj = await self._send(
                lambda token: self._client.create_engagement(token, self._timeout(), "calls", request),
                retry_if_sent=False,
            )
        return mappers.to_logged_call(obj, contact_id, created=True)

    async def check_connection(self) -> str:
        """One cheap authenticated read: the first contact of the portal, if any."""
        await self._send(lambda token: self._client.list_contacts(token, self._timeout(), limit=1))
        return "hubspot portal reachable"

    # -- requests ---------------------------------------------------------------------------------

    async def _search(self, phone: str | None, email: str | None) -> list[dict[str, Any]]:
        """Every contact HubSpot's search returns for the phone or email, kept only if it truly matches.

        The computed phone properties drop the country code, so "+44 …" could share digits with a
        US number; a contact stays only if a stored phone's digits are the E.164 number's digits
        (with or without country code), or its email is the email.
        """
        results: dict[str, dict[str, Any]] = {}
        after = "0"
        for _page in range(_MAX_PAGES):
            page = await self._search_page(
                mappers.search_request(phone=phone, email=email, after=after, limit=_PAGE_SIZE)
            )
            for obj in page.get("results") or []:
                results.setdefault(str(obj["id"]), obj)
            cursor = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not isinstance(cursor, str) or not cursor:
                break
            after = cursor

        matching = [obj for obj in results.values() if _holds_phone(obj, phone) or _holds_email(obj, email)]
        # A phone match is the stronger identity for a caller; list it first (sorted() is stable).
        return sorted(matching, key=lambda obj: 0 if _holds_phone(obj, phone) else 1)

    async def _search_page(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._send(lambda token: self._client.search_contacts(token, self._timeout(), body))

    async def _find_on_contact(
        self,
        contact_id: str,
        engagement: Engagement,
        properties: list[str],
        matches: Callable[[dict[str, Any]], bool],
    ) -> dict[str, Any] | None:
        """The newest of the contact's notes (or calls) that `matches`, read with `properties`.

        Associations, not the search API: search lags writes by seconds, associations do not.
        A failure here propagates: not knowing is no reason to risk a second copy.
        """
        # HubSpot record ids grow over time: read the newest first and stop at a match.
        record_ids = sorted(await self._contact_engagement_ids(contact_id, engagement), key=_id_order, reverse=True)
        for start in range(0, len(record_ids), _BATCH_READ):
            # Ids that vanished since the listing come back under `errors` (a 207); they are not ours.
            body = mappers.batch_read_request(properties, record_ids[start : start + _BATCH_READ])
            answer = await self._read_engagements(engagement, body)
            found: list[dict[str, Any]] = answer.get("results") or []
            for obj in sorted(found, key=lambda obj: _id_order(str(obj.get("id"))), reverse=True):
                if matches(obj):
                    return obj
        return None

    async def _read_engagements(self, engagement: Engagement, body: dict[str, Any]) -> dict[str, Any]:
        return await self._send(lambda token: self._client.read_engagements(token, self._timeout(), engagement, body))

    async def _contact_engagement_ids(self, contact_id: str, engagement: Engagement) -> list[str]:
        """Every note (or call) id associated with the contact (associations v4, all pages)."""
        record_ids: dict[str, None] = {}
        after: str | None = None
        for _page in range(_MAX_ASSOCIATION_PAGES):
            page = await self._contact_engagements_page(contact_id, engagement, after)
            for link in page.get("results") or []:
                record_ids.setdefault(str(link["toObjectId"]), None)
            cursor = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not isinstance(cursor, str) or not cursor:
                return list(record_ids)
            after = cursor
        limit = _ASSOCIATIONS_PAGE * _MAX_ASSOCIATION_PAGES
        detail = f"contact has over {limit} {engagement}; cannot rule out an earlier copy of this one"
        raise UpstreamError(PROVIDER, detail)

    async def _contact_engagements_page(
        self, contact_id: str, engagement: Engagement, after: str | None
    ) -> dict[str, Any]:
        return await self._send(
            lambda token: self._client.list_contact_engagements(
                token, self._timeout(), contact_id, engagement, after=after, limit=_ASSOCIATIONS_PAGE
            )
        )

    async def _get(self, contact_id: str) -> dict[str, Any]:
        return await self._send(
            lambda token: self._client.get_contact(token, self._timeout(), contact_id, mappers.CONTACT_PROPERTIES)
        )

    async def _patch(self, contact_id: str, properties: dict[str, str]) -> dict[str, Any]:
        body = {"properties": properties}
        return await self._send(lambda token: self._client.update_contact(token, self._timeout(), contact_id, body))

    async def _fill_blanks(
        self, existing: dict[str, Any], draft: ContactDraft, found: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """PATCH only what `existing` lacks; a phone or email held by another found contact stays off."""
        others = [obj for obj in found if obj.get("id") != existing.get("id")]
        fill = mappers.blank_fields(
            existing,
            draft,
            phone_taken=any(_holds_phone(obj, draft.phone) for obj in others),
            email_taken=any(_holds_email(obj, draft.email) for obj in others),
        )
        if not fill:
            return existing
        return await self._patch(str(existing["id"]), fill)

    def _timeout(self) -> float:
        # Read on the worker thread at each attempt: the deadline keeps shrinking between retries.
        return self._resilience.attempt_timeout()

    async def _send(self, request: Callable[[str], T], *, retry_if_sent: bool = True) -> T:
        """One HubSpot request with a valid token, retried by `Resilience`, refreshed once on a 401.

        With `retry_if_sent=False` (creates HubSpot cannot deduplicate), a failure after the
        request may have reached HubSpot (5xx, read timeout) is not retried: it could have landed.
        """
        attempt = request if retry_if_sent else _once_sent(request)
        token = await self._tokens.token()
        try:
            return await self._resilience.run_sync(lambda: attempt(token))
        except UpstreamError as error:
            if error.status != 401:
                raise
        fresh = await self._refresh(stale=token)
        try:
            return await self._resilience.run_sync(lambda: attempt(fresh))
        except UpstreamError as error:
            if error.status != 401:
                raise
            # A token HubSpot just issued is refused: an app or portal problem, not an expiry.
            raise UpstreamError(PROVIDER, "HubSpot refused a freshly issued access token", status=401) from None

    async def _refresh(self, *, stale: str) -> str:
        secrets = await self._vault.load()
        if not secrets.get("refresh_token"):
            # A private-app token: nothing to refresh it with, so HubSpot's 401 means it was revoked.
            reason = "HubSpot refused the private app access token; store a new one"
            await self._vault.mark_expired(reason)
            raise ProviderNotConnectedError("crm", reason)
        return await self._tokens.refresh(stale=stale)


def _holds_phone(obj: dict[str, Any], phone: str | None) -> bool:
    props = obj.get("properties") or {}
    return phone is not None and any(phones.same_number(props.get(name), phone) for name in ("phone", "mobilephone"))


def _holds_email(obj: dict[str, Any], email: str | None) -> bool:
    stored = (obj.get("properties") or {}).get("email")
    return email is not None and isinstance(stored, str) and stored.lower() == email.lower()


def _is_note_since(obj: dict[str, Any], body: str, not_before: datetime) -> bool:
    written = mappers.note_written_at(obj)
    return (obj.get("properties") or {}).get("hs_note_body") == body and written is not None and written >= not_before


def _id_order(record_id: str) -> tuple[int, str]:
    # Numeric strings without leading zeros: longer is larger, then lexical order is numeric order.
    return len(record_id), record_id


def _once_sent(request: Callable[[str], T]) -> Callable[[str], T]:
    """`request`, with failures that may have reached HubSpot made non-retryable."""

    def attempt(token: str) -> T:
        try:
            return request(token)
        except MayHaveLandedError as error:
            detail = f"{error.detail}; not retried, HubSpot may have applied it"
            raise UpstreamError(PROVIDER, detail, status=error.status) from None

    return attempt


def _email_key(email: str | None) -> str | None:
    # HubSpot treats emails case-insensitively.
    return f"email:{email.lower()}" if email else None
