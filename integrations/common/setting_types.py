"""Types the providers' settings share, so each check is written once.

`HttpUrl`: an http(s) URL, kept without a trailing slash (paths are appended to it).
`ZoneName`: a time zone the one zone validator (`integrations.common.zones`) accepts, in its own
spelling; anything else is refused with a message saying what to send.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from integrations.common.zones import UnknownZoneError, canonical_zone_name

__all__ = ["HttpUrl", "ZoneName"]


def _http_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _zone(value: str) -> str:
    # A folder such as "America" is refused here, not left to fail as IsADirectoryError later.
    try:
        return canonical_zone_name(value)
    except UnknownZoneError as error:
        raise ValueError(f"unknown IANA timezone: {error}") from None


HttpUrl = Annotated[str, AfterValidator(_http_url)]
ZoneName = Annotated[str, AfterValidator(_zone)]
