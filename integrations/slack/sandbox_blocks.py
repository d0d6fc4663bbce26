"""The emulator's Block Kit check: the limits Slack enforces on the blocks the connector sends.

Slack refuses a message whose blocks break a limit with `{"ok": false, "error": "invalid_blocks"}`
and a list of reasons in `response_metadata.messages`, each naming a JSON pointer
(https://docs.slack.dev/reference/block-kit/blocks). Only the block types a team post uses are
checked in depth (header, section, divider, context); others pass if they have a type.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_BLOCKS", "block_problems"]

MAX_BLOCKS = 50
_HEADER_CHARS = 150
_SECTION_CHARS = 3000
_FIELD_CHARS = 2000
_MAX_FIELDS = 10
_TEXT_TYPES = ("plain_text", "mrkdwn")


def block_problems(blocks: Any) -> list[str]:
    """Slack's `[ERROR] …` lines for `blocks`; empty when Slack would accept them."""
    if not isinstance(blocks, list):
        return ["[ERROR] must provide an array [json-pointer:/blocks]"]
    problems: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"[ERROR] no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    for index, block in enumerate(blocks):
        where = f"/blocks/{index}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(f"[ERROR] missing required field: type [json-pointer:{where}]")
            continue
        kind = block["type"]
        if kind == "header":
            problems += _text(block.get("text"), f"{where}/text", _HEADER_CHARS, types=("plain_text",))
        elif kind == "section":
            problems += _section(block, where)
    return problems


def _section(block: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    text, fields = block.get("text"), block.get("fields")
    if text is None and fields is None:
        problems.append(f"[ERROR] must provide either text or fields [json-pointer:{where}]")
    if text is not None:
        problems += _text(text, f"{where}/text", _SECTION_CHARS)
    if fields is not None:
        if not isinstance(fields, list) or not fields:
            return [*problems, f"[ERROR] must provide an array of at least 1 item [json-pointer:{where}/fields]"]
        if len(fields) > _MAX_FIELDS:
            problems.append(f"[ERROR] no more than {_MAX_FIELDS} items allowed [json-pointer:{where}/fields]")
        for number, field in enumerate(fields):
            problems += _text(field, f"{where}/fields/{number}", _FIELD_CHARS)
    return problems


def _text(value: Any, where: str, limit: int, *, types: tuple[str, ...] = _TEXT_TYPES) -> list[str]:
    if not isinstance(value, dict) or value.get("type") not in types:
        return [f"[ERROR] must be a text object of type {' or '.join(types)} [json-pointer:{where}]"]
    text = value.get("text")
    if not isinstance(text, str) or not text:
        return [f"[ERROR] must be at least 1 characters [json-pointer:{where}/text]"]
    if len(text) > limit:
        return [f"[ERROR] must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    if value.get("type") == "plain_text" and "verbatim" in value:
        return [f"[ERROR] verbatim is only allowed on mrkdwn text [json-pointer:{where}/verbatim]"]
    return []
