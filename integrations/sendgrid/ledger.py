"""What this process sent under each idempotency key, so a repeated send answers without mailing twice.

SendGrid has no idempotency key. Dispatch already stops two calls with one key from running at
once and replays a completed call, but it frees the key after a provider error so the call can
be retried; and the post-call workers may repeat a send whose outcome they did not record. The
ledger remembers each mail SendGrid accepted, by key and exact body, and answers a repeat with
it. The memory is per process and bounded.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from integrations.capabilities.models import Message

__all__ = ["SentLedger"]


def _fingerprint(mail: Mapping[str, Any]) -> str:
    return json.dumps(mail, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class SentLedger:
    """Idempotency key -> the mail body SendGrid accepted under it, and the message it became."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, tuple[str, Message]] = OrderedDict()

    def sent(self, key: str, mail: Mapping[str, Any]) -> Message | None:
        """The message accepted under `key` for this very body; None when there is none.

        A key reused for a different email (another recipient, text or template) is a new send.
        """
        entry = self._entries.get(key)
        if entry is None or entry[0] != _fingerprint(mail):
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def record(self, key: str, mail: Mapping[str, Any], message: Message) -> None:
        """SendGrid accepted `mail` under `key` as `message`."""
        self._entries[key] = (_fingerprint(mail), message)
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
