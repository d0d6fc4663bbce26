"""Pure functions between the shared models and Slack's JSON: Block Kit layout, escaping, metadata.

A `TeamMessage` becomes a `chat.postMessage` body: `text` (the notification fallback) and
`blocks`: a header from `title`, a section with the text, and sections of `fields` (ten per
section, Slack's limit). Caller text never becomes Slack markup: `&`, `<` and `>` are escaped as
Slack asks (https://docs.slack.dev/messaging/formatting-message-text#escaping), so no text can
form `<!channel>`, `<@U…>` or `<https://…|link>`, and mrkdwn objects are `verbatim` so Slack does
not turn bare URLs and #channel names into links either.

The post's idempotency key rides in the message's metadata
(https://docs.slack.dev/messaging/message-metadata), where `conversations.history` with
`include_all_metadata` shows it, so a post that may have landed can be found again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integrations.capabilities.models import TeamMessage, TeamPost
from integrations.slack.errors import PROVIDER

__all__ = [
    "EVENT_TYPE",
    "FIELDS_PER_SECTION",
    "FIELD_CHARS",
    "HEADER_CHARS",
    "SECTION_CHARS",
    "TEXT_CHARS",
    "blocks",
    "escape",
    "key_of",
    "post_request",
    "to_team_post",
]

# https://docs.slack.dev/reference/block-kit/blocks/header-block: plain_text, at most 150 characters.
HEADER_CHARS = 150
# https://docs.slack.dev/reference/block-kit/blocks/section-block: text at most 3000 characters,
# at most 10 fields of at most 2000 characters each.
SECTION_CHARS = 3000
FIELD_CHARS = 2000
FIELDS_PER_SECTION = 10
# Slack truncates `text` beyond 40,000 characters; a team notification needs far fewer.
TEXT_CHARS = 4000
# The metadata event type of every post this server makes (letters, digits and underscores).
EVENT_TYPE = "tool_server_post"
_ELLIPSIS = "…"


def escape(text: str) -> str:
    """`text` with Slack's three control characters escaped: it shows as typed, and links or pings nothing."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    """At most `limit` characters, an ellipsis marking a cut; never cuts an escape like `&amp;` in half."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(_ELLIPSIS)]
    entity = cut.rfind("&")
    if entity != -1 and ";" not in cut[entity:]:
        cut = cut[:entity]
    return cut + _ELLIPSIS


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def blocks(message: TeamMessage) -> list[dict[str, Any]]:
    """The Block Kit layout of `message`: header, text section, field sections (each only when present)."""
    layout: list[dict[str, Any]] = []
    title = (message.title or "").strip()
    if title:
        # plain_text is not parsed for mentions or links, so the title is not escaped.
        # unconfirmed: whether Slack would show "&amp;" in plain_text literally or decode it.
        layout.append({"type": "header", "text": {"type": "plain_text", "text": _clip(title, HEADER_CHARS)}})
    if message.text.strip():
        layout.append({"type": "section", "text": _mrkdwn(_clip(escape(message.text), SECTION_CHARS))})
    fields = [
        _mrkdwn(_clip(f"*{escape(label)}*\n{escape(value)}", FIELD_CHARS))
        for label, value in message.fields.items()
        if label.strip() or value.strip()
    ]
    for start in range(0, len(fields), FIELDS_PER_SECTION):
        layout.append({"type": "section", "fields": fields[start : start + FIELDS_PER_SECTION]})
    return layout


def post_request(message: TeamMessage, channel: str, key: str) -> dict[str, Any]:
    """The keyword arguments of `WebClient.chat_postMessage` for `message` under idempotency `key`."""
    # https://docs.slack.dev/reference/methods/chat.postMessage
    return {
        "channel": channel,
        # The fallback shown in notifications; it is parsed like mrkdwn, so it is escaped too.
        "text": _clip(escape(message.text or message.title or ""), TEXT_CHARS),
        "blocks": blocks(message),
        "metadata": {"event_type": EVENT_TYPE, "event_payload": {"idempotency_key": key}},
        # Caller text may hold URLs: no previews of pages nobody chose to share.
        "unfurl_links": False,
        "unfurl_media": False,
    }


def key_of(payload: Mapping[str, Any]) -> str | None:
    """The idempotency key a message from `conversations.history` carries in its metadata, if ours."""
    metadata = payload.get("metadata")
    if not isinstance(metadata, Mapping) or metadata.get("event_type") != EVENT_TYPE:
        return None
    event = metadata.get("event_payload")
    key = event.get("idempotency_key") if isinstance(event, Mapping) else None
    return key if isinstance(key, str) else None


def to_team_post(payload: Mapping[str, Any], *, channel: str, text: str) -> TeamPost:
    """A posted message: `payload` is chat.postMessage's answer, or a message from the history.

    `channel` is the channel id (the answer's own, when it has one); `text` the caller's text.
    """
    ts = payload.get("ts")
    if not isinstance(ts, str) or not ts:
        message = payload.get("message")
        ts = message.get("ts") if isinstance(message, Mapping) else None
    return TeamPost(
        id=str(ts or ""),
        channel=str(payload.get("channel") or channel),
        text=text,
        provider=PROVIDER,
        raw=dict(payload),
    )
