"""The payment receipt: a text thanking whoever paid, once a verified webhook says the money arrived.

It runs outside any call's sync (a caller can pay hours later), through `send_sms` in dispatch,
keyed by the paid object: a webhook delivered twice, or a crash mid-send, still texts once.
"""

from __future__ import annotations

from typing import Any

from tool_server.dispatch import CallInfo
from tool_server.postcall.job_kit import JobFailedError
from tool_server.services import Services
from tool_server.spoken import spoken_money

__all__ = ["receipt_text", "send_receipt"]


def receipt_text(business: str, amount_minor: int | None, currency: str | None, number: str | None) -> str:
    amount = f" of {spoken_money(amount_minor, currency)}" if amount_minor and currency else ""
    what = f" for invoice {number}" if number else ""
    return f"{business}: thank you, we've received your payment{amount}{what}. Reply STOP to opt out."


async def send_receipt(services: Services, agent_id: str, provider: str, object_id: str) -> dict[str, Any]:
    """Text the receipt for one paid object. Raises `JobFailedError` (retryable when the provider is)."""
    record = await services.payments.get(agent_id, provider, object_id)
    agent = await services.agents.get(agent_id)
    if record is None or agent is None or record.status != "paid":
        return {"skipped": "no paid record for this object"}
    if not record.contact_phone:
        return {"skipped": "no phone number is known for whoever paid"}
    number = record.snapshot.get("number") if record.snapshot else None
    body = receipt_text(agent.name, record.amount_minor, record.currency, number if isinstance(number, str) else None)
    call = CallInfo(
        transport="postcall",
        call_id=record.call_id,
        idempotency_key=f"receipt:{provider}:{object_id}",
    )
    outcome = await services.dispatcher.execute(agent, "send_sms", {"to": record.contact_phone, "body": body}, call)
    if outcome.error is not None:
        raise JobFailedError.of("send_sms", outcome.error)
    assert outcome.result is not None
    return {"message_id": outcome.result["message"]["message_id"]}
