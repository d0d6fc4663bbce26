"""Masking phone numbers and email addresses before they are written to the audit log or a log line.

Only phones and emails are masked. Dates, times, amounts and ids pass unchanged, so the audit log
still says when a booking was for ("2026-03-03T14:00", "12:20 America/New_York").

Every pattern runs on RE2 (linear time), and no string longer than `MAX_TEXT` characters is
scanned: longer text is cut first, so masking costs the same whatever a caller sends.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from integrations.common.linear_regex import LinearMatch, compile_linear

__all__ = ["MAX_TEXT", "mask_phone", "mask_query", "mask_text", "redact"]

MAX_TEXT = 2000
_MAX_DEPTH = 6
_MAX_ITEMS = 64

_EMAIL = compile_linear(r"[A-Za-z0-9._%+-]{1,64}@((?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24})\b")
# At one position the first alternative that matches wins: a date or a time is claimed (and kept)
# before its digits could be read as a phone number.
_NUMBERS = compile_linear(
    r"(?P<datetime>\b\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?)"
    r"|(?P<time>\b\d{1,2}:\d{2}(?::\d{2})?)"
    r"|(?P<phone>(?:\+\(?|\(|\b)\d[\d ().-]{5,22}\d\b)"
)
_MIN_PHONE_DIGITS, _MAX_PHONE_DIGITS = 7, 15


def _digits(text: str) -> str:
    return "".join(character for character in text if character.isdigit())


def mask_phone(text: str) -> str:
    """A phone number as `***42`: its last two digits only."""
    digits = _digits(text[:MAX_TEXT])
    return f"***{digits[-2:]}" if len(digits) >= 2 else "***"


def _mask_number(match: LinearMatch) -> str:
    found = str(match.group(0))
    if match.group("phone") is None:
        return found
    if not _MIN_PHONE_DIGITS <= len(_digits(found)) <= _MAX_PHONE_DIGITS:
        return found
    return mask_phone(found)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else f"{text[:MAX_TEXT]}…(+{len(text) - MAX_TEXT} characters)"


def mask_text(text: str) -> str:
    """`text` (cut to MAX_TEXT characters) with every email and phone number in it masked."""
    text = _cut(text)
    # Most text holds no email and too few digits for a phone: skip the patterns (a call into
    # RE2 costs microseconds even when nothing matches).
    if "@" in text:
        text = _EMAIL.sub(lambda match: f"***@{match.group(1)}", text)
    if sum(character.isdigit() for character in text) >= _MIN_PHONE_DIGITS:
        text = _NUMBERS.sub(_mask_number, text)
    return text


def _mask_email(text: str) -> str:
    match = _EMAIL.search(_cut(text))
    return f"***@{match.group(1)}" if match else "***"


def redact(value: Any, key: str = "", *, _depth: int = 0) -> Any:
    """A copy of `value` with phone numbers and email addresses masked, wherever they appear.

    Fields named like phones or emails are masked whole; other text is scanned. Strings are cut
    to MAX_TEXT characters, and objects and lists to 64 entries and 6 levels.
    """
    lowered = key.lower()
    if _depth > _MAX_DEPTH:
        return "…"
    if isinstance(value, dict):
        items = list(value.items())[:_MAX_ITEMS]
        return {str(k)[:64]: redact(v, str(k), _depth=_depth + 1) for k, v in items}
    if isinstance(value, list):
        return [redact(item, key, _depth=_depth + 1) for item in value[:_MAX_ITEMS]]
    if isinstance(value, str):
        if "phone" in lowered or lowered in ("to", "from", "number", "caller_number", "_caller_number"):
            return mask_phone(value)
        if "email" in lowered:
            return _mask_email(value)
        return mask_text(value)
    return value


def mask_query(query: str) -> str:
    """A URL query string with the phones and emails in its values masked (for access logs)."""
    pairs = parse_qsl(query[:MAX_TEXT], keep_blank_values=True)
    return urlencode([(name, redact(value, name)) for name, value in pairs], safe="*@:+")
