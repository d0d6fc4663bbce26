"""Filling in what a voice platform left out of a finished call: summary, outcome, requested appointment.

`extract` asks an OpenAI-compatible model for a structured answer (a strict JSON schema built from
`ExtractionAnswer`, validated with the same model) and falls back to `fallback`, a deterministic reading
of the caller's turns, when no model is configured or the model fails in any way. `apply` copies the
result onto the record without overwriting anything the platform reported.

Typical use, once a call's record is complete::

    if needs_extraction(record):
        found = await extract(record, ExtractionSettings.from_settings(settings), today=..., business_timezone=...)
        record = apply(record, found)

The modules: `_answers` (answers and settings), `_model_call` (the model and its prompts), `_fallback`
with `_names` and `_when` (the deterministic reading), `_api` (deciding, extracting, applying).
"""

from __future__ import annotations

from tool_server.postcall.extraction._answers import (
    Extraction,
    ExtractionAnswer,
    ExtractionSettings,
    Outcome,
    RequestedAppointment,
    Sentiment,
)
from tool_server.postcall.extraction._api import apply, extract, needs_extraction
from tool_server.postcall.extraction._fallback import fallback
from tool_server.postcall.extraction._model_call import PROMPTS_DIR, read_prompt

__all__ = [
    "PROMPTS_DIR",
    "Extraction",
    "ExtractionAnswer",
    "ExtractionSettings",
    "Outcome",
    "RequestedAppointment",
    "Sentiment",
    "apply",
    "extract",
    "fallback",
    "needs_extraction",
    "read_prompt",
]
