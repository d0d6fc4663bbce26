"""Late events: what a call's record gained after its sync started goes to the CRM as an update note.

A recording URL, or an analysis with the summary, can arrive minutes after the platform's last
word (Retell's `call_analyzed` after the final-event wait ran out, a `recording_ready` posted to
`/v1/calls`). The booking, texts and emails were made from what the call decided and are not
redone; the CRM's note is what those fields feed, so the contact gets one more note with only
what changed. Each distinct change is one job, `update:<fields>:<digest>`, planned once per
record: a replayed event plans nothing new and a retried job adds its note once.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tool_server.calls.models import RESYNC_FIELDS, CallRecord
from tool_server.postcall.job_kit import JobContext, call_tool

__all__ = ["CRM_UPDATE", "crm_update_job", "update_job", "update_note_text"]

CRM_UPDATE = "update:"
_LABELS = {"summary": "Summary", "outcome": "Outcome", "sentiment": "Sentiment", "recording_url": "Recording"}


def update_job(record: CallRecord, fields: tuple[str, ...]) -> str:
    """The job for this change: which fields (a bit each) and a digest of their new values.

    Short enough for the steps table (32 characters), and equal for equal changes, so the same
    change delivered twice is one job.
    """
    mask = sum(1 << RESYNC_FIELDS.index(name) for name in fields)
    values = json.dumps([getattr(record, name) for name in fields], sort_keys=True, default=str)
    return f"{CRM_UPDATE}{mask:x}:{hashlib.sha256(values.encode('utf-8')).hexdigest()[:16]}"


def _fields_of(job: str) -> tuple[str, ...]:
    mask = int(job.removeprefix(CRM_UPDATE).split(":", 1)[0], 16)
    return tuple(name for index, name in enumerate(RESYNC_FIELDS) if mask & (1 << index))


def update_note_text(record: CallRecord, fields: tuple[str, ...]) -> str:
    """The update note: the call it belongs to, then each changed field as it is now."""
    lines = [f"Update to call {record.call_id} via {record.platform}"]
    lines += [f"{_LABELS[name]}: {getattr(record, name)}" for name in fields if getattr(record, name)]
    return "\n".join(lines)[:4900]


async def crm_update_job(context: JobContext, job: str) -> dict[str, Any]:
    """Add the update note to the caller's contact in the agent's CRM."""
    record = context.record
    fields = _fields_of(job)
    if not record.caller_phone and not record.caller_email:
        return {"skipped": "the call reported neither a phone nor an email to match a contact on"}
    # The same look-up the CRM job made: under the call id it finds (or replays) the same contact.
    saved = await call_tool(
        context,
        "create_contact",
        {
            "contact_name": record.caller_name,
            "contact_phone": record.caller_phone,
            "contact_email": record.caller_email,
        },
    )
    contact_id = saved["contact"]["contact_id"]
    note = await call_tool(
        context,
        "add_note",
        {"contact_id": contact_id, "note": update_note_text(record, fields)},
        idempotency_key=f"postcall:{record.call_id}:{job}",
    )
    return {"contact_id": contact_id, "note_id": note["note"]["note_id"], "updated": list(fields)}
