"""Windows time-zone names, which Graph uses in `dateTimeTimeZone.timeZone`, mapped to IANA zones.

The table is CLDR's windowsZones.xml "001" (golden) mapping for the zones a business in the US,
Canada, Latin America, Europe, Africa, the Middle East, Asia and Oceania is likely to be in
(https://github.com/unicode-org/cldr/blob/main/common/supplemental/windowsZones.xml). CLDR still
names a few zones by their old tz spelling (Asia/Calcutta, Europe/Kiev, America/Godthab,
America/Indianapolis, America/Buenos_Aires); they are given here by the tz database's current name,
which is the same zone. An unknown name is never guessed at: the caller raises instead.
"""

from __future__ import annotations

from functools import lru_cache

from integrations.common.zones import UnknownZoneError, canonical_zone_name

__all__ = ["WINDOWS_TO_IANA", "iana_zone", "windows_zone"]

WINDOWS_TO_IANA: dict[str, str] = {
    "Dateline Standard Time": "Etc/GMT+12",
    "UTC-11": "Etc/GMT+11",
    "Aleutian Standard Time": "America/Adak",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Alaskan Standard Time": "America/Anchorage",
    "Pacific Standard Time (Mexico)": "America/Tijuana",
    "UTC-08": "Etc/GMT+8",
    "Pacific Standard Time": "America/Los_Angeles",
    "US Mountain Standard Time": "America/Phoenix",
    "Mountain Standard Time (Mexico)": "America/Mazatlan",
    "Mountain Standard Time": "America/Denver",
    "Yukon Standard Time": "America/Whitehorse",
    "Central America Standard Time": "America/Guatemala",
    "Central Standard Time": "America/Chicago",
    "Canada Central Standard Time": "America/Regina",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "Eastern Standard Time (Mexico)": "America/Cancun",
    "SA Pacific Standard Time": "America/Bogota",
    "Eastern Standard Time": "America/New_York",
    "US Eastern Standard Time": "America/Indiana/Indianapolis",
    "Haiti Standard Time": "America/Port-au-Prince",
    "Cuba Standard Time": "America/Havana",
    "Turks And Caicos Standard Time": "America/Grand_Turk",
    "Atlantic Standard Time": "America/Halifax",
    "Venezuela Standard Time": "America/Caracas",
    "SA Western Standard Time": "America/La_Paz",
    "Pacific SA Standard Time": "America/Santiago",
    "Newfoundland Standard Time": "America/St_Johns",
    "E. South America Standard Time": "America/Sao_Paulo",
    "SA Eastern Standard Time": "America/Cayenne",
    "Argentina Standard Time": "America/Argentina/Buenos_Aires",
    "Greenland Standard Time": "America/Nuuk",
    "Montevideo Standard Time": "America/Montevideo",
    "Saint Pierre Standard Time": "America/Miquelon",
    "UTC-02": "Etc/GMT+2",
    "Azores Standard Time": "Atlantic/Azores",
    "Cape Verde Standard Time": "Atlantic/Cape_Verde",
    "UTC": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "Morocco Standard Time": "Africa/Casablanca",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Romance Standard Time": "Europe/Paris",
    "Central European Standard Time": "Europe/Warsaw",
    "W. Central Africa Standard Time": "Africa/Lagos",
    "GTB Standard Time": "Europe/Bucharest",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev",
    "Kaliningrad Standard Time": "Europe/Kaliningrad",
    "Egypt Standard Time": "Africa/Cairo",
    "South Africa Standard Time": "Africa/Johannesburg",
    "Israel Standard Time": "Asia/Jerusalem",
    "Jordan Standard Time": "Asia/Amman",
    "Middle East Standard Time": "Asia/Beirut",
    "Turkey Standard Time": "Europe/Istanbul",
    "Belarus Standard Time": "Europe/Minsk",
    "Russian Standard Time": "Europe/Moscow",
    "E. Africa Standard Time": "Africa/Nairobi",
    "Arabic Standard Time": "Asia/Baghdad",
    "Arab Standard Time": "Asia/Riyadh",
    "Arabian Standard Time": "Asia/Dubai",
    "Iran Standard Time": "Asia/Tehran",
    "Pakistan Standard Time": "Asia/Karachi",
    "India Standard Time": "Asia/Kolkata",
    "Sri Lanka Standard Time": "Asia/Colombo",
    "Nepal Standard Time": "Asia/Kathmandu",
    "Bangladesh Standard Time": "Asia/Dhaka",
    "SE Asia Standard Time": "Asia/Bangkok",
    "China Standard Time": "Asia/Shanghai",
    "Singapore Standard Time": "Asia/Singapore",
    "Taipei Standard Time": "Asia/Taipei",
    "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul",
    "W. Australia Standard Time": "Australia/Perth",
    "Aus Central W. Standard Time": "Australia/Eucla",
    "Cen. Australia Standard Time": "Australia/Adelaide",
    "AUS Central Standard Time": "Australia/Darwin",
    "E. Australia Standard Time": "Australia/Brisbane",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "Tasmania Standard Time": "Australia/Hobart",
    "Lord Howe Standard Time": "Australia/Lord_Howe",
    "West Pacific Standard Time": "Pacific/Port_Moresby",
    "Norfolk Standard Time": "Pacific/Norfolk",
    "Fiji Standard Time": "Pacific/Fiji",
    "New Zealand Standard Time": "Pacific/Auckland",
    "UTC+12": "Etc/GMT-12",
    "Chatham Islands Standard Time": "Pacific/Chatham",
    "Tonga Standard Time": "Pacific/Tongatapu",
    "Samoa Standard Time": "Pacific/Apia",
    "Line Islands Standard Time": "Pacific/Kiritimati",
}

_BY_LOWER = {name.lower(): zone for name, zone in WINDOWS_TO_IANA.items()}
# The reverse: the Windows name Graph knows each IANA zone by (first one wins; the table has no duplicates).
_WINDOWS_OF: dict[str, str] = {}
for _name, _zone in WINDOWS_TO_IANA.items():
    _WINDOWS_OF.setdefault(_zone, _name)


# A getSchedule answer names the same zone hundreds of times.
@lru_cache(maxsize=256)
def iana_zone(name: str) -> str:
    """The IANA zone for a zone name Graph gave: a Windows name, or an IANA name (Graph accepts both).

    Raises `UnknownZoneError` for anything else.
    """
    found = _BY_LOWER.get(name.strip().lower())
    if found is not None:
        return canonical_zone_name(found)
    if name.startswith("tzone://Microsoft/"):
        # Outlook's own spelling of UTC in originalStartTimeZone.
        if name == "tzone://Microsoft/Utc":
            return "UTC"
        raise UnknownZoneError(f"{name[:64]!r} is not a time zone this integration maps")
    return canonical_zone_name(name)


def windows_zone(iana: str) -> str | None:
    """The Windows name of an IANA zone, or None when the table has none (send the IANA name then)."""
    try:
        canonical = canonical_zone_name(iana)
    except UnknownZoneError:
        return None
    return _WINDOWS_OF.get(canonical)
