"""The SendGrid emulator's in-memory account: accepted mail, verified senders, the Event Webhook.

Tests drive the far side through it: `emit` reports what happened to a mail (bounce, dropped,
open, deferred) the way SendGrid's Event Webhook would, signed, and keeps the request in the
pending callbacks; `take_callbacks` hands them over for a test to POST into the server. Every
accepted mail queues a "processed" then a "delivered" event by itself when a webhook URL is set.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from integrations.sendgrid.sandbox_wire import SANDBOX_FROM_EMAIL, SANDBOX_SCOPES, Callback, sign_event_webhook

__all__ = ["SNAPSHOT_VERSION", "SendGridState"]

# The format `snapshot()` writes; `restore()` refuses any other.
SNAPSHOT_VERSION = 1
# The fields of a mail the state reads; a snapshot whose mails lack one is not ours.
_MAIL_FIELDS = frozenset({"message_id", "personalizations", "from", "custom_args", "events", "status"})

# What SendGrid adds to an event of each kind when the test does not say (documented examples).
_EVENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "delivered": {"response": "250 OK", "tls": 1},
    "deferred": {"response": "400 try again later", "attempt": "1"},
    "bounce": {
        "type": "bounce",
        "status": "5.0.0",
        "reason": "500 unknown recipient",
        "bounce_classification": "Invalid Address",
    },
    "dropped": {"reason": "Bounced Address"},
    "open": {"useragent": "Mozilla/5.0", "ip": "192.0.2.1", "sg_machine_open": False},
}


class _SavedCallback(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str
    headers: dict[str, str]
    body: str


class _Snapshot(BaseModel):
    """The account as `snapshot()` writes it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: int
    mails: list[dict[str, Any]]
    verified_senders: list[str]
    scopes: list[str]
    event_webhook_url: str | None
    pending: list[_SavedCallback]


