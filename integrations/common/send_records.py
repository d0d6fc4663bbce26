"""What a connection sent under each idempotency key, shared by every process that may retry the send.

Texts, mails, channel posts and automation hooks carry no idempotency key at the vendor (or, for
Twilio, none that survives a lost answer). A connector therefore remembers, per key, what it asked
for and what the vendor confirmed, and answers a repeat from that record instead of sending again.
A retry can arrive in another server process or post-call worker than the first attempt: the
server hands each connector a store in its database (`ConnectorEnv.send_records`), so the record
is wherever the retry runs. `MemorySendRecords` is the process-local store for scripts and tests.

Records are small JSON objects the connector writes and reads back whole. `claim` attributes a
vendor object (a message SID found by a lookup) to one key, atomically, so two keys looking for
their lost sends never both adopt the same message.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol, runtime_checkable

__all__ = ["MemorySendRecords", "SendRecords"]


@runtime_checkable
class SendRecords(Protocol):
    """Idempotency key → the connector's record of its send, for one connection."""

    async def get(self, key: str) -> dict[str, Any] | None:
        """The record kept under `key`, or None."""
        ...

    async def put(self, key: str, record: dict[str, Any]) -> None:
        """Keep `record` under `key`, replacing any earlier one."""
        ...

    async def forget(self, key: str) -> None:
        """Drop the record under `key` (the attempt certainly sent nothing)."""
        ...

    async def claim(self, object_id: str, key: str) -> bool:
        """Attribute the vendor object `object_id` to `key`: True if it is now (or already was) this
        key's, False if another key has it."""
        ...


class MemorySendRecords:
    """Send records in this process only, bounded; what a connector uses outside the server."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._records: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._owners: OrderedDict[str, str] = OrderedDict()

    async def get(self, key: str) -> dict[str, Any] | None:
        record = self._records.get(key)
        return None if record is None else dict(record)

    async def put(self, key: str, record: dict[str, Any]) -> None:
        self._records[key] = dict(record)
        self._records.move_to_end(key)
        _trim(self._records, self._capacity)

    async def forget(self, key: str) -> None:
        self._records.pop(key, None)

    async def claim(self, object_id: str, key: str) -> bool:
        owner = self._owners.setdefault(object_id, key)
        self._owners.move_to_end(object_id)
        _trim(self._owners, self._capacity)
        return owner == key


def _trim(entries: OrderedDict[str, Any], capacity: int) -> None:
    while len(entries) > capacity:
        entries.popitem(last=False)
