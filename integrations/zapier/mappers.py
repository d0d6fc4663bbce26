"""What a catch hook is sent, and how its answer becomes a `WorkflowRun`.

The body is one JSON object with the same four top-level fields on every delivery, so a Zap
built from one sample keeps its field mapping for every later event:

    {"event": "lead.captured",              # what happened, dotted lower-case by convention
     "idempotency_key": "…",               # also sent as the Idempotency-Key header
     "sent_at": "2026-03-04T15:00:00+00:00",
     "data": {"name": "Jane Doe", …}}      # the tool's data, nested objects kept

Zapier flattens nested objects with a double underscore, so the Zap sees `event`,
`idempotency_key`, `sent_at`, `data__name` (and `data__address__city` for deeper ones); lists of
objects become line items. Catch hooks have no idempotency of their own: a Zap that must never
run twice for one event adds a filter (or Storage step) on `idempotency_key`.
Docs: https://help.zapier.com/hc/en-us/articles/8496288690317-Trigger-Zaps-from-webhooks
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from integrations.capabilities.models import WorkflowRun
from integrations.zapier.errors import PROVIDER

__all__ = ["encode", "to_run", "trigger_payload"]


def trigger_payload(event: str, data: dict[str, Any], *, idempotency_key: str, sent_at: datetime) -> dict[str, Any]:
    """The JSON object posted to the catch hook (see the module docstring for its shape)."""
    return {"event": event, "idempotency_key": idempotency_key, "sent_at": sent_at.isoformat(), "data": data}


def encode(payload: dict[str, Any]) -> bytes:
    """The request body: compact UTF-8 JSON. A value JSON cannot hold (a date, say) is sent as its text."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def to_run(content: bytes, *, event: str, idempotency_key: str) -> WorkflowRun:
    """The run for a 2xx answer: Zapier's `id` (or `request_id`) when it sent JSON, else the key.

    A silent hook (`…/silent/`) answers with an empty body, and any 2xx counts as accepted:
    the Zap itself runs later, asynchronously.
    """
    answer: Any = None
    if content.strip():
        try:
            answer = json.loads(content)
        except ValueError:
            answer = None
    raw: dict[str, Any] = answer if isinstance(answer, dict) else {}
    run_id = next((raw[name] for name in ("id", "request_id") if isinstance(raw.get(name), str) and raw[name]), None)
    return WorkflowRun(id=run_id or idempotency_key, event=event, status="success", provider=PROVIDER, raw=raw)
