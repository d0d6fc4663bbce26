"""The Twilio emulator's in-memory account: its messages (oldest first), their StatusCallbacks, opt-outs.

Tests drive the far side of a conversation through it: `receive_inbound` (a texted STOP puts the
number on the opt-out list, as Twilio does) and `advance` (a delivery status change); both return
the webhook request Twilio would send, for route tests to sign.
"""

from __future__ import annotations

import copy
import threading
import uuid
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from integrations.twilio.sandbox_wire import (
    API_VERSION,
    SANDBOX_ACCOUNT_SID,
    SANDBOX_FROM_NUMBER,
    TwilioApiError,
    WebhookDelivery,
    is_sms_number,
    message_resource,
    rfc2822,
    segments,
)
from integrations.twilio.webhooks import opt_change

__all__ = ["MAX_BODY", "SNAPSHOT_VERSION", "TwilioState"]

MAX_BODY = 1600
# The format `snapshot()` writes; `restore()` refuses any other.
SNAPSHOT_VERSION = 1
# The fields of a message the state reads; a snapshot whose messages lack one is not ours.
_MESSAGE_FIELDS = frozenset({"sid", "to", "from", "body", "date_sent", "messaging_service_sid", "num_segments"})


class _Snapshot(BaseModel):
    """The account as `snapshot()` writes it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: int
    messages: list[dict[str, Any]]
    status_callbacks: dict[str, str]
    opted_out: list[str]


class TwilioState:
    """The sandbox account: its messages (oldest first), their StatusCallbacks, and the opt-out list."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []
        self.status_callbacks: dict[str, str] = {}
        self.opted_out: set[str] = set()

    # -- SandboxState ----------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {
                "account_sid": SANDBOX_ACCOUNT_SID,
                "messages": [dict(message) for message in self.messages],
                "status_callbacks": dict(self.status_callbacks),
                "opt_outs": sorted(self.opted_out),
            }

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.status_callbacks.clear()
            self.opted_out.clear()

    def expire_access_tokens(self) -> None:
        """Twilio has no OAuth: nothing expires."""

    def revoke_refresh_tokens(self) -> None:
        """Twilio has no OAuth: nothing to revoke."""

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            saved = _Snapshot(
                version=SNAPSHOT_VERSION,
                messages=self.messages,
                status_callbacks=self.status_callbacks,
                opted_out=sorted(self.opted_out),
            )
            # A JSON dump builds new containers all the way down: nothing is shared with the state.
            return saved.model_dump(mode="json")

    def restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"not a twilio sandbox snapshot of format {SNAPSHOT_VERSION}: {snapshot.get('version')!r}")
        saved = _Snapshot.model_validate(copy.deepcopy(snapshot))
        for message in saved.messages:
            missing = _MESSAGE_FIELDS - message.keys()
            if missing:
                raise KeyError(f"a saved message lacks {sorted(missing)}")
        with self._lock:
            self.messages = saved.messages
            self.status_callbacks = saved.status_callbacks
            self.opted_out = set(saved.opted_out)

    # -- what the API routes do -------------------------------------------------------------------

    def create(self, form: dict[str, str]) -> dict[str, Any]:
        """A new outbound message, or the `TwilioApiError` Twilio answers instead."""
        to = form.get("To", "").strip()
        sender = form.get("From", "").strip()
        service = form.get("MessagingServiceSid", "").strip()
        body = form.get("Body", "")
        if not to:
            raise TwilioApiError(400, 21604, "A 'To' phone number is required.")
        if not is_sms_number(to):
            raise TwilioApiError(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not sender and not service:
            raise TwilioApiError(400, 21603, "A 'From' phone number is required.")
        if sender and sender != SANDBOX_FROM_NUMBER:
            raise TwilioApiError(
                400,
                21606,
                f"The From phone number {sender} is not a valid, SMS-capable inbound phone number "
                "or short code for your account.",
            )
        if not body and not form.get("MediaUrl") and not form.get("ContentSid"):
            raise TwilioApiError(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY:
            raise TwilioApiError(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        now = datetime.now(UTC)
        sid = "SM" + uuid.uuid4().hex
        message = message_resource(
            sid,
            to=to,
            sender=sender or None,
            service=service or None,
            body=body,
            direction="outbound-api",
            # A Messaging Service accepts first and picks a sender later; a number queues at once.
            status="accepted" if service else "queued",
            num_segments=0 if service else segments(body),
            now=now,
        )
        with self._lock:
            if to in self.opted_out:
                raise TwilioApiError(400, 21610, "Attempt to send to unsubscribed recipient")
            self.messages.append(message)
            if form.get("StatusCallback"):
                self.status_callbacks[sid] = form["StatusCallback"]
        return dict(message)

    def get(self, sid: str) -> dict[str, Any] | None:
        with self._lock:
            found = next((m for m in self.messages if m["sid"] == sid), None)
            return dict(found) if found is not None else None

    def newest_first(self, to: str | None, sender: str | None, sent: dict[str, date]) -> list[dict[str, Any]]:
        """Messages as Twilio lists them: most recent first, filtered like To/From/DateSent[<>]."""
        with self._lock:
            listed = [dict(m) for m in reversed(self.messages)]
        listed = [m for m in listed if (to is None or m["to"] == to) and (sender is None or m["from"] == sender)]
        if sent:
            listed = [m for m in listed if m["date_sent"] is not None and _sent_matches(m["date_sent"], sent)]
        return listed

    # -- what tests drive -------------------------------------------------------------------------

    def receive_inbound(self, from_: str, body: str) -> dict[str, str]:
        """A text from `from_` to the sandbox number; STOP/START words change the opt-out list.

        Returns the form parameters Twilio would POST to the number's incoming-message webhook.
        """
        now = datetime.now(UTC)
        sid = "SM" + uuid.uuid4().hex
        message = message_resource(
            sid,
            to=SANDBOX_FROM_NUMBER,
            sender=from_,
            service=None,
            body=body,
            direction="inbound",
            status="received",
            num_segments=segments(body),
            now=now,
        )
        message["date_sent"] = rfc2822(now)
        change = opt_change(body)
        with self._lock:
            self.messages.append(message)
            if change == "opt_out":
                self.opted_out.add(from_)
            elif change == "opt_in":
                self.opted_out.discard(from_)
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsMessageSid": sid,
            "AccountSid": SANDBOX_ACCOUNT_SID,
            "From": from_,
            "To": SANDBOX_FROM_NUMBER,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": message["num_segments"],
            "SmsStatus": "received",
            "ApiVersion": API_VERSION,
        }
        if change is not None:
            # Twilio's Advanced Opt-Out adds the keyword type to the inbound webhook.
            params["OptOutType"] = "STOP" if change == "opt_out" else "START"
        return params

    def advance(self, sid: str, status: str, error_code: int | None = None) -> WebhookDelivery | None:
        """Move a message to `status`; returns the StatusCallback Twilio would send, if one was asked for."""
        now = datetime.now(UTC)
        with self._lock:
            message = next((m for m in self.messages if m["sid"] == sid), None)
            if message is None:
                raise KeyError(f"no message {sid}")
            message["status"] = status
            message["date_updated"] = rfc2822(now)
            if message["from"] is None:
                # A Messaging Service picks its sender once the message leaves the "accepted" state.
                message["from"] = SANDBOX_FROM_NUMBER
                message["num_segments"] = str(segments(message["body"] or ""))
            if status in ("sent", "delivered", "undelivered") and message["date_sent"] is None:
                message["date_sent"] = rfc2822(now)
            message["error_code"] = error_code
            message["error_message"] = None if error_code is None else f"Error {error_code}"
            url = self.status_callbacks.get(sid)
            current = dict(message)
        if url is None:
            return None
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "AccountSid": SANDBOX_ACCOUNT_SID,
            "From": current["from"],
            "To": current["to"],
            "ApiVersion": API_VERSION,
        }
        if current["messaging_service_sid"]:
            params["MessagingServiceSid"] = current["messaging_service_sid"]
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return WebhookDelivery(url=url, params=params)


def _sent_matches(date_sent: str, filters: dict[str, date]) -> bool:
    day = datetime.strptime(date_sent, "%a, %d %b %Y %H:%M:%S %z").date()
    exact, before, after = filters.get("DateSent"), filters.get("DateSent<"), filters.get("DateSent>")
    return (exact is None or day == exact) and (before is None or day <= before) and (after is None or day >= after)
