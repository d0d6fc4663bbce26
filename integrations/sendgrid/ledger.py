"""What was sent under each idempotency key, so a repeated send answers without mailing twice.

SendGrid has no idempotency key. Dispatch already stops two calls with one key from running at
once and replays a completed call, but it frees the key after a provider error so the call can
be retried; and the post-call workers may repeat a send whose outcome they did not record. The
ledger remembers each mail SendGrid accepted, by key and exact body, and answers a repeat with
it. It lives in the connection's send records (the server's database), so the repeat may run in
any process or worker.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from integrations.capabilities.models import Message
from integrations.common.send_records import SendRecords

__all__ = ["SentLedger"]


def _fingerprint(mail: Mapping[str, Any]) -> str:
    # A digest, not the body itself: the record is stored, and a mail's HTML may be long.
    canonical = json.dumps(mail, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class SentLedger:
    """Idempotency key -> the mail body SendGrid accepted under it, and the message it became.

    Kept in the connection's `SendRecords`, so a key SendGrid accepted in one process answers
    from the records in every other.
    """

    def __init__(self, records: SendRecords) -> None:
        self._records = records

    async def sent(self, key: str, mail: Mapping[str, Any]) -> Message | None:
        """The message accepted under `key` for this very body; None when there is none.

        A key reused for a different email (another recipient, text or template) is a new send.
        """
        record = await self._records.get(key)
        if record is None or record.get("mail") != _fingerprint(mail) or record.get("message") is None:
            return None
        return Message.model_validate(record["message"])

    async def record(self, key: str, mail: Mapping[str, Any], message: Message) -> None:
        """SendGrid accepted `mail` under `key` as `message`."""
        await self._records.put(key, {"mail": _fingerprint(mail), "message": message.model_dump(mode="json")})
