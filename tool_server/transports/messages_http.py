"""Messages and their delivery, and REST-hook subscriptions, over HTTP for the agent's own API key.

`GET /v1/messages/{id}` and `GET /v1/messages?contact_phone=…` show each message's channel, status
and history (queued → sent → delivered, or failed with the provider's code) and what caused it.
`POST /v1/hooks`, `DELETE /v1/hooks/{id}` and `GET /v1/hooks/samples/{event}` are REST hooks as
Zapier, Make and n8n expect them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from tool_server.errors import ErrorCode, ToolError
from tool_server.hooks.events import EVENTS, HookEvent, sample
from tool_server.message_log import MessageRecord
from tool_server.phones import normalize_phone
from tool_server.services import Services
from tool_server.text_checks import control_character_problem
from tool_server.transports.http_api import CurrentAgent
from tool_server.transports.http_errors import error_response

__all__ = ["build_messages_router"]


class MessageList(BaseModel):
    messages: list[MessageRecord]


class HookRequest(BaseModel):
    """A subscription as Zapier's REST hooks send it: where to POST, and which event."""

    target_url: str = Field(min_length=1, max_length=2048, description="The subscriber's URL (a secret).")
    event: str = Field(min_length=1, max_length=64, description=f"One of: {', '.join(EVENTS)}.")


class HookCreated(BaseModel):
    id: str
    event: str
    secret: str = Field(description="Signs every delivery (X-Hook-Signature); shown only now.")
    created_at: str


class HookView(BaseModel):
    id: str
    event: str
    created_at: str


def build_messages_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["messages and hooks"])

    @router.get("/messages/{message_id}", response_model=MessageRecord, summary="One message and its delivery")
    async def get_message(message_id: str, agent: CurrentAgent) -> Response:
        found = None if len(message_id) > 128 else await services.messages.get(agent.id, message_id)
        if found is None:
            return error_response(ToolError(ErrorCode.NOT_FOUND, "no such message for this agent").info())
        return JSONResponse(found.model_dump(mode="json"))

    @router.get("/messages", response_model=MessageList, summary="The agent's messages, newest first")
    async def list_messages(
        agent: CurrentAgent,
        contact_phone: Annotated[str | None, Query(max_length=40)] = None,
        contact_email: Annotated[str | None, Query(max_length=320)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> Response:
        try:
            to = _recipient(contact_phone, contact_email, agent.phone_region)
        except ToolError as error:
            return error_response(error.info())
        found = await services.messages.recent(agent.id, to=to, limit=limit)
        return JSONResponse(MessageList(messages=found).model_dump(mode="json"))

    @router.post("/hooks", status_code=201, response_model=HookCreated, summary="Subscribe a URL to an event")
    async def subscribe(body: HookRequest, agent: CurrentAgent) -> Response:
        try:
            created = await services.hooks.subscribe(agent.id, body.event, body.target_url)
        except ToolError as error:
            return error_response(error.info())
        shown = HookCreated(
            id=created.id, event=created.event, secret=created.secret, created_at=created.created_at.isoformat()
        )
        return JSONResponse(shown.model_dump(), status_code=201)

    @router.get("/hooks", summary="The agent's subscriptions (URLs and secrets are never shown again)")
    async def list_hooks(agent: CurrentAgent) -> dict[str, Any]:
        subscriptions = await services.hooks.of_agent(agent.id)
        views = [HookView(id=s.id, event=s.event, created_at=s.created_at.isoformat()) for s in subscriptions]
        return {"hooks": [view.model_dump() for view in views]}

    @router.delete("/hooks/{subscription_id}", status_code=204, summary="Unsubscribe")
    async def unsubscribe(subscription_id: str, agent: CurrentAgent) -> Response:
        if len(subscription_id) > 64 or not await services.hooks.unsubscribe(agent.id, subscription_id):
            return error_response(ToolError(ErrorCode.NOT_FOUND, "no such subscription for this agent").info())
        return Response(status_code=204)

    @router.get("/hooks/samples/{event}", summary="Sample deliveries of an event (a list, as Zapier expects)")
    async def samples(event: str, agent: CurrentAgent) -> Response:
        if event not in EVENTS:
            known = ", ".join(EVENTS)
            return error_response(ToolError(ErrorCode.NOT_FOUND, f"no event {event[:64]!r}; events: {known}").info())
        chosen: HookEvent = event
        return JSONResponse([sample(chosen, agent.id)])

    return router


def _recipient(phone: str | None, email: str | None, region: str) -> str | None:
    if phone and email:
        raise ToolError.invalid("contact_phone", "give contact_phone or contact_email, not both")
    if phone:
        if control_character_problem(phone, free_text=False):
            raise ToolError.invalid("contact_phone", "has control characters")
        return normalize_phone(phone, region, "contact_phone")
    if email:
        if control_character_problem(email, free_text=False):
            raise ToolError.invalid("contact_email", "has control characters")
        return email.strip().lower()
    return None
