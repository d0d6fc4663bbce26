"""Comparing phones a CRM stores (in any format people typed) with an E.164 number."""

from __future__ import annotations

import phonenumbers

__all__ = ["digits", "national_digits", "region_of", "same_number", "to_e164"]


def digits(text: str | None) -> str:
    """Only the digits of `text` ("(212) 555-0142" → "2125550142"); decimal digits of any script count."""
    return "".join(character for character in text or "" if character.isdecimal())


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def national_digits(e164: str) -> str | None:
    """The national significant number of an E.164 phone ("+12125550142" → "2125550142").

    (HubSpot's computed `hs_searchable_calculated_phone_number` holds exactly this.)
    """
    parsed = _parse(e164, None)
    return phonenumbers.national_significant_number(parsed) if parsed is not None else None


def region_of(e164: str | None) -> str | None:
    """The ISO region of an E.164 phone, to read stored numbers written without a country code."""
    parsed = _parse(e164, None) if e164 else None
    return phonenumbers.region_code_for_number(parsed) if parsed is not None else None


def same_number(stored: str | None, e164: str) -> bool:
    """Whether a stored phone, in whatever format, is the E.164 number (with or without country code)."""
    found = digits(stored)
    if not found:
        return False
    return found in {digits(e164), national_digits(e164)}


def to_e164(stored: str, region: str | None) -> str | None:
    """The stored phone as E.164 when it is a valid number (read in `region` if it has no "+"), else None."""
    parsed = _parse(stored, region)
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
