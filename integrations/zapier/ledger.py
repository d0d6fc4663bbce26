"""What was delivered to the catch hook under each idempotency key, so a repeat does not run the Zap twice.

A catch hook has no idempotency key (the Zap can filter on the `idempotency_key` field, but only
if the business built it so). Dispatch frees a key after a provider error, and post-call workers
may repeat a trigger whose outcome they did not record; the ledger remembers each delivery Zapier
accepted, by key and what was sent, and answers a repeat with it. It lives in the connection's
send records (the server's database), so the repeat may run in any process or worker.
"""

from __future__ import annotations

from integrations.capabilities.models import WorkflowRun
from integrations.common.send_records import SendRecords

__all__ = ["DeliveredLedger"]


class DeliveredLedger:
    """Idempotency key → (what was delivered, Zapier's run), for the keys Zapier accepted.

    Kept in the connection's `SendRecords`, so a key delivered in one process answers from the
    records in every other.
    """

    def __init__(self, records: SendRecords) -> None:
        self._records = records

    async def get(self, key: str, fingerprint: str) -> WorkflowRun | None:
        """The run delivered under `key`, if it was for the same event and data."""
        record = await self._records.get(key)
        if record is None or record.get("fingerprint") != fingerprint or record.get("run") is None:
            return None
        return WorkflowRun.model_validate(record["run"])

    async def put(self, key: str, fingerprint: str, run: WorkflowRun) -> None:
        """Zapier accepted the delivery of `fingerprint` under `key` as `run`."""
        await self._records.put(key, {"fingerprint": fingerprint, "run": run.model_dump(mode="json")})
