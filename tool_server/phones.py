"""Phone numbers: everything the server stores or sends is E.164."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

from tool_server.errors import ToolError

__all__ = ["normalize_phone"]


@lru_cache(maxsize=4096)
def _e164(text: str, region: str) -> str | None:
    # Parsing and validating costs ~0.2 ms; a caller's number recurs across a call's tools.
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalize_phone(text: str, region: str, field: str) -> str:
    """`text` as E.164, read in `region` (ISO 3166 alpha-2) when it has no country code.

    Raises a VALIDATION_ERROR naming `field` when the number cannot be a real number.
    """
    e164 = _e164(text, region)
    if e164 is None:
        raise ToolError.invalid(
            field,
            f"{text!r} is not a valid phone number for region {region}; "
            "give it with its area code, or in international form like +12125550142",
            speech="Sorry, I didn't get that number. Could you say it again with the area code?",
        )
    return e164
