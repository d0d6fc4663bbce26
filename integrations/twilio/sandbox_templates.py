"""The sandbox account's approved WhatsApp templates, and the Content API that lists them.

Templates are Content resources (HX…) the Messages API sends with `ContentSid` and
`ContentVariables`; WhatsApp allows only approved ones outside the 24-hour customer-service
window. The emulator seeds two approved `twilio/text` templates with fixed SIDs, so
`sandbox_connection()` can name them in `whatsapp_templates`, and serves the read side of the
Content API over them (JSON, Basic auth, `https://content.twilio.com` rebased like every domain).

- Content API: https://www.twilio.com/docs/content/content-api-resources
- Variables: https://www.twilio.com/docs/content/using-variables-with-content-api
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.twilio.sandbox_wire import SANDBOX_ACCOUNT_SID, TwilioApiError, credentials_refusal

__all__ = [
    "CONTENT_HOST",
    "SANDBOX_TEMPLATES",
    "SANDBOX_TEMPLATE_SIDS",
    "SandboxTemplate",
    "content_routes",
    "parse_variables",
    "template_by_sid",
]

CONTENT_HOST = "https://content.twilio.com"
# Content resources carry ISO 8601 timestamps (the 2010 API's are RFC 2822).
_SEEDED_AT = "2026-01-05T09:00:00Z"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class SandboxTemplate:
    """One approved WhatsApp template of the sandbox account (a `twilio/text` Content resource)."""

    name: str
    sid: str
    body: str
    # Placeholder values used where ContentVariables leaves a variable out.
    defaults: dict[str, str] = field(default_factory=dict)
    category: str = "UTILITY"

    def render(self, variables: Mapping[str, str]) -> str:
        """The text WhatsApp shows: each {{n}} replaced by its variable, or else its default."""
        text = self.body
        # Plain replacement, no pattern matching: the placeholders are fixed strings.
        for key in {**self.defaults, **variables}:
            text = text.replace("{{" + key + "}}", variables.get(key, self.defaults.get(key, "")))
        return text

    def content(self) -> dict[str, Any]:
        """The Content resource as GET /v1/Content answers it."""
        url = f"{CONTENT_HOST}/v1/Content/{self.sid}"
        return {
            "sid": self.sid,
            "account_sid": SANDBOX_ACCOUNT_SID,
            "friendly_name": self.name,
            "language": "en",
            "variables": dict(self.defaults),
            "types": {"twilio/text": {"body": self.body}},
            "url": url,
            "date_created": _SEEDED_AT,
            "date_updated": _SEEDED_AT,
            "links": {
                "approval_create": f"{url}/ApprovalRequests/whatsapp",
                "approval_fetch": f"{url}/ApprovalRequests",
            },
        }

    def with_approvals(self) -> dict[str, Any]:
        """The resource as GET /v1/ContentAndApprovals answers it: approved for WhatsApp."""
        resource = {key: value for key, value in self.content().items() if key not in ("url", "links")}
        resource["approval_requests"] = {
            "name": self.name,
            "category": self.category,
            "content_type": "twilio/text",
            "status": "approved",
            "rejection_reason": "",
            "allow_category_change": False,
        }
        return resource


SANDBOX_TEMPLATES: tuple[SandboxTemplate, ...] = (
    SandboxTemplate(
        name="booking_confirmation",
        sid="HXb0c4f1a7e2d94c3b8a5f6e7d8c9b0a1f",
        body="{{1}}: you're booked for {{2}}.",
        defaults={"1": "Hello", "2": "your appointment"},
    ),
    SandboxTemplate(
        name="follow_up",
        sid="HXf0110f0a2b3c4d5e6f7a8b9c0d1e2f3a",
        body="Hi {{1}}, thanks for getting in touch. Reply here if there is anything else we can do.",
        defaults={"1": "there"},
    ),
)
# Template name -> Content SID: what `sandbox_connection()` puts in `whatsapp_templates`.
SANDBOX_TEMPLATE_SIDS: dict[str, str] = {template.name: template.sid for template in SANDBOX_TEMPLATES}


def template_by_sid(sid: str) -> SandboxTemplate | None:
    return next((template for template in SANDBOX_TEMPLATES if template.sid == sid), None)


def parse_variables(raw: str) -> dict[str, str]:
    """ContentVariables as Twilio accepts it: a JSON object of non-empty strings, else error 21656.

    https://www.twilio.com/docs/api/errors/21656
    """
    try:
        parsed = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict) or not all(isinstance(value, str) and value for value in parsed.values()):
        raise TwilioApiError(400, 21656, "The ContentVariables Parameter is invalid")
    return {str(key): str(value) for key, value in parsed.items()}


# -- the Content API (read side) -----------------------------------------------------------------


def _page(request: Request, key_path: str, items: list[dict[str, Any]]) -> Response:
    """A Content API list page: {"contents": [...], "meta": {page, page_size, …_url, key}}."""
    try:
        size = min(MAX_PAGE_SIZE, max(1, int(request.query_params.get("PageSize", DEFAULT_PAGE_SIZE))))
        page = max(0, int(request.query_params.get("Page", 0)))
    except ValueError:
        return TwilioApiError(400, 20001, "Invalid PageSize or Page").response()

    def url(number: int) -> str:
        return f"{CONTENT_HOST}{key_path}?PageSize={size}&Page={number}"

    start = page * size
    more = start + size < len(items)
    return JSONResponse(
        {
            "contents": items[start : start + size],
            "meta": {
                "page": page,
                "page_size": size,
                "first_page_url": url(0),
                "previous_page_url": url(page - 1) if page > 0 else None,
                "url": url(page),
                "next_page_url": url(page + 1) if more else None,
                "key": "contents",
            },
        }
    )


async def _list_content(request: Request) -> Response:
    refused = credentials_refusal(request)
    if refused is not None:
        return refused
    return _page(request, "/v1/Content", [template.content() for template in SANDBOX_TEMPLATES])


async def _fetch_content(request: Request) -> Response:
    refused = credentials_refusal(request)
    if refused is not None:
        return refused
    template = template_by_sid(request.path_params["sid"])
    if template is None:
        return TwilioApiError(404, 20404, f"The requested resource {request.url.path} was not found").response()
    return JSONResponse(template.content())


async def _list_with_approvals(request: Request) -> Response:
    refused = credentials_refusal(request)
    if refused is not None:
        return refused
    return _page(request, "/v1/ContentAndApprovals", [template.with_approvals() for template in SANDBOX_TEMPLATES])


def content_routes() -> list[Route]:
    """GET /v1/Content, /v1/Content/{Sid} and /v1/ContentAndApprovals over the seeded templates."""
    return [
        Route("/v1/Content", _list_content, methods=["GET"]),
        Route("/v1/Content/{sid}", _fetch_content, methods=["GET"]),
        Route("/v1/ContentAndApprovals", _list_with_approvals, methods=["GET"]),
    ]
