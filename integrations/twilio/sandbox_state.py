"""The Twilio emulator's in-memory account: messages (oldest first), StatusCallbacks, opt-outs,
WhatsApp customer-service windows, and the signed webhooks it would send.

Tests drive the far side of a conversation through it: `receive_inbound` (a text or WhatsApp
message; STOP/START change the opt-out list, as Twilio does; a WhatsApp message opens the
24-hour window) and `advance` (a delivery status change). Both return what Twilio would send
(the inbound webhook's parameters, the StatusCallback delivery) and also queue the signed
request, which `take_callbacks()` hands over and `POST /_callbacks/deliver` sends.

WhatsApp rules (https://www.twilio.com/docs/api/errors/63016): free-form text outside the
window the recipient's last message opened is accepted (201, queued) and then fails with 63016,
reported by StatusCallback; an approved template (ContentSid) goes out at any time.
"""

from __future__ import annotations

import copy
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from integrations.twilio.sandbox_templates import parse_variables, template_by_sid
from integrations.twilio.sandbox_wire import (
    API_VERSION,
    SANDBOX_ACCOUNT_SID,
    SANDBOX_AUTH_TOKEN,
    SANDBOX_FROM_NUMBER,
    WHATSAPP_PREFIX,
    WHATSAPP_SENDER,
    Callback,
    TwilioApiError,
    WebhookDelivery,
    check_sender,
    is_sms_number,
    message_resource,
    rfc2822,
    segments,
    status_callback_params,
)
from integrations.twilio.webhooks import channel_address, opt_change

__all__ = ["MAX_BODY", "SNAPSHOT_VERSION", "WHATSAPP_WINDOW", "TwilioState"]

MAX_BODY = 1600
# How long a WhatsApp user's message lets the business answer with free-form text.
WHATSAPP_WINDOW = timedelta(hours=24)
OUTSIDE_WINDOW = 63016
_OUTSIDE_WINDOW_MESSAGE = (
    "Failed to send freeform message because you are outside the allowed window. "
    "If you are using WhatsApp, please use a Message Template."
)
# The format `snapshot()` writes; `restore()` refuses any other. Fields added later default to
# empty, so a snapshot written before WhatsApp still restores.
SNAPSHOT_VERSION = 1
# The fields of a message the state reads; a snapshot whose messages lack one is not ours.
_MESSAGE_FIELDS = frozenset({"sid", "to", "from", "body", "date_sent", "messaging_service_sid", "num_segments"})


