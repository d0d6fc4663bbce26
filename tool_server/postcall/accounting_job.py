"""The accounting job: the caller's customer in the connected books, found (phone first, then email) or made,
and linked to their CRM contact."""

from __future__ import annotations

from typing import Any

from integrations.capabilities import AccountCustomer, CustomerDraft
from tool_server.postcall.job_kit import JobContext, call_tool, provider_call

__all__ = ["accounting_job"]


async def accounting_job(context: JobContext) -> dict[str, Any]:
    record = context.record
    if not record.caller_phone and not record.caller_email:
        return {"skipped": "the call reported neither a phone nor an email to match a customer on"}
    books = context.services.providers.for_agent(context.agent).accounting()
    found: list[AccountCustomer] = []
    if record.caller_phone:
        found = await provider_call(context, "find_customers", lambda: books.find_customers(phone=record.caller_phone))
    if not found and record.caller_email:
        found = await provider_call(context, "find_customers", lambda: books.find_customers(email=record.caller_email))
    if len(found) > 1:
        # Never guessed: the business picks the right one.
        return {"skipped": f"{len(found)} customers match this caller; none was chosen", "matches": len(found)}
    created = not found
    if found:
        customer = found[0]
    else:
        draft = CustomerDraft(
            name=record.caller_name or record.caller_email or record.caller_phone or "Caller",
            phone=record.caller_phone,
            email=record.caller_email,
            idempotency_key=f"postcall:{context.record_id}:accounting:customer",
        )
        customer = await provider_call(context, "create_customer", lambda: books.create_customer(draft))
    result: dict[str, Any] = {"customer_id": customer.id, "customer_created": created, "provider": customer.provider}
    if "crm" in context.agent.connections:
        # The same tool call, with the same arguments and call id, as the CRM job's: it answers the same
        # contact (replayed, or made here first and replayed there), never a second one.
        saved = await call_tool(
            context,
            "create_contact",
            {
                "contact_name": record.caller_name,
                "contact_phone": record.caller_phone,
                "contact_email": record.caller_email,
            },
        )
        result["crm_contact_id"] = saved["contact"]["contact_id"]
    return result
