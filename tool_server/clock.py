"""The one source of "now". Injected so tests and demos can pin time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "fixed_clock", "system_clock"]

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The current instant, timezone-aware in UTC."""
    return datetime.now(UTC)


def fixed_clock(instant: datetime) -> Clock:
    """A clock that always answers `instant` (which must be timezone-aware)."""
    if instant.tzinfo is None:
        raise ValueError("fixed_clock needs a timezone-aware datetime")

    def now() -> datetime:
        return instant

    return now
