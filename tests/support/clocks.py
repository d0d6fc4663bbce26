"""A clock tests can move forward."""

from __future__ import annotations

from datetime import datetime


class MovableClock:
    """Answers `now`, which the test sets."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
