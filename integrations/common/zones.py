"""The one time zone validator: canonical IANA `Area/Location` names, their tz aliases, and UTC.

Every entry point that takes a zone (tool arguments, agents, connection settings, the CLI,
post-call extraction, the emulators) checks it here, so they all accept and refuse the same names.

Accepted: `Area/Location[/Sub]` names of the tz database's regions (`America/New_York`,
`Etc/GMT+5`), the aliases it documents in those regions and in its legacy country folders
(`Asia/Calcutta`, `US/Eastern`), and `UTC`. Refused: folders (`America`, `Etc`), legacy
abbreviations and files that are not zones (`EST`, `localtime`, `Factory`, `posixrules`), the
`posix/` and `right/` copies, anything else the zoneinfo loader would open, and blanks. A name
that differs from a zone only in case is answered with the zone's own spelling.
"""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

__all__ = ["UnknownZoneError", "canonical_zone_name", "zone_info"]

# The tz database's regions, plus the country folders of its `backward` file (aliases it documents).
_AREAS = frozenset(
    {
        "Africa",
        "America",
        "Antarctica",
        "Arctic",
        "Asia",
        "Atlantic",
        "Australia",
        "Europe",
        "Indian",
        "Pacific",
        "Etc",
        "US",
        "Canada",
        "Brazil",
        "Chile",
        "Mexico",
    }
)
_MAX_LENGTH = 64
_SEGMENT_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-")


class UnknownZoneError(ValueError):
    """Not an IANA time zone this server accepts. The message says what to send instead."""


def _well_formed(name: str) -> bool:
    if name == "UTC":
        return True
    if not 0 < len(name) <= _MAX_LENGTH:
        return False
    segments = name.split("/")
    if not 2 <= len(segments) <= 3 or segments[0] not in _AREAS:
        return False
    return all(segment and set(segment) <= _SEGMENT_CHARACTERS for segment in segments)


def _loads(name: str) -> bool:
    try:
        ZoneInfo(name)
    # OSError: a folder of the zone database ("America") is IsADirectoryError, not "not found".
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@cache
def _by_lower_case() -> dict[str, str]:
    # Scans the zone database once (tens of milliseconds), only for a name in the wrong case.
    return {name.lower(): name for name in available_timezones() if _well_formed(name)}


@cache
def canonical_zone_name(name: str) -> str:
    """`name` if it is an accepted zone (in the zone's own spelling), else `UnknownZoneError`."""
    candidate = name.strip() if isinstance(name, str) else ""
    if _well_formed(candidate) and _loads(candidate):
        return candidate
    if candidate and len(candidate) <= _MAX_LENGTH:
        respelled = _by_lower_case().get(candidate.lower())
        if respelled is not None and _loads(respelled):
            return respelled
    shown = repr(name[:_MAX_LENGTH]) if isinstance(name, str) else type(name).__name__
    raise UnknownZoneError(
        f"{shown} is not an IANA time zone; use an Area/Location name such as 'America/New_York', "
        "'Europe/London' or 'UTC'"
    )


def zone_info(name: str) -> ZoneInfo:
    """The ZoneInfo of an accepted zone name, else `UnknownZoneError`."""
    return ZoneInfo(canonical_zone_name(name))