class _SavedCallback(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str
    params: dict[str, str]
    headers: dict[str, str]


class _Snapshot(BaseModel):
    """The account as `snapshot()` writes it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: int
    messages: list[dict[str, Any]]
    status_callbacks: dict[str, str]
    opted_out: list[str]
    # Bare E.164 -> the ISO time of the number's latest WhatsApp message.
    whatsapp_windows: dict[str, str] = {}
    callbacks: list[_SavedCallback] = []


class TwilioState:
    """The sandbox account: messages, StatusCallbacks, opt-outs, WhatsApp windows, pending webhooks.

    `sync_window_errors` (off by default) is an opt-in fault: free-form WhatsApp text outside
    the window is refused at once with 400 63016, as some test doubles do, instead of failing later.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []
        self.status_callbacks: dict[str, str] = {}
        # Bare E.164 numbers: Twilio's opt-out is per number, so STOP on either channel blocks both.
        self.opted_out: set[str] = set()
        self.whatsapp_windows: dict[str, datetime] = {}
        self.pending: list[Callback] = []
        self.sync_window_errors = False

    # -- SandboxState ----------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {
                "account_sid": SANDBOX_ACCOUNT_SID,
                "messages": [dict(message) for message in self.messages],
                "status_callbacks": dict(self.status_callbacks),
                "opt_outs": sorted(self.opted_out),
                "whatsapp_windows": {number: at.isoformat() for number, at in sorted(self.whatsapp_windows.items())},
                "pending_callbacks": [callback.as_json() for callback in self.pending],
            }

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.status_callbacks.clear()
            self.opted_out.clear()
            self.whatsapp_windows.clear()
            self.pending.clear()
            self.sync_window_errors = False

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
                # isoformat keeps the microseconds, so the window restores exactly.
                whatsapp_windows={number: at.isoformat() for number, at in self.whatsapp_windows.items()},
                callbacks=[_SavedCallback(**callback.as_json()) for callback in self.pending],
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
        windows = {number: datetime.fromisoformat(at) for number, at in saved.whatsapp_windows.items()}
        if any(at.tzinfo is None for at in windows.values()):
            raise ValueError("a saved WhatsApp window has no time zone")
        with self._lock:
            self.messages = saved.messages
            self.status_callbacks = saved.status_callbacks
            self.opted_out = set(saved.opted_out)
            self.whatsapp_windows = windows
            self.pending = [Callback(url=c.url, params=c.params, headers=c.headers) for c in saved.callbacks]

    # -- what the API routes do -------------------------------------------------------------------

    def create(self, form: dict[str, str]) -> dict[str, Any]:
        """A new outbound message, or the `TwilioApiError` Twilio answers instead.

        A free-form WhatsApp message outside the recipient's window is created (and answered
        as queued), then failed with 63016 at once, its StatusCallback queued.
        """
        to = form.get("To", "").strip()
        sender = form.get("From", "").strip()
        service = form.get("MessagingServiceSid", "").strip()
        channel, number = channel_address(to)
        if not to:
            raise TwilioApiError(400, 21604, "A 'To' phone number is required.")
        if not is_sms_number(number):
            raise TwilioApiError(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not sender and not service:
            raise TwilioApiError(400, 21603, "A 'From' phone number is required.")
        if sender:
            check_sender(channel, sender)
        body, template_sid = self._content(form)
        if len(body) > MAX_BODY:
            raise TwilioApiError(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        now = datetime.now(UTC)
        sid = "SM" + uuid.uuid4().hex
        whatsapp = channel == "whatsapp"
        message = message_resource(
            sid,
            to=to,
            sender=sender or None,
            service=service or None,
            body=body,
            direction="outbound-api",
            # A Messaging Service accepts first and picks a sender later; a number queues at once.
            status="accepted" if service else "queued",
            # unconfirmed: that Twilio counts one segment for any WhatsApp message.
            num_segments=0 if service else 1 if whatsapp else segments(body),
            now=now,
        )
        with self._lock:
            if number in self.opted_out:
                raise TwilioApiError(400, 21610, "Attempt to send to unsubscribed recipient")
            outside = whatsapp and template_sid is None and not self._in_window(number, now)
            if outside and self.sync_window_errors:
                raise TwilioApiError(400, OUTSIDE_WINDOW, _OUTSIDE_WINDOW_MESSAGE)
            self.messages.append(message)
            if form.get("StatusCallback"):
                self.status_callbacks[sid] = form["StatusCallback"]
            answer = dict(message)
            if outside:
                # Twilio hands the message to WhatsApp, which refuses it: the failure comes later.
                self._move(message, "failed", OUTSIDE_WINDOW, now, error_message=_OUTSIDE_WINDOW_MESSAGE)
        return answer

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

    def receive_inbound(
        self, from_: str, body: str, *, url: str | None = None, at: datetime | None = None
    ) -> dict[str, str]:
        """A message from `from_` ("+1…" by SMS, "whatsapp:+1…" by WhatsApp) to the sandbox's sender.

        STOP/START words change the opt-out list of the bare number (both channels); a WhatsApp
        message opens that number's 24-hour window (from `at`, default now). Returns the form
        parameters Twilio would POST to the incoming-message webhook, and queues them signed
        for `url` when given.
        """
        now = at or datetime.now(UTC)
        channel, number = channel_address(from_)
        whatsapp = channel == "whatsapp"
        to = WHATSAPP_SENDER if whatsapp else SANDBOX_FROM_NUMBER
        sid = "SM" + uuid.uuid4().hex
        message = message_resource(
            sid,
            to=to,
            sender=from_,
            service=None,
            body=body,
            direction="inbound",
            status="received",
            num_segments=1 if whatsapp else segments(body),
            now=now,
        )
        message["date_sent"] = rfc2822(now)
        change = opt_change(body)
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsMessageSid": sid,
            "AccountSid": SANDBOX_ACCOUNT_SID,
            "From": from_,
            "To": to,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": message["num_segments"],
            "SmsStatus": "received",
            "ApiVersion": API_VERSION,
        }
        if whatsapp:
            # unconfirmed: WhatsApp's extra inbound parameters (the sender's WhatsApp id and profile name).
            params["WaId"] = number.removeprefix("+")
            params["ProfileName"] = "Sandbox caller"
        elif change is not None:
            # Twilio's Advanced Opt-Out adds the keyword type to the inbound SMS webhook.
            params["OptOutType"] = "STOP" if change == "opt_out" else "START"
        with self._lock:
            self.messages.append(message)
            if whatsapp and now > self.whatsapp_windows.get(number, now - WHATSAPP_WINDOW):
                self.whatsapp_windows[number] = now
            # unconfirmed: that Twilio applies STOP/START sent over WhatsApp to the number's SMS too.
            if change == "opt_out":
                self.opted_out.add(number)
            elif change == "opt_in":
                self.opted_out.discard(number)
            if url is not None:
                self.pending.append(Callback.signed(url, params, SANDBOX_AUTH_TOKEN))
        return params

    def advance(self, sid: str, status: str, error_code: int | None = None) -> WebhookDelivery | None:
        """Move a message to `status`; returns the StatusCallback Twilio would send, if one was asked for.

        The signed request is also queued for `take_callbacks()`.
        """
        with self._lock:
            message = next((m for m in self.messages if m["sid"] == sid), None)
            if message is None:
                raise KeyError(f"no message {sid}")
            return self._move(message, status, error_code, datetime.now(UTC))

    def take_callbacks(self) -> list[Callback]:
        """The signed webhook requests queued so far (status callbacks, inbound messages), oldest first; clears them."""
        with self._lock:
            taken, self.pending = self.pending, []
        return taken

    def requeue(self, callbacks: list[Callback]) -> None:
        """Put undelivered callbacks back at the front of the queue, in their order."""
        with self._lock:
            self.pending[:0] = callbacks

    # -- helpers (called with the lock held) ------------------------------------------------------

    def _content(self, form: dict[str, str]) -> tuple[str, str | None]:
        """The message text and the template SID: free `Body`, or an approved template rendered."""
        content_sid = form.get("ContentSid", "").strip()
        raw_variables = form.get("ContentVariables", "")
        if raw_variables and not content_sid:
            raise TwilioApiError(400, 21654, "ContentSid Required")
        if not content_sid:
            body = form.get("Body", "")
            if not body and not form.get("MediaUrl"):
                raise TwilioApiError(400, 21602, "Message body is required.")
            return body, None
        template = template_by_sid(content_sid)
        if template is None:
            # unconfirmed: the HTTP status (400) and wording Twilio answers with for 21655.
            raise TwilioApiError(400, 21655, "The ContentSid is Invalid")
        # unconfirmed: that Twilio lists a template message with its rendered text as `body`.
        return template.render(parse_variables(raw_variables)), content_sid

    def _in_window(self, number: str, now: datetime) -> bool:
        opened = self.whatsapp_windows.get(number)
        return opened is not None and opened <= now < opened + WHATSAPP_WINDOW

    def _move(
        self,
        message: dict[str, Any],
        status: str,
        error_code: int | None,
        now: datetime,
        *,
        error_message: str | None = None,
    ) -> WebhookDelivery | None:
        """Update a stored message's status and queue its signed StatusCallback, if it asked for one."""
        whatsapp = str(message["to"]).startswith(WHATSAPP_PREFIX)
        message["status"] = status
        message["date_updated"] = rfc2822(now)
        if message["from"] is None:
            # A Messaging Service picks its sender once the message leaves the "accepted" state.
            message["from"] = WHATSAPP_SENDER if whatsapp else SANDBOX_FROM_NUMBER
            message["num_segments"] = "1" if whatsapp else str(segments(message["body"] or ""))
        if status in ("sent", "delivered", "undelivered", "read") and message["date_sent"] is None:
            message["date_sent"] = rfc2822(now)
        message["error_code"] = error_code
        message["error_message"] = None if error_code is None else error_message or f"Error {error_code}"
        url = self.status_callbacks.get(message["sid"])
        if url is None:
            return None
        params = status_callback_params(message, status, error_code)
        self.pending.append(Callback.signed(url, params, SANDBOX_AUTH_TOKEN))
        return WebhookDelivery(url=url, params=params)


def _sent_matches(date_sent: str, filters: dict[str, date]) -> bool:
    day = datetime.strptime(date_sent, "%a, %d %b %Y %H:%M:%S %z").date()
    exact, before, after = filters.get("DateSent"), filters.get("DateSent<"), filters.get("DateSent>")
    return (exact is None or day == exact) and (before is None or day <= before) and (after is None or day >= after)
