"""Redacting personal data before it is written to the audit log."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["redact"]

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")


def _mask_phone(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    return f"***{digits[-2:]}" if len(digits) >= 2 else "***"


def _mask_text(text: str) -> str:
    text = _EMAIL.sub(lambda m: f"***@{m.group(1)}", text)
    return _PHONE.sub(lambda m: _mask_phone(m.group(0)), text)


def redact(value: Any, key: str = "") -> Any:
    """A copy of `value` with phone numbers and email addresses masked, wherever they appear.

    Fields named like phones or emails are masked whole; free text (notes, bodies) is scanned.
    """
    lowered = key.lower()
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(item, key) for item in value]
    if isinstance(value, str):
        if "phone" in lowered or lowered == "to":
            return _mask_phone(value)
        if "email" in lowered:
            match = _EMAIL.search(value)
            return f"***@{match.group(1)}" if match else "***"
        return _mask_text(value)
    return value
