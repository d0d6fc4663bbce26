"""Recording a finished call's events: read the payload off the event loop, store it, start the sync.

Shared by the Vapi endpoint (whose one URL takes tool calls and the end-of-call report) and the
call-report routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from fastapi.responses import JSONResponse, Response

from tool_server.agents.models import Agent
from tool_server.calls.models import CallRecord
from tool_server.errors import ToolError
from tool_server.json_text import NOT_JSON, loads_or_not_json
from tool_server.phones import normalize_phone
from tool_server.services import Services
from tool_server.text_checks import without_control_characters
from tool_server.transports.http_errors import error_response

__all__ = ["CallRecorder", "Normalizer", "json_body"]

logger = logging.getLogger(__name__)

Normalizer = Callable[[Any], CallRecord]


def json_body(body: bytes) -> Any:
    """A request body as JSON (empty is `{}`), or a VALIDATION_ERROR naming `body`."""
    if not body.strip():
        return {}
    parsed = loads_or_not_json(body)
    if parsed is NOT_JSON:
        raise ToolError.invalid("body", "the body is not valid JSON (or is nested too deeply)")
    return parsed


def _normalized(payload: Any, normalize: Normalizer, phone_region: str, *, strict: bool) -> tuple[Any, CallRecord]:
    """The payload without control characters, and the call record read from it.

    A platform's payload is cleaned before it is read (the caller cannot fix the platform's
    report); a `strict` one (our own `/v1/calls` shape) is read as sent, so control characters
    are refused with the field named.
    """
    cleaned = without_control_characters(payload)
    try:
        record = normalize(payload if strict else cleaned)
    except ToolError:
        raise
    except Exception as error:
        # A platform payload of an unexpected shape is refused, never a 500; the log shows where.
        logger.warning("could not read a call report (%s)", type(error).__name__, exc_info=error)
        raise ToolError.invalid("body", "the body is not a call report of the documented shape") from None
    if record.caller_phone:
        # A number that does not parse is kept as the platform reported it.
        with contextlib.suppress(ToolError):
            phone = normalize_phone(record.caller_phone[:64], phone_region, "caller_phone")
            record = record.model_copy(update={"caller_phone": phone})
    return cleaned, record


class CallRecorder:
    """Stores platform events as call records and starts each call's post-call sync once."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def record(
        self, agent: Agent, event: str, payload: Any, normalize: Normalizer, *, final: bool = True, strict: bool = False
    ) -> Response:
        """Store one platform event and start the post-call sync when it is the call's last word.

        Cleaning and normalizing a payload of up to a megabyte is CPU work: it runs on a thread.
        """
        try:
            cleaned, normalized = await asyncio.to_thread(
                partial(_normalized, payload, normalize, agent.phone_region, strict=strict)
            )
        except ToolError as error:
            return error_response(error.info())
        if not normalized.call_id:
            return error_response(ToolError.invalid("call_id", "the payload carries no call id").info())
        recorded = await self._services.calls.record(agent.id, event, normalized, cleaned, final=final)
        status = recorded.record.sync_status
        if recorded.ready and self._services.sync is not None:
            try:
                # Only enqueued here, so the platform gets its answer at once.
                await self._services.sync.submit(recorded.record_id)
            except Exception:
                # The record stays queued; the engine's sweep starts its sync later.
                logger.exception("post-call sync: could not enqueue %s; the sweep will", recorded.record_id)
        elif recorded.resync and self._services.sync is not None:
            try:
                if await self._services.sync.resync(recorded.record_id, recorded.resync) is not None:
                    status = "syncing"
            except Exception:
                # Unlike a first sync, no sweep starts it later, and a redelivery is a duplicate.
                logger.exception("post-call sync: could not start the CRM update of %s", recorded.record_id)
        return JSONResponse(
            {
                "call_id": normalized.call_id,
                "event": event,
                "duplicate": recorded.duplicate,
                "sync_status": status,
            }
        )
