"""Blocking calls to HubSpot through hubspot-api-client, one method per endpoint, errors translated.

Each method takes the access token and the HTTP timeout for this attempt: the token is sent as
the request's own `Authorization` header (`_request_auth`), so SDK clients carry no credentials
and can be shared by every connection to the same base URL, keeping their connection pools warm
across calls and across token refreshes. Answers come back as HubSpot's own JSON (camelCase keys),
which is what `mappers` reads and what `raw` keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import hubspot
from urllib3.util.retry import Retry

from integrations.hubspot.errors import SDK_ERRORS, translate

__all__ = ["Engagement", "HubSpotClient"]

# The engagement object types the connector writes and reads back, by their plural path names.
Engagement = Literal["notes", "calls"]

# urllib3 retries would run outside the tool call's deadline; `Resilience` decides on retries.
_NO_RETRIES = Retry(total=False)
# Concurrent calls per host before urllib3 opens throwaway connections: room for the
# post-call workers' 16 CRM jobs at once (TOOL_SERVER_POSTCALL_CONCURRENCY) and live calls.
_POOL_SIZE = 32


@dataclass(frozen=True)
class _Apis:
    associations: Any
    contacts: Any
    contacts_search: Any
    # Per engagement type: its basic API (create) and batch API (read).
    engagements: Mapping[Engagement, Any]
    engagement_batches: Mapping[Engagement, Any]


@cache
def _apis(base_url: str) -> _Apis:
    # One SDK client per base URL for the whole process: each sub-API built here owns a urllib3
    # pool, and building them per call would leave sockets for the garbage collector.
    client = hubspot.Client.create(host=base_url, retry=_NO_RETRIES, connection_pool_maxsize=_POOL_SIZE)
    return _Apis(
        associations=client.crm.associations.v4.basic_api,
        contacts=client.crm.contacts.basic_api,
        contacts_search=client.crm.contacts.search_api,
        engagements={"notes": client.crm.objects.notes.basic_api, "calls": client.crm.objects.calls.basic_api},
        engagement_batches={"notes": client.crm.objects.notes.batch_api, "calls": client.crm.objects.calls.batch_api},
    )


class HubSpotClient:
    """HubSpot's CRM endpoints the connector uses. Every method blocks; run it on a worker thread."""

    def __init__(self, base_url: str) -> None:
        self._apis = _apis(base_url.rstrip("/"))

    def search_contacts(self, token: str, timeout: float, body: dict[str, Any]) -> dict[str, Any]:
        # https://developers.hubspot.com/docs/guides/api/crm/search#make-a-search-request
        api = self._apis.contacts_search
        return self._call(api, lambda **auth: api.do_search(public_object_search_request=body, **auth), token, timeout)

    def list_contacts(self, token: str, timeout: float, limit: int) -> dict[str, Any]:
        # https://developers.hubspot.com/docs/guides/api/crm/objects/contacts
        api = self._apis.contacts
        return self._call(api, lambda **auth: api.get_page(limit=limit, **auth), token, timeout)

    def get_contact(self, token: str, timeout: float, contact_id: str, properties: list[str]) -> dict[str, Any]:
        # https://developers.hubspot.com/docs/guides/api/crm/objects/contacts
        api = self._apis.contacts
        return self._call(
            api,
            lambda **auth: api.get_by_id(contact_id, properties=properties, **auth),
            token,
            timeout,
            record=("contact", contact_id),
        )

    def create_contact(self, token: str, timeout: float, body: dict[str, Any]) -> dict[str, Any]:
        # https://developers.hubspot.com/docs/guides/api/crm/objects/contacts
        api = self._apis.contacts
        return self._call(
            api, lambda **auth: api.create(simple_public_object_input_for_create=body, **auth), token, timeout
        )

    def update_contact(self, token: str, timeout: float, contact_id: str, body: dict[str, Any]) -> dict[str, Any]:
        # https://developers.hubspot.com/docs/guides/api/crm/objects/contacts
        api = self._apis.contacts
        return self._call(
            api,
            lambda **auth: api.update(contact_id, simple_public_object_input=body, **auth),
            token,
            timeout,
            record=("contact", contact_id),
        )

    def create_engagement(
        self, token: str, timeout: float, engagement: Engagement, body: dict[str, Any]
    ) -> dict[str, Any]:
        # https://developers.hubspot.com/docs/guides/api/crm/engagements/notes
        # https://developers.hubspot.com/docs/guides/api/crm/engagements/calls
        api = self._apis.engagements[engagement]
        return self._call(
            api, lambda **auth: api.create(simple_public_object_input_for_create=body, **auth), token, timeout
        )

    def list_contact_engagements(
        self, token: str, timeout: float, contact_id: str, engagement: Engagement, *, after: str | None, limit: int
    ) -> dict[str, Any]:
        # https://developers.hubspot.com/docs/guides/api/crm/associations/associations-v4
        api = self._apis.associations
        return self._call(
            api,
            lambda **auth: api.get_page("contacts", contact_id, engagement, after=after, limit=limit, **auth),
            token,
            timeout,
            record=("contact", contact_id),
        )

    def read_engagements(
        self, token: str, timeout: float, engagement: Engagement, body: dict[str, Any]
    ) -> dict[str, Any]:
        # https://developers.hubspot.com/docs/guides/api/crm/engagements/notes (calls: …/engagements/calls)
        # A 207 (some ids not found) is a success to the SDK: its `errors` list them.
        api = self._apis.engagement_batches[engagement]
        return self._call(
            api, lambda **auth: api.read(batch_read_input_simple_public_object_id=body, **auth), token, timeout
        )

    @staticmethod
    def _call(
        api: Any,
        request: Callable[..., Any],
        token: str,
        timeout: float,
        *,
        record: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        auth = {"type": "oauth2", "in": "header", "key": "Authorization", "value": f"Bearer {token}"}
        try:
            answer = request(_request_auth=auth, _request_timeout=timeout)
        except SDK_ERRORS as error:
            raise translate(error, record=record) from None
        # The SDK's models back into HubSpot's JSON (camelCase keys, ISO timestamps).
        data = api.api_client.sanitize_for_serialization(answer)
        return data if isinstance(data, dict) else {}
