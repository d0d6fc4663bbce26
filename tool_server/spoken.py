"""Turning instants into what a voice agent says: "Monday, March 9 at 2:30 PM Eastern time"."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

__all__ = ["spoken_clock", "spoken_datetime", "spoken_day", "spoken_list", "spoken_money", "zone_label"]

_FRIENDLY_ZONES = {
    "America/New_York": "Eastern time",
    "America/Detroit": "Eastern time",
    "America/Toronto": "Eastern time",
    "America/Chicago": "Central time",
    "America/Winnipeg": "Central time",
    "America/Denver": "Mountain time",
    "America/Edmonton": "Mountain time",
    "America/Phoenix": "Arizona time",
    "America/Los_Angeles": "Pacific time",
    "America/Vancouver": "Pacific time",
    "America/Anchorage": "Alaska time",
    "Pacific/Honolulu": "Hawaii time",
    "Europe/London": "UK time",
    "UTC": "UTC",
    "Etc/UTC": "UTC",
}


def zone_label(zone: ZoneInfo) -> str:
    """How to name a zone aloud: 'Eastern time', 'UK time', or '<City> time'."""
    if zone.key in _FRIENDLY_ZONES:
        return _FRIENDLY_ZONES[zone.key]
    city = zone.key.rsplit("/", 1)[-1].replace("_", " ")
    return f"{city} time"


def spoken_clock(moment: datetime) -> str:
    """'9 AM', '2:30 PM', 'noon', 'midnight'."""
    if moment.minute == 0 and moment.hour == 12:
        return "noon"
    if moment.minute == 0 and moment.hour == 0:
        return "midnight"
    hour = moment.hour % 12 or 12
    suffix = "AM" if moment.hour < 12 else "PM"
    return f"{hour} {suffix}" if moment.minute == 0 else f"{hour}:{moment.minute:02d} {suffix}"


def spoken_day(day: date, today: date) -> str:
    """'today', 'tomorrow' or 'Monday, March 9'."""
    if day == today:
        return "today"
    if (day - today).days == 1:
        return "tomorrow"
    return f"{day:%A}, {day:%B} {day.day}"


def spoken_datetime(moment: datetime, today: date) -> str:
    """'Monday, March 9 at 2:30 PM' in the moment's own zone."""
    return f"{spoken_day(moment.date(), today)} at {spoken_clock(moment)}"


def spoken_list(items: Sequence[str], conjunction: str = "or") -> str:
    """'a', 'a or b', 'a, b or c'."""
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


_ZERO_DECIMAL = {
    "BIF",
    "CLP",
    "DJF",
    "GNF",
    "ISK",
    "JPY",
    "KMF",
    "KRW",
    "PYG",
    "RWF",
    "UGX",
    "VND",
    "VUV",
    "XAF",
    "XOF",
    "XPF",
}


def spoken_money(amount_minor: int, currency: str) -> str:
    """'$49.00', '€12.50', '¥500', or '12.50 CHF' for currencies without a common symbol."""
    symbols = {"USD": "$", "CAD": "$", "AUD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
    code = currency.upper()
    major = f"{amount_minor:,}" if code in _ZERO_DECIMAL else f"{amount_minor / 100:,.2f}"
    symbol = symbols.get(code)
    return f"{symbol}{major}" if symbol else f"{major} {code}"


def said_money(amount_minor: int, currency: str) -> str:
    """Money as people say it: '$240' for whole amounts, '$240.50' otherwise."""
    written = spoken_money(amount_minor, currency)
    return written.replace(".00", "", 1) if currency.upper() not in _ZERO_DECIMAL else written
