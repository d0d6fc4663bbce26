"""QuickBooks Online's webhook as the server receives it: `intuit-signature` checked, then changed invoices.

Intuit signs each delivery with the app's webhook Verifier Token: the `intuit-signature` header
is base64(HMAC-SHA256(verifier token, raw body)). It is checked here on the raw bytes before
anything is parsed, with `hmac.compare_digest`. (python-quickbooks has
`QuickBooks.validate_webhook_signature`, but it needs a whole API client to call, decodes the body
as UTF-8 text first, compares with `==` rather than in constant time, and lets a malformed
base64 header raise; four lines of stdlib do the same check without those.)

A delivery names changed records only, never their fields, in one of two shapes Intuit sends:

- legacy: `{"eventNotifications": [{"realmId", "dataChangeEvent": {"entities": [{"name", "id",
  "operation", "lastUpdated"}]}}]}`;
- CloudEvents (the format Intuit moved apps to from November 2025): a JSON array of
  `{"specversion": "1.0", "id", "source", "type": "qbo.invoice.updated.v1", "time",
  "intuitentityid", "intuitaccountid", "data"}`.

Each created or updated `Invoice` becomes an `InvoiceChangedEvent`; the server reads the invoice
back through the connection and treats it as paid if it is. A `Payment` is not mapped: its
notification cannot say which invoice it paid, and applying it updates the invoice's Balance,
which QuickBooks notifies as an Invoice update of its own. Everything else is acknowledged and
ignored.

The realm: an app's endpoint hears about every company connected to the app, so an entity of
another realm should be skipped. The server hands this handler the connection's secrets only, and
the realm id is a setting, so `handle` cannot filter; `invoice_changes(payload, realm_id)` does
when given one. Reading an id back through the connection reads this realm's record, so a
foreign notification can at worst prompt a needless read. unconfirmed: Intuit documents no
timestamp tolerance or replay window; replays are left to the server's per-event handling.
Docs: https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks/managing-webhooks-notifications
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

from integrations.common.linear_regex import compile_linear
from integrations.common.spec import (
    InvoiceChangedEvent,
    WebhookEvent,
    WebhookRejectedError,
    WebhookReply,
    WebhookRequest,
)

__all__ = ["MAX_BODY_BYTES", "SIGNATURE_HEADER", "handle", "invoice_changes", "signature_matches"]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "intuit-signature"
# Intuit imposes no size limit and batches a whole interval's changes into one delivery; its docs
# name 2 MB as the common server default, so a larger body is refused before any HMAC is computed.
MAX_BODY_BYTES = 2 * 1024 * 1024
# Operations after which an invoice may have been paid (legacy names, CloudEvents verbs).
_LEGACY_OPERATIONS = frozenset({"Create", "Update"})
_CLOUDEVENTS_VERBS = frozenset({"created", "updated"})
# qbo.<entity>.<verb>.v<n>, e.g. qbo.invoice.updated.v1.
# unconfirmed: Intuit's samples show only "created" ("qbo.account.created.v1"); "updated" follows the pattern.
_CLOUDEVENTS_TYPE = compile_linear(r"qbo\.([a-z]+)\.([a-z]+)\.v\d+")


def signature_matches(body: bytes, header: str, verifier_token: str) -> bool:
    """Whether `header` is base64(HMAC-SHA256(verifier_token, body)), compared in constant time."""
    try:
        claimed = base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(claimed, expected)


def _legacy_changes(payload: dict[str, Any], realm_id: str | None) -> list[InvoiceChangedEvent]:
    changes: list[InvoiceChangedEvent] = []
    notifications = payload.get("eventNotifications")
    for item in notifications if isinstance(notifications, list) else []:
        if not isinstance(item, dict):
            continue
        realm = item.get("realmId")
        if realm_id is not None and realm != realm_id:
            continue
        change = item.get("dataChangeEvent")
        entities = change.get("entities") if isinstance(change, dict) else None
        for entity in entities if isinstance(entities, list) else []:
            if not isinstance(entity, dict) or entity.get("name") != "Invoice":
                continue
            invoice_id = entity.get("id")
            if entity.get("operation") not in _LEGACY_OPERATIONS or not isinstance(invoice_id, str) or not invoice_id:
                continue
            # The legacy shape has no event id: realm, record and its change time name this change
            # and no other, and stay the same when Intuit re-delivers the notification.
            event_id = f"{realm}:Invoice:{invoice_id}:{entity.get('lastUpdated', '')}"
            changes.append(InvoiceChangedEvent(invoice_id, event_id))
    return changes


def _cloudevents_changes(events: list[Any], realm_id: str | None) -> list[InvoiceChangedEvent]:
    changes: list[InvoiceChangedEvent] = []
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            continue
        kind = _CLOUDEVENTS_TYPE.fullmatch(event["type"])
        if kind is None or kind.group(1) != "invoice" or kind.group(2) not in _CLOUDEVENTS_VERBS:
            continue
        if realm_id is not None and event.get("intuitaccountid") != realm_id:
            continue
        invoice_id, event_id = event.get("intuitentityid"), event.get("id")
        if not isinstance(invoice_id, str) or not invoice_id or not isinstance(event_id, str) or not event_id:
            # Intuit's guidance: skip what cannot be read, never fail the batch (it re-sends all of it).
            logger.warning("quickbooks webhook: skipped an invoice event without intuitentityid or id")
            continue
        changes.append(InvoiceChangedEvent(invoice_id, event_id))
    return changes


def invoice_changes(payload: Any, realm_id: str | None = None) -> list[InvoiceChangedEvent]:
    """The invoices a parsed delivery says were created or updated, each once, in order.

    `payload` is either shape (see the module docstring); `realm_id`, when given, drops changes of
    any other company. Raises `WebhookRejectedError` (400) for JSON that is neither shape.
    """
    if isinstance(payload, list):
        found = _cloudevents_changes(payload, realm_id)
    elif isinstance(payload, dict) and isinstance(payload.get("eventNotifications"), list):
        found = _legacy_changes(payload, realm_id)
    else:
        raise WebhookRejectedError("the body is not a QuickBooks webhook notification", status=400)
    # One delivery may name an invoice twice (created, then updated, in one interval); one read does.
    unique: dict[str, InvoiceChangedEvent] = {}
    for change in found:
        unique.setdefault(change.invoice_id, change)
    return list(unique.values())


def handle(request: WebhookRequest, secrets: Mapping[str, str]) -> tuple[list[WebhookEvent], WebhookReply]:
    """The server's webhook hook for kind `events`: verify `intuit-signature` on the raw body, then map."""
    if request.kind != "events":
        raise WebhookRejectedError(f"quickbooks sends no {request.kind!r} callback", status=400)
    if len(request.body) > MAX_BODY_BYTES:
        raise WebhookRejectedError("the body is larger than this server takes from QuickBooks", status=400)
    token = secrets.get("verifier_token", "")
    # HTTP header names are case-insensitive; the server's mapping is lower-cased, a caller's may not be.
    header = next((value for name, value in request.headers.items() if name.lower() == SIGNATURE_HEADER), "")
    if not token or not header:
        raise WebhookRejectedError("the intuit-signature header or the connection's verifier token is missing")
    if not signature_matches(request.body, header, token):
        raise WebhookRejectedError("intuit-signature does not match")
    try:
        payload = json.loads(request.body)
    except ValueError:
        raise WebhookRejectedError("the body is not a QuickBooks webhook notification", status=400) from None
    events: list[WebhookEvent] = list(invoice_changes(payload))
    return events, WebhookReply(status=200)
