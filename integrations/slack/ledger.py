"""What was posted under each idempotency key, so a retried post does not reach the channel twice.

Slack has no idempotency key. Dispatch already stops two calls with the same key from running at
once and replays a completed call, but frees the key after a provider error so the call can be
retried. A post whose outcome is unknown (a 5xx, `fatal_error`, a timeout, a cancelled call) may
nevertheless be in the channel, so its attempt stays here marked doubtful; the next post under the
key first looks for it in the channel's history (the key rides in the message's metadata). A key
whose post Slack confirmed answers from the ledger without calling Slack. The ledger lives in the
connection's send records (the server's database), so the retry may run in any process or worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integrations.capabilities.models import TeamPost
from integrations.common.send_records import SendRecords

__all__ = ["Attempt", "PostLedger"]


@dataclass
class Attempt:
    """The posts made under one key: how many may have landed unseen, and the post once Slack confirmed it."""

    # The key sent in the message metadata (the caller's, or one made up for a call without one).
    key: str
    # Wall-clock time just before the first request (not the connector's clock, which tests may pin).
    started_at: datetime
    # Posts sent whose answer never came (5xx, timeout, cancellation): if any, look before posting.
    doubtful: int = 0
    post: TeamPost | None = None


class PostLedger:
    """Idempotency key → the attempt made under it, in the connection's `SendRecords`.

    The connector writes the attempt back whenever its doubt count or post changes, so a retry in
    another process knows whether to look in the channel before posting. No claim is needed: a
    lookup matches the key in the message's metadata, which no other key's post carries.
    """

    def __init__(self, records: SendRecords) -> None:
        self._records = records

    async def get(self, key: str) -> Attempt | None:
        record = await self._records.get(key)
        return None if record is None else _attempt(record)

    async def put(self, key: str, attempt: Attempt) -> None:
        """Record the attempt as it stands: before its first request, so a cancelled call still leaves
        a trace, and after each change."""
        await self._records.put(key, _record(attempt))

    async def forget(self, key: str) -> None:
        """Slack refused every post under the key: a retry may post afresh."""
        await self._records.forget(key)


def _record(attempt: Attempt) -> dict[str, Any]:
    return {
        "key": attempt.key,
        "started_at": attempt.started_at.isoformat(),
        "doubtful": attempt.doubtful,
        "post": None if attempt.post is None else attempt.post.model_dump(mode="json"),
    }


def _attempt(record: Mapping[str, Any]) -> Attempt:
    post = record.get("post")
    return Attempt(
        key=record["key"],
        started_at=datetime.fromisoformat(record["started_at"]),
        doubtful=int(record.get("doubtful") or 0),
        post=None if post is None else TeamPost.model_validate(post),
    )
