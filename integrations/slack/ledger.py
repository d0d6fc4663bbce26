"""What this process posted under each idempotency key, so a retried post does not reach the channel twice.

Slack has no idempotency key. Dispatch already stops two calls with the same key from running at
once and replays a completed call, but frees the key after a provider error so the call can be
retried. A post whose outcome is unknown (a 5xx, `fatal_error`, a timeout, a cancelled call) may
nevertheless be in the channel, so its attempt stays here marked doubtful; the next post under the
key first looks for it in the channel's history (the key rides in the message's metadata). A key
whose post Slack confirmed answers from memory without calling Slack. The memory is per process
and bounded.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from integrations.capabilities.models import TeamPost

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
    """Idempotency key → the attempt made under it, least recently used dropped first."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, Attempt] = OrderedDict()

    def get(self, key: str) -> Attempt | None:
        return self._entries.get(key)

    def put(self, key: str, attempt: Attempt) -> None:
        """Record an attempt before its first request, so a cancelled call still leaves a trace."""
        self._entries[key] = attempt
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        """Slack refused every post under the key: a retry may post afresh."""
        self._entries.pop(key, None)
