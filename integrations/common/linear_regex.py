"""Regular expressions on RE2: matching time is linear in the text, whatever the pattern or the text.

Python's `re` backtracks, so a pattern as plain as `[a-z]+@` takes quadratic time on a long run of
letters, and nested quantifiers take exponential time. Text in this server comes from callers,
voice platforms and provider payloads, so every pattern is compiled here instead (a test keeps
`import re` out of `tool_server/` and `integrations/`).

RE2 has no backreferences and no lookaround. `\\w`, `\\d`, `\\s` and `\\b` are ASCII; use `\\pL`
for letters in any script. Flags go inline (`(?i)`) or through `ignore_case`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, cast

import re2

__all__ = ["LinearMatch", "LinearPattern", "compile_linear"]


class LinearMatch(Protocol):
    """The subset of `re.Match` that RE2's matches offer and this server uses.

    Unlike `re`, `start`, `end` and `span` take a group's number, not its name.
    """

    def group(self, *groups: int | str) -> Any: ...

    def __getitem__(self, group: int | str) -> Any: ...

    def groupdict(self) -> dict[str, str | None]: ...

    def start(self, group: int = 0) -> int: ...

    def end(self, group: int = 0) -> int: ...

    def span(self, group: int = 0) -> tuple[int, int]: ...


class LinearPattern(Protocol):
    """The subset of `re.Pattern` that RE2's patterns offer and this server uses."""

    @property
    def pattern(self) -> str: ...

    def search(self, text: str, pos: int = ..., endpos: int = ...) -> LinearMatch | None: ...

    def match(self, text: str, pos: int = ..., endpos: int = ...) -> LinearMatch | None: ...

    def fullmatch(self, text: str, pos: int = ..., endpos: int = ...) -> LinearMatch | None: ...

    def finditer(self, text: str, pos: int = ..., endpos: int = ...) -> Iterator[LinearMatch]: ...

    def findall(self, text: str, pos: int = ..., endpos: int = ...) -> list[Any]: ...

    def sub(self, replacement: str | Callable[[LinearMatch], str], text: str, count: int = ...) -> str: ...

    def split(self, text: str, maxsplit: int = ...) -> list[str]: ...


def compile_linear(pattern: str, *, ignore_case: bool = False) -> LinearPattern:
    """`pattern` compiled by RE2. Raises `re2.error` for syntax RE2 does not have (lookaround, backreferences)."""
    if ignore_case:
        pattern = f"(?i:{pattern})"
    return cast(LinearPattern, re2.compile(pattern))