def new_message_id() -> str:
    """An X-Message-Id like SendGrid's: 22 characters of URL-safe base64."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()


class SendGridState:
    """The sandbox account. `event_webhook_url` is the account's Event Webhook (None: events are not posted)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.mails: list[dict[str, Any]] = []
        self.verified_senders: set[str] = {SANDBOX_FROM_EMAIL}
        # The permissions of the sandbox API key (tests take "mail.send" away to see a 403).
        self.scopes: list[str] = list(SANDBOX_SCOPES)
        self.event_webhook_url: str | None = None
        self.pending: list[Callback] = []

    # -- SandboxState ----------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {
                "mails": copy.deepcopy(self.mails),
                "verified_senders": sorted(self.verified_senders),
                "scopes": list(self.scopes),
                "event_webhook_url": self.event_webhook_url,
                "pending_callbacks": len(self.pending),
            }

    def reset(self) -> None:
        with self._lock:
            self.mails.clear()
            self.verified_senders = {SANDBOX_FROM_EMAIL}
            self.scopes = list(SANDBOX_SCOPES)
            self.event_webhook_url = None
            self.pending.clear()

    def expire_access_tokens(self) -> None:
        """SendGrid API keys do not expire: nothing to do."""

    def revoke_refresh_tokens(self) -> None:
        """SendGrid has no OAuth: nothing to revoke."""

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            saved = _Snapshot(
                version=SNAPSHOT_VERSION,
                mails=self.mails,
                verified_senders=sorted(self.verified_senders),
                scopes=self.scopes,
                event_webhook_url=self.event_webhook_url,
                pending=[
                    _SavedCallback(url=c.url, headers=c.headers, body=c.body.decode("utf-8")) for c in self.pending
                ],
            )
            # A JSON dump builds new containers all the way down: nothing is shared with the state.
            return saved.model_dump(mode="json")

    def restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(
                f"not a sendgrid sandbox snapshot of format {SNAPSHOT_VERSION}: {snapshot.get('version')!r}"
            )
        saved = _Snapshot.model_validate(copy.deepcopy(snapshot))
        for mail in saved.mails:
            missing = _MAIL_FIELDS - mail.keys()
            if missing:
                raise KeyError(f"a saved mail lacks {sorted(missing)}")
        with self._lock:
            self.mails = saved.mails
            self.verified_senders = set(saved.verified_senders)
            self.scopes = saved.scopes
            self.event_webhook_url = saved.event_webhook_url
            self.pending = [Callback(url=c.url, headers=c.headers, body=c.body.encode("utf-8")) for c in saved.pending]

    # -- what the API routes do -------------------------------------------------------------------

    def may(self, scope: str) -> bool:
        """Whether the sandbox API key has the permission `scope` (e.g. "mail.send")."""
        with self._lock:
            return scope in self.scopes

    def is_verified(self, sender: str) -> bool:
        with self._lock:
            return sender.lower() in self.verified_senders

    def accept(self, body: dict[str, Any]) -> str:
        """Store a mail SendGrid accepted (the body is already valid); its X-Message-Id.

        Queues its "processed" and "delivered" events when the account has an Event Webhook.
        """
        message_id = new_message_id()
        custom_args = body.get("custom_args")
        mail = {
            "message_id": message_id,
            "received_at": datetime.now(UTC).isoformat(),
            "from": dict(body["from"]),
            "personalizations": copy.deepcopy(body["personalizations"]),
            "subject": body.get("subject"),
            "content": copy.deepcopy(body.get("content")),
            "template_id": body.get("template_id"),
            # Message-level custom_args; each personalization's own ones win over them in events.
            "custom_args": dict(custom_args) if isinstance(custom_args, dict) else {},
            "events": [],
            "status": "accepted",
        }
        with self._lock:
            self.mails.append(mail)
        self.emit(message_id, "processed")
        self.emit(message_id, "delivered")
        return message_id

    # -- what tests drive -------------------------------------------------------------------------

    def verify_sender(self, email: str) -> None:
        """Make `email` a verified Sender Identity of the account."""
        with self._lock:
            self.verified_senders.add(email.lower())

    def emit(self, message_id: str, event: str, **fields: Any) -> Callback | None:
        """Record that `event` happened to a mail and queue the signed Event Webhook POST for it.

        `fields` become event properties (`email` picks the recipient, default the first; `reason`,
        `status`, `type` for bounces…), over SendGrid's usual defaults for that kind of event.
        Returns the callback, or None when the account has no Event Webhook URL.
        """
        now = int(time.time())
        with self._lock:
            mail = next((m for m in self.mails if m["message_id"] == message_id), None)
            if mail is None:
                raise KeyError(f"no mail {message_id}")
            recipients = [
                (index, str(to["email"]), p.get("custom_args") or {})
                for index, p in enumerate(mail["personalizations"])
                for to in p["to"]
            ]
            wanted = fields.pop("email", recipients[0][1])
            index, email, personal_args = next((r for r in recipients if r[1] == wanted), recipients[0])
            number = len(mail["events"])
            mail["events"].append(event)
            mail["status"] = event
            payload: dict[str, Any] = {
                # Custom arguments ride at the top level of every event; the documented ones win.
                **mail["custom_args"],
                **personal_args,
                "email": email,
                "timestamp": now,
                "smtp-id": f"<{message_id}@geopod-ismtpd-sandbox-0>",
                "event": event,
                "sg_event_id": base64.urlsafe_b64encode(f"{event}-{number}-{message_id}-{index}".encode()).decode(),
                "sg_message_id": f"{message_id}.filterdrecv-5f54b5d587-pczjm-1-{now:08X}-{number}.{index}",
                **_EVENT_DEFAULTS.get(event, {}),
                **fields,
            }
            url = self.event_webhook_url
            if url is None:
                return None
            callback = sign_event_webhook(url, json.dumps([payload], separators=(",", ":")).encode(), now)
            self.pending.append(callback)
            return callback

    def requeue(self, callbacks: list[Callback]) -> None:
        """Put back callbacks whose receiver did not answer, ahead of the ones queued since."""
        with self._lock:
            self.pending[:0] = callbacks

    def take_callbacks(self) -> list[Callback]:
        """The signed Event Webhook POSTs not yet taken, oldest first; they leave the queue."""
        with self._lock:
            taken, self.pending = self.pending, []
            return taken
