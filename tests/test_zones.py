"""The one time zone validator: canonical IANA Area/Location names, their tz aliases and UTC; nothing else."""

from __future__ import annotations

import pytest

from integrations.common.zones import UnknownZoneError, canonical_zone_name, zone_info


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("America/New_York", "America/New_York"),
        ("America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"),
        ("Etc/GMT+5", "Etc/GMT+5"),
        ("UTC", "UTC"),
        ("US/Eastern", "US/Eastern"),
        ("Asia/Calcutta", "Asia/Calcutta"),
        (" Europe/London ", "Europe/London"),
        ("america/new_york", "America/New_York"),
        ("utc", "UTC"),
    ],
)
def test_canonical_zones_and_their_documented_aliases_are_accepted_in_the_zones_own_spelling(
    given: str, canonical: str
) -> None:
    assert canonical_zone_name(given) == canonical
    assert zone_info(given).key == canonical


@pytest.mark.parametrize(
    "given",
    [
        "America",
        "Europe",
        "Etc",
        "Mars/Base",
        "localtime",
        "Factory",
        "posixrules",
        "EST",
        "EST5EDT",
        "GMT",
        "posix/America/New_York",
        "right/Europe/London",
        "America/../Europe/London",
        "America/New_York/",
        "/usr/share/zoneinfo/UTC",
        "",
        "   ",
        "America/" + "x" * 200,
        "America/New\x00York",
    ],
)
def test_folders_abbreviations_copies_paths_and_blanks_are_refused(given: str) -> None:
    with pytest.raises(UnknownZoneError) as refused:
        canonical_zone_name(given)

    assert "America/New_York" in str(refused.value)
    assert len(str(refused.value)) < 200
