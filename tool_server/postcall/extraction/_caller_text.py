"""The caller's side of a transcript as one text, one turn per line, for the fallback's patterns.

Reading one text instead of each turn keeps the cost per character rather than per turn: RE2's
Python binding spends microseconds on every call, and a megabyte can hold a hundred thousand
one-word turns. Inside a turn all whitespace is a single space and apostrophes are straight, so
the patterns write a plain space where they mean whitespace and never reach into the next turn.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from tool_server.calls.models import CallRecord

__all__ = ["CallerText"]


@dataclass(frozen=True)
class CallerText:
    """`text` holds the caller's non-blank turns, one per line; `starts` where each line begins."""

    text: str
    starts: tuple[int, ...]

    @classmethod
    def of(cls, record: CallRecord) -> CallerText:
        """The caller's turns of `record`, in order; the agent's and tools' turns are left out."""
        lines = [_plain(turn.text) for turn in record.transcript if turn.speaker == "caller" and turn.text.strip()]
        starts: list[int] = []
        position = 0
        for line in lines:
            starts.append(position)
            position += len(line) + 1
        return cls("\n".join(lines), tuple(starts))

    @property
    def turns(self) -> int:
        """How many caller turns there are."""
        return len(self.starts)

    def turn_at(self, position: int) -> int:
        """The index of the turn that holds `position` of `text`."""
        return bisect_right(self.starts, position) - 1


def _plain(text: str) -> str:
    # Speech-to-text writes curly apostrophes ("can’t"); the rules look for straight ones.
    return " ".join(text.replace("\u2019", "'").split())
